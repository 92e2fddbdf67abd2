"""Where a job reads and writes: every way a caller may name data, resolved to one storage URI before a job exists.

A caller names an input as Azure's users do:

- a storage URI: `s3://bucket/prefix` or `s3://bucket/key` (the cloud backend), an absolute path (the local one);
- a registered data asset: `azureml:name:version`, `name:version`, `azureml:name@latest`, `name@latest`, or
  Azure's long asset id (`/subscriptions/.../data/<name>/versions/<version>`);
- a datastore path: `azureml://datastores/<name>/paths/<path>` (or Azure's long datastore id + `/paths/<path>`).
  The backend's own storage is the datastore `workspaceblobstore`, Azure's name for a workspace's default.

Local files that are not in the backend's storage are uploaded by the client first (batch_endpoints/uploads.py).
Resolving checks what the backend can see, so an input it cannot read is refused at invoke time (field `input`)
instead of becoming a job that fails later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from batch_endpoints import yaml_specs
from batch_endpoints.errors import ValidationError
from batch_endpoints.ports import BlobStore
from batch_endpoints.repository import Repository, newest
from batch_endpoints.specs import DataAsset, Datastore, DataType, JobInput, parse

DEFAULT_DATASTORE = "workspaceblobstore"
S3_SCHEME = "s3://"
# Azure's resource ids, as `az ml data show` and `az ml datastore show` print them.
_ASSET_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/.+/workspaces/[^/]+/data/([^/]+)/versions/([^/]+)$")
_DATASTORE_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/.+/workspaces/[^/]+/datastores/([^/]+)(/.*)?$")
_DATASTORE_PATH = re.compile(r"^azureml://datastores/([^/]+)(/.*)?$")
# S3 bucket naming rules (3-63 characters; lowercase letters, digits, '.' and '-'; a letter or digit at each end).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class Location:
    uri: str
    type: DataType | None = None
    """Known from a data asset's registration; otherwise inferred from what is at `uri`."""
    source: str | None = None
    """The reference as the caller wrote it, when it is not the URI itself."""


