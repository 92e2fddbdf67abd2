"""Presigned uploads into the stack's own bucket, for clients that may call the API but not write to S3.

A model or code folder holds many files, so the client gets one presigned POST policy for a fresh key prefix
instead of one URL per file: it posts every file with the same form fields and its own `key` under the prefix,
then registers the folder by its s3:// URI. AWS specifics stay here, out of the core: the blob store port has no
notion of presigning, and the local backend needs none (its storage is the user's own disk).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from batch_endpoints.api.schemas import UploadTarget
from batch_endpoints.errors import ValidationError

SCHEME = "s3://"
EXPIRES_S = 3600
# S3 takes at most 5 GiB in one POST (larger objects need a multipart upload, which has no presigned POST).
MAX_FILE_BYTES = 5 * 1024**3
UPLOADS = "uploads"


def presigned_folder_upload(storage_root: str, *parts: str) -> UploadTarget:
    """A presigned POST for a new folder under `<storage root>/uploads/<parts>/<upload id>/`."""
    if not storage_root.startswith(SCHEME):
        raise ValidationError(
            "this backend keeps its storage on its own disk: nothing to upload, give the folder's absolute path",
            field="path",
        )
    bucket, _, root_key = storage_root.removeprefix(SCHEME).partition("/")
    names = [root_key.strip("/"), UPLOADS, *parts, uuid.uuid4().hex[:16]]
    key_prefix = "/".join(name for name in names if name) + "/"

    import boto3  # only a cloud backend gets here
    from botocore.config import Config

    # SigV4 (required by every region opened since 2014); the Lambda's region is the bucket's region.
    client = boto3.client("s3", config=Config(signature_version="s3v4"))
    post = client.generate_presigned_post(
        Bucket=bucket,
        Key=key_prefix + "${filename}",
        Conditions=[["starts-with", "$key", key_prefix], ["content-length-range", 0, MAX_FILE_BYTES]],
        ExpiresIn=EXPIRES_S,
    )
    expires_at = datetime.now(UTC) + timedelta(seconds=EXPIRES_S)
    return UploadTarget(
        path=f"{SCHEME}{bucket}/{key_prefix}",
        url=post["url"],
        fields={name: value for name, value in post["fields"].items() if name != "key"},
        key_prefix=key_prefix,
        max_file_bytes=MAX_FILE_BYTES,
        expires_at=expires_at.isoformat(timespec="seconds"),
    )
