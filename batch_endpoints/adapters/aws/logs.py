"""Job logs from CloudWatch Logs, where the awslogs driver puts what each Batch container printed.

A log line does not say which job printed it: scoring code prints whatever it likes, and a deployment's jobs
all log under the same stream prefix (its job definition's name). What does identify a job's lines is the
stream: each Batch job (each attempt) has a stream of its own, and the state machines name every Batch job they
submit: `<job id>-s<shard number>` for a shard of a model job (or of a parallel step's job), `<job id>-<step>` for
a pipeline job's command step (its child job's name), which runs on the pipeline deployment's job definition. So
a read

1. lists the job's Batch jobs in its compute's queue (ListJobs, JOB_NAME = `<job id>-s*`, any status; a trailing
   `*` makes the filter a prefix), keeps those whose whole name is the job's (another job's id may start with
   this one's), and collects the log stream of every attempt (DescribeJobs). A pipeline job's are its command
   steps' (JOB_NAME = `<job id>-<step>`, whole), each in the queue of the compute the step runs on; a parallel
   step's lines are its own job's;
2. filters the deployment's streams (prefix = job definition name) from shortly before the job was created to
   shortly after it ended, and keeps the events of those streams.

Step 2 pages through CloudWatch with one query that stays the same from page to page, so its nextToken is a
stable place to resume; the set of streams may grow between pages while the job runs, which only adds lines.
AWS Batch forgets finished jobs after a while (days); after that, a job's logs are no longer attributable and
a read returns no lines. Lines come oldest first across streams; `source` is the stream name, which names the
Batch attempt's ECS task.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cached_property
from typing import Any

from batch_endpoints.adapters.aws.clients import aws_client
from batch_endpoints.errors import ValidationError
from batch_endpoints.pipeline_jobs import step_compute
from batch_endpoints.ports import ComputeRegistry, LogLine, LogPage
from batch_endpoints.specs import Job

# Containers start after the job record is written, and CloudWatch takes a little while to ingest what a
# container wrote just before it stopped.
WINDOW_BEFORE_MS = 60_000
WINDOW_AFTER_MS = 10 * 60_000
DESCRIBE_JOBS_MAX = 100
# One read stops after this many FilterLogEvents calls even if its page is not full (other jobs' lines can
# fill the window), and returns a token to go on from there.
FILTER_CALLS_PER_READ = 20


class CloudWatchJobLogReader:
    def __init__(
        self,
        log_group: str,
        client: Any = None,
        *,
        computes: ComputeRegistry | None = None,
        batch_client: Any = None,
    ) -> None:
        self.log_group = log_group
        self.computes = computes
        """Where the job's Batch jobs are listed: its compute's `job_queue` detail."""
        self._client = client
        self._batch_client = batch_client

    @cached_property
    def client(self) -> Any:
        return self._client or aws_client("logs")

    @cached_property
    def batch(self) -> Any:
        return self._batch_client or aws_client("batch")

    def read(self, job: Job, *, step: str | None = None, next_token: str | None = None, limit: int = 1000) -> LogPage:
        streams = self.job_streams(job, step=step)
        if not streams:
            return LogPage([], None)
        position = _Position.decode(next_token) if next_token else _Position.first(job)
        query: dict[str, Any] = {
            "logGroupName": self.log_group,
            "logStreamNamePrefix": _stream_prefix(job),
            "startTime": position.start_ms,
            # CloudWatch has interleaved streams by time since 2019 and ignores this; it makes moto do the same.
            "interleaved": True,
        }
        if position.end_ms is not None:
            query["endTime"] = position.end_ms
        lines: list[LogLine] = []
        token = position.cloudwatch_token
        for _ in range(FILTER_CALLS_PER_READ):
            if token:
                query["nextToken"] = token
            # Ask for no more events than the page still needs: every event returned is consumed (kept or
            # skipped), so CloudWatch's token is exactly where the next page starts.
            response = self.client.filter_log_events(**query, limit=limit - len(lines))
            lines += [
                LogLine(event["timestamp"], event["logStreamName"], event["message"].rstrip("\n"))
                for event in response.get("events", [])
                if event["logStreamName"] in streams
            ]
            token = response.get("nextToken")
            if token is None or len(lines) >= limit:
                break
        return LogPage(lines, position.after(token) if token else None)

    def job_streams(self, job: Job, *, step: str | None = None) -> set[str]:
        """The log streams of every attempt of every Batch job the job's execution submitted (of a pipeline job,
        for its command steps, or only for `step`)."""
        streams: set[str] = set()
        ids = [batch_id for search in self._searches(job, step) for batch_id in self._batch_job_ids(*search)]
        for start in range(0, len(ids), DESCRIBE_JOBS_MAX):
            response = self.batch.describe_jobs(jobs=ids[start : start + DESCRIBE_JOBS_MAX])
            for described in response["jobs"]:
                containers = [attempt.get("container", {}) for attempt in described.get("attempts", [])]
                containers.append(described.get("container", {}))
                streams.update(c["logStreamName"] for c in containers if c.get("logStreamName"))
        return streams

    def _searches(self, job: Job, step: str | None) -> list[tuple[str, str, Callable[[str], bool]]]:
        """Where the job's Batch jobs are listed: (job queue, JOB_NAME filter, whether a name listed is one)."""
        if job.pipeline is None or job.deployment.component is None:
            prefix = f"{job.id}-s"
            return [(self._queue(job.deployment.compute), f"{prefix}*", lambda name: _is_shard(name, prefix))]
        steps = job.deployment.component.jobs
        return [
            (self._queue(step_compute(job, steps[run.step])), run.name, run.name.__eq__)
            for run in job.pipeline.steps
            if run.type == "command" and step in (None, run.step)
        ]

    def _queue(self, compute_name: str) -> str:
        if self.computes is None:
            raise TypeError("CloudWatchJobLogReader needs computes= (the compute registry) to find a job's streams")
        compute = self.computes.get(compute_name)
        queue = compute.details.get("job_queue") if compute else None
        if not queue:
            raise ValidationError(f"compute {compute_name!r} has no job queue in this stack", field="job")
        return str(queue)

    def _batch_job_ids(self, queue: str, name_filter: str, is_the_jobs: Callable[[str], bool]) -> Iterator[str]:
        paginator = self.batch.get_paginator("list_jobs")
        # With a filter, ListJobs returns jobs in every status; JOB_NAME matches the whole name, or a prefix when
        # the value ends with *.
        for page in paginator.paginate(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name_filter]}]):
            for summary in page["jobSummaryList"]:
                if is_the_jobs(summary["jobName"]):
                    yield summary["jobId"]


