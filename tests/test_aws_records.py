"""The DynamoDB record store: the record store contract (beside the SQLite store), and its table layout."""

from __future__ import annotations

import json

import boto3
import pytest

from batch_endpoints.adapters.aws.records import BY_CREATED, BY_KIND, BY_PARENT, DynamoDbRecordStore, table_definition
from tests.store_contract import (
    TABLE,
    RecordStoreContract,
    make_dynamodb_store,
    moto_fixture,  # noqa: F401 (a fixture)
    record_store_fixture,  # noqa: F401 (a fixture)
)


class TestRecordStoreContract(RecordStoreContract):
    """Every RecordStore behaviour, against SQLite and DynamoDB."""


@pytest.fixture
def store(moto: None) -> DynamoDbRecordStore:
    return make_dynamodb_store()


def raw_item(kind: str, key: str) -> dict:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": f"{kind}#{key}"}})["Item"]


def test_the_table_definition_is_one_string_key_and_three_keys_only_indexes() -> None:
    definition = table_definition("t")

    assert definition["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert definition["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {i["IndexName"]: i for i in definition["GlobalSecondaryIndexes"]}
    assert {name: [k["AttributeName"] for k in i["KeySchema"]] for name, i in indexes.items()} == {
        BY_KIND: ["kind", "key"],
        BY_CREATED: ["kind", "created_key"],
        BY_PARENT: ["kind_parent", "created_key"],
    }
    assert {i["Projection"]["ProjectionType"] for i in indexes.values()} == {"KEYS_ONLY"}


def test_an_item_holds_the_document_as_json_text_and_counters_as_numbers(store: DynamoDbRecordStore) -> None:
    store.put("job", "digits-1", {"b": [1, {"c": None}], "a": 0.5}, parent="digits", expected_version=0)
    store.add_counters("job", "digits-1", {"files_succeeded": 3})

    item = raw_item("job", "digits-1")

    assert item["pk"] == {"S": "job#digits-1"}
    assert (item["kind"], item["key"], item["parent"]) == ({"S": "job"}, {"S": "digits-1"}, {"S": "digits"})
    assert item["kind_parent"] == {"S": "job#digits"}
    assert json.loads(item["data"]["S"]) == {"a": 0.5, "b": [1, {"c": None}]}
    assert item["version"] == {"N": "1"}
    assert item["c_files_succeeded"] == {"N": "3"}
    created_ms = round(float(item["created"]["N"]) * 1000)
    assert item["created_key"]["S"] == f"{created_ms:013d}#digits-1"


def test_rewriting_a_record_keeps_its_creation_time(store: DynamoDbRecordStore) -> None:
    store.put("job", "j", {}, parent="a", expected_version=0)
    created = raw_item("job", "j")["created_key"]

    store.put("job", "j", {"x": 1}, parent="b", expected_version=1)

    assert raw_item("job", "j")["created_key"] == created
    assert raw_item("job", "j")["kind_parent"] == {"S": "job#b"}


@pytest.mark.parametrize("page_size", [None, 1, 7])
def test_listings_read_every_page(moto: None, page_size: int | None) -> None:
    store = make_dynamodb_store(page_size=page_size)
    for n in range(25):
        store.put("model", f"m:{n:03d}", {"n": n}, parent="m", expected_version=0)

    assert [r.data["n"] for r in store.list("model")] == list(range(25))
    assert [r.data["n"] for r in store.list("model", parent="m", newest_first=True, limit=3)] == [24, 23, 22]


def test_an_index_entry_whose_record_is_gone_is_skipped_and_the_limit_still_met(store: DynamoDbRecordStore) -> None:
    """Indexes lag the table in real DynamoDB: a listing may meet a record deleted a moment ago."""
    for key in "acde":
        store.put("endpoint", key, {}, expected_version=0)
    stale = {"pk": "endpoint#b", "kind": "endpoint", "key": "b", "kind_parent": "endpoint#", "created_key": "0#b"}
    boto3.client("dynamodb").put_item(TableName=TABLE, Item={name: {"S": value} for name, value in stale.items()})

    assert [r.key for r in store.list("endpoint", limit=3)] == ["a", "c", "d"]
    assert [r.key for r in store.list("endpoint", newest_first=True)] == ["e", "d", "c", "a"]
    assert store.get("endpoint", "b") is None


def test_calls_retry_adaptively(moto: None) -> None:
    store = DynamoDbRecordStore("t", client=None)

    assert store.client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
