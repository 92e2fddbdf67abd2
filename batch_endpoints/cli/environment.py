"""`bep environment`: register and inspect environment versions (`az ml environment`)."""

from __future__ import annotations

import argparse

from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.asset_verbs import add_asset_commands, registration
from batch_endpoints.cli.commands import Group


def environment_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    environment = service.register_environment(
        args.name, image=args.image, conda_file=args.conda_file, **registration(args)
    )
    render.show(environment)
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
    )
    sub.add_argument("--image", help="container image; without one, the stack's image for the compute")
    sub.add_argument("--conda-file", help="a conda environment YAML file; its text and pip packages are recorded")
