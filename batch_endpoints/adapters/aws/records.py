"""Records in one DynamoDB table, behaving exactly as the SQLite store does.

One item per record:

    pk           S  "<kind>#<key>"            the table's only key
    kind, key    S
    parent       S
    kind_parent  S  "<kind>#<parent>"
    version      N  1, 2, ...                 absent on an item that so far only holds counters
    created      N  epoch seconds, ms precision
    created_key  S  "<created ms, 13 digits>#<key>"   creation order, ties broken by key as SQLite does
    data         S  the document as JSON text: exact for any nesting, float or null, no Decimal round trip
    c_<name>     N  counters, only ever changed by ADD (atomic)
    write_id     S  a random id of the document write that made this version

Writes are UpdateItem (SET for the document fields, ADD for counters), so neither wipes the other. A document
is limited by DynamoDB's 400 KB item size; ours are a few KB.

A conditional write whose answer was lost after DynamoDB applied it (a 500, a dropped connection) is sent again
by botocore and then fails its own condition. Each write stores its own write_id, and the item the failed
condition returns (ReturnValuesOnConditionCheckFailure) tells that retry apart from another writer's change: it
is the write's own version, and the write succeeded. A counter ADD has no such check: a retried one whose first
try was applied counts twice. Counters are progress (and what a runner's early stop on error_threshold reads);
a job's counts at its end are taken from its mini-batch results, never from them.

Listings query a KEYS_ONLY global secondary index for the order, then read the documents from the table with
consistent BatchGetItem. Keys-only indexes are cheap to keep: counter updates (one per mini-batch) and
document updates do not touch them, only creation and a change of parent do. Indexes are eventually
consistent: a record written a moment ago may be missing from a listing (or still be listed after its delete,
in which case it is skipped), but every record listed carries its latest document and counters.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from batch_endpoints.adapters.aws.clients import aws_client
from batch_endpoints.errors import ConflictError
from batch_endpoints.ports import Record

BY_KIND = "by_kind"
"""kind / key: every record of a kind, in key order."""
BY_CREATED = "by_created"
"""kind / created_key: every record of a kind, newest first."""
BY_PARENT = "by_parent"
"""kind_parent / created_key: the records of one parent (a model's versions, an endpoint's deployments
and jobs). Small enough to read whole when asked in key order."""

COUNTER_PREFIX = "c_"
# BatchGetItem takes at most 100 keys a call and may hand back some unprocessed when throttled.
BATCH_GET_KEYS = 100
UNPROCESSED_BACKOFF_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)

# Attribute names that are DynamoDB reserved words (KEY, DATA, ...) are always written through aliases.
NAMES = {"#kind": "kind", "#key": "key", "#parent": "parent", "#version": "version", "#data": "data"}


def table_definition(name: str) -> dict[str, Any]:
    """The table's schema as CreateTable arguments: what tests create and what the CDK table must match."""

    def index(index_name: str, hash_key: str, range_key: str) -> dict[str, Any]:
        return {
            "IndexName": index_name,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }

    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": attribute, "AttributeType": "S"}
            for attribute in ("pk", "kind", "key", "kind_parent", "created_key")
        ],
        "GlobalSecondaryIndexes": [
            index(BY_KIND, "kind", "key"),
            index(BY_CREATED, "kind", "created_key"),
            index(BY_PARENT, "kind_parent", "created_key"),
        ],
    }


