"""The synthesized template passes cfn-lint, apart from one documented rule.

Ignored: W3005 (a DependsOn that a GetAtt already implies). CDK adds these on purpose: a function depends on its
role's default policy as well as on the role, so that the policy exists before the function is first invoked.
"""

from __future__ import annotations

from cfnlint.api import ManualArgs, lint_file

from tests.infra_fixtures import OPTIONS, STACK_NAME, synthesize

IGNORED = ["W3005"]


def lint(**context: str) -> list[str]:
    template = synthesize(**context).outdir / f"{STACK_NAME}.template.json"
    matches = lint_file(template, ManualArgs(ignore_checks=IGNORED, regions=["us-east-1", "eu-west-1"]))
    return [f"{match.rule.id} {match.message} ({match.linenumber})" for match in matches]


def test_the_template_passes_cfn_lint() -> None:
    assert lint() == []


def test_the_template_with_every_setting_changed_passes_cfn_lint() -> None:
    assert lint(**OPTIONS) == []
