"""`bep environment`: register and inspect environment versions (`az ml environment`)."""

from __future__ import annotations

import argparse

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.asset_verbs import add_asset_commands, given_flags, registration
from batch_endpoints.cli.commands import Group
from batch_endpoints.errors import ValidationError


def environment_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml environment create`: from flags, or from Azure's environment YAML (`--file`), flags overriding it."""
    fields = registration(args)
    if args.file:
        declared = yaml_specs.load_environment(args.file, given_flags(args, "name", "version", "image"))
        if args.conda_file:
            raise ValidationError("comes from the file; give it there, or leave out --file", field="--conda-file")
        fields.update(
            version=declared.version,
            description=args.description or declared.description,
            tags={**declared.tags, **fields["tags"]},
        )
        name, image, conda_file = str(declared.name), declared.image, declared.conda_file
        fields["pip_requirements"] = declared.pip_requirements
    elif not args.name:
        raise ValidationError("give --name, or --file with Azure's environment YAML", field="name")
    else:
        name, image, conda_file = args.name, args.image, args.conda_file
    render.show(args, service.register_environment(name, image=image, conda_file=conda_file, **fields))
    return 0


def add_commands(groups: Group) -> None:
    sub = add_asset_commands(
        groups,
        "environment",
        help_text="register and inspect environment versions (an image, a conda file, or both)",
        create=environment_create,
        create_help="register an environment version",
        list_versions=EndpointsApi.list_environments,
        get_version=EndpointsApi.get_environment,
        columns=["name", "version", "image", "description", "created_at"],
        from_file=True,
    )
    sub.add_argument("--image", help="container image; without one, the stack's image for the compute")
    sub.add_argument("--conda-file", help="a conda environment YAML file; its text and pip packages are recorded")