class LocationResolver:
    """Resolves names of data against one backend: its storage, its datastores and its data assets."""

    def __init__(self, blobs: BlobStore, repo: Repository) -> None:
        self.blobs = blobs
        self.repo = repo

    @property
    def in_the_cloud(self) -> bool:
        return self.blobs.root.startswith(S3_SCHEME)

    # ------------------------------------------------------------------------------------------ datastores
    def default_datastore(self) -> Datastore:
        root = self.blobs.root
        description = "the backend's own storage (models, code, job files, default outputs)"
        local = Datastore(
            name=DEFAULT_DATASTORE, root=root, folder=root, is_default=True, description=description, created_at=None
        )
        if not self.in_the_cloud:
            return local
        bucket, _, prefix = root.removeprefix(S3_SCHEME).partition("/")
        return local.model_copy(update={"bucket": bucket, "prefix": prefix, "folder": None})

    def datastore(self, name: str, *, field: str) -> Datastore:
        if name == DEFAULT_DATASTORE:
            return self.default_datastore()
        found = self.repo.get_datastore(name)
        if found is None:
            known = ", ".join(d.name for d in self.datastores())
            raise ValidationError(f"datastore {name!r} does not exist; known: {known}", field=field)
        return found

    def datastores(self) -> list[Datastore]:
        return [self.default_datastore(), *self.repo.list_datastores()]

    def new_datastore(
        self, name: str, *, bucket: str | None, prefix: str, folder: str | None, fields: dict[str, object]
    ) -> Datastore:
        """A datastore record to register, checked against this backend: a bucket that exists in the cloud, an
        existing folder locally. Nothing is written here."""
        if name == DEFAULT_DATASTORE:
            raise ValidationError(f"{name!r} is the backend's own storage; choose another name", field="name")
        if bucket is not None and not _BUCKET.fullmatch(bucket):
            raise ValidationError(f"{bucket!r} is not an S3 bucket name", field="bucket")
        prefix = prefix.strip("/")
        if self.in_the_cloud:
            if folder is not None:
                raise ValidationError("in the cloud a datastore is an S3 bucket: give bucket", field="folder")
            if bucket is None:
                raise ValidationError("is required: the S3 bucket the datastore's paths are in", field="bucket")
            if not self.blobs.exists(f"{S3_SCHEME}{bucket}"):
                raise ValidationError(f"bucket {bucket!r} does not exist or cannot be read", field="bucket")
            root = self.blobs.join(f"{S3_SCHEME}{bucket}", prefix)
        else:
            if folder is None:
                raise ValidationError("is required: the local backend's datastores are folders", field="folder")
            if not os.path.isabs(folder) or not os.path.isdir(folder):
                raise ValidationError(f"{folder} is not an existing folder (give an absolute path)", field="folder")
            root = os.path.normpath(folder)
        return parse(
            Datastore, {"name": name, "bucket": bucket, "prefix": prefix, "folder": folder, "root": root, **fields}
        )

    # ------------------------------------------------------------------------------------------ resolving
    def resolve(self, text: str, *, field: str) -> Location:
        """The storage location `text` names; raises ValidationError (on `field`) for anything else."""
        value = text.strip()
        if not value:
            raise ValidationError("is empty; give a storage URI, a data asset or a datastore path", field=field)
        if match := _DATASTORE_PATH.fullmatch(value) or _DATASTORE_ID.fullmatch(value):
            return Location(self._datastore_path(match.group(1), match.group(2) or "", value, field), source=value)
        if match := _ASSET_ID.fullmatch(value):
            return self._data_asset(f"{match.group(1)}:{match.group(2)}", value, field)
        if value.startswith(S3_SCHEME):
            return Location(self._s3(value, field))
        if value.startswith(yaml_specs.AZURE_PREFIX) and "://" not in value:
            return self._data_asset(value, value, field)
        if value.startswith("file://") or os.path.isabs(value):
            return Location(self._local(value.removeprefix("file://"), field))
        if "://" in value:
            raise ValidationError(
                f"{value!r}: {value.partition('://')[0]}:// locations are not supported; give an s3:// URI, a data "
                "asset or a datastore path (azureml://datastores/<name>/paths/<path>)",
                field=field,
            )
        if yaml_specs.ASSET_REFERENCE.fullmatch(value):
            return self._data_asset(value, value, field)
        raise ValidationError(
            f"{value!r} is neither a storage location nor a data asset (name:version or name@latest); local files "
            "are uploaded by the CLI, give an absolute path or a URI",
            field=field,
        )

    def job_input(
        self, text: str, input_type: str | None, *, exclude: Sequence[str] = (), field: str = "input"
    ) -> JobInput:
        """The input of a new job: resolved, and checked to be a file or a folder holding files. `exclude`: glob
        patterns of the folder's files to leave out (see JobInput), applied when the job is planned."""
        location = self.resolve(text, field=field)
        if input_type is not None and location.type is not None and input_type != location.type:
            raise ValidationError(
                f"data asset {location.source} is a {location.type}, but the input type is {input_type}",
                field="input_type",
            )
        folder = self._inspect(location, field, nonempty=True)
        declared = input_type or location.type or ("uri_folder" if folder else "uri_file")
        job_input = parse(
            JobInput,
            {"uri": location.uri, "type": declared, "source": location.source, "exclude": exclude},
            prefix=field,
        )
        _check_type(location, folder, job_input.type, "input type", "input_type")
        return job_input

    def output_folder(self, text: str, *, field: str = "output") -> str:
        """A folder to write a job's output in: a storage location or a datastore path, never a data asset
        (registered versions are immutable)."""
        location = self.resolve(text, field=field)
        if location.type is not None:
            raise ValidationError(
                f"{text!r} is a data asset; outputs go to a storage location or a datastore path", field=field
            )
        return location.uri

    def data_path(self, text: str, data_type: DataType, *, field: str = "path") -> str:
        """Where a data asset being registered from storage is, checked to exist with the declared type."""
        location = self.resolve(text, field=field)
        if location.type is not None:
            raise ValidationError(f"{text!r} is a data asset itself; give the location of the data", field=field)
        _check_type(location, self._inspect(location, field, nonempty=False), data_type, "type", "type")
        return location.uri

    def _inspect(self, location: Location, field: str, *, nonempty: bool) -> bool:
        """Whether the location is a folder; refused when nothing is there (or, for nonempty, no files in it)."""
        uri = location.uri
        try:
            if not self.blobs.exists(uri):
                raise ValidationError(f"{_named(location)} does not exist", field=field)
            folder = self.blobs.is_folder(uri)
            if nonempty and folder and next(iter(self.blobs.list_files(uri)), None) is None:
                raise ValidationError(f"{_named(location)} holds no files to score", field=field)
        except ValidationError as error:
            # The storage adapters' own refusals (a URI they cannot read) name no field: this one is at fault.
            raise ValidationError(error.message, field=error.field or field) from None
        return folder

    # ------------------------------------------------------------------------------------------ kinds
    def _datastore_path(self, name: str, rest: str, written: str, field: str) -> str:
        if rest != "/paths" and not rest.startswith("/paths/"):
            raise ValidationError(f"{written!r}: write azureml://datastores/{name}/paths/<path>", field=field)
        segments = [s for s in rest.removeprefix("/paths").split("/") if s not in ("", ".")]
        if ".." in segments:
            raise ValidationError(f"{written!r}: a datastore path may not go up ('..')", field=field)
        return self.blobs.join(self.datastore(name, field=field).root, *segments)

    def _data_asset(self, reference: str, written: str, field: str) -> Location:
        name, version, label = yaml_specs.asset_reference(reference, field=field, noun="data asset")
        asset = self._find_data(name, version, label, field)
        return Location(asset.path, asset.type, f"{yaml_specs.AZURE_PREFIX}{asset.ref}")

    def _find_data(self, name: str, version: str | None, label: str | None, field: str) -> DataAsset:
        if label is not None:
            versions = self.repo.list_data(name)
            if not versions:
                raise ValidationError(f"data asset {name!r} has no versions", field=field)
            return newest(versions)
        found = self.repo.get_data(name, version or "")
        if found is None:
            raise ValidationError(f"data asset {name}:{version} does not exist", field=field)
        return found

    def _s3(self, uri: str, field: str) -> str:
        if self.in_the_cloud:
            bucket = uri.removeprefix(S3_SCHEME).partition("/")[0]
            if not _BUCKET.fullmatch(bucket):
                raise ValidationError(f"{uri!r}: {bucket!r} is not an S3 bucket name", field=field)
            return uri
        # Locally, a datastore registered with the bucket's name stands in for it.
        bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
        key = key.strip("/")
        for store in self.repo.list_datastores():
            if store.bucket != bucket:
                continue
            if not store.prefix or key == store.prefix or key.startswith(f"{store.prefix}/"):
                rest = key.removeprefix(store.prefix).strip("/")
                return self.blobs.join(store.root, *[s for s in rest.split("/") if s])
        raise ValidationError(
            f"{uri!r}: the local backend reads files on disk; give a local path, or register a datastore with "
            f"--bucket {bucket} --path <folder> so s3://{bucket}/ reads that folder",
            field=field,
        )

    def _local(self, path: str, field: str) -> str:
        if self.in_the_cloud:
            raise ValidationError(
                f"{path!r} is a path on this machine, which the stack cannot read; upload it first (the CLI "
                "uploads local inputs to the default datastore), or give an s3:// URI",
                field=field,
            )
        return os.path.normpath(path)


def _named(location: Location) -> str:
    return f"{location.source} ({location.uri})" if location.source else location.uri


def _check_type(location: Location, folder: bool, declared: str, called: str, field: str) -> None:
    if folder != (declared == "uri_folder"):
        raise ValidationError(
            f"{_named(location)} is a {'folder' if folder else 'file'}, but the {called} is {declared}", field=field
        )
