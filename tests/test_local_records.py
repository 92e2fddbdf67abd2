"""The SQLite record store: versions for optimistic concurrency, listing, and counters shared by processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from batch_endpoints.adapters.local.records import SqliteRecordStore
from batch_endpoints.errors import ConflictError, NotFoundError
from batch_endpoints.repository import ENDPOINT, Repository
from batch_endpoints.specs import Endpoint

INCREMENTS = 500


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "records.db")


@pytest.fixture
def store(db_path: str) -> SqliteRecordStore:
    return SqliteRecordStore(db_path)


def keys(records: list) -> list[str]:
    return [r.key for r in records]


def bump_counters(db_path: str, times: int, start: Any) -> None:
    """Runs in another process, which opens the store by path as a runner process does."""
    store = SqliteRecordStore(db_path)
    start.wait(timeout=30)
    for _ in range(times):
        store.add_counters("job", "j1", {"files_succeeded": 1, "files_failed": 2})


# ------------------------------------------------------------------------------------------------ put / get
def test_put_then_get_returns_the_data_at_version_one(store: SqliteRecordStore) -> None:
    version = store.put("model", "m:1", {"name": "m", "nested": {"x": [1, 2]}}, expected_version=None)

    record = store.get("model", "m:1")

    assert version == 1
    assert record is not None
    assert (record.key, record.data, record.version, record.counters) == (
        "m:1",
        {"name": "m", "nested": {"x": [1, 2]}},
        1,
        {},
    )


def test_get_of_an_unknown_key_is_none(store: SqliteRecordStore) -> None:
    store.put("model", "m:1", {}, expected_version=None)

    assert store.get("model", "m:2") is None
    assert store.get("endpoint", "m:1") is None


def test_unconditional_put_replaces_and_bumps_the_version(store: SqliteRecordStore) -> None:
    store.put("endpoint", "e", {"d": "one"}, expected_version=None)

    version = store.put("endpoint", "e", {"d": "two"}, expected_version=None)

    record = store.get("endpoint", "e")
    assert version == 2
    assert record is not None and (record.data, record.version) == ({"d": "two"}, 2)


def test_records_survive_reopening_the_file(db_path: str) -> None:
    SqliteRecordStore(db_path).put("endpoint", "e", {"d": "kept"}, expected_version=0)

    record = SqliteRecordStore(db_path).get("endpoint", "e")

    assert record is not None and record.data == {"d": "kept"}


# ------------------------------------------------------------------------------------------------ versions
def test_expected_version_zero_creates_a_missing_record(store: SqliteRecordStore) -> None:
    assert store.put("endpoint", "e", {"v": 1}, expected_version=0) == 1


def test_expected_version_zero_refuses_an_existing_record_and_keeps_it(store: SqliteRecordStore) -> None:
    store.put("endpoint", "e", {"v": 1}, expected_version=0)

    with pytest.raises(ConflictError, match="already exists"):
        store.put("endpoint", "e", {"v": 2}, expected_version=0)

    record = store.get("endpoint", "e")
    assert record is not None and (record.data, record.version) == ({"v": 1}, 1)


def test_matching_expected_version_writes_the_next_version(store: SqliteRecordStore) -> None:
    store.put("endpoint", "e", {"v": 1}, expected_version=0)

    assert store.put("endpoint", "e", {"v": 2}, expected_version=1) == 2
    assert store.put("endpoint", "e", {"v": 3}, expected_version=2) == 3


@pytest.mark.parametrize("stale", [1, 3])
def test_mismatched_expected_version_is_a_conflict_and_writes_nothing(store: SqliteRecordStore, stale: int) -> None:
    store.put("endpoint", "e", {"v": 1}, expected_version=0)
    store.put("endpoint", "e", {"v": 2}, expected_version=1)

    with pytest.raises(ConflictError, match="changed by another request"):
        store.put("endpoint", "e", {"v": "lost"}, expected_version=stale)

    record = store.get("endpoint", "e")
    assert record is not None and (record.data, record.version) == ({"v": 2}, 2)


def test_expected_version_on_a_missing_record_is_a_conflict(store: SqliteRecordStore) -> None:
    with pytest.raises(ConflictError):
        store.put("endpoint", "e", {"v": 1}, expected_version=1)

    assert store.get("endpoint", "e") is None


# ------------------------------------------------------------------------------------------------ list
def test_list_returns_one_kind_in_key_order(store: SqliteRecordStore) -> None:
    for key in ["c", "a", "b"]:
        store.put("endpoint", key, {"k": key}, expected_version=0)
    store.put("model", "a-model:1", {}, expected_version=0)

    records = store.list("endpoint")

    assert keys(records) == ["a", "b", "c"]
    assert [r.data for r in records] == [{"k": "a"}, {"k": "b"}, {"k": "c"}]


def test_list_filters_by_parent(store: SqliteRecordStore) -> None:
    store.put("deployment", "ep1/blue", {}, parent="ep1", expected_version=0)
    store.put("deployment", "ep2/blue", {}, parent="ep2", expected_version=0)
    store.put("deployment", "ep1/green", {}, parent="ep1", expected_version=0)

    assert keys(store.list("deployment", parent="ep1")) == ["ep1/blue", "ep1/green"]
    assert keys(store.list("deployment", parent="ep2")) == ["ep2/blue"]
    assert keys(store.list("deployment", parent="ep3")) == []
    assert len(store.list("deployment")) == 3


def test_a_write_moves_the_record_to_its_new_parent(store: SqliteRecordStore) -> None:
    store.put("job", "j1", {}, parent="ep1", expected_version=0)

    store.put("job", "j1", {}, parent="ep2", expected_version=1)

    assert keys(store.list("job", parent="ep1")) == []
    assert keys(store.list("job", parent="ep2")) == ["j1"]


def test_newest_first_orders_by_creation_not_by_key_or_last_write(store: SqliteRecordStore) -> None:
    for key in ["j-b", "j-c", "j-a"]:
        store.put("job", key, {}, parent="ep", expected_version=0)
        time.sleep(0.002)
    store.put("job", "j-b", {"status": "Completed"}, parent="ep", expected_version=1)

    assert keys(store.list("job", newest_first=True)) == ["j-a", "j-c", "j-b"]
    assert keys(store.list("job", parent="ep", newest_first=True, limit=2)) == ["j-a", "j-c"]
    assert keys(store.list("job", limit=1)) == ["j-a"]


# ------------------------------------------------------------------------------------------------ delete
def test_delete_removes_the_record_and_its_counters(store: SqliteRecordStore) -> None:
    store.put("job", "j1", {}, expected_version=0)
    store.add_counters("job", "j1", {"files_failed": 4})

    assert store.delete("job", "j1") is True

    assert store.get("job", "j1") is None
    assert store.list("job") == []
    assert store.add_counters("job", "j1", {"files_failed": 1}) == {"files_failed": 1}


def test_delete_of_an_unknown_record_says_so(store: SqliteRecordStore) -> None:
    assert store.delete("job", "nothing") is False


def test_a_deleted_key_can_be_created_again_from_version_one(store: SqliteRecordStore) -> None:
    store.put("endpoint", "e", {"v": 1}, expected_version=0)
    store.put("endpoint", "e", {"v": 2}, expected_version=1)
    store.delete("endpoint", "e")

    assert store.put("endpoint", "e", {"v": "new"}, expected_version=0) == 1


# ------------------------------------------------------------------------------------------------ counters
def test_add_counters_returns_every_counter_after_the_change(store: SqliteRecordStore) -> None:
    store.put("job", "j1", {}, expected_version=0)

    assert store.add_counters("job", "j1", {"a": 2, "b": 1}) == {"a": 2, "b": 1}
    assert store.add_counters("job", "j1", {"a": 3}) == {"a": 5, "b": 1}
    assert store.add_counters("job", "j1", {"b": -1}) == {"a": 5, "b": 0}

    record = store.get("job", "j1")
    assert record is not None and record.counters == {"a": 5, "b": 0}


def test_counters_do_not_change_the_record_version(store: SqliteRecordStore) -> None:
    store.put("job", "j1", {"s": 1}, expected_version=0)

    store.add_counters("job", "j1", {"a": 1})

    assert store.put("job", "j1", {"s": 2}, expected_version=1) == 2


def test_counters_are_exact_under_two_threads(store: SqliteRecordStore) -> None:
    start = threading.Barrier(2)

    def bump() -> None:
        start.wait()
        for _ in range(INCREMENTS):
            store.add_counters("job", "j1", {"files_succeeded": 1, "files_failed": 2})

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.add_counters("job", "j1", {}) == {"files_succeeded": 2 * INCREMENTS, "files_failed": 4 * INCREMENTS}


def test_counters_are_exact_under_two_processes(store: SqliteRecordStore, db_path: str) -> None:
    store.add_counters("job", "j1", {"files_succeeded": 0})
    start = multiprocessing.Barrier(2)
    processes = [multiprocessing.Process(target=bump_counters, args=(db_path, INCREMENTS, start)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)

    assert [p.exitcode for p in processes] == [0, 0]
    assert store.add_counters("job", "j1", {}) == {"files_succeeded": 2 * INCREMENTS, "files_failed": 4 * INCREMENTS}


# ------------------------------------------------------------------------------------------------ concurrent writes
def test_two_read_modify_writes_through_the_repository_both_land(store: SqliteRecordStore) -> None:
    repo = Repository(store)
    repo.add_endpoint(Endpoint(name="digits"))
    both_read = threading.Barrier(2)
    calls: list[str] = []
    errors: list[BaseException] = []

    def tag(name: str) -> None:
        def change(endpoint: Endpoint) -> Endpoint:
            calls.append(name)
            if calls.count(name) == 1:
                both_read.wait(timeout=10)  # both hold the same version: one write must conflict and retry
            return endpoint.model_copy(update={"tags": {**endpoint.tags, name: "yes"}})

        try:
            repo.update_endpoint("digits", change)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=tag, args=(name,)) for name in ("alpha", "beta")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert repo.get_endpoint("digits").tags == {"alpha": "yes", "beta": "yes"}
    assert len(calls) == 3  # the loser read again once
    record = store.get(ENDPOINT, "digits")
    assert record is not None and record.version == 3


def test_update_of_a_missing_record_through_the_repository_is_not_found(store: SqliteRecordStore) -> None:
    with pytest.raises(NotFoundError):
        Repository(store).update_endpoint("ghost", lambda e: e)

    assert store.get(ENDPOINT, "ghost") is None


def test_two_puts_with_the_same_expected_version_let_exactly_one_through(store: SqliteRecordStore) -> None:
    store.put("endpoint", "e", {"by": "nobody"}, expected_version=0)
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def write(name: str) -> None:
        start.wait(timeout=10)
        try:
            outcomes[name] = store.put("endpoint", "e", {"by": name}, expected_version=1)
        except ConflictError as error:
            outcomes[name] = error

    threads = [threading.Thread(target=write, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [name for name, outcome in outcomes.items() if outcome == 2]
    losers = [name for name, outcome in outcomes.items() if isinstance(outcome, ConflictError)]
    assert len(winners) == 1 and len(losers) == 1
    record = store.get("endpoint", "e")
    assert record is not None and (record.data, record.version) == ({"by": winners[0]}, 2)
