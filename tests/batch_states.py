"""AWS Batch's order and states for compute environments and job queues, which moto skips.

moto makes and removes both at once and checks no order. AWS Batch (API reference: CreateJobQueue,
DeleteJobQueue, DeleteComputeEnvironment, UpdateComputeEnvironment) instead:
- reports a new compute environment CREATING before VALID, and takes no queue until it is VALID;
- reports a queue or environment UPDATING after an update, and DELETING after a delete, for a while;
- refuses an update or delete of either while it is CREATING, UPDATING or DELETING;
- deletes a queue only when DISABLED, and an environment only when DISABLED and no queue names it.
- takes maxvCpus as a 32-bit Integer (API reference: ComputeResource, ComputeResourceUpdate) and keeps at most 50
  compute environments and 50 job queues in a Region (service quotas that cannot be changed);
`StrictBatch` wraps a moto client and does the same; each busy status lasts for one describe. moto also wants a
serviceRole that AWS does not (without one AWS uses Batch's service-linked role): the wrapper names that role.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError

BUSY = ("CREATING", "UPDATING", "DELETING")
MAX_INTEGER = 2**31 - 1
MAX_ENVIRONMENTS = MAX_QUEUES = 50


def _name(name_or_arn: str) -> str:
    return name_or_arn.rsplit("/", 1)[-1]


def _refused(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "ClientException", "Message": message}}, operation)


def _check_vcpus(operation: str, resources: dict[str, Any]) -> None:
    for field in ("minvCpus", "maxvCpus", "desiredvCpus"):
        value = resources.get(field)
        if value is not None and not 0 <= value <= MAX_INTEGER:
            raise _refused(operation, f"{field} {value} is not a 32-bit integer of at least 0")


class StrictBatch:
    def __init__(self, client: Any, service_linked_role: str) -> None:
        self._client = client
        self.service_linked_role = service_linked_role
        self.busy: dict[str, str] = {}
        """Resource name -> the status its next describe reports instead of moto's."""
        self.deleted: dict[str, dict[str, Any]] = {}
        """Queues and environments moto dropped that AWS still lists, DELETING, once more."""
        self.calls: list[tuple[str, str]] = []
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        """Each change's requests as sent: moto keeps not all of their fields (jobStateTimeLimitActions), and
        applies no computeResources update."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    # ---------------------------------------------------------------- compute environments
    def create_compute_environment(self, **request: Any) -> Any:
        _check_vcpus("CreateComputeEnvironment", request.get("computeResources", {}))
        if len(self._client.describe_compute_environments()["computeEnvironments"]) >= MAX_ENVIRONMENTS:
            raise _refused("CreateComputeEnvironment", f"at most {MAX_ENVIRONMENTS} compute environments")
        answer = self._client.create_compute_environment(**{"serviceRole": self.service_linked_role, **request})
        self.busy[request["computeEnvironmentName"]] = "CREATING"
        self.calls.append(("create_compute_environment", request["computeEnvironmentName"]))
        self.requests["create_compute_environment"].append(request)
        return answer

    def describe_compute_environments(self, **request: Any) -> Any:
        answer = self._client.describe_compute_environments(**request)
        return {
            **answer,
            "computeEnvironments": self._as_aws_reports(
                answer["computeEnvironments"], "computeEnvironmentName", request.get("computeEnvironments", [])
            ),
        }

    def update_compute_environment(self, **request: Any) -> Any:
        name = _name(request["computeEnvironment"])
        self._refuse_busy("UpdateComputeEnvironment", name)
        _check_vcpus("UpdateComputeEnvironment", request.get("computeResources", {}))
        answer = self._client.update_compute_environment(**request)
        self.busy[name] = "UPDATING"
        self.calls.append(("update_compute_environment", name))
        self.requests["update_compute_environment"].append(request)
        return answer

    def delete_compute_environment(self, **request: Any) -> Any:
        name = _name(request["computeEnvironment"])
        self._refuse_busy("DeleteComputeEnvironment", name)
        [environment] = self._client.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
        if environment["state"] != "DISABLED":
            raise _refused("DeleteComputeEnvironment", f"{name} must be DISABLED before it is deleted")
        queues = self._client.describe_job_queues()["jobQueues"]
        if users := [
            q["jobQueueName"]
            for q in queues
            for o in q["computeEnvironmentOrder"]
            if _name(o["computeEnvironment"]) == name
        ]:
            raise _refused("DeleteComputeEnvironment", f"{name} is still used by the job queues {users}")
        answer = self._client.delete_compute_environment(**request)
        self.deleted[name] = {**environment, "status": "DELETING"}
        self.calls.append(("delete_compute_environment", name))
        self.requests["delete_compute_environment"].append(request)
        return answer

    # ---------------------------------------------------------------- job queues
    def create_job_queue(self, **request: Any) -> Any:
        for order in request["computeEnvironmentOrder"]:
            name = _name(order["computeEnvironment"])
            reported = self.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
            if not reported or reported[0]["status"] != "VALID":
                raise _refused("CreateJobQueue", f"compute environment {name} is not VALID")
        if len(self._client.describe_job_queues()["jobQueues"]) >= MAX_QUEUES:
            raise _refused("CreateJobQueue", f"at most {MAX_QUEUES} job queues")
        answer = self._client.create_job_queue(**request)
        self.calls.append(("create_job_queue", request["jobQueueName"]))
        self.requests["create_job_queue"].append(request)
        return answer

    def describe_job_queues(self, **request: Any) -> Any:
        answer = self._client.describe_job_queues(**request)
        return {
            **answer,
            "jobQueues": self._as_aws_reports(answer["jobQueues"], "jobQueueName", request.get("jobQueues", [])),
        }

    def update_job_queue(self, **request: Any) -> Any:
        name = _name(request["jobQueue"])
        self._refuse_busy("UpdateJobQueue", name)
        answer = self._client.update_job_queue(**request)
        self.busy[name] = "UPDATING"
        self.calls.append(("update_job_queue", name))
        self.requests["update_job_queue"].append(request)
        return answer

    def delete_job_queue(self, **request: Any) -> Any:
        name = _name(request["jobQueue"])
        self._refuse_busy("DeleteJobQueue", name)
        [queue] = self._client.describe_job_queues(jobQueues=[name])["jobQueues"]
        if queue["state"] != "DISABLED":
            raise _refused("DeleteJobQueue", f"{name} must be DISABLED before it is deleted")
        answer = self._client.delete_job_queue(**request)
        self.deleted[name] = {**queue, "status": "DELETING"}
        self.calls.append(("delete_job_queue", name))
        self.requests["delete_job_queue"].append(request)
        return answer

    # ---------------------------------------------------------------- what a describe reports
    def _as_aws_reports(self, found: list[dict[str, Any]], key: str, asked: list[str]) -> list[dict[str, Any]]:
        reports = []
        for item in found:
            status = self.busy.pop(item[key], None)
            reports.append({**item, "status": status} if status else item)
        for name in [_name(a) for a in asked]:
            if name in self.deleted and name not in {item[key] for item in found}:
                reports.append(self.deleted.pop(name))
        return reports

    def _refuse_busy(self, operation: str, name: str) -> None:
        if name in self.busy or name in self.deleted:
            raise _refused(operation, f"{name} is {self.busy.get(name) or 'DELETING'}: it takes no change now")
