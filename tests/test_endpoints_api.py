"""The CLI talks to one Protocol, EndpointsApi (batch_endpoints/api/protocol.py): the local service and the remote
target over the SDK both implement every member with the Protocol's signature, and neither falls back on
__getattr__; what the remote target cannot do yet it refuses by name."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import botocore.session
import pytest

from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.api.protocol import EndpointsApi, FileReader
from batch_endpoints.cli.remote import RemoteService
from batch_endpoints.client import BatchEndpointsClient
from batch_endpoints.errors import ValidationError
from batch_endpoints.service import BatchEndpointService

IMPLEMENTATIONS = [BatchEndpointService, RemoteService]
MEMBERS = sorted(
    name for name, value in vars(EndpointsApi).items() if inspect.isfunction(value) and not name.startswith("__")
)


def _parameters(function: typing.Callable[..., object]) -> list[tuple[str, object, object, object]]:
    hints = typing.get_type_hints(function)
    return [
        (p.name, p.kind, p.default, hints.get(p.name))
        for p in inspect.signature(function).parameters.values()
        if p.name != "self"
    ]


def test_the_protocol_names_every_use_case_the_cli_calls() -> None:
    assert len(MEMBERS) >= 30
    assert {"invoke", "get_job", "register_model", "create_deployment", "list_datastores"} <= set(MEMBERS)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda kind: kind.__name__)
def test_no_implementation_answers_for_a_missing_method_at_run_time(implementation: type) -> None:
    assert not hasattr(implementation, "__getattr__")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda kind: kind.__name__)
@pytest.mark.parametrize("member", MEMBERS)
def test_each_member_has_the_protocols_parameters_and_one_of_its_results(implementation: type, member: str) -> None:
    wanted = getattr(EndpointsApi, member)
    method = getattr(implementation, member, None)

    assert inspect.isfunction(method), f"{implementation.__name__} has no method {member}"
    assert _parameters(method) == _parameters(wanted)
    result, allowed = typing.get_type_hints(method)["return"], typing.get_type_hints(wanted)["return"]
    assert result == allowed or result in typing.get_args(allowed)


@pytest.fixture
def local(home: Path) -> BatchEndpointService:
    return BatchEndpointService(from_environment())


@pytest.fixture
def remote() -> RemoteService:
    # Port 9 (discard) on this machine: a method that sent a request would fail to connect, not refuse.
    return RemoteService(BatchEndpointsClient("http://127.0.0.1:9", session=botocore.session.get_session()))


def test_both_read_a_jobs_files_through_the_protocols_file_reader(
    local: BatchEndpointService, remote: RemoteService
) -> None:
    wanted = _parameters(FileReader.get_bytes)
    for target in (local, remote):
        assert _parameters(type(target.blobs).get_bytes) == wanted


@pytest.mark.parametrize(
    ("member", "arguments"),
    [
        ("register_data", ("images", "./images")),
        ("get_data", ("images",)),
        ("list_data", ()),
        ("create_datastore", ("lake",)),
        ("get_datastore", ("lake",)),
        ("list_datastores", ()),
    ],
)
def test_the_remote_target_refuses_what_it_has_no_client_for_naming_the_target(
    remote: RemoteService, member: str, arguments: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as refused:
        getattr(remote, member)(*arguments)

    assert refused.value.field == "--target"
    assert f"({member!r}); run it with --target local" in refused.value.message
