"""`bep model`: register and inspect model versions (`az ml model`)."""

from __future__ import annotations

import argparse

from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.asset_verbs import add_asset_commands, registration
from batch_endpoints.cli.commands import Group


def model_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(service.register_model(args.name, args.path, **registration(args)))
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
    )
    sub.add_argument("--path", "-p", required=True, help="local folder or file holding the model")
