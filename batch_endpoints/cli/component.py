"""`bep component`: register and inspect component versions (`az ml component`)."""

from __future__ import annotations

import argparse

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.asset_verbs import add_asset_commands, given_flags, registration
from batch_endpoints.cli.commands import Group
from batch_endpoints.errors import ValidationError


def component_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml component create --file`: Azure's command, parallel or pipeline component YAML; `--set` and the flags
    override its fields before it is checked."""
    if not args.file:
        raise ValidationError("give --file with Azure's component YAML", field="file")
    overrides = {**yaml_specs.parse_overrides(args.set or []), **given_flags(args, "name", "version", "description")}
    declared = yaml_specs.load_component(args.file, overrides)
    fields = registration(args)
    declared = declared.model_copy(update={"tags": {**declared.tags, **fields["tags"]}})
    # What the service refuses (a step graph, a placeholder) names the file too, as the loader's refusals do.
    with yaml_specs.reported(str(args.file), {}):
        created = service.create_component(declared, version=declared.version, caller=fields["caller"])
    render.show(args, created)
    return 0


def add_commands(groups: Group) -> None:
    sub = add_asset_commands(
        groups,
        "component",
        help_text="register and inspect component versions (command, parallel and pipeline components)",
        create=component_create,
        create_help="register a component version from Azure's component YAML",
        list_versions=EndpointsApi.list_components,
        get_version=EndpointsApi.get_component,
        columns=["name", "version", "type", "display_name", "created_at"],
        from_file=True,
    )
    sub.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a field of the file, e.g. display_name=Score"
    )
