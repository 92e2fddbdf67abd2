"""Idempotency keys for invoke: the same key, for the same endpoint, always answers with the same job.

A client that retries an invoke (a timeout, a dropped connection) must never start a second job. It sends a key
of its choosing with each logical request; the first request to store the key also stores the job id it will use,
and every later request with that key finds the id and answers with that job. The store's create-only write
(expected_version=0) decides which request is first, so two requests racing with one key agree on one job id.

A key stays bound to the request it first came with, so the same key with a different request is a conflict, and
keys do not expire (like the jobs they name).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from batch_endpoints.errors import ConflictError, ValidationError
from batch_endpoints.ports import RecordStore
from batch_endpoints.specs import now

IDEMPOTENCY = "idempotency"
HEADER = "Idempotency-Key"
# Printable ASCII without spaces, as the IETF draft (httpapi-idempotency-key-header) suggests for keys such as
# UUIDs; 255 characters is Stripe's limit and keeps the record key well under DynamoDB's 1 KiB key size.
KEY = re.compile(r"^[!-~]{1,255}$")


@dataclass(frozen=True)
class Claim:
    job_id: str
    fingerprint: str


def fingerprint(request: dict[str, Any]) -> str:
    """A stable hash of what the request asks for, to tell a retry from a different request under one key."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def claim(records: RecordStore, endpoint_name: str, key: str, request_fingerprint: str, job_id: str) -> Claim:
    """Bind the key to `job_id` unless it is bound already; return what the key is bound to."""
    if not KEY.fullmatch(key):
        raise ValidationError("must be 1-255 printable ASCII characters without spaces", field=HEADER)
    record_key = f"{endpoint_name}/{key}"
    data = {"job_id": job_id, "fingerprint": request_fingerprint, "created_at": now()}
    try:
        records.put(IDEMPOTENCY, record_key, data, parent=endpoint_name, expected_version=0)
        return Claim(job_id, request_fingerprint)
    except ConflictError:
        record = records.get(IDEMPOTENCY, record_key)
        if record is None:  # never happens: keys are not deleted; refuse rather than risk a second job
            raise ConflictError(f"{HEADER} {key!r} is being used by another request; retry", field=HEADER) from None
        return Claim(record.data["job_id"], record.data["fingerprint"])
