"""Hostile computes against the local service: sizes and instance counts of any integer, names that differ from
another compute's in case only, and many threads creating one name at once. Each is created as declared or
refused naming the field, and a refused one changes no compute."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_endpoints.compute_sizes import AZURE_SIZES, EC2_SIZES, instance_size
from batch_endpoints.errors import BatchEndpointError, ConflictError, ValidationError
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.services.computes import MAX_VCPUS
from batch_endpoints.specs import ComputeDeclaration, ComputeUpdate, parse
from tests.core_fixtures import local_backend_fixture, recorder_fixture, service_fixture

__all__ = ["local_backend_fixture", "recorder_fixture", "service_fixture"]

COUNTS = st.one_of(st.integers(-3, 8), st.integers(-(2**70), 2**70), st.sampled_from([2**31 - 1, 2**31, 2**63]))


def names(service: BatchEndpointService) -> list[tuple[str, int]]:
    return sorted((c.name, c.max_instances) for c in service.list_computes())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from(sorted([*AZURE_SIZES, *EC2_SIZES])), low=COUNTS, high=COUNTS)
def test_any_instance_counts_create_the_compute_or_are_refused_naming_the_field(
    service: BatchEndpointService, size: str, low: int, high: int
) -> None:
    before = names(service)
    fields: dict[str, Any] = {"name": "sized", "size": size, "min_instances": low, "max_instances": high}
    vcpus = instance_size(size).vcpus
    fits = 0 <= low <= high and high >= 1 and high * vcpus <= MAX_VCPUS
    try:
        created = service.create_compute(parse(ComputeDeclaration, fields))
    except ValidationError as refused:
        assert not fits, refused
        assert refused.field in {"min_instances", "max_instances"}, refused
        assert names(service) == before
        return
    assert fits
    assert (created.min_instances, created.max_instances) == (low, high)
    service.delete_compute("sized")


def test_more_vcpus_than_batch_takes_are_refused_on_create_and_update_and_change_nothing(
    service: BatchEndpointService,
) -> None:
    vcpus = instance_size("Standard_DS3_v2").vcpus
    too_many = MAX_VCPUS // vcpus + 1
    with pytest.raises(ValidationError, match=f"exceed AWS Batch's {MAX_VCPUS} vCPUs") as refused:
        service.create_compute(ComputeDeclaration(name="huge", size="Standard_DS3_v2", max_instances=too_many))
    assert refused.value.field == "max_instances"
    assert "huge" not in dict(names(service))
    service.create_compute(ComputeDeclaration(name="huge", size="Standard_DS3_v2", max_instances=too_many - 1))
    with pytest.raises(ValidationError, match=f"at most {too_many - 1}"):
        service.update_compute("huge", ComputeUpdate(max_instances=too_many))
    assert service.get_compute("huge").max_instances == too_many - 1


@pytest.mark.parametrize(("first", "second"), [("cpu-cluster", "CPU-Cluster"), ("my-cluster", "My-CLUSTER")])
def test_a_name_differing_from_a_computes_in_case_only_is_refused_naming_it(
    service: BatchEndpointService, first: str, second: str
) -> None:
    if first == "my-cluster":
        service.create_compute(ComputeDeclaration(name=first, size="Standard_DS3_v2"))
    before = names(service)
    with pytest.raises(ConflictError, match=f"compute '{first}' already exists; names differ in case only"):
        service.create_compute(ComputeDeclaration(name=second, size="Standard_DS3_v2"))
    assert names(service) == before


@pytest.mark.parametrize(
    "name",
    [
        "clüster",
        "c" * 33,
        "..",
        "a",
        "-cluster",
        "cluster-",
        "cpu cluster",
        "cpu/cluster",
        "\uff43\uff50\uff55-cluster",
    ],
)
def test_a_hostile_name_is_refused_naming_the_field(service: BatchEndpointService, name: str) -> None:
    before = names(service)
    with pytest.raises(ValidationError) as refused:
        service.create_compute(parse(ComputeDeclaration, {"name": name, "size": "Standard_DS3_v2"}))
    assert refused.value.field == "name"
    assert names(service) == before


def test_threads_creating_one_name_at_once_make_exactly_one_compute(service: BatchEndpointService) -> None:
    threads, start = 8, threading.Barrier(8)
    outcomes: list[str] = []

    def create(instances: int) -> None:
        start.wait()
        try:
            service.create_compute(ComputeDeclaration(name="raced", size="Standard_DS3_v2", max_instances=instances))
            outcomes.append(f"created {instances}")
        except BatchEndpointError as refused:
            outcomes.append(type(refused).__name__)

    workers = [threading.Thread(target=create, args=(n + 1,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    [won] = [outcome for outcome in outcomes if outcome.startswith("created")]
    assert sorted(outcomes) == sorted([won, *["ConflictError"] * (threads - 1)])
    assert f"created {service.get_compute('raced').max_instances}" == won
