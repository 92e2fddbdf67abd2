"""The tests' AWS Batch runs each submitted job in the submitting thread, as AWS Batch would run it: every attempt
stopped at its timeout, a failed attempt retried as the job definition's retryStrategy says, and a timed-out one
never (tests/infra_fixtures.py, `route_batch_jobs`)."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from batch_endpoints.adapters.aws.computes import SHARD_ATTEMPTS
from tests.aws_fixtures import aws_fixture, create_batch_computes, role_arn  # noqa: F401 (pytest fixtures)
from tests.aws_limits import request_latency_s, step
from tests.infra_fixtures import ATTEMPT_TIMED_OUT, HOST_TERMINATED, HostTerminated, route_batch_jobs

# The stack's own rule (adapters/aws/computes.py): a lost host is retried, the runner's own failure is not.
RETRY_STRATEGY = {
    "attempts": SHARD_ATTEMPTS,
    "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onExitCode": "1", "action": "EXIT"},
    ],
}


def submit(timeout_s: int | None = None) -> dict:
    """One job of a definition with the stack's retry strategy; its description once it has run."""
    batch = boto3.client("batch")
    queue = create_batch_computes()[0]["job_queue"]
    definition = batch.register_job_definition(
        jobDefinitionName="bep-shard",
        type="container",
        containerProperties={"image": "bep-cpu:1", "jobRoleArn": role_arn("bep-job"), "vcpus": 1, "memory": 512},
        retryStrategy=RETRY_STRATEGY,
        **({"timeout": {"attemptDurationSeconds": timeout_s}} if timeout_s else {}),
    )["jobDefinitionArn"]
    job_id = batch.submit_job(jobName="job-s0", jobQueue=queue, jobDefinition=definition, parameters={"shard": "0"})[
        "jobId"
    ]
    return batch.describe_jobs(jobs=[job_id])["jobs"][0]


def failing(*failures: BaseException) -> Callable[[dict[str, str]], None]:
    """A runner whose attempts raise `failures` in turn, then succeed."""
    left = list(failures)

    def run(parameters: dict[str, str]) -> None:
        with step("batch job"):
            if left:
                raise left.pop(0)

    return run


def test_an_attempt_whose_host_went_away_is_retried_until_one_succeeds(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = route_batch_jobs(monkeypatch, failing(HostTerminated(), HostTerminated()))

    job = submit()

    assert job["status"] == "SUCCEEDED" and len(job["attempts"]) == 3
    assert [(a["attempt"], a["succeeded"], a["reason"]) for a in attempts] == [
        (1, False, HOST_TERMINATED),
        (2, False, HOST_TERMINATED),
        (3, True, None),
    ]


def test_a_host_lost_at_every_attempt_fails_the_job_after_its_attempts(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = route_batch_jobs(monkeypatch, failing(*(HostTerminated() for _ in range(SHARD_ATTEMPTS + 1))))

    job = submit()

    assert job["status"] == "FAILED" and len(job["attempts"]) == len(attempts) == SHARD_ATTEMPTS
    assert job["statusReason"] == HOST_TERMINATED


def test_a_runner_that_fails_exits_1_and_is_not_retried(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = route_batch_jobs(monkeypatch, failing(RuntimeError("init() failed")))

    job = submit()

    assert job["status"] == "FAILED" and len(job["attempts"]) == len(attempts) == 1
    assert job["attempts"][0]["container"]["exitCode"] == 1 and "init() failed" in job["statusReason"]


def test_an_attempt_past_its_timeout_is_stopped_and_not_retried(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    requests_made: list[int] = []

    def busy(parameters: dict[str, str]) -> None:
        sts = boto3.client("sts")
        with step("batch job"):
            for n in range(2_000):  # 50 ms each as projected: 100 s of calls, past a 60 s attempt
                sts.get_caller_identity()
                requests_made.append(n)

    attempts = route_batch_jobs(monkeypatch, busy)

    job = submit(timeout_s=60)

    assert job["status"] == "FAILED" and job["statusReason"] == ATTEMPT_TIMED_OUT
    assert len(job["attempts"]) == len(attempts) == 1
    assert len(requests_made) == round(60 / request_latency_s("sts"))  # stopped at the one that would pass 60 s
