"""Computes through the HTTP API and the SDK (`client.compute`, azure-ai-ml's `ml_client.compute`), against
`bep serve`: the routes the remote CLI target uses."""

from __future__ import annotations

import pytest

from batch_endpoints.client import BatchEndpointsClient
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.specs import ComputeDeclaration, ComputeUpdate
from tests.server_fixtures import LocalApi, local_api_fixture  # noqa: F401 (pytest fixture)


@pytest.fixture(name="client")
def client_fixture(local_api: LocalApi) -> BatchEndpointsClient:
    return BatchEndpointsClient(local_api.url, session=local_api.session())


def test_a_compute_is_created_shown_updated_listed_and_deleted(client: BatchEndpointsClient) -> None:
    created = client.compute.begin_create_or_update(
        ComputeDeclaration(name="sdk-cluster", size="Standard_NC4as_T4_v3", max_instances=4, tags={"a": "b"})
    )
    updated = client.compute.update("sdk-cluster", ComputeUpdate(max_instances=2, description="smaller"))

    assert (created.kind, created.max_instances, created.provisioning_state) == ("gpu", 4, "Succeeded")
    assert (updated.max_instances, updated.description, updated.size) == (2, "smaller", "Standard_NC4as_T4_v3")
    assert client.compute.get("sdk-cluster") == updated
    assert [c.name for c in client.compute.list()][-1] == "sdk-cluster"
    assert client.compute.begin_delete("sdk-cluster") is None
    with pytest.raises(NotFoundError):
        client.compute.get("sdk-cluster")


def test_refusals_come_back_as_the_sdks_errors(client: BatchEndpointsClient) -> None:
    with pytest.raises(ValidationError) as bad_size:
        client.compute.begin_create_or_update(ComputeDeclaration(name="odd-cluster", size="Standard_Z1"))
    with pytest.raises(ValidationError) as own:
        client.compute.begin_delete("cpu-cluster")
    with pytest.raises(ConflictError):
        client.compute.begin_create_or_update(ComputeDeclaration(name="gpu-cluster", size="m5.large"))
    with pytest.raises(ValidationError) as bad_update:
        client.compute.update("cpu-cluster", ComputeUpdate(max_instances=3))

    assert bad_size.value.field == "size"
    assert own.value.field == "name" and "cpu-cluster" in str(own.value)
    assert bad_update.value.field == "name"
    assert "odd-cluster" not in [c.name for c in client.compute.list()]
