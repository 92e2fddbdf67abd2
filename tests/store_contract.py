"""The RecordStore and BlobStore contracts, run against every adapter: what the core relies on, once.

`RecordStoreContract` and `BlobStoreContract` hold the tests; a test module collects them by subclassing
(`class TestRecordStoreContract(RecordStoreContract)`) and importing the fixtures below, which build each
adapter in turn: the local one (SQLite file, folder) and the AWS one (DynamoDB, S3, both in moto). A new
adapter adds itself to the fixtures' params and passes the same suite.

moto applies a request's condition check and its write without isolation, so two threads can both pass the
same condition; DynamoDB and S3 apply each request atomically. `serialized` restores that guarantee by
running one request at a time: the races these tests provoke are then decided the way AWS decides them.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.aws.records import DynamoDbRecordStore, table_definition
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.adapters.local.records import SqliteRecordStore
from batch_endpoints.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from batch_endpoints.ports import BlobInfo, BlobRange, BlobStore, RecordStore
from batch_endpoints.repository import ENDPOINT, Repository
from batch_endpoints.specs import Endpoint
from tests.aws_fixtures import Serialized

ADAPTERS = ["local", "aws"]
TABLE = "bep-records"
STORAGE_BUCKET = "bep-storage"
USER_BUCKET = "someone-elses-data"
# Small Query pages, so every listing below crosses page boundaries (DynamoDB's own page is 1 MB).
PAGE_SIZE = 7
FIVE_MIB = 5 * 1024 * 1024
AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


def serialized(service: str) -> Any:
    return Serialized(boto3.client(service))


@pytest.fixture(name="moto")
def moto_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """AWS in this process (moto), with fake credentials and no way to reach a real account."""
    for name, value in AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


def make_dynamodb_store(**options: Any) -> DynamoDbRecordStore:
    """A fresh table from the reference schema, inside an active moto."""
    client = serialized("dynamodb")
    client.create_table(**table_definition(TABLE))
    return DynamoDbRecordStore(TABLE, client, **options)


@pytest.fixture(name="record_store", params=ADAPTERS)
def record_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> RecordStore:
    if request.param == "local":
        return SqliteRecordStore(str(tmp_path / "records.db"))
    request.getfixturevalue("moto")
    return make_dynamodb_store(page_size=PAGE_SIZE)


@dataclass
class BlobPlace:
    """A blob store under test, and what the tests need to know about its addressing."""

    store: BlobStore
    elsewhere: str
    """A folder outside the store's root, as a user's input folder or output location is."""
    refused: list[str] = field(default_factory=list)
    """URIs this store cannot address."""

    def write_tree(self, folder: str, files: Mapping[str, str | bytes]) -> str:
        for relative, content in files.items():
            self.store.put_bytes(
                self.store.join(folder, relative), content.encode() if isinstance(content, str) else content
            )
        return folder


@pytest.fixture(name="place", params=ADAPTERS)
def place_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> BlobPlace:
    if request.param == "local":
        return BlobPlace(
            FolderBlobStore(str(tmp_path / "storage")),
            elsewhere=str(tmp_path / "user-data"),
            refused=["s3://bucket/key.csv", "https://example.com/a.csv", "azureml://datastores/x"],
        )
    request.getfixturevalue("moto")
    client = serialized("s3")
    for bucket in (STORAGE_BUCKET, USER_BUCKET):
        client.create_bucket(Bucket=bucket)
    return BlobPlace(
        S3BlobStore(STORAGE_BUCKET, prefix="bep", client=client, part_size=5 * 1024 * 1024),
        elsewhere=f"s3://{USER_BUCKET}/user-data",
        refused=[str(tmp_path / "a.csv"), "file:///tmp/a.csv", "https://example.com/a.csv", "s3://", "s3:///key"],
    )


def keys(records: list) -> list[str]:
    return [r.key for r in records]


def run_together(*targets: Any) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class RecordStoreContract:
    # --------------------------------------------------------------------------------------------- put / get
    def test_put_then_get_returns_the_exact_document_at_version_one(self, record_store: RecordStore) -> None:
        document = {"name": "m", "nested": {"x": [1, 2.5, None, [], {}]}, "text": "δ ✓", "big": 2**70, "f": 0.1}

        version = record_store.put("model", "m:1", document, expected_version=None)

        record = record_store.get("model", "m:1")
        assert version == 1
        assert record is not None
        assert (record.key, record.data, record.version, record.counters) == ("m:1", document, 1, {})

    def test_get_of_an_unknown_key_is_none(self, record_store: RecordStore) -> None:
        record_store.put("model", "m:1", {}, expected_version=None)

        assert record_store.get("model", "m:2") is None
        assert record_store.get("endpoint", "m:1") is None

    def test_unconditional_put_replaces_and_bumps_the_version(self, record_store: RecordStore) -> None:
        record_store.put("endpoint", "e", {"d": "one", "gone": True}, expected_version=None)

        version = record_store.put("endpoint", "e", {"d": "two"}, expected_version=None)

        record = record_store.get("endpoint", "e")
        assert version == 2
        assert record is not None and (record.data, record.version) == ({"d": "two"}, 2)

    # --------------------------------------------------------------------------------------------- versions
    def test_expected_version_zero_creates_once_and_refuses_after(self, record_store: RecordStore) -> None:
        assert record_store.put("endpoint", "e", {"v": 1}, expected_version=0) == 1

        with pytest.raises(ConflictError, match="'e' already exists; read it again and retry"):
            record_store.put("endpoint", "e", {"v": 2}, expected_version=0)

        record = record_store.get("endpoint", "e")
        assert record is not None and (record.data, record.version) == ({"v": 1}, 1)

    @pytest.mark.parametrize("stale", [1, 3])
    def test_a_stale_expected_version_is_a_conflict_and_writes_nothing(
        self, record_store: RecordStore, stale: int
    ) -> None:
        record_store.put("endpoint", "e", {"v": 1}, expected_version=0)
        assert record_store.put("endpoint", "e", {"v": 2}, expected_version=1) == 2

        with pytest.raises(ConflictError, match="'e' was changed by another request; read it again and retry"):
            record_store.put("endpoint", "e", {"v": "lost"}, expected_version=stale)

        record = record_store.get("endpoint", "e")
        assert record is not None and (record.data, record.version) == ({"v": 2}, 2)

    def test_expected_version_on_a_missing_record_is_a_conflict(self, record_store: RecordStore) -> None:
        with pytest.raises(ConflictError):
            record_store.put("endpoint", "e", {"v": 1}, expected_version=1)

        assert record_store.get("endpoint", "e") is None

    def test_two_puts_with_the_same_expected_version_let_exactly_one_through(self, record_store: RecordStore) -> None:
        record_store.put("endpoint", "e", {"by": "nobody"}, expected_version=0)
        start = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def write(name: str) -> None:
            start.wait(timeout=10)
            try:
                outcomes[name] = record_store.put("endpoint", "e", {"by": name}, expected_version=1)
            except ConflictError as error:
                outcomes[name] = error

        run_together(lambda: write("one"), lambda: write("two"))

        winners = [name for name, outcome in outcomes.items() if outcome == 2]
        assert len(winners) == 1
        assert sum(isinstance(outcome, ConflictError) for outcome in outcomes.values()) == 1
        record = record_store.get("endpoint", "e")
        assert record is not None and (record.data, record.version) == ({"by": winners[0]}, 2)

    def test_concurrent_read_modify_writes_through_the_repository_both_land(self, record_store: RecordStore) -> None:
        repo = Repository(record_store)
        repo.add_endpoint(Endpoint(name="digits"))
        start = threading.Barrier(2)

        def tag(name: str) -> None:
            start.wait(timeout=10)
            for number in range(10):
                label = f"{name}{number}"
                repo.update_endpoint(
                    "digits", lambda e, label=label: e.model_copy(update={"tags": {**e.tags, label: "x"}})
                )

        run_together(lambda: tag("a"), lambda: tag("b"))

        assert sorted(repo.get_endpoint("digits").tags) == sorted(f"{n}{i}" for n in "ab" for i in range(10))
        record = record_store.get(ENDPOINT, "digits")
        assert record is not None and record.version == 21

    # --------------------------------------------------------------------------------------------- list
    def test_list_returns_one_kind_in_key_order(self, record_store: RecordStore) -> None:
        for key in ["c", "a", "b"]:
            record_store.put("endpoint", key, {"k": key}, expected_version=0)
        record_store.put("model", "a-model:1", {}, expected_version=0)

        records = record_store.list("endpoint")

        assert keys(records) == ["a", "b", "c"]
        assert [r.data for r in records] == [{"k": "a"}, {"k": "b"}, {"k": "c"}]

    def test_list_filters_by_parent_in_key_order(self, record_store: RecordStore) -> None:
        for key, parent in [("ep1/green", "ep1"), ("ep2/blue", "ep2"), ("ep1/blue", "ep1"), ("ep1/amber", "ep1")]:
            record_store.put("deployment", key, {}, parent=parent, expected_version=0)

        assert keys(record_store.list("deployment", parent="ep1")) == ["ep1/amber", "ep1/blue", "ep1/green"]
        assert keys(record_store.list("deployment", parent="ep1", limit=2)) == ["ep1/amber", "ep1/blue"]
        assert keys(record_store.list("deployment", parent="ep2")) == ["ep2/blue"]
        assert keys(record_store.list("deployment", parent="ep3")) == []
        assert len(record_store.list("deployment")) == 4

    def test_a_write_moves_the_record_to_its_new_parent(self, record_store: RecordStore) -> None:
        record_store.put("job", "j1", {}, parent="ep1", expected_version=0)

        record_store.put("job", "j1", {}, parent="ep2", expected_version=1)

        assert keys(record_store.list("job", parent="ep1")) == []
        assert keys(record_store.list("job", parent="ep2")) == ["j1"]

    def test_newest_first_orders_by_creation_not_by_key_or_last_write(self, record_store: RecordStore) -> None:
        for key in ["j-b", "j-c", "j-a"]:
            record_store.put("job", key, {}, parent="ep", expected_version=0)
            time.sleep(0.002)
        record_store.put("job", "j-b", {"status": "Completed"}, parent="ep", expected_version=1)

        assert keys(record_store.list("job", newest_first=True)) == ["j-a", "j-c", "j-b"]
        assert keys(record_store.list("job", parent="ep", newest_first=True, limit=2)) == ["j-a", "j-c"]
        assert keys(record_store.list("job", limit=1)) == ["j-a"]
        assert record_store.list("job", limit=0) == []

    def test_long_listings_are_complete_ordered_and_limited(self, record_store: RecordStore) -> None:
        names = [f"job-{n:03d}" for n in range(120)]
        for name in reversed(names):
            record_store.put("job", name, {"n": name}, parent="ep", expected_version=0)
        record_store.add_counters("job", "job-005", {"rows": 5})

        everything = record_store.list("job")
        assert keys(everything) == names
        assert [r.data["n"] for r in everything] == names
        assert everything[5].counters == {"rows": 5}
        assert keys(record_store.list("job", parent="ep")) == names
        assert keys(record_store.list("job", limit=103)) == names[:103]
        assert len(record_store.list("job", parent="ep", newest_first=True)) == 120
        assert len(record_store.list("job", newest_first=True, limit=101)) == 101

    # --------------------------------------------------------------------------------------------- delete
    def test_delete_removes_the_record_and_its_counters(self, record_store: RecordStore) -> None:
        record_store.put("job", "j1", {}, expected_version=0)
        record_store.add_counters("job", "j1", {"files_failed": 4})

        assert record_store.delete("job", "j1") is True

        assert record_store.get("job", "j1") is None
        assert record_store.list("job") == []
        assert record_store.add_counters("job", "j1", {"files_failed": 1}) == {"files_failed": 1}

    def test_delete_of_an_unknown_record_says_so(self, record_store: RecordStore) -> None:
        assert record_store.delete("job", "nothing") is False

    def test_a_deleted_key_can_be_created_again_from_version_one(self, record_store: RecordStore) -> None:
        record_store.put("endpoint", "e", {"v": 1}, expected_version=0)
        record_store.put("endpoint", "e", {"v": 2}, expected_version=1)
        record_store.delete("endpoint", "e")

        assert record_store.put("endpoint", "e", {"v": "new"}, expected_version=0) == 1

    # --------------------------------------------------------------------------------------------- counters
    def test_add_counters_returns_every_counter_after_the_change(self, record_store: RecordStore) -> None:
        record_store.put("job", "j1", {}, expected_version=0)

        assert record_store.add_counters("job", "j1", {"a": 2, "b": 1}) == {"a": 2, "b": 1}
        assert record_store.add_counters("job", "j1", {"a": 3}) == {"a": 5, "b": 1}
        assert record_store.add_counters("job", "j1", {"b": -1}) == {"a": 5, "b": 0}
        assert record_store.add_counters("job", "j1", {}) == {"a": 5, "b": 0}

        record = record_store.get("job", "j1")
        assert record is not None and (record.counters, record.version) == ({"a": 5, "b": 0}, 1)

    def test_writing_the_document_keeps_the_counters(self, record_store: RecordStore) -> None:
        record_store.put("job", "j1", {"status": "Running"}, expected_version=0)
        record_store.add_counters("job", "j1", {"files_succeeded": 7})

        record_store.put("job", "j1", {"status": "Completed"}, expected_version=1)
        record_store.put("job", "j1", {"status": "Completed", "again": True}, expected_version=None)

        record = record_store.get("job", "j1")
        assert record is not None and (record.counters, record.version) == ({"files_succeeded": 7}, 3)

    def test_counters_of_a_record_not_yet_written_are_kept_for_it(self, record_store: RecordStore) -> None:
        assert record_store.add_counters("job", "early", {"rows": 2}) == {"rows": 2}
        assert record_store.get("job", "early") is None
        assert record_store.list("job") == []

        assert record_store.put("job", "early", {}, expected_version=0) == 1

        record = record_store.get("job", "early")
        assert record is not None and record.counters == {"rows": 2}

    def test_counters_are_atomic_under_concurrent_increments(self, record_store: RecordStore) -> None:
        record_store.put("job", "j1", {}, expected_version=0)

        def bump() -> None:
            for _ in range(200):
                record_store.add_counters("job", "j1", {"files_succeeded": 1, "files_failed": 2})

        run_together(bump, bump)

        record = record_store.get("job", "j1")
        assert record is not None and record.counters == {"files_succeeded": 400, "files_failed": 800}


class BlobStoreContract:
    # --------------------------------------------------------------------------------------------- bytes
    def test_put_then_get_round_trips_and_makes_its_folders(self, place: BlobPlace) -> None:
        blobs = place.store
        folder = blobs.join(blobs.root, "jobs", "j1")
        uri = blobs.join(folder, "summary.json")

        blobs.put_bytes(uri, b'{"ok": true}')

        assert blobs.get_bytes(uri) == b'{"ok": true}'
        assert blobs.exists(uri) and not blobs.is_folder(uri)
        assert blobs.exists(folder) and blobs.is_folder(folder)
        assert blobs.is_folder(blobs.join(blobs.root, "jobs"))

    def test_what_was_never_written_does_not_exist(self, place: BlobPlace) -> None:
        blobs = place.store
        missing = blobs.join(blobs.root, "nothing", "here.bin")

        assert not blobs.exists(missing) and not blobs.is_folder(missing)
        with pytest.raises(NotFoundError, match="does not exist"):
            blobs.get_bytes(missing)

    def test_read_range_reads_the_bytes_a_slice_would(self, place: BlobPlace) -> None:
        blobs = place.store
        uri = blobs.join(place.elsewhere, "table.csv")
        data = bytes(range(256)) * 4
        blobs.put_bytes(uri, data)

        for start, end in [(0, 10), (100, 612), (1000, 1024), (1000, 5000), (5, None), (0, None), (-8, None)]:
            assert blobs.read_range(uri, start, end) == data[start:end], (start, end)
        assert blobs.read_range(uri, -5000) == data
        # Past the end or empty: no bytes, as a slice gives.
        assert blobs.read_range(uri, 1024, 2000) == blobs.read_range(uri, 5000) == b""
        assert blobs.read_range(uri, 10, 10) == blobs.read_range(uri, 10, 3) == b""

    def test_read_range_of_an_empty_object_is_empty(self, place: BlobPlace) -> None:
        uri = place.store.join(place.elsewhere, "empty.csv")
        place.store.put_bytes(uri, b"")

        assert place.store.read_range(uri, 0, 8) == place.store.read_range(uri, -8) == b""

    def test_read_range_of_a_missing_object_says_so(self, place: BlobPlace) -> None:
        with pytest.raises(NotFoundError, match="does not exist"):
            place.store.read_range(place.store.join(place.elsewhere, "missing.csv"), 0, 8)

    def test_read_range_refuses_a_range_from_the_end_with_an_end(self, place: BlobPlace) -> None:
        uri = place.store.join(place.elsewhere, "t.csv")
        place.store.put_bytes(uri, b"abc")

        with pytest.raises(ValueError, match="runs to the end"):
            place.store.read_range(uri, -2, 3)

    def test_put_without_if_absent_replaces_the_object(self, place: BlobPlace) -> None:
        uri = place.store.join(place.store.root, "x.bin")
        place.store.put_bytes(uri, b"first, longer content")

        place.store.put_bytes(uri, b"second")

        assert place.store.get_bytes(uri) == b"second"

    def test_write_stream_joins_the_chunks_and_returns_the_size(self, place: BlobPlace) -> None:
        uri = place.store.join(place.elsewhere, "out", "predictions.csv")

        size = place.store.write_stream(uri, iter([b"file,score\n", b"a,1\n", b"", b"b,2\n"]))

        assert size == 19
        assert place.store.get_bytes(uri) == b"file,score\na,1\nb,2\n"

    def test_write_stream_if_absent_refuses_an_existing_object_and_leaves_it_untouched(self, place: BlobPlace) -> None:
        uri = place.store.join(place.elsewhere, "results", "predictions.csv")
        place.store.put_bytes(uri, b"someone else's results\n")

        with pytest.raises(AlreadyExistsError, match="already exists; results are never overwritten") as caught:
            place.store.write_stream(uri, [b"ours\n"], if_absent=True)

        assert caught.value.field == "output"
        assert isinstance(caught.value, ConflictError)
        assert place.store.get_bytes(uri) == b"someone else's results\n"
        assert list(place.store.list_files(place.store.join(place.elsewhere, "results"))) == [BlobInfo(uri, 23)]

    def test_put_bytes_if_absent_writes_a_new_object_once(self, place: BlobPlace) -> None:
        uri = place.store.join(place.store.root, "once.txt")

        place.store.put_bytes(uri, b"first", if_absent=True)
        with pytest.raises(AlreadyExistsError):
            place.store.put_bytes(uri, b"second", if_absent=True)

        assert place.store.get_bytes(uri) == b"first"

    def test_two_writers_if_absent_at_once_leave_one_whole_object(self, place: BlobPlace) -> None:
        uri = place.store.join(place.elsewhere, "out", "predictions.csv")
        both_writing = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def chunks(name: str) -> Iterator[bytes]:
            yield f"{name}-part-1\n".encode()
            both_writing.wait(timeout=10)  # both are past any up-front check: only the publish step decides
            yield f"{name}-part-2\n".encode()

        def write(name: str) -> None:
            try:
                outcomes[name] = place.store.write_stream(uri, chunks(name), if_absent=True)
            except AlreadyExistsError as error:
                outcomes[name] = error

        run_together(lambda: write("one"), lambda: write("two"))

        winners = [name for name, outcome in outcomes.items() if isinstance(outcome, int)]
        assert len(winners) == 1
        assert sum(isinstance(o, AlreadyExistsError) for o in outcomes.values()) == 1
        assert place.store.get_bytes(uri) == f"{winners[0]}-part-1\n{winners[0]}-part-2\n".encode()

    def test_a_failed_write_publishes_nothing_and_keeps_the_old_object(self, place: BlobPlace) -> None:
        blobs = place.store
        uri = blobs.join(blobs.root, "out", "data.csv")
        blobs.put_bytes(uri, b"old\n")

        def broken() -> Iterator[bytes]:
            yield b"half of the new"
            raise OSError("disk went away")

        with pytest.raises(OSError, match="disk went away"):
            blobs.write_stream(uri, broken())
        with pytest.raises(OSError, match="disk went away"):
            blobs.write_stream(blobs.join(blobs.root, "out", "new.csv"), broken(), if_absent=True)

        assert blobs.get_bytes(uri) == b"old\n"
        assert not blobs.exists(blobs.join(blobs.root, "out", "new.csv"))
        assert [info.uri for info in blobs.list_files(blobs.join(blobs.root, "out"))] == [uri]

    # --------------------------------------------------------------------------------------------- compose
    def test_compose_joins_ranges_of_objects_in_the_order_given(self, place: BlobPlace) -> None:
        blobs = place.store
        a, b = blobs.join(blobs.root, "a.csv"), blobs.join(place.elsewhere, "b.csv")
        blobs.put_bytes(a, b"col\n1\n2\n")
        blobs.put_bytes(b, b"col\n3\n")
        target = blobs.join(place.elsewhere, "out", "joined.csv")

        size = blobs.compose(target, [BlobRange(b, 4, 6), BlobRange(a, 0, 8), BlobRange(b, 4, 6)])

        assert blobs.get_bytes(target) == b"3\ncol\n1\n2\n3\n"
        assert size == 12

    def test_compose_of_pieces_around_the_multipart_minimum_keeps_every_byte_in_order(self, place: BlobPlace) -> None:
        # S3 refuses a multipart part under 5 MiB unless it is the last (EntityTooSmall): every mix must work.
        blobs = place.store
        sizes = [1, FIVE_MIB - 1, FIVE_MIB, 0, FIVE_MIB + 1, 3, 2 * FIVE_MIB + 7, 0, 2]
        pieces, expected = [], b""
        for number, size in enumerate(sizes):
            data = os.urandom(size)
            uri = blobs.join(blobs.root, "pieces", f"{number:02d}.bin")
            blobs.put_bytes(uri, data)
            pieces.append(BlobRange(uri, 0, size))
            expected += data
        target = blobs.join(place.elsewhere, "big.bin")

        assert blobs.compose(target, pieces) == len(expected)

        assert blobs.get_bytes(target) == expected

    def test_compose_of_nothing_or_empty_pieces_is_an_empty_object(self, place: BlobPlace) -> None:
        blobs = place.store
        empty = blobs.join(blobs.root, "empty.csv")
        blobs.put_bytes(empty, b"")

        assert blobs.compose(blobs.join(place.elsewhere, "none.csv"), []) == 0
        assert blobs.compose(blobs.join(place.elsewhere, "empties.csv"), [BlobRange(empty, 0, 0)] * 3) == 0

        assert blobs.get_bytes(blobs.join(place.elsewhere, "none.csv")) == b""
        assert blobs.get_bytes(blobs.join(place.elsewhere, "empties.csv")) == b""

    def test_compose_if_absent_refuses_an_existing_object_and_leaves_it_untouched(self, place: BlobPlace) -> None:
        blobs = place.store
        piece = blobs.join(blobs.root, "big.bin")
        blobs.put_bytes(piece, b"x" * (FIVE_MIB + 1))
        target = blobs.join(place.elsewhere, "predictions.csv")
        blobs.put_bytes(target, b"someone else's results\n")

        for pieces in ([BlobRange(piece, 0, 3)], [BlobRange(piece, 0, FIVE_MIB + 1)] * 2):
            with pytest.raises(AlreadyExistsError, match="already exists; results are never overwritten"):
                blobs.compose(target, pieces, if_absent=True)

        assert blobs.get_bytes(target) == b"someone else's results\n"

    def test_compose_with_a_missing_piece_publishes_nothing(self, place: BlobPlace) -> None:
        blobs = place.store
        big = blobs.join(blobs.root, "big.bin")
        blobs.put_bytes(big, b"x" * (FIVE_MIB + 1))
        missing = blobs.join(blobs.root, "never-written.bin")
        out = blobs.join(place.elsewhere, "out")

        for pieces in ([BlobRange(big, 0, FIVE_MIB + 1), BlobRange(missing, 0, 5)], [BlobRange(missing, 0, 5)]):
            with pytest.raises(NotFoundError, match=r"never-written\.bin does not exist"):
                blobs.compose(blobs.join(out, "joined.bin"), pieces, if_absent=True)

        assert not blobs.exists(blobs.join(out, "joined.bin"))
        assert list(blobs.list_files(out)) == []

    def test_compose_refuses_a_piece_that_is_no_range(self, place: BlobPlace) -> None:
        blobs = place.store
        uri = blobs.join(blobs.root, "a.csv")
        blobs.put_bytes(uri, b"abc")

        for piece in (BlobRange(uri, 2, 1), BlobRange(uri, -1, 2)):
            with pytest.raises(ValueError, match="is not a range of bytes"):
                blobs.compose(blobs.join(place.elsewhere, "x.csv"), [piece])
        with pytest.raises(ValueError, match="ends before byte 9"):
            blobs.compose(blobs.join(place.elsewhere, "x.csv"), [BlobRange(uri, 0, 9)])

        assert not blobs.exists(blobs.join(place.elsewhere, "x.csv"))

    # --------------------------------------------------------------------------------------------- listing
    def test_list_files_is_recursive_sorted_and_sized(self, place: BlobPlace) -> None:
        root = place.write_tree(
            place.store.join(place.elsewhere, "in"), {"b.txt": "bb", "a/c.txt": "c", "a/b/d.txt": "dddd", "a-z.txt": ""}
        )

        listed = list(place.store.list_files(root))

        assert [(place.store.relative(root, info.uri), info.size) for info in listed] == [
            ("a-z.txt", 0),
            ("a/b/d.txt", 4),
            ("a/c.txt", 1),
            ("b.txt", 2),
        ]
        assert listed[0].uri == place.store.join(root, "a-z.txt")

    def test_list_files_of_what_does_not_exist_is_empty(self, place: BlobPlace) -> None:
        assert list(place.store.list_files(place.store.join(place.elsewhere, "no", "such", "folder"))) == []

    def test_list_files_of_a_file_is_that_file(self, place: BlobPlace) -> None:
        uri = place.store.join(place.elsewhere, "one.csv")
        place.store.put_bytes(uri, b"x,y\n")

        assert list(place.store.list_files(uri)) == [BlobInfo(uri, 4)]

    def test_list_files_resumes_after_where_a_listing_stopped(self, place: BlobPlace) -> None:
        blobs = place.store
        root = place.write_tree(blobs.join(place.elsewhere, "in"), {n: n for n in ["b", "a/c", "a/b/d", "a-z", "c"]})
        whole = [info.uri for info in blobs.list_files(root)]

        resumed = [info.uri for info in blobs.list_files(root, after=whole[1])]
        past_the_end = list(blobs.list_files(root, after=whole[-1]))
        between = [info.uri for info in blobs.list_files(root, after=blobs.join(root, "a/bz"))]

        assert resumed == whole[2:]
        assert past_the_end == []
        assert between == [blobs.join(root, name) for name in ["a/c", "b", "c"]]

    def test_list_files_of_a_file_after_itself_is_empty(self, place: BlobPlace) -> None:
        uri = place.store.join(place.elsewhere, "one.csv")
        place.store.put_bytes(uri, b"x,y\n")

        assert list(place.store.list_files(uri, after=uri)) == []

    def test_a_folder_and_a_sibling_sharing_its_name_stay_apart(self, place: BlobPlace) -> None:
        blobs = place.store
        jobs = blobs.join(blobs.root, "jobs")
        place.write_tree(jobs, {"j1/a.txt": "a", "j10/b.txt": "b", "j1.txt": "c"})

        assert [blobs.relative(jobs, i.uri) for i in blobs.list_files(blobs.join(jobs, "j1"))] == ["j1/a.txt"]
        assert not blobs.is_folder(blobs.join(jobs, "j"))
        assert not blobs.exists(blobs.join(jobs, "j"))

    # --------------------------------------------------------------------------------------------- addressing
    def test_join_and_relative_are_inverse(self, place: BlobPlace) -> None:
        blobs = place.store
        base = blobs.join(blobs.root, "jobs", "j1")

        uri = blobs.join(base, "parts", "", "mb-00000001.csv")

        assert uri.startswith(blobs.root) and uri.endswith("/jobs/j1/parts/mb-00000001.csv")
        assert blobs.relative(base, uri) == "parts/mb-00000001.csv"
        assert blobs.relative(base, base) == ""
        assert blobs.join(base, "sub/x.csv") == blobs.join(base, "sub", "x.csv")

    def test_uris_the_store_cannot_address_are_refused_naming_them(self, place: BlobPlace) -> None:
        for uri in place.refused:
            with pytest.raises(ValidationError, match=re.escape(repr(uri))):
                place.store.exists(uri)
            with pytest.raises(ValidationError):
                place.store.put_bytes(uri, b"x")
            with pytest.raises(ValidationError):
                place.store.get_bytes(uri)
            with pytest.raises(ValidationError):
                list(place.store.list_files(uri))

    # --------------------------------------------------------------------------------------------- folders
    def test_upload_folder_copies_every_file_or_the_files_given(self, place: BlobPlace, tmp_path: Path) -> None:
        source = _write_local(
            tmp_path / "code",
            {
                "score.py": "def run(b): return b",
                "pkg/util.py": "X = 1",
                "pkg/__pycache__/util.cpython-311.pyc": b"\0",
                "__pycache__/score.cpython-311.pyc": b"\0",
                "stray.pyc": b"\0",
            },
        )
        chosen = place.store.join(place.store.root, "code", "chosen")
        target = place.store.join(place.store.root, "code", "abc")

        place.store.upload_folder(str(source), target)
        place.store.upload_folder(str(source), chosen, ["score.py", "pkg/util.py"])

        copied = [place.store.relative(target, info.uri) for info in place.store.list_files(target)]
        assert copied == [
            "__pycache__/score.cpython-311.pyc",
            "pkg/__pycache__/util.cpython-311.pyc",
            "pkg/util.py",
            "score.py",
            "stray.pyc",
        ]
        assert [place.store.relative(chosen, info.uri) for info in place.store.list_files(chosen)] == [
            "pkg/util.py",
            "score.py",
        ]
        assert place.store.get_bytes(place.store.join(target, "pkg", "util.py")) == b"X = 1"

    def test_upload_folder_replaces_what_was_there(self, place: BlobPlace, tmp_path: Path) -> None:
        target = place.store.join(place.store.root, "models", "m", "1")
        place.store.upload_folder(str(_write_local(tmp_path / "v1", {"old.bin": "old", "same.bin": "1"})), target)

        place.store.upload_folder(str(_write_local(tmp_path / "v2", {"new.bin": "new", "same.bin": "2"})), target)

        assert [place.store.relative(target, i.uri) for i in place.store.list_files(target)] == ["new.bin", "same.bin"]
        assert place.store.get_bytes(place.store.join(target, "same.bin")) == b"2"

    def test_download_folder_gives_a_local_folder_with_the_tree(self, place: BlobPlace, tmp_path: Path) -> None:
        stored = place.write_tree(
            place.store.join(place.store.root, "models", "m", "1"), {"w.bin": b"\x00\x01", "meta/config.json": "{}"}
        )

        local = place.store.download_folder(stored, str(tmp_path / "scratch" / "model"))

        assert _read_local(Path(local)) == {"w.bin": b"\x00\x01", "meta/config.json": b"{}"}

    def test_localize_gives_a_local_file_per_object_even_when_names_repeat(
        self, place: BlobPlace, tmp_path: Path
    ) -> None:
        root = place.write_tree(place.store.join(place.elsewhere, "images"), {"a.png": b"top", "sub/a.png": b"sub"})
        scratch = tmp_path / "scratch"

        top = place.store.localize(place.store.join(root, "a.png"), str(scratch))
        sub = place.store.localize(place.store.join(root, "sub", "a.png"), str(scratch))

        assert top != sub
        assert (Path(top).read_bytes(), Path(sub).read_bytes()) == (b"top", b"sub")
        assert os.path.basename(top) == os.path.basename(sub) == "a.png"

    def test_delete_prefix_removes_a_folder_or_a_file_and_nothing_beside_it(self, place: BlobPlace) -> None:
        blobs = place.store
        jobs = blobs.join(blobs.root, "jobs")
        place.write_tree(
            jobs, {"j1/parts/mb-0.csv": "a\n", "j1/summary.json": "{}", "j10/keep.txt": "k", "j1.txt": "f"}
        )

        blobs.delete_prefix(blobs.join(jobs, "j1"))
        blobs.delete_prefix(blobs.join(jobs, "never-existed"))

        assert not blobs.exists(blobs.join(jobs, "j1"))
        assert [blobs.relative(jobs, i.uri) for i in blobs.list_files(jobs)] == ["j1.txt", "j10/keep.txt"]
        blobs.delete_prefix(blobs.join(jobs, "j1.txt"))
        assert [blobs.relative(jobs, i.uri) for i in blobs.list_files(jobs)] == ["j10/keep.txt"]


def _write_local(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def _read_local(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