class DynamoDbRecordStore:
    def __init__(self, table_name: str, client: Any = None, *, page_size: int | None = None) -> None:
        """page_size caps the index entries read per Query call (DynamoDB's own cap is 1 MB)."""
        self.table_name = table_name
        # Runner processes write counters from several threads: room for them in the connection pool.
        self.client = client or aws_client("dynamodb", max_pool_connections=32)
        self.page_size = page_size

    def get(self, kind: str, key: str) -> Record | None:
        item = self.client.get_item(TableName=self.table_name, Key=_pk(kind, key), ConsistentRead=True).get("Item")
        return _record(item) if item and "version" in item else None

    def put(
        self, kind: str, key: str, data: Mapping[str, Any], *, parent: str = "", expected_version: int | None
    ) -> int:
        created_ms = round(time.time() * 1000)
        write_id = uuid.uuid4().hex
        values = {
            ":write_id": {"S": write_id},
            ":kind": {"S": kind},
            ":key": {"S": key},
            ":parent": {"S": parent},
            ":kind_parent": {"S": f"{kind}#{parent}"},
            ":data": {"S": json.dumps(data, sort_keys=True)},
            ":created": {"N": f"{created_ms // 1000}.{created_ms % 1000:03d}"},
            ":created_key": {"S": f"{created_ms:013d}#{key}"},
        }
        condition: dict[str, str] = {}
        if expected_version is None:
            version = "if_not_exists(#version, :zero) + :one"
            values |= {":zero": {"N": "0"}, ":one": {"N": "1"}}
        elif expected_version == 0:
            # Not attribute_not_exists(pk): counters may be added before the record is written.
            version = ":one"
            values[":one"] = {"N": "1"}
            condition["ConditionExpression"] = "attribute_not_exists(#version)"
        else:
            version = ":next"
            values |= {":expected": {"N": str(expected_version)}, ":next": {"N": str(expected_version + 1)}}
            condition["ConditionExpression"] = "#version = :expected"
        if condition:
            condition["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            reply = self.client.update_item(
                TableName=self.table_name,
                Key=_pk(kind, key),
                UpdateExpression=(
                    "SET #kind = :kind, #key = :key, #parent = :parent, kind_parent = :kind_parent, "
                    f"#data = :data, #version = {version}, created = if_not_exists(created, :created), "
                    "created_key = if_not_exists(created_key, :created_key), write_id = :write_id"
                ),
                ExpressionAttributeNames=NAMES,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                **condition,
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            # ReturnValuesOnConditionCheckFailure puts the item in the error, which botocore's types do not know.
            response: Mapping[str, Any] = exc.response
            stored = response.get("Item") or {}
            if stored.get("write_id", {}).get("S") == write_id:  # applied by an attempt whose answer was lost
                return int(stored["version"]["N"])
            what = "already exists" if expected_version == 0 else "was changed by another request"
            raise ConflictError(f"{kind} {key!r} {what}; read it again and retry") from None
        return int(reply["Attributes"]["version"]["N"])

    def delete(self, kind: str, key: str) -> bool:
        reply = self.client.delete_item(TableName=self.table_name, Key=_pk(kind, key), ReturnValues="ALL_OLD")
        return "version" in reply.get("Attributes", {})

    def list(
        self, kind: str, *, parent: str | None = None, newest_first: bool = False, limit: int | None = None
    ) -> list[Record]:
        if limit is not None and limit < 0:
            limit = None  # as SQLite's LIMIT -1
        if limit == 0:
            return []
        if parent is None:
            index, hash_key, value = (BY_CREATED if newest_first else BY_KIND), "kind", kind
        else:
            index, hash_key, value = BY_PARENT, "kind_parent", f"{kind}#{parent}"
        whole = parent is not None and not newest_first
        pages = self._index_pages(index, hash_key, value, forward=not newest_first, limit=None if whole else limit)
        if whole:
            # The parent index is in creation order; key order is a sort of the (few) records of one parent.
            keys = sorted((pk for page in pages for pk in page), key=lambda pk: pk.partition("#")[2])
            pages = iter([keys])
        found: list[Record] = []
        for page in pages:
            start = 0
            # Read no more documents than the limit needs; read on if some were deleted since they were indexed.
            while start < len(page) and (limit is None or len(found) < limit):
                wanted = page[start:] if limit is None else page[start : start + limit - len(found)]
                found += self._read_documents(wanted)
                start += len(wanted)
            if limit is not None and len(found) >= limit:
                break
        return found

    def add_counters(self, kind: str, key: str, deltas: Mapping[str, int]) -> dict[str, int]:
        if not deltas:
            item = self.client.get_item(TableName=self.table_name, Key=_pk(kind, key), ConsistentRead=True)
            return _counters(item.get("Item", {}))
        names = {f"#c{n}": f"{COUNTER_PREFIX}{name}" for n, name in enumerate(deltas)}
        values = {f":d{n}": {"N": str(int(delta))} for n, delta in enumerate(deltas.values())}
        reply = self.client.update_item(
            TableName=self.table_name,
            Key=_pk(kind, key),
            UpdateExpression="ADD " + ", ".join(f"#c{n} :d{n}" for n in range(len(deltas))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return _counters(reply["Attributes"])

    # --- listing --------------------------------------------------------------------------------------

    def _index_pages(
        self, index: str, hash_key: str, value: str, *, forward: bool, limit: int | None
    ) -> Iterator[builtins.list[str]]:
        """The table keys (pk) in the index's order, one Query page at a time (of at most `limit`)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#hash = :hash",
            "ExpressionAttributeNames": {"#hash": hash_key},
            "ExpressionAttributeValues": {":hash": {"S": value}},
            "ScanIndexForward": forward,
        }
        page_limit = min(n for n in (self.page_size, limit) if n) if self.page_size or limit else None
        if page_limit:
            request["Limit"] = page_limit
        while True:
            reply = self.client.query(**request)
            yield [item["pk"]["S"] for item in reply.get("Items", [])]
            if "LastEvaluatedKey" not in reply:
                return
            request["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def _read_documents(self, pks: builtins.list[str]) -> builtins.list[Record]:
        """The records of `pks`, in that order, skipping those deleted since the index listed them."""
        items: dict[str, dict[str, Any]] = {}
        for start in range(0, len(pks), BATCH_GET_KEYS):
            keys = [{"pk": {"S": pk}} for pk in dict.fromkeys(pks[start : start + BATCH_GET_KEYS])]
            pending: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            for delay in (0.0, *UNPROCESSED_BACKOFF_S):
                time.sleep(delay)
                reply = self.client.batch_get_item(RequestItems=pending)
                for item in reply.get("Responses", {}).get(self.table_name, []):
                    items[item["pk"]["S"]] = item
                pending = reply.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"DynamoDB kept {len(pending[self.table_name]['Keys'])} keys unprocessed")
        return [_record(items[pk]) for pk in pks if pk in items and "version" in items[pk]]


def _pk(kind: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"{kind}#{key}"}}


def _record(item: Mapping[str, Any]) -> Record:
    return Record(item["key"]["S"], json.loads(item["data"]["S"]), int(item["version"]["N"]), _counters(item))


def _counters(item: Mapping[str, Any]) -> dict[str, int]:
    return {
        name[len(COUNTER_PREFIX) :]: int(value["N"]) for name, value in item.items() if name.startswith(COUNTER_PREFIX)
    }


def _code(exc: ClientError) -> str:
    code: str = exc.response.get("Error", {}).get("Code", "")
    return code
