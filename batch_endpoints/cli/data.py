"""`bep data`: register and inspect data asset versions (`az ml data`)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.asset_verbs import add_asset_commands, given_flags
from batch_endpoints.cli.commands import Group, current_user, key_values
from batch_endpoints.errors import ValidationError
from batch_endpoints.progress import ProgressBar


def data_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml data create`: from flags, or from Azure's data.yml (`--file`), flags overriding the file."""
    if args.file:
        declared = yaml_specs.load_data(args.file, given_flags(args, "name", "version", "type", "description"))
    elif not args.name or not args.path:
        raise ValidationError("give --name and --path, or --file with Azure's data asset YAML", field="path")
    else:
        declared = yaml_specs.DataDeclaration(
            name=args.name, path=args.path, type=args.type or "uri_folder", version=args.version
        )
    if args.path:
        declared = dataclasses.replace(declared, path=yaml_specs.local_or_reference(args.path, os.getcwd()))
    bar = None if yaml_specs.is_reference(declared.path) else ProgressBar(f"uploading {declared.path}")
    asset = service.register_data(
        declared.name,
        declared.path,
        data_type=declared.type,
        version=declared.version,
        description=args.description or declared.description,
        tags={**declared.tags, **key_values(args.tag, "tag")},
        caller=current_user(),
        progress=bar,
    )
    if bar is not None:
        bar.close()
    render.show(args, asset)
    return 0


def add_commands(groups: Group) -> None:
    sub = add_asset_commands(
        groups,
        "data",
        help_text="register and inspect data asset versions (folders and files to invoke on)",
        create=data_create,
        create_help="register a data asset version from a local or stored folder or file",
        list_versions=EndpointsApi.list_data,
        get_version=EndpointsApi.get_data,
        columns=["name", "version", "type", "path", "created_at"],
        from_file=True,
    )
    sub.add_argument("--type", "-t", help="uri_folder (default) or uri_file")
    sub.add_argument("--path", "-p", help="local folder or file (uploaded), s3:// URI or datastore path")
