"""Idempotency keys for the requests that start something (invoke, rerun, resume, a pipeline job outside any
endpoint): the same key, for the same endpoint (none, "", for the jobs outside any), always answers with what the
first request with it did.

A client that retries such a request (a timeout, a dropped connection, a 5xx that came after the service acted)
must never start a second job or a second run. It sends a key of its choosing with each logical request; the
first request to store the key also stores what it will do (the id of the job it starts; for a resume, which of
the job's resumes it makes), and every later request with that key finds that and answers with it. The store's
create-only write (expected_version=0) decides which request is first, so two requests racing with one key
agree on one outcome.

A key stays bound to the request it first came with, so the same key with a different request (another input,
another job to rerun, an invoke's key reused for a rerun) is a conflict naming the first request's job, and keys
do not expire (like the jobs they name).
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
    resume: int = 0
    """For a resume: the job's `resumes` count once this key's resume is made; 0 for a request starting a job."""


def fingerprint(request: dict[str, Any]) -> str:
    """A stable hash of what the request asks for, to tell a retry from a different request under one key."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def claim(
    records: RecordStore, endpoint_name: str, key: str, request: dict[str, Any], job_id: str, *, resume: int = 0
) -> Claim:
    """Bind the key to `request` and what it will do (`job_id`, `resume`) unless it is bound already; return
    what it is bound to. Raises ConflictError, naming the first request's job, when that was another request."""
    record_key = _record_key(endpoint_name, key)
    asked = fingerprint(request)
    data = {"job_id": job_id, "fingerprint": asked, "created_at": now(), **({"resume": resume} if resume else {})}
    try:
        records.put(IDEMPOTENCY, record_key, data, parent=endpoint_name, expected_version=0)
        return Claim(job_id, asked, resume)
    except ConflictError:
        held = bound(records, endpoint_name, key)
        if held is None:  # never happens: keys are not deleted; refuse rather than risk a second job
            raise ConflictError(f"{HEADER} {key!r} is being used by another request; retry", field=HEADER) from None
    if held.fingerprint != asked:
        raise ConflictError(
            f"{HEADER} {key!r} was first used for a different request (job {held.job_id}); use a new key for a "
            "new request",
            field=HEADER,
        )
    return held


def bound(records: RecordStore, endpoint_name: str, key: str) -> Claim | None:
    """What the key is bound to, None while no request has claimed it."""
    record = records.get(IDEMPOTENCY, _record_key(endpoint_name, key))
    if record is None:
        return None
    return Claim(record.data["job_id"], record.data["fingerprint"], record.data.get("resume", 0))


def _record_key(endpoint_name: str, key: str) -> str:
    if not KEY.fullmatch(key):
        raise ValidationError("must be 1-255 printable ASCII characters without spaces", field=HEADER)
    return f"{endpoint_name}/{key}"
