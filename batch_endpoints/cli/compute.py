"""`bep compute`: compute clusters (`az ml compute --type amlcompute`), the stack's own and those users create.

Like az, create and delete wait until the compute is ready or gone (on AWS its compute environment and job queue
take a minute or two, and each call takes a step); `--no-wait` returns at once, and a later show or delete goes on.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.commands import Group, add_yes_argument, command, current_user, key_values
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs import Compute, ComputeUpdate, parse

POLL_INTERVAL_S = 5.0
# The flags that are fields of Azure's compute YAML, by their YAML names.
FIELD_FLAGS = ("name", "type", "size", "min_instances", "max_instances", "tier", "idle_time_before_scale_down")


def compute_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    """From Azure's compute YAML (`--file`), flags and `--set` overriding it, or from flags alone."""
    overrides: dict[str, Any] = yaml_specs.parse_overrides(args.set or [])
    overrides.update({name: getattr(args, name) for name in FIELD_FLAGS if getattr(args, name) is not None})
    if args.description is not None:
        overrides["description"] = args.description
    if args.tag:
        overrides["tags"] = key_values(args.tag, "tag")
    if args.file:
        declaration = yaml_specs.load_compute(args.file, overrides)
    else:
        declaration = yaml_specs.load_compute_mapping({"type": "amlcompute"}, overrides=overrides, source="flags")
    compute = service.create_compute(declaration, caller=current_user())
    if not args.no_wait:
        compute = until_created(service, compute)
    render.show(args, compute)
    return 0 if compute.provisioning_state != "Failed" else 1


def compute_update(service: EndpointsApi, args: argparse.Namespace) -> int:
    """Instance limits, idle time, description and tags; a compute's size cannot change (as in Azure)."""
    changes: dict[str, Any] = {
        "min_instances": args.min_instances,
        "max_instances": args.max_instances,
        "idle_time_before_scale_down": args.idle_time_before_scale_down,
        "description": args.description,
        "tags": key_values(args.tag, "tag") if args.tag else None,
    }
    for key, value in yaml_specs.parse_overrides(args.set or []).items():
        if key not in changes:
            raise ValidationError(
                f"{key} cannot change: an update takes {', '.join(changes)} (for another size, create another compute)",
                field=key,
            )
        changes[key] = value
    render.show(args, service.update_compute(args.name, parse(ComputeUpdate, changes)))
    return 0


def compute_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(args, service.get_compute(args.name))
    return 0


def compute_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    rows = service.list_computes()
    render.table(args, rows, ["name", "size", "min_instances", "max_instances", "tier", "provisioning_state"])
    return 0


def compute_delete(service: EndpointsApi, args: argparse.Namespace) -> int:
    remaining = None
    if args.no_wait:
        remaining = service.delete_compute(args.name)
    else:
        until_deleted(service, args.name)
    message = f"deleting compute {args.name}" if remaining else f"deleted compute {args.name}"
    render.result(args, remaining, default=lambda _: print(message, file=sys.stderr))
    return 0


def until_created(service: EndpointsApi, compute: Compute) -> Compute:
    """The compute once it is no longer Creating (Succeeded or Failed)."""
    while compute.provisioning_state == "Creating":
        time.sleep(POLL_INTERVAL_S)
        compute = service.get_compute(compute.name)
    return compute


def until_deleted(service: EndpointsApi, name: str) -> None:
    """Deletes the compute, calling again until it is gone (each call takes AWS's removal a step further)."""
    while service.delete_compute(name) is not None:
        time.sleep(POLL_INTERVAL_S)


def add_commands(groups: Group) -> None:
    computes = groups.add_parser("compute", help="compute clusters deployments run on").add_subparsers(
        dest="verb", required=True
    )
    sub = command(computes, "create", compute_create, "create a compute cluster from compute.yml or flags")
    sub.add_argument("--file", "-f", help="Azure's compute YAML (type: amlcompute)")
    sub.add_argument("--name", "-n")
    sub.add_argument("--type", "-t", choices=["amlcompute"])
    sub.add_argument("--size", help="an Azure VM size (Standard_DS3_v2) or an EC2 instance type (m5.xlarge)")
    sub.add_argument("--min-instances", dest="min_instances", type=int)
    sub.add_argument("--max-instances", dest="max_instances", type=int)
    sub.add_argument("--tier", choices=["dedicated", "low_priority"], help="low_priority: Spot instances on AWS")
    sub.add_argument("--idle-time-before-scale-down", dest="idle_time_before_scale_down", type=int)
    sub.add_argument("--description", "-d")
    sub.add_argument("--tag", action="append", metavar="KEY=VALUE")
    sub.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. max_instances=5")
    sub.add_argument("--no-wait", action="store_true", help="return while the compute is still Creating")
    sub = command(computes, "update", compute_update, "change a compute's instance limits, idle time or tags")
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--min-instances", dest="min_instances", type=int)
    sub.add_argument("--max-instances", dest="max_instances", type=int)
    sub.add_argument("--idle-time-before-scale-down", dest="idle_time_before_scale_down", type=int)
    sub.add_argument("--description", "-d")
    sub.add_argument("--tag", action="append", metavar="KEY=VALUE")
    sub.add_argument("--set", action="append", metavar="KEY=VALUE")
    sub = command(computes, "show", compute_show, "show a compute")
    sub.add_argument("--name", "-n", required=True)
    command(computes, "list", compute_list, "list computes, the stack's own first")
    sub = command(computes, "delete", compute_delete, "delete a compute no deployment uses")
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--no-wait", action="store_true", help="return while the compute is still Deleting")
    add_yes_argument(sub)
