"""Which data a caller may make the system read and write: the guard against the confused deputy.

The system's roles (the API Lambda, the workflow, the scoring containers) may read more than any one caller may:
the stack's bucket and every data bucket the deployer named. Without a check, a caller allowed to invoke could
point a job at data it cannot read itself and have the job copy it into an output it can read. So before a job
starts, its input and output are checked against allow-lists of storage prefixes, and, where the backend offers
it, against the caller's own permissions (on AWS: IAM policy simulation for the caller's principal).

Settings (environment of the process that runs the service):
    BEP_ALLOWED_INPUTS   comma-separated prefixes a job may read, e.g. "s3://stack-bucket,s3://images/team-a/"
    BEP_ALLOWED_OUTPUTS  comma-separated prefixes a job may write
Default: on a cloud backend, only the system's own storage; on the local backend, anything (the CLI runs as the
user, with the user's own file permissions), unless the variables say otherwise.

An endpoint may narrow these for its own jobs (its `allowed_inputs` and `allowed_outputs`): a job's input and output
must then lie within both the system's list and the endpoint's, so an endpoint's list never widens the system's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from batch_endpoints import assets
from batch_endpoints.errors import ForbiddenError
from batch_endpoints.specs import Endpoint

ALLOWED_INPUTS = "BEP_ALLOWED_INPUTS"
ALLOWED_OUTPUTS = "BEP_ALLOWED_OUTPUTS"


class CallerPermissions(Protocol):
    """The caller's own rights to data, as the platform's access control sees them."""

    def denial(self, caller: str, *, reads: Sequence[str], writes: Sequence[str]) -> str | None:
        """None when `caller` may read every URI of `reads` and write every URI of `writes`; else why not."""
        ...


@dataclass(frozen=True)
class DataAccess:
    allowed_inputs: tuple[str, ...] | None
    """Prefixes an input must lie under; None allows any."""
    allowed_outputs: tuple[str, ...] | None
    permissions: CallerPermissions | None = None
    asset_roots: tuple[str, ...] = ()
    """Where the system keeps the models and code it copied in: its runners read them whatever the lists say."""

    def check_stored_asset(self, uri: str, field: str) -> None:
        """A model or code folder registered where it already is in storage is read there by the runners, with
        the system's role: refuse one outside what jobs may read, as an input would be, rather than let the job
        fail reading it (or read what the caller could not)."""
        if self.allowed_inputs is not None:
            prefixes = self.allowed_inputs + self.asset_roots
            _require_within(uri, prefixes, field, "register a local folder (it is uploaded) or one under them")

    def check_job(
        self, caller: str, input_uri: str, output_uri: str | None, *, endpoint: Endpoint | None = None
    ) -> None:
        """Raise ForbiddenError unless `caller` may have a job of `endpoint` read `input_uri` and write
        `output_uri`."""
        checks = [(input_uri, "input", "inputs", self.allowed_inputs, endpoint.allowed_inputs if endpoint else [])]
        if output_uri is not None:
            own = endpoint.allowed_outputs if endpoint else []
            checks.append((output_uri, "output.path", "outputs", self.allowed_outputs, own))
        for uri, field, kind, system, narrowed in checks:
            _require_within(uri, system, field, f"the operator lists them in BEP_ALLOWED_{kind.upper()}")
            if endpoint is not None and narrowed:
                _require_within(uri, tuple(narrowed), field, f"endpoint {endpoint.name} narrows them in allowed_{kind}")
        if self.permissions is None:
            return
        denial = self.permissions.denial(caller, reads=[input_uri], writes=[])
        if denial:
            raise ForbiddenError(denial, field="input")
        if output_uri is not None:
            denial = self.permissions.denial(caller, reads=[], writes=[output_uri])
            if denial:
                raise ForbiddenError(denial, field="output.path")


def from_environment(
    storage_root: str, permissions: CallerPermissions | None = None, environ: Mapping[str, str] = os.environ
) -> DataAccess:
    own = (storage_root,) if assets.is_stored(storage_root) else None
    return DataAccess(
        allowed_inputs=_prefixes(environ.get(ALLOWED_INPUTS), own),
        allowed_outputs=_prefixes(environ.get(ALLOWED_OUTPUTS), own),
        permissions=permissions,
        asset_roots=tuple(f"{storage_root.rstrip('/')}/{folder}" for folder in assets.ASSET_FOLDERS),
    )


def within(uri: str, prefix: str) -> bool:
    """True when `uri` is `prefix` or lies under it, compared segment by segment ("s3://b/a" is not under
    "s3://b/ab"). Local paths are compared once resolved, so "../" and symbolic links cannot lead out."""
    uri, prefix = _canonical(uri).rstrip("/"), _canonical(prefix).rstrip("/")
    return uri == prefix or uri.startswith(prefix + "/")


def _canonical(location: str) -> str:
    if assets.is_stored(location):
        return location
    return os.path.realpath(location.removeprefix("file://"))


def _require_within(uri: str, prefixes: tuple[str, ...] | None, field: str, listed_by: str) -> None:
    if prefixes is None or any(within(uri, prefix) for prefix in prefixes):
        return
    raise ForbiddenError(
        f"{uri} is outside the locations jobs may use here ({', '.join(prefixes)}); {listed_by}", field=field
    )


def _prefixes(value: str | None, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is None:
        return default
    return tuple(prefix.strip() for prefix in value.split(",") if prefix.strip())
