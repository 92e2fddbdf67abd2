"""Blobs as S3 objects, behaving exactly as the folder store does. URIs are s3://bucket/key.

Any bucket the credentials reach works, not only the store's own: users' input folders and output locations
live in their buckets. A "folder" is a key prefix ending in "/": it exists while an object is under it (or a
folder-marker object, the empty "name/" keys the S3 console creates, which are never listed as files).

Writes are all or nothing, as S3 publishes an object only when its PutObject or CompleteMultipartUpload
succeeds. Writes that must not overwrite use S3's conditional write (If-None-Match: *), decided by S3 at publish
time, so of two concurrent writers exactly one succeeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from batch_endpoints import fetch_sizing, local_files
from batch_endpoints.adapters.aws import composing
from batch_endpoints.adapters.aws.clients import aws_client
from batch_endpoints.errors import AlreadyExistsError, NotFoundError, ValidationError
from batch_endpoints.ports import BlobInfo, BlobRange, is_empty_range

SCHEME = "s3://"
# Streams up to one part go up in one PutObject; bigger ones as a multipart upload of parts this size
# (S3 wants at least 5 MiB a part, except the last, and at most 10,000 parts: 8 MiB parts reach 78 GiB).
PART_SIZE = 8 * 1024 * 1024
# Folder copies move many small files: S3 calls take tens of ms each, so keep several in flight.
TRANSFER_THREADS = 8
# A composed object's parts and small pieces move concurrently: as many as the client has connections (32).
COMPOSE_THREADS = 32
UPLOADS_AHEAD = 8
# Besides its fetch threads, a runner writes parts, results and journals from a few threads (batch_container/parts).
WRITE_CONNECTIONS = 4
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys a call
DOWNLOAD_BLOCK = 1024 * 1024
# A range that starts at or past the object's end (416): there are no such bytes, as a slice would say.
BEYOND_THE_END = {"InvalidRange", "416"}
NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
DENIED = {"AccessDenied", "AllAccessDisabled", "403"}
# 412: the object exists. 409: another conditional write to the same key is in flight; one of them wins.
NOT_OVERWRITTEN = {"PreconditionFailed", "ConditionalRequestConflict", "412"}


def parse(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; the key has no leading or trailing "/" and is "" for a bucket's root."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise ValidationError(f"{uri!r} is not an S3 URI (s3://bucket/key); the aws backend reads and writes S3")
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    if not bucket:
        raise ValidationError(f"{uri!r} names no bucket; expected s3://bucket/key")
    return bucket, key.strip("/")


def to_uri(bucket: str, key: str) -> str:
    return f"{SCHEME}{bucket}/{key}" if key else f"{SCHEME}{bucket}"


class S3BlobStore:
    reads_in_place = False

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        *,
        part_size: int = PART_SIZE,
        min_part: int = composing.MIN_PART,
        max_copied_part: int = composing.MAX_COPIED_PART,
    ) -> None:
        """`min_part` and `max_copied_part` are S3's; tests lower the second to split copies without 5 GiB."""
        self.bucket = bucket
        self.root = to_uri(bucket, prefix.strip("/"))
        parse(self.root)
        # One (thread-safe) client for every thread: a runner's fetch threads and its writers, or a composition's
        # threads. The store is made before the job is read, so it holds the most fetch threads the instance's size
        # can give (fetch_sizing.py) or the environment sets; connections are opened only when used. A thread
        # finding none free opens one that is closed after its request (urllib3 logs "Connection pool is full").
        fetching = max(fetch_sizing.MAX_THREADS, fetch_sizing.fetch_threads())
        connections = max(COMPOSE_THREADS, fetching + WRITE_CONNECTIONS)
        self.client = client or aws_client("s3", max_pool_connections=connections)
        self.part_size = part_size
        self.min_part = min_part
        self.max_copied_part = max_copied_part
        self._transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size)

    # --- addressing -----------------------------------------------------------------------------------

    def join(self, base: str, *parts: str) -> str:
        bucket, key = parse(base)
        names = [name for name in (key, *(p.strip("/") for p in parts if p)) if name]
        return to_uri(bucket, "/".join(names))

    def relative(self, base: str, uri: str) -> str:
        base_bucket, base_key = parse(base)
        bucket, key = parse(uri)
        if bucket != base_bucket:
            raise ValidationError(f"{uri} is not in the bucket of {base}")
        rel = posixpath.relpath(f"/{key}", f"/{base_key}")
        return "" if rel == "." else rel

    # --- objects --------------------------------------------------------------------------------------

    def put_bytes(self, uri: str, data: bytes, *, if_absent: bool = False) -> None:
        bucket, key = _object(uri)
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, **condition)
        except ClientError as exc:
            _raise_if_not_overwritten(exc, uri)
            raise

    def write_stream(self, uri: str, chunks: Iterable[bytes], *, if_absent: bool = False) -> int:
        bucket, key = _object(uri)
        if if_absent and self._head(bucket, key) is not None:
            # Checked up front as well, so a refused write costs no upload (and no reading of the stream);
            # the conditional header at publish time is what makes it safe against a concurrent writer.
            raise _exists(uri)
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                    parts.append(
                        self._upload_part(bucket, key, upload_id, len(parts) + 1, bytes(buffer[: self.part_size]))
                    )
                    del buffer[: self.part_size]
            if upload_id is None:
                self.put_bytes(uri, bytes(buffer), if_absent=if_absent)
                return size
            if buffer:
                parts.append(self._upload_part(bucket, key, upload_id, len(parts) + 1, bytes(buffer)))
            self._complete(uri, upload_id, parts, if_absent=if_absent)
            upload_id = None
        finally:
            if upload_id is not None:
                self._abort(uri, upload_id)
        return size

    def compose(self, uri: str, pieces: Sequence[BlobRange], *, if_absent: bool = False) -> int:
        """A multipart upload whose large pieces S3 copies itself (UploadPartCopy) and whose small ones are
        downloaded and joined into parts (see composing.py); one PutObject when it is all small."""
        bucket, key = _object(uri)
        planned = composing.plan_parts(pieces, min_part=self.min_part, max_copied_part=self.max_copied_part)
        if if_absent and self._head(bucket, key) is not None:
            raise _exists(uri)  # as in write_stream: a refused write costs no reading
        with ThreadPoolExecutor(COMPOSE_THREADS, thread_name_prefix="s3-compose") as pool:
            if not planned or (len(planned) == 1 and not planned[0].copied):
                data = b"".join(pool.map(self._read_piece, planned[0].pieces)) if planned else b""
                self.put_bytes(uri, data, if_absent=if_absent)
                return len(data)
            upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            try:
                self._complete(
                    uri, upload_id, self._send_parts(pool, bucket, key, upload_id, planned), if_absent=if_absent
                )
            except BaseException:
                self._abort(uri, upload_id)
                raise
        return sum(part.size for part in planned)

    def _send_parts(
        self, pool: ThreadPoolExecutor, bucket: str, key: str, upload_id: str, planned: list[composing.PlannedPart]
    ) -> list[dict[str, Any]]:
        """Every part, concurrently; small pieces are fetched concurrently too (a job's output can be made of
        thousands of shard outputs of a few KB). At most UPLOADS_AHEAD joined parts wait in memory."""
        sent: list[Future[dict[str, Any]]] = []
        uploads: deque[Future[dict[str, Any]]] = deque()
        for number, part in enumerate(planned, start=1):
            if part.copied:
                sent.append(pool.submit(self._copy_part, bucket, key, upload_id, number, part.pieces[0]))
                continue
            while len(uploads) >= UPLOADS_AHEAD:
                uploads.popleft().result()
            data = b"".join(pool.map(self._read_piece, part.pieces))
            uploads.append(pool.submit(self._upload_part, bucket, key, upload_id, number, data))
            sent.append(uploads[-1])
        return [future.result() for future in sent]

    def _complete(self, uri: str, upload_id: str, parts: list[dict[str, Any]], *, if_absent: bool) -> None:
        """Publish the upload; with if_absent, only if no object is there then (If-None-Match: *)."""
        bucket, key = _object(uri)
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self.client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **condition
            )
        except ClientError as exc:
            _raise_if_not_overwritten(exc, uri)
            raise

    def _abort(self, uri: str, upload_id: str) -> None:
        """Parts of an unfinished upload are invisible but billed until aborted."""
        bucket, key = _object(uri)
        with contextlib.suppress(ClientError):
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def _copy_part(self, bucket: str, key: str, upload_id: str, number: int, piece: BlobRange) -> dict[str, Any]:
        source_bucket, source_key = _object(piece.uri)
        try:
            reply = self.client.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": source_bucket, "Key": source_key},
                CopySourceRange=f"bytes={piece.start}-{piece.end - 1}",
            )
        except ClientError as exc:
            _raise_if_not_found(exc, piece.uri)
            raise
        return {"PartNumber": number, "ETag": reply["CopyPartResult"]["ETag"]}

    def _read_piece(self, piece: BlobRange) -> bytes:
        data = self.read_range(piece.uri, piece.start, piece.end)
        if len(data) != piece.size:
            raise ValueError(f"{piece.uri} ends before byte {piece.end}")
        return data

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = _object(uri)
        try:
            data: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return data
        except ClientError as exc:
            _raise_if_not_found(exc, uri)
            raise

    def read_range(self, uri: str, start: int, end: int | None = None) -> bytes:
        """One GetObject with a Range header: S3 sends only those bytes."""
        if is_empty_range(start, end):
            return b""
        bucket, key = _object(uri)
        # "bytes=-N" is a suffix range, the last N bytes; "bytes=S-" runs to the end.
        wanted = f"bytes={start}-{'' if end is None else end - 1}" if start >= 0 else f"bytes={start}"
        try:
            data: bytes = self.client.get_object(Bucket=bucket, Key=key, Range=wanted)["Body"].read()
            return data
        except ClientError as exc:
            if _code(exc) in BEYOND_THE_END:
                return b""
            _raise_if_not_found(exc, uri)
            raise

    def exists(self, uri: str) -> bool:
        bucket, key = parse(uri)
        if not key:
            return self._bucket_exists(bucket)
        return self._head(bucket, key) is not None or self._has_objects_under(bucket, key)

    def is_folder(self, uri: str) -> bool:
        bucket, key = parse(uri)
        return self._bucket_exists(bucket) if not key else self._has_objects_under(bucket, key)

    def list_files(self, uri: str, *, after: str = "") -> Iterator[BlobInfo]:
        """The objects under the folder `uri`, in key order (S3 lists in UTF-8 byte order, which is the
        order of the URIs as Python strings); or the object `uri` itself when nothing is under it. Resuming
        `after` a URI is ListObjectsV2's StartAfter: the listing goes on from there at one request a page."""
        bucket, key = parse(uri)
        start_after = self._key_in(bucket, after) if after else ""
        listed = False
        for item in self._objects_under(bucket, key, start_after=start_after):
            listed = True
            yield BlobInfo(to_uri(bucket, item["Key"]), item["Size"])
        if not listed and key and key > start_after and (head := self._head(bucket, key)) is not None:
            yield BlobInfo(to_uri(bucket, key), head["ContentLength"])

    def localize(self, uri: str, scratch_dir: str) -> str:
        """Download into scratch_dir under <bucket>/<key>: unique per object, keeping the file's name."""
        bucket, key = _object(uri)
        path = _local_path(scratch_dir, bucket, key)
        self._download(bucket, key, path, uri)
        return path

    # --- folders --------------------------------------------------------------------------------------

    def upload_folder(self, local_dir: str, uri: str, files: Sequence[str] | None = None) -> None:
        """Copy the files (default: every file) to the folder `uri`, then remove what else was there.

        Unlike the folder store's swap, a reader during the copy may see old and new files side by side;
        code folders are content-addressed and model versions are written once, so none does in practice.
        """
        if not os.path.isdir(local_dir):
            raise FileNotFoundError(f"{local_dir} is not a folder")
        bucket, key = _object(uri)  # never a whole bucket: what else is there would be deleted
        if files is None:
            files = [found.relative for found in local_files.folder_files(local_dir, field=None)]
        targets = {"/".join(filter(None, (key, rel))): os.path.join(local_dir, *rel.split("/")) for rel in files}

        def upload(item: tuple[str, str]) -> None:
            target, path = item
            self.client.upload_file(path, bucket, target, Config=self._transfer)

        with ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="s3-upload") as pool:
            list(pool.map(upload, targets.items()))
        stale = [item["Key"] for item in self._objects_under(bucket, key, markers=True) if item["Key"] not in targets]
        self._delete_keys(bucket, stale, uri)

    def download_folder(self, uri: str, local_dir: str) -> str:
        bucket, key = parse(uri)
        root = os.path.abspath(local_dir)
        os.makedirs(root, exist_ok=True)
        prefix = f"{key}/" if key else ""
        jobs: list[tuple[str, str]] = []
        for item in self._objects_under(bucket, key):
            path = os.path.normpath(os.path.join(root, item["Key"][len(prefix) :]))
            if os.path.commonpath([path, root]) != root:
                raise ValidationError(f"{to_uri(bucket, item['Key'])} would be copied outside {root}")
            jobs.append((item["Key"], path))

        def download(job: tuple[str, str]) -> None:
            object_key, path = job
            self._download(bucket, object_key, path, to_uri(bucket, object_key))

        with ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="s3-download") as pool:
            list(pool.map(download, jobs))
        return root

    def delete_prefix(self, uri: str) -> None:
        """Delete the object `uri` and everything under the folder `uri` (never a sibling sharing a prefix).

        Unlike the folder store, never a whole bucket: a bucket root is refused."""
        bucket, key = _object(uri)
        keys = [key, *(item["Key"] for item in self._objects_under(bucket, key, markers=True))]
        self._delete_keys(bucket, keys, uri)

    # --- helpers --------------------------------------------------------------------------------------

    def _upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        reply = self.client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": reply["ETag"]}

    def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=bucket, Key=key)
            return head
        except ClientError as exc:
            if _code(exc) in NOT_FOUND:
                return None
            _raise_if_denied(exc, to_uri(bucket, key))
            raise

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) in NOT_FOUND:
                return False
            _raise_if_denied(exc, to_uri(bucket, ""))
            raise
        return True

    @staticmethod
    def _key_in(bucket: str, uri: str) -> str:
        other_bucket, key = parse(uri)
        if other_bucket != bucket:
            raise ValidationError(f"{uri} is not in the bucket {bucket}; a listing resumes in its own bucket")
        return key

    def _has_objects_under(self, bucket: str, key: str) -> bool:
        try:
            reply = self.client.list_objects_v2(Bucket=bucket, Prefix=f"{key}/", MaxKeys=1)
        except ClientError as exc:
            if _code(exc) in NOT_FOUND:
                return False
            _raise_if_denied(exc, to_uri(bucket, key))
            raise
        return int(reply.get("KeyCount", 0)) > 0

    def _objects_under(
        self, bucket: str, key: str, *, markers: bool = False, start_after: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Every object under the folder `key` (the whole bucket for ""), in key order, paginated."""
        resume = {"StartAfter": start_after} if start_after else {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{key}/" if key else "", **resume
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    if markers or not item["Key"].endswith("/"):
                        yield item
        except ClientError as exc:
            _raise_if_not_found(exc, to_uri(bucket, key))
            raise

    def _download(self, bucket: str, key: str, path: str, uri: str) -> None:
        """Stream the object to `path`, published by rename: a reader never sees half a file."""
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            _raise_if_not_found(exc, uri)
            raise
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                for block in body.iter_chunks(DOWNLOAD_BLOCK):
                    out.write(block)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _delete_keys(self, bucket: str, keys: list[str], uri: str) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            reply = self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if errors := reply.get("Errors"):
                first = errors[0]
                raise OSError(
                    f"could not delete {len(errors)} objects under {uri}: {first.get('Key')}: {first.get('Message')}"
                )


def _object(uri: str) -> tuple[str, str]:
    """(bucket, key) of a URI that names an object or a folder, not a whole bucket."""
    bucket, key = parse(uri)
    if not key:
        raise ValidationError(f"{uri!r} names a whole bucket; expected s3://bucket/key")
    return bucket, key


def _local_path(scratch_dir: str, bucket: str, key: str) -> str:
    segments = key.split("/")
    if all(s not in ("", ".", "..") and len(s.encode()) <= 255 for s in segments):
        return os.path.join(os.path.abspath(scratch_dir), bucket, *segments)
    # A key no file system path can mirror ("a//b", "../x", a 300-byte name): a hashed folder, same file name.
    name = next((s for s in reversed(segments) if s not in ("", ".", "..")), "object")[-200:]
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return os.path.join(os.path.abspath(scratch_dir), bucket, f"%{digest}", name)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _exists(uri: str) -> AlreadyExistsError:
    return AlreadyExistsError(f"{uri} already exists; results are never overwritten", field="output")


def _raise_if_not_overwritten(exc: ClientError, uri: str) -> None:
    if _code(exc) in NOT_OVERWRITTEN:
        raise _exists(uri) from None


def _raise_if_denied(exc: ClientError, uri: str) -> None:
    """A location the caller may not read is the caller's to fix (a bucket the stack was not given), not a fault."""
    if _code(exc) in DENIED:
        raise ValidationError(
            f"{uri}: access denied; the stack reads its own bucket and the buckets named in its data_buckets setting"
        ) from None


def _raise_if_not_found(exc: ClientError, uri: str) -> None:
    if _code(exc) in NOT_FOUND:
        raise NotFoundError(f"{uri} does not exist") from None
