"""`bep deployment`: an endpoint's deployments, from Azure's deployment.yml (`az ml batch-deployment`)."""

from __future__ import annotations

import argparse
import sys

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.commands import Group, add_set_argument, add_yes_argument, command, current_user
from batch_endpoints.cli.job import show_jobs


def _deployment_declaration(args: argparse.Namespace) -> yaml_specs.DeploymentDeclaration:
    overrides = yaml_specs.parse_overrides(args.set or [])
    overrides.update({k: v for k, v in {"name": args.name, "endpoint_name": args.endpoint_name}.items() if v})
    return yaml_specs.load_deployment(args.file, overrides)


def deployment_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    # Azure's `create` creates or updates (scripts run it again to roll out a change); `update` needs the deployment.
    deployment = service.put_deployment(
        _deployment_declaration(args), set_default=args.set_default, caller=current_user()
    )
    render.show(args, deployment)
    return 0


def deployment_update(service: EndpointsApi, args: argparse.Namespace) -> int:
    deployment = service.update_deployment(
        _deployment_declaration(args), set_default=args.set_default, caller=current_user()
    )
    render.show(args, deployment)
    return 0


def deployment_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(args, service.get_deployment(args.endpoint_name, args.name))
    return 0


def deployment_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    default = service.get_endpoint(args.endpoint_name).default_deployment
    rows = [
        {**d.model_dump(mode="json"), "default": "*" if d.name == default else ""}
        for d in service.list_deployments(args.endpoint_name)
    ]
    render.table(args, rows, ["name", "default", "model", "compute", "description"])
    return 0


def deployment_delete(service: EndpointsApi, args: argparse.Namespace) -> int:
    service.delete_deployment(args.endpoint_name, args.name, caller=current_user())
    render.result(
        args,
        None,
        default=lambda _: print(f"deleted deployment {args.name} of endpoint {args.endpoint_name}", file=sys.stderr),
    )
    return 0


def deployment_list_jobs(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml batch-deployment list-jobs`: the jobs that ran on one deployment, newest first (kept after it is
    deleted)."""
    jobs = [job for job in service.list_jobs(args.endpoint_name) if job.deployment_name == args.name]
    if not jobs:
        service.get_deployment(args.endpoint_name, args.name)  # none yet, or no such deployment
    show_jobs(args, jobs)
    return 0


def add_commands(groups: Group) -> None:
    deployments = groups.add_parser(
        "deployment", help="deployments of an endpoint", aliases=["batch-deployment"]
    ).add_subparsers(dest="verb", required=True)
    for verb, handler, help_text in (
        ("create", deployment_create, "create a deployment from deployment.yml, or update it if it exists (as az)"),
        ("update", deployment_update, "update an existing deployment from deployment.yml"),
    ):
        sub = command(deployments, verb, handler, help_text)
        sub.add_argument("--file", "-f", required=True)
        sub.add_argument("--endpoint-name", "-e")
        sub.add_argument("--name", "-n")
        sub.add_argument("--set-default", action="store_true")
        add_set_argument(
            sub, "override fields of the file, e.g. settings.mini_batch_size=5 retry_settings.max_retries=2"
        )
    for verb, handler, help_text in (
        ("show", deployment_show, "show a deployment"),
        ("delete", deployment_delete, "delete a deployment; its jobs are kept"),
        ("list-jobs", deployment_list_jobs, "list a deployment's jobs, newest first"),
    ):
        sub = command(deployments, verb, handler, help_text)
        sub.add_argument("--endpoint-name", "-e", required=True)
        sub.add_argument("--name", "-n", required=True)
        if verb == "delete":
            add_yes_argument(sub)
    sub = command(deployments, "list", deployment_list, "list an endpoint's deployments")
    sub.add_argument("--endpoint-name", "-e", required=True)