def _is_shard(name: str, prefix: str) -> bool:
    # A shard's Batch job is <job id>-s<digits> (infra/job_states.py); a command step's is <pipeline job id>-<step>.
    # The JOB_NAME prefix filter lists both ("<job id>-s*" lists a step named "score"); only digits after the prefix
    # make a shard. A step named "s1" has a shard's shape, but under its pipeline job's id, which no model job has.
    return name.startswith(prefix) and name[len(prefix) :].isdigit()


def _stream_prefix(job: Job) -> str:
    """The job definition's name (streams are <job definition name>/default/<task id>), from its ARN."""
    handle = job.deployment.compute_handle
    name = handle.rpartition(":job-definition/")[2].rpartition(":")[0] if ":job-definition/" in handle else handle
    if not name:
        raise ValidationError(f"job {job.id} has no AWS Batch job definition; it ran on another backend", field="job")
    return f"{name}/"


class _Position:
    """Where a read goes on: the time window (fixed by the first page) and CloudWatch's token within it."""

    def __init__(self, start_ms: int, end_ms: int | None, cloudwatch_token: str | None) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.cloudwatch_token = cloudwatch_token

    @classmethod
    def first(cls, job: Job) -> _Position:
        start = _epoch_ms(job.created_at) - WINDOW_BEFORE_MS
        end = _epoch_ms(job.ended_at) + WINDOW_AFTER_MS if job.ended_at else None
        return cls(start, end, None)

    @classmethod
    def decode(cls, token: str) -> _Position:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            return cls(int(data["start"]), data["end"], str(data["token"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise ValidationError(
                "is not a token from an earlier page of this job's logs", field="next_token"
            ) from None

    def after(self, cloudwatch_token: str) -> str:
        data = {"start": self.start_ms, "end": self.end_ms, "token": cloudwatch_token}
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)
