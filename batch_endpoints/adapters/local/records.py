"""Records in one SQLite file, safe for the several processes of a local job (WAL, immediate transactions)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from batch_endpoints.errors import ConflictError
from batch_endpoints.ports import Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS records_by_parent ON records (kind, parent, created);
CREATE TABLE IF NOT EXISTS counters (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (kind, key, name)
);
"""


class SqliteRecordStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        # executescript commits on its own, so the schema is created outside a transaction (idempotently).
        self._connection().executescript(SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # Runner processes and the job host write progress while the CLI reads: wait on locks, never fail.
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def get(self, kind: str, key: str) -> Record | None:
        row = (
            self._connection()
            .execute("SELECT key, data, version FROM records WHERE kind = ? AND key = ?", (kind, key))
            .fetchone()
        )
        return self._record(kind, row) if row else None

    def put(
        self, kind: str, key: str, data: Mapping[str, Any], *, parent: str = "", expected_version: int | None
    ) -> int:
        with self._transaction() as db:
            row = db.execute("SELECT version FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
            current = row[0] if row else 0
            if expected_version is not None and current != expected_version:
                what = "already exists" if expected_version == 0 else "was changed by another request"
                raise ConflictError(f"{kind} {key!r} {what}; read it again and retry")
            body = json.dumps(data, sort_keys=True)
            if row:
                db.execute(
                    "UPDATE records SET data = ?, version = ?, parent = ? WHERE kind = ? AND key = ?",
                    (body, current + 1, parent, kind, key),
                )
            else:
                db.execute(
                    "INSERT INTO records (kind, key, parent, version, created, data) VALUES (?, ?, ?, 1, ?, ?)",
                    (kind, key, parent, time.time(), body),
                )
        return current + 1

    def delete(self, kind: str, key: str) -> bool:
        with self._transaction() as db:
            db.execute("DELETE FROM counters WHERE kind = ? AND key = ?", (kind, key))
            return db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key)).rowcount > 0

    def list(
        self, kind: str, *, parent: str | None = None, newest_first: bool = False, limit: int | None = None
    ) -> list[Record]:
        query = "SELECT key, data, version FROM records WHERE kind = ?"
        args: list[Any] = [kind]
        if parent is not None:
            query += " AND parent = ?"
            args.append(parent)
        query += " ORDER BY created DESC, key DESC" if newest_first else " ORDER BY key"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        return [self._record(kind, row) for row in self._connection().execute(query, args).fetchall()]

    def add_counters(self, kind: str, key: str, deltas: Mapping[str, int]) -> dict[str, int]:
        with self._transaction() as db:
            for name, delta in deltas.items():
                db.execute(
                    "INSERT INTO counters (kind, key, name, value) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (kind, key, name) DO UPDATE SET value = value + excluded.value",
                    (kind, key, name, delta),
                )
            return self._counters(db, kind, key)

    def _record(self, kind: str, row: tuple[str, str, int]) -> Record:
        key, data, version = row
        return Record(key, json.loads(data), version, self._counters(self._connection(), kind, key))

    @staticmethod
    def _counters(db: sqlite3.Connection, kind: str, key: str) -> dict[str, int]:
        rows = db.execute("SELECT name, value FROM counters WHERE kind = ? AND key = ?", (kind, key))
        return dict(rows.fetchall())
