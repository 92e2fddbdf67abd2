"""Use cases of computes: the clusters users create (`az ml compute create --type amlcompute`) beside the
backend's own, which are always there and never change."""

from __future__ import annotations

from batch_endpoints.compute_sizes import instance_size
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.services.base import ServiceBase
from batch_endpoints.specs import Compute, ComputeDeclaration, ComputeUpdate, now, parse

# States AWS leaves a compute in while it works; a call that sees one takes it a step further (advance).
IN_PROGRESS = ("Creating", "Deleting")
# AWS Batch takes a compute environment's maxvCpus as a 32-bit Integer (API reference: ComputeResource), and a
# created compute's is max_instances times its size's vCPUs: a larger one is refused here, before any resource.
MAX_VCPUS = 2**31 - 1


class ComputeService(ServiceBase):
    def create_compute(self, declaration: ComputeDeclaration, *, caller: str = "") -> Compute:
        size = instance_size(declaration.size)
        _check_vcpus(declaration.max_instances, size.vcpus, declaration.size)
        if self.backend.computes.get(declaration.name) is not None:
            raise ConflictError(f"compute {declaration.name!r} already exists", field="name")
        # Names that differ only in case name different AWS resources but read as one compute to a user (Azure's
        # compute names are not case-sensitive): the second is refused, naming the first.
        folded = declaration.name.casefold()
        if same := next((c.name for c in self.backend.computes.list() if c.name.casefold() == folded), None):
            raise ConflictError(f"compute {same!r} already exists; names differ in case only", field="name")
        compute = Compute(
            **declaration.model_dump(),
            kind=size.kind,
            provisioning_state="Creating",
            created_at=now(),
            created_by=caller,
        )
        # The record first: a second create of the same name fails here, before any resource is made.
        self.repo.add_compute(compute)
        try:
            compute = self.backend.computes.provision(compute)
        except BaseException:
            self.repo.delete_compute(compute.name)  # nothing was made: the name is free again
            raise
        self.repo.put_compute(compute)
        return compute

    def get_compute(self, name: str) -> Compute:
        compute = self.backend.computes.get(name)
        if compute is not None and compute.provisioning_state in IN_PROGRESS:
            compute = self._advance(compute)
        if compute is None:
            raise NotFoundError(f"compute {name!r} does not exist", field="name")
        return compute

    def list_computes(self) -> list[Compute]:
        computes = (
            self._advance(c) if c.provisioning_state in IN_PROGRESS else c for c in self.backend.computes.list()
        )
        return [c for c in computes if c is not None]

    def update_compute(self, name: str, changes: ComputeUpdate) -> Compute:
        """Change a created compute's instance limits, idle time, description or tags; its size is fixed (Azure
        refuses a size change on an existing cluster too: delete and create it again)."""
        compute = self._created(name, "updated")
        given = changes.model_dump(exclude_none=True)
        fields = compute.model_dump(include=set(ComputeDeclaration.model_fields))
        declaration = parse(ComputeDeclaration, {**fields, **given})
        _check_vcpus(declaration.max_instances, instance_size(compute.size).vcpus, compute.size)
        updated = compute.model_copy(update=declaration.model_dump(exclude={"name", "size"}))
        if compute.provisioning_state != "Succeeded":
            raise ConflictError(
                f"compute {name!r} is {compute.provisioning_state}; update it once it has Succeeded",
                field="name",
            )
        updated = self.backend.computes.resize(updated)
        self.repo.put_compute(updated)
        return updated

    def delete_compute(self, name: str) -> Compute | None:
        """Start or continue removing a created compute: None once it is gone, else the compute, Deleting (AWS
        removes a job queue and then its compute environment in steps; calling delete again goes on)."""
        compute = self._created(name, "deleted")
        users = [
            f"{deployment.endpoint_name}/{deployment.name}"
            for endpoint in self.repo.list_endpoints()
            for deployment in self.repo.list_deployments(endpoint.name)
            if deployment.compute == name
        ]
        if users:
            raise ConflictError(
                f"compute {name!r} is used by the deployments {', '.join(users)}; delete them or move them to "
                "another compute first",
                field="name",
            )
        if compute.provisioning_state == "Deleting":
            return self._advance(compute)
        remaining = self.backend.computes.release(compute.model_copy(update={"provisioning_state": "Deleting"}))
        return self._store(name, remaining)

    def _created(self, name: str, verb: str) -> Compute:
        compute = self.backend.computes.get(name)
        if compute is None:
            raise NotFoundError(f"compute {name!r} does not exist", field="name")
        if compute.built_in:
            raise ValidationError(f"compute {name!r} is one of the backend's own and cannot be {verb}", field="name")
        return compute

    def _advance(self, compute: Compute) -> Compute | None:
        return self._store(compute.name, self.backend.computes.advance(compute))

    def _store(self, name: str, compute: Compute | None) -> Compute | None:
        if compute is None:
            self.repo.delete_compute(name)
        else:
            self.repo.put_compute(compute)
        return compute


def _check_vcpus(max_instances: int, vcpus: int, size: str) -> None:
    if max_instances * vcpus > MAX_VCPUS:
        raise ValidationError(
            f"{max_instances} instances of {size} ({vcpus} vCPUs each) exceed AWS Batch's {MAX_VCPUS} vCPUs for "
            f"one compute; at most {MAX_VCPUS // vcpus}",
            field="max_instances",
        )
