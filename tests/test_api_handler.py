"""The Lambda entry point with its real dependency: the backend the environment names, built once per process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_endpoints.api.app import get_service
from batch_endpoints.backend import BACKEND_VARIABLE, HOME_VARIABLE
from tests.api_fixtures import Api, api_fixture  # noqa: F401 (pytest fixtures)


@pytest.fixture(name="fresh_service")
def fresh_service_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "bep-home"
    monkeypatch.setenv(BACKEND_VARIABLE, "local")
    monkeypatch.setenv(HOME_VARIABLE, str(home))
    get_service.cache_clear()
    yield home
    get_service.cache_clear()


def test_the_handler_serves_the_backend_the_environment_names(fresh_service: Path, api: Api) -> None:
    assert api("GET", "/endpoints").json() == {"value": [], "next_token": None}
    assert api("PUT", "/endpoints/digits", {}).status == 200

    assert (fresh_service / "records.db").exists()
    assert get_service() is get_service()  # one service (and its connections) per Lambda container
    assert [e["name"] for e in api("GET", "/endpoints").json()["value"]] == ["digits"]


def test_a_misconfigured_backend_is_a_500_whose_reason_goes_to_the_log(
    fresh_service: Path, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BACKEND_VARIABLE, "aws")  # without BEP_TABLE and BEP_BUCKET

    response = api("GET", "/endpoints")

    assert response.status == 500
    assert response.json()["code"] == "InternalError"
    assert "BEP_TABLE" not in response.text
