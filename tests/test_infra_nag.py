"""infra/nag.py: cdk-nag's AwsSolutions checks pass, every finding acknowledged in one place with a reason."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from infra.nag import acknowledgements
from infra.settings import StackSettings
from infra.stack import BatchEndpointsStack
from tests.infra_fixtures import (
    OPTIONS,
    cdk_context,
    scratch_folder,
    synthesize,
    synthesize_app,
    validation_report,
    violations,
)


def test_no_finding_is_left_unacknowledged() -> None:
    assert synthesize().violations() == []


def test_no_finding_is_left_unacknowledged_with_every_setting_changed() -> None:
    assert synthesize(**OPTIONS).violations() == []


def test_an_unacknowledged_finding_would_show() -> None:
    # The two tests above would also pass if no check ran: the same reading of the same report finds a finding.
    outdir = scratch_folder("bep-nag-")
    app = cdk.App(outdir=str(outdir), context=cdk_context())
    s3.Bucket(cdk.Stack(app, "Careless"), "Bucket")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    synthesize_app(app)
    assert ("Careless/Bucket/Resource", "AwsSolutions-S10") in violations(validation_report(outdir))


def test_every_acknowledgement_matches_a_finding_and_gives_a_reason() -> None:
    # The stack checked without its acknowledgements: what each acknowledgement would hide must be there.
    outdir = scratch_folder("bep-nag-")
    app = cdk.App(outdir=str(outdir), context=cdk_context())
    stack = BatchEndpointsStack(app, "BatchEndpoints", settings=StackSettings.from_context(app.node))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    synthesize_app(app)
    findings = violations(validation_report(outdir))
    acknowledged = acknowledgements(stack)
    assert len(acknowledged) >= 30
    for construct, finding, reason in acknowledged:
        path = construct.node.path
        assert any(f == finding and (p == path or p.startswith(f"{path}/")) for p, f in findings), (path, finding)
        assert len(reason) >= 40, (path, finding, reason)
