"""The S3 blob store: the blob store contract (beside the folder store), and what only S3 has: multipart
uploads, conditional writes decided at publish time, folder markers, keys no file system can mirror."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from batch_endpoints.adapters.aws.blobs import S3BlobStore, parse
from batch_endpoints.errors import AlreadyExistsError, NotFoundError, ValidationError
from batch_endpoints.ports import BlobInfo, BlobRange
from tests.store_contract import (
    STORAGE_BUCKET,
    USER_BUCKET,
    BlobStoreContract,
    moto_fixture,  # noqa: F401 (a fixture)
    place_fixture,  # noqa: F401 (a fixture)
    serialized,
)

MiB = 1024 * 1024


class TestBlobStoreContract(BlobStoreContract):
    """Every BlobStore behaviour, against a folder and S3."""


@pytest.fixture
def s3(moto: None):
    client = boto3.client("s3")
    for bucket in (STORAGE_BUCKET, USER_BUCKET):
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def blobs(s3) -> S3BlobStore:
    return S3BlobStore(STORAGE_BUCKET, prefix="bep", client=serialized("s3"), part_size=5 * MiB)


def pending_uploads(s3, bucket: str = USER_BUCKET) -> list:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


# ------------------------------------------------------------------------------------------------ addressing
def test_the_root_is_the_bucket_and_prefix() -> None:
    assert S3BlobStore("b", prefix="/bep/jobs/", client=object()).root == "s3://b/bep/jobs"
    assert S3BlobStore("b", client=object()).root == "s3://b"


def test_uris_are_parsed_per_bucket() -> None:
    assert parse("s3://data/images/") == ("data", "images")
    assert parse("s3://data") == ("data", "")
    store = S3BlobStore("b", client=object())
    assert store.join("s3://other/in/", "a", "/b.png") == "s3://other/in/a/b.png"
    assert store.relative("s3://other/in", "s3://other/in/sub/x.png") == "sub/x.png"
    with pytest.raises(ValidationError, match="not in the bucket"):
        store.relative("s3://other/in", "s3://b/in/x.png")


def test_a_bucket_root_exists_when_the_bucket_does(blobs: S3BlobStore, tmp_path: Path) -> None:
    assert blobs.exists(f"s3://{USER_BUCKET}") and blobs.is_folder(f"s3://{USER_BUCKET}")
    assert not blobs.exists("s3://no-such-bucket") and not blobs.exists("s3://no-such-bucket/x")
    with pytest.raises(NotFoundError):
        blobs.get_bytes("s3://no-such-bucket/x")
    with pytest.raises(ValidationError, match="names a whole bucket"):
        blobs.put_bytes(f"s3://{USER_BUCKET}/", b"x")
    with pytest.raises(ValidationError, match="names a whole bucket"):
        blobs.delete_prefix(f"s3://{USER_BUCKET}")
    with pytest.raises(ValidationError, match="names a whole bucket"):
        blobs.upload_folder(str(tmp_path), f"s3://{USER_BUCKET}")


# ------------------------------------------------------------------------------------------------ ranged reads
def test_a_ranged_read_asks_s3_for_those_bytes_only(s3) -> None:
    client = boto3.client("s3")
    asked: list[str | None] = []
    client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: asked.append(params.get("Range"))
    )
    blobs = S3BlobStore(STORAGE_BUCKET, client=client)
    uri = f"s3://{USER_BUCKET}/big.csv"
    blobs.put_bytes(uri, b"x" * MiB)

    assert len(blobs.read_range(uri, 10, 20)) == 10
    assert len(blobs.read_range(uri, -8)) == 8
    assert len(blobs.read_range(uri, MiB - 5)) == 5

    assert asked == ["bytes=10-19", "bytes=-8", f"bytes={MiB - 5}-"]


# ------------------------------------------------------------------------------------------------ big writes
def test_a_stream_bigger_than_a_part_goes_up_in_parts(blobs: S3BlobStore, s3) -> None:
    uri = f"s3://{USER_BUCKET}/out/big.bin"
    chunks = [bytes([n]) * (MiB + 3) for n in range(11)]

    size = blobs.write_stream(uri, iter(chunks))

    assert size == sum(map(len, chunks))
    assert blobs.get_bytes(uri) == b"".join(chunks)
    assert s3.head_object(Bucket=USER_BUCKET, Key="out/big.bin")["ETag"].endswith('-3"')  # three parts
    assert pending_uploads(s3) == []


def counting(client, operations: list[str]):
    """The client, recording the name of every S3 operation it sends."""
    client.meta.events.register("before-call.s3.*", lambda model, **_: operations.append(model.name))
    return client


def test_compose_copies_large_pieces_server_side_and_downloads_only_small_ones(s3) -> None:
    sent: list[str] = []
    blobs = S3BlobStore(STORAGE_BUCKET, client=counting(boto3.client("s3"), sent), max_copied_part=10 * MiB)
    big, small = f"s3://{USER_BUCKET}/big.bin", f"s3://{USER_BUCKET}/small.bin"
    s3.put_object(Bucket=USER_BUCKET, Key="big.bin", Body=b"B" * (20 * MiB))
    s3.put_object(Bucket=USER_BUCKET, Key="small.bin", Body=b"s" * 100)
    target = f"s3://{USER_BUCKET}/out/joined.bin"

    blobs.compose(target, [BlobRange(small, 0, 100), BlobRange(big, 0, 20 * MiB), BlobRange(small, 0, 100)])
    composing = sorted(sent)
    assert blobs.get_bytes(target) == b"s" * 100 + b"B" * (20 * MiB) + b"s" * 100

    # The small piece borrows the big one's head to make a 5 MiB part (two ranged GETs); the 15 MiB left is
    # copied in two ranges of at most max_copied_part; the last small piece is the last part.
    first = ["GetObject", "GetObject", "UploadPart"]
    last = ["GetObject", "UploadPart"]
    assert composing == sorted(
        ["CreateMultipartUpload", *first, "UploadPartCopy", "UploadPartCopy", *last, "CompleteMultipartUpload"]
    )
    assert s3.head_object(Bucket=USER_BUCKET, Key="out/joined.bin")["ETag"].endswith('-4"')
    assert pending_uploads(s3) == []


def test_a_failed_compose_aborts_its_upload(blobs: S3BlobStore, s3) -> None:
    big = f"s3://{USER_BUCKET}/big.bin"
    blobs.put_bytes(big, b"x" * (6 * MiB))

    with pytest.raises(NotFoundError):
        blobs.compose(
            f"s3://{USER_BUCKET}/out/joined.bin", [BlobRange(big, 0, 6 * MiB), BlobRange(f"{big}.missing", 0, 6 * MiB)]
        )

    assert pending_uploads(s3) == []
    assert not blobs.exists(f"s3://{USER_BUCKET}/out/joined.bin")


def test_a_compose_if_absent_loses_to_an_object_that_appeared_meanwhile(s3) -> None:
    target = f"s3://{USER_BUCKET}/out/predictions.csv"
    client = boto3.client("s3")
    blobs = S3BlobStore(STORAGE_BUCKET, client=client)

    def theirs_first(**_: object) -> None:  # after our up-front check: only the conditional complete can refuse
        s3.put_object(Bucket=USER_BUCKET, Key="out/predictions.csv", Body=b"theirs")

    client.meta.events.register("before-call.s3.CompleteMultipartUpload", theirs_first)
    big = f"s3://{USER_BUCKET}/big.bin"
    blobs.put_bytes(big, b"x" * (6 * MiB))

    with pytest.raises(AlreadyExistsError):
        blobs.compose(target, [BlobRange(big, 0, 6 * MiB)] * 2, if_absent=True)

    assert blobs.get_bytes(target) == b"theirs"
    assert pending_uploads(s3) == []


def test_a_big_write_if_absent_loses_to_an_object_that_appeared_meanwhile(blobs: S3BlobStore, s3) -> None:
    uri = f"s3://{USER_BUCKET}/out/predictions.csv"

    def chunks() -> Iterator[bytes]:
        yield b"a" * 6 * MiB
        blobs.put_bytes(uri, b"theirs")  # after our up-front check: only the conditional complete can refuse
        yield b"b" * 6 * MiB

    with pytest.raises(AlreadyExistsError):
        blobs.write_stream(uri, chunks(), if_absent=True)

    assert blobs.get_bytes(uri) == b"theirs"
    assert pending_uploads(s3) == []


def test_a_small_write_if_absent_loses_to_an_object_that_appeared_meanwhile(blobs: S3BlobStore) -> None:
    uri = f"s3://{USER_BUCKET}/out/predictions.csv"

    def chunks() -> Iterator[bytes]:
        yield b"ours,"
        blobs.put_bytes(uri, b"theirs")
        yield b"too"

    with pytest.raises(AlreadyExistsError):
        blobs.write_stream(uri, chunks(), if_absent=True)

    assert blobs.get_bytes(uri) == b"theirs"


def test_a_big_write_that_fails_midway_leaves_no_object_and_no_upload(blobs: S3BlobStore, s3) -> None:
    uri = f"s3://{USER_BUCKET}/out/big.bin"

    def chunks() -> Iterator[bytes]:
        yield b"a" * 11 * MiB
        raise OSError("the source went away")

    with pytest.raises(OSError, match="went away"):
        blobs.write_stream(uri, chunks())

    assert not blobs.exists(uri)
    assert pending_uploads(s3) == []


# ------------------------------------------------------------------------------------------------ folders
def test_folder_markers_make_folders_but_are_never_files(blobs: S3BlobStore, s3) -> None:
    for key in ("in/", "in/empty/", "in/sub/", "in/sub/x.png"):
        s3.put_object(Bucket=USER_BUCKET, Key=key, Body=b"" if key.endswith("/") else b"png")

    assert blobs.exists(f"s3://{USER_BUCKET}/in/empty") and blobs.is_folder(f"s3://{USER_BUCKET}/in/empty")
    assert list(blobs.list_files(f"s3://{USER_BUCKET}/in/empty")) == []
    assert list(blobs.list_files(f"s3://{USER_BUCKET}/in")) == [BlobInfo(f"s3://{USER_BUCKET}/in/sub/x.png", 3)]

    blobs.delete_prefix(f"s3://{USER_BUCKET}/in")
    assert s3.list_objects_v2(Bucket=USER_BUCKET)["KeyCount"] == 0


def test_listing_and_deleting_go_past_a_thousand_objects(blobs: S3BlobStore, s3) -> None:
    names = [f"shard/{n:04d}.json" for n in range(1003)]
    for name in names:
        s3.put_object(Bucket=USER_BUCKET, Key=name, Body=b"{}")

    listed = list(blobs.list_files(f"s3://{USER_BUCKET}/shard"))
    blobs.delete_prefix(f"s3://{USER_BUCKET}/shard")

    assert [info.uri for info in listed] == [f"s3://{USER_BUCKET}/{name}" for name in names]
    assert not blobs.exists(f"s3://{USER_BUCKET}/shard")


def test_keys_no_path_can_mirror_are_localized_inside_the_scratch_folder(blobs: S3BlobStore, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    uris = [f"s3://{USER_BUCKET}/odd//a.png", f"s3://{USER_BUCKET}/x/../a.png", f"s3://{USER_BUCKET}/x/{'n' * 300}"]
    for number, uri in enumerate(uris):
        blobs.put_bytes(uri, f"{number}".encode())

    paths = [Path(blobs.localize(uri, str(scratch))) for uri in uris]

    assert [p.read_bytes() for p in paths] == [b"0", b"1", b"2"]
    assert all(scratch in p.parents for p in paths)
    assert len(set(paths)) == 3
    assert [f for f in scratch.rglob("*") if f.name.startswith(".tmp-")] == []
    with pytest.raises(NotFoundError, match="does not exist"):
        blobs.localize(f"s3://{USER_BUCKET}/x/missing.png", str(scratch))


def test_download_folder_refuses_keys_that_would_land_outside_it(blobs: S3BlobStore, s3, tmp_path: Path) -> None:
    s3.put_object(Bucket=USER_BUCKET, Key="code/../../escape.py", Body=b"x")

    with pytest.raises(ValidationError, match="outside"):
        blobs.download_folder(f"s3://{USER_BUCKET}/code", str(tmp_path / "deep" / "code"))

    assert not (tmp_path / "escape.py").exists()


def test_calls_retry_adaptively(moto: None) -> None:
    assert S3BlobStore("b").client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
