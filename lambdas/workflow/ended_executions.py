"""What an EventBridge "Step Functions Execution Status Change" event says about a job's execution that ended.

The event's `detail` is what DescribeExecution returns (Step Functions developer guide, "EventBridge events"):
executionArn, stateMachineArn, name, status, startDate, stopDate, input (the execution input as JSON text), output,
error and cause. The job's execution input names the job (`job_id`; see lambdas.workflow); so does a Distributed
Map child's input, whose execution is not the job's and is told apart by `is_current_of`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batch_endpoints.specs import Job
from lambdas.workflow.failures import describe_failure

ENDED_STATUSES = ("ABORTED", "FAILED", "TIMED_OUT")
"""The ends of an execution that no state of the workflow sees: a stop, and failures no Catch handles."""
EVENT_SOURCE = "aws.states"
EVENT_DETAIL_TYPE = "Step Functions Execution Status Change"


@dataclass(frozen=True)
class EndedExecution:
    job_id: str
    execution_arn: str
    name: str
    status: str
    error: str | None
    cause: str | None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> EndedExecution | None:
        """The ended execution of a job, or None for an event about anything else."""
        detail = event.get("detail")
        if not isinstance(detail, Mapping) or detail.get("status") not in ENDED_STATUSES:
            return None
        try:
            execution_input = json.loads(detail.get("input") or "")
        except ValueError:
            return None
        job_id = execution_input.get("job_id") if isinstance(execution_input, Mapping) else None
        if not isinstance(job_id, str) or not job_id:
            return None
        return cls(
            job_id=job_id,
            execution_arn=str(detail.get("executionArn") or ""),
            name=str(detail.get("name") or ""),
            status=str(detail["status"]),
            error=detail.get("error"),
            cause=detail.get("cause"),
        )

    def is_current_of(self, job: Job) -> bool:
        """Whether this is the job's execution now: not an earlier one of a resumed job (`<job>-resume-<n>` runs
        now), nor a shard's child execution. A job whose record missed its execution's ARN runs the first one,
        named after the job."""
        return self.execution_arn == job.execution if job.execution else self.name == job.id

    def failure(self) -> str:
        """Why the execution ended, as one line for the job's error."""
        ended = f"the workflow's execution {self.name} ended {self.status}"
        if not self.error and not self.cause:
            return ended
        return f"{ended}: {describe_failure({'Error': self.error, 'Cause': self.cause})}"
