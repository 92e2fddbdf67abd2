"""Files between this machine and the API's storage: local model and code folders up, output files down.

A stack's storage is S3, reached through the API's presigned uploads (one POST policy per folder, see
lambdas/api/uploads.py), so a caller needs no S3 permissions to deploy. The local server's storage is this
machine's disk: its upload routes refuse (400), and a local folder is then given by its absolute path. Which
of the two the API is, is learnt from the first upload request and remembered.
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

from batch_endpoints.client.connection import Connection
from batch_endpoints.client.errors import error_from_response
from batch_endpoints.client.transport import HttpRequest
from batch_endpoints.errors import ValidationError

S3 = "s3://"


class Storage:
    def __init__(self, connection: Connection) -> None:
        self._api = connection
        self._reads_local_disk: bool | None = None

    def stored(self, location: str, upload_resource: str, *, keep_folder_name: bool = False) -> str:
        """`location` as the API can read it: a storage URI as given; a local folder or file uploaded through
        `upload_resource` (a stack) or made absolute (the local server). With `keep_folder_name`, a folder is
        uploaded under its own name and that is returned, as models are laid out (see assets.upload_model)."""
        if "://" in location:
            return location
        local = os.path.abspath(os.path.expanduser(location))
        if self._reads_local_disk or not os.path.exists(local):
            return local  # the API names a path that does not exist, with the field at fault
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
        return self._upload(local, target)

    def _upload(self, local: str, target: dict[str, Any]) -> str:
        if os.path.isfile(local):
            files = {os.path.basename(local): local}
        else:
            files = {
                os.path.relpath(os.path.join(folder, name), local).replace(os.sep, "/"): os.path.join(folder, name)
                for folder, _, names in os.walk(local)
                for name in names
            }
        for relative, file_path in sorted(files.items()):
            if os.path.getsize(file_path) > target["max_file_bytes"]:
                raise ValidationError(
                    f"{file_path} is over {target['max_file_bytes']} bytes, the most one upload takes", field="path"
                )
            self._post(target, target["key_prefix"] + relative, file_path)
        folder_uri = target["path"]
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
        import boto3  # the `aws` extra; only a stack's outputs need it

        session = self._api.session
        if not hasattr(session, "client"):  # a botocore session
            session = boto3.Session(botocore_session=session)
        bucket, _, key = uri.removeprefix(S3).partition("/")
        session.client("s3", region_name=self._api.region).download_file(bucket, key, target)


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
