"""`bep datastore`: named storage locations for paths (`az ml datastore`)."""

from __future__ import annotations

import argparse
import os

from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.commands import Group, command, current_user, key_values


def datastore_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    datastore = service.create_datastore(
        args.name,
        bucket=args.bucket,
        prefix=args.prefix,
        folder=os.path.abspath(os.path.expanduser(args.path)) if args.path else None,
        description=args.description,
        tags=key_values(args.tag, "tag"),
        caller=current_user(),
    )
    render.show(args, datastore)
    return 0


def datastore_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    rows = [{**d.model_dump(mode="json"), "default": "*" if d.is_default else ""} for d in service.list_datastores()]
    render.table(args, rows, ["name", "default", "root", "bucket", "description"])
    return 0


def datastore_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(args, service.get_datastore(args.name))
    return 0


def add_commands(groups: Group) -> None:
    datastores = groups.add_parser("datastore", help="named storage locations for paths").add_subparsers(
        dest="verb", required=True
    )
    sub = command(datastores, "create", datastore_create, "register a datastore: a bucket and prefix, or a folder")
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--bucket", help="the S3 bucket; locally, the bucket whose s3:// URIs the folder stands in for")
    sub.add_argument("--prefix", default="", help="key prefix inside the bucket")
    sub.add_argument("--path", "-p", help="the folder (local backend)")
    sub.add_argument("--description", "-d", default="")
    sub.add_argument("--tag", action="append", metavar="KEY=VALUE")
    command(datastores, "list", datastore_list, "list datastores, the default first")
    sub = command(datastores, "show", datastore_show, "show a datastore")
    sub.add_argument("--name", "-n", required=True)
