"""`ml_client.compute`: the clusters deployments run on, the backend's own (cpu-cluster, gpu-cluster) and those
created with `begin_create_or_update(AmlCompute(...))`, on whichever target the client acts.

A new cluster goes through the loader of Azure's compute YAML (`bep compute create --file`), so the SDK and the
file refuse the same things the same way; `begin_*` returns once the cluster is ready or gone, as `bep compute`
does (on AWS its compute environment and job queue take a minute or two).
"""

from __future__ import annotations

import builtins
from typing import Any

from batch_endpoints import specs, yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.azure.entities import AmlCompute
from batch_endpoints.azure.jobs import refuse_unknown
from batch_endpoints.azure.poller import LROPoller
from batch_endpoints.cli.compute import until_created, until_deleted
from batch_endpoints.errors import NotFoundError, ValidationError


class ComputeOperations:
    def __init__(self, service: EndpointsApi, caller: str) -> None:
        self._service = service
        self._caller = caller

    def get(self, name: str) -> AmlCompute:
        return _compute(self._service.get_compute(name))

    def list(self, *, compute_type: str | None = None, **kwargs: Any) -> builtins.list[AmlCompute]:
        """Every cluster, the backend's own first; all are amlcompute, the one type here."""
        refuse_unknown("compute.list", kwargs)
        if compute_type is not None and compute_type.lower() != "amlcompute":
            return []
        return [_compute(compute) for compute in self._service.list_computes()]

    def begin_create_or_update(self, compute: AmlCompute, **kwargs: Any) -> LROPoller[AmlCompute]:
        """Creates the cluster, or changes the instance limits, idle time, description and tags of the one that
        exists (its size is fixed, as in Azure)."""
        refuse_unknown("compute.begin_create_or_update", kwargs)
        try:
            existing = self._service.get_compute(compute.name)
        except NotFoundError:
            declaration = yaml_specs.load_compute_mapping(compute.yaml_mapping(), source="AmlCompute")
            created = until_created(self._service, self._service.create_compute(declaration, caller=self._caller))
            return LROPoller(_compute(created))
        return LROPoller(_compute(self._changed(existing, compute)))

    def begin_update(self, compute: AmlCompute, **kwargs: Any) -> LROPoller[AmlCompute]:
        """Changes a cluster that exists; one that does not is NotFoundError."""
        refuse_unknown("compute.begin_update", kwargs)
        return LROPoller(_compute(self._changed(self._service.get_compute(compute.name), compute)))

    def begin_delete(self, name: str, **kwargs: Any) -> LROPoller[None]:
        """Deletes a created cluster no deployment uses; the backend's own are refused."""
        refuse_unknown("compute.begin_delete", kwargs)
        until_deleted(self._service, name)
        return LROPoller(None)

    def _changed(self, existing: specs.Compute, compute: AmlCompute) -> specs.Compute:
        if compute.size is not None and compute.size != existing.size:
            raise ValidationError(
                f"cannot change from {existing.size or existing.kind!r} to {compute.size!r}: a cluster's size is "
                "fixed; create another cluster for another size",
                field="AmlCompute.size",
            )
        changes = {
            "min_instances": compute.min_instances,
            "max_instances": compute.max_instances,
            "idle_time_before_scale_down": compute.idle_time_before_scale_down,
            "description": compute.description,
            "tags": compute.tags or None,
        }
        if all(value is None for value in changes.values()):
            return existing  # Azure's way of making sure a cluster is there
        return self._service.update_compute(
            compute.name, specs.parse(specs.ComputeUpdate, changes, prefix="AmlCompute")
        )


def _compute(record: specs.Compute) -> AmlCompute:
    found = AmlCompute(
        name=record.name,
        description=record.description or None,
        size=record.size or record.kind,
        tags=dict(record.tags),
        min_instances=record.min_instances,
        max_instances=record.max_instances,
        idle_time_before_scale_down=record.idle_time_before_scale_down,
        tier=record.tier,
    )
    found.provisioning_state = record.provisioning_state
    return found
