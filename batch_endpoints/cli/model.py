"""`bep model`: register and inspect model versions (`az ml model`)."""

from __future__ import annotations

import argparse

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.asset_verbs import add_asset_commands, given_flags, registration
from batch_endpoints.cli.commands import Group
from batch_endpoints.errors import ValidationError


def model_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml model create`: from flags, or from Azure's model YAML (`--file`), flags overriding the file."""
    if args.file:
        declared = yaml_specs.load_model(args.file, given_flags(args, "name", "version", "path", "type"))
    elif not args.name or not args.path:
        raise ValidationError("give --name and --path, or --file with Azure's model YAML", field="path")
    else:
        yaml_specs.check_model_type(args.type or "custom_model", args.path, field="--type")
        declared = yaml_specs.ModelDeclaration(name=args.name, path=args.path, version=args.version)
    fields = registration(args)
    fields.update(
        version=declared.version,
        description=args.description or declared.description,
        tags={**declared.tags, **fields["tags"]},
    )
    render.show(args, service.register_model(declared.name, declared.path, **fields))
    return 0


def add_commands(groups: Group) -> None:
    sub = add_asset_commands(
        groups,
        "model",
        help_text="register and inspect model versions",
        create=model_create,
        create_help="register a model version from a folder or file",
        list_versions=EndpointsApi.list_models,
        get_version=EndpointsApi.get_model,
        columns=["name", "version", "description", "created_at"],
        from_file=True,
    )
    sub.add_argument("--path", "-p", help="local folder or file holding the model")
    sub.add_argument(
        "--type",
        "-t",
        choices=yaml_specs.MODEL_TYPES,
        help="custom_model (default); mlflow_model: the folder holds an MLmodel file; triton_model is refused",
    )
