"""The caller's own S3 rights, asked of IAM: `iam:SimulatePrincipalPolicy` for the principal that signed the
request, so a job never reads or writes what its caller could not (the confused deputy).

Switched on by BEP_SIMULATE_CALLER_POLICY=true (the API Lambda then needs iam:SimulatePrincipalPolicy). The
simulation evaluates the principal's identity policies (and permission boundary), not bucket policies or SCPs,
so it refuses what IAM would refuse the caller, which is the safe direction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from batch_endpoints.adapters.aws.blobs import parse

SETTING = "BEP_SIMULATE_CALLER_POLICY"
# API Gateway reports a role's session as arn:aws:sts::<account>:assumed-role/<role>/<session>; IAM simulates
# the role itself. A role's path is not in the session ARN, so roles with a path must be named without one.
ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")
PRINCIPAL = re.compile(r"^arn:[^:]+:iam::\d{12}:(user|role)/.+$")


def principal_arn(caller: str) -> str | None:
    """The IAM user or role ARN to simulate for a caller as API Gateway names it; None if it names neither."""
    session = ASSUMED_ROLE.match(caller)
    if session:
        return f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"
    return caller if PRINCIPAL.match(caller) else None


def s3_resources(uri: str, partition: str = "aws") -> tuple[str, str]:
    """(bucket ARN, object ARN pattern) of a file or folder URI: ListBucket is on the bucket, Get/Put on keys."""
    bucket, key = parse(uri)
    return f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/{key.rstrip('/')}*"


class IamPolicySimulation:
    def __init__(self, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("iam")
        self.client = client

    def denial(self, caller: str, *, reads: Sequence[str], writes: Sequence[str]) -> str | None:
        principal = principal_arn(caller)
        if principal is None:
            return f"cannot check what caller {caller or '(anonymous)'!r} may read: not an IAM user or role"
        asks = []
        for uri in reads:
            bucket_arn, objects_arn = s3_resources(uri)
            asks += [("read", uri, "s3:ListBucket", bucket_arn), ("read", uri, "s3:GetObject", objects_arn)]
        for uri in writes:
            asks.append(("write", uri, "s3:PutObject", s3_resources(uri)[1].removesuffix("*")))
        for verb, uri, action, resource in asks:
            answer = self.client.simulate_principal_policy(
                PolicySourceArn=principal, ActionNames=[action], ResourceArns=[resource]
            )
            decisions = [result["EvalDecision"] for result in answer["EvaluationResults"]]
            if not decisions or any(decision != "allowed" for decision in decisions):
                return f"{caller} may not {verb} {uri} itself ({action} on {resource} is denied by IAM)"
        return None
