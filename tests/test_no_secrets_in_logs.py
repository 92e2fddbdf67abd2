"""Presigned uploads and signed requests leave no signature, credential or policy in the API's logs: neither on
stdout, nor on stderr, nor in the log records."""

from __future__ import annotations

import logging
import sys

import pytest

from batch_endpoints.api import uploads
from tests.api_fixtures import Api, Stack, api_fixture, aws_fixture, stack_fixture  # noqa: F401 (pytest fixtures)
from tests.aws_fixtures import AWS_ENVIRONMENT


def leaked_by_an_upload_flow(api: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> list:
    """The secrets an upload flow left in what the API printed or logged."""
    caplog.set_level(logging.DEBUG)
    target = api("POST", "/models/digits/uploads").json()
    assert target["fields"]["x-amz-signature"]  # a presigned policy was made
    api("POST", "/code/uploads", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x, Signature=abc123"})
    printed = capsys.readouterr()  # once: a second call finds both streams empty
    logged = printed.out + printed.err + caplog.text
    secrets = (
        target["fields"]["x-amz-signature"],
        target["fields"]["policy"],
        AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"] + '"',
        "X-Amz-Signature",
        "Signature=abc123",
    )
    return [secret for secret in secrets if secret in logged]


@pytest.mark.parametrize("stack", ["aws"], indirect=True)
def test_an_upload_flow_logs_no_signature_or_secret(
    stack: Stack, api: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")

    assert leaked_by_an_upload_flow(api, capsys, caplog) == []


@pytest.mark.parametrize("stack", ["aws"], indirect=True)
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_signature_printed_on_either_stream_is_caught(
    stack: Stack, api: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch, stream
) -> None:
    presign = uploads.presigned_folder_upload

    def presign_and_print(*args: str) -> uploads.UploadTarget:
        target = presign(*args)
        print(f"made {target.fields['x-amz-signature']}", file=getattr(sys, stream))
        return target

    monkeypatch.setattr(uploads, "presigned_folder_upload", presign_and_print)

    assert len(leaked_by_an_upload_flow(api, capsys, caplog)) == 1
