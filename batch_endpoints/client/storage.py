"""Files between this machine and the API's storage: local model and code folders up, output files down.

A stack's storage is S3, reached through the API's presigned uploads (one POST policy per folder, see
batch_endpoints/api/uploads.py), so a caller needs no S3 permissions to deploy. The local server's storage is this
machine's disk: its upload routes refuse (400), and a local folder is then given by its absolute path. Which
of the two the API is, is learnt from the first upload request and remembered.
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

from batch_endpoints import local_files
from batch_endpoints.client.connection import Connection
from batch_endpoints.client.errors import error_from_response
from batch_endpoints.client.transport import HttpRequest
from batch_endpoints.errors import ValidationError

S3 = "s3://"


class Storage:
    def __init__(self, connection: Connection) -> None:
        self._api = connection
        self._reads_local_disk: bool | None = None

    def stored(
        self, location: str, upload_resource: str, *, field: str, code: bool = False, keep_folder_name: bool = False
    ) -> str:
        """`location` as the API can read it: a storage URI as given; a local folder or file uploaded through
        `upload_resource` (a stack) or made absolute (the local server). Every file of data is uploaded; of
        scoring `code` (and model folders), all but caches and bytecode (see local_files). With
        `keep_folder_name`, a folder is uploaded under its own name and that is returned, as models are laid out
        (see assets.upload_model). A folder that cannot be read whole is refused, naming `field`, before any
        upload."""
        if "://" in location:
            return location
        local = os.path.abspath(os.path.expanduser(location))
        if not os.path.lexists(local):
            return local  # the API names a path that does not exist, with the field at fault
        files = self._files(local, field=field, code=code)
        if self._reads_local_disk:
            return local
        try:
            # Only hands out a presigned policy for a fresh prefix, storing nothing: safe to send again.
            target = self._api.call("POST", upload_resource, resend_safe=True)
        except ValidationError:
            self._reads_local_disk = True
            return local
        self._reads_local_disk = False
        if keep_folder_name and os.path.isdir(local):
            name = os.path.basename(local)
            target = {**target, "key_prefix": f"{target['key_prefix']}{name}/", "path": f"{target['path']}{name}/"}
        return self._upload(local, files, target)

    @staticmethod
    def _files(local: str, *, field: str, code: bool) -> dict[str, str]:
        """Relative path ("/"-separated) -> where it is read, of the file or folder `local`."""
        if code and os.path.isdir(local):
            return {relative: os.path.join(local, relative) for relative in local_files.code_files(local, field=field)}
        return {found.relative: found.path for found in local_files.input_files(local, field=field)}

    def _upload(self, local: str, files: dict[str, str], target: dict[str, Any]) -> str:
        for relative, file_path in sorted(files.items()):
            if os.path.getsize(file_path) > target["max_file_bytes"]:
                raise ValidationError(
                    f"{file_path} is over {target['max_file_bytes']} bytes, the most one upload takes", field="path"
                )
            self._post(target, target["key_prefix"] + relative, file_path)
        folder_uri: str = target["path"]
        return folder_uri + os.path.basename(local) if os.path.isfile(local) else folder_uri

    def _post(self, target: dict[str, Any], key: str, file_path: str) -> None:
        boundary = uuid.uuid4().hex
        with open(file_path, "rb") as f:
            content = f.read()
        body = _form({**target["fields"], "key": key}, os.path.basename(file_path), content, boundary)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        # The same bytes to the same key: a second delivery writes what the first did.
        response = self._api.send(lambda: HttpRequest("POST", target["url"], headers, body), resend_safe=True)
        if response.status >= 300:
            raise error_from_response(response)

    def download(self, uri: str, target: str) -> None:
        if not uri.startswith(S3):
            shutil.copyfile(uri.removeprefix("file://"), target)  # the local server: its storage is this disk
            return
        bucket, _, key = uri.removeprefix(S3).partition("/")
        self._s3().download_file(bucket, key, target)

    def list_folder(self, uri: str) -> list[str]:
        """The URIs of every file under a folder, sorted; none when it does not exist."""
        if not uri.startswith(S3):
            root = uri.removeprefix("file://")
            found = [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names]
            return sorted(found)
        bucket, _, key = uri.removeprefix(S3).partition("/")
        prefix = key.rstrip("/") + "/"
        pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return [f"{S3}{bucket}/{key}" for key in sorted(keys) if not key.endswith("/")]

    def _s3(self) -> Any:
        import boto3  # the `aws` extra; only a stack's outputs need it

        session = self._api.session
        if not hasattr(session, "client"):  # a botocore session
            session = boto3.Session(botocore_session=session)
        return session.client("s3", region_name=self._api.region)


def _form(fields: dict[str, str], file_name: str, content: bytes, boundary: str) -> bytes:
    """multipart/form-data as S3's POST upload reads it: the policy fields, then the file, last."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts)
