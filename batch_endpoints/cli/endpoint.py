"""`bep endpoint`: create, change and invoke batch endpoints (`az ml batch-endpoint`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from batch_endpoints import literal_inputs, yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.commands import (
    Group,
    add_set_argument,
    add_yes_argument,
    command,
    current_user,
    key_values,
)
from batch_endpoints.cli.job import follow_and_report, print_started
from batch_endpoints.errors import ValidationError
from batch_endpoints.progress import ProgressBar
from batch_endpoints.service import InvokeRequest
from batch_endpoints.specs import InvokeOverrides, NamedInput, for_model_deployment, parse, with_data_input
from batch_endpoints.specs.invocation import refuse_model_options


def endpoint_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    flags = {
        "name": args.name,
        "description": args.description,
        "allowed_inputs": args.allowed_inputs,
        "allowed_outputs": args.allowed_outputs,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.file:
        declaration = yaml_specs.load_endpoint(args.file, overrides)
    else:
        declaration = yaml_specs.load_endpoint_mapping(overrides)
    render.show(args, service.create_endpoint(declaration, caller=current_user()))
    return 0


def endpoint_update(service: EndpointsApi, args: argparse.Namespace) -> int:
    default_deployment = _default_deployment(args)
    given = {
        "description": args.description,
        "defaults": {"deployment_name": default_deployment} if default_deployment is not None else None,
        "allowed_inputs": args.allowed_inputs,
        "allowed_outputs": args.allowed_outputs,
    }
    changes = parse(yaml_specs.EndpointPatch, given)
    render.show(args, service.update_endpoint(args.name, changes, caller=current_user()))
    return 0


# The one `--set` key of Azure's `az ml batch-endpoint update` that has a meaning here.
DEFAULT_DEPLOYMENT_KEY = "defaults.deployment_name"


def _default_deployment(args: argparse.Namespace) -> str | None:
    """--default-deployment, or Azure's way of saying it: `--set defaults.deployment_name=NAME`."""
    overrides = yaml_specs.parse_overrides(args.set or [])
    unknown = sorted(set(overrides) - {DEFAULT_DEPLOYMENT_KEY})
    if unknown:
        raise ValidationError(
            f"only {DEFAULT_DEPLOYMENT_KEY}=NAME can be set on an endpoint (got {', '.join(unknown)}); the "
            "description and allow-lists have their own flags",
            field="--set",
        )
    if DEFAULT_DEPLOYMENT_KEY not in overrides:
        return args.default_deployment  # type: ignore[no-any-return]
    named = str(overrides[DEFAULT_DEPLOYMENT_KEY])
    if args.default_deployment not in (None, named):
        raise ValidationError(
            f"names another default deployment than --default-deployment ({named!r} vs {args.default_deployment!r})",
            field="--set",
        )
    return named


def endpoint_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(args, service.get_endpoint(args.name))
    return 0


def endpoint_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    rows = [e.model_dump(mode="json") for e in service.list_endpoints()]
    render.table(args, rows, ["name", "default_deployment", "description", "scoring_uri"])
    return 0


def endpoint_delete(service: EndpointsApi, args: argparse.Namespace) -> int:
    service.delete_endpoint(args.name)
    render.result(
        args,
        None,
        default=lambda _: print(
            f"deleted endpoint {args.name} and its deployments (jobs and outputs are kept)", file=sys.stderr
        ),
    )
    return 0


def endpoint_invoke(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml batch-endpoint invoke`: the inputs and outputs by name from Azure's inputs YAML (--file) and `--set
    inputs.NAME.path=...`, or the one data input from --input, flags overriding the file. Every mistake is refused
    before a local file or folder is uploaded to the default datastore; the upload is removed again if the
    invocation is refused."""
    here = os.getcwd()
    named, settings = yaml_specs.split_invoke_overrides(yaml_specs.parse_overrides(args.set or []))
    declared = yaml_specs.load_invoke(args.file, named, here=here)
    inputs = with_data_input(
        declared.inputs,
        yaml_specs.local_or_reference(args.input, here) if args.input else None,
        type=args.input_type,
        exclude=args.exclude,
    )
    deployment = service.deployment_to_invoke(args.name, args.deployment_name)
    if deployment.type == "pipeline":
        return _invoke_pipeline(service, args, declared, inputs, settings)
    invocation = for_model_deployment(inputs, declared.outputs)
    flags = {
        "mini_batch_size": args.mini_batch_size,
        "instance_count": args.instance_count,
        "output_file_name": args.output_file_name or invocation.output_file_name,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    checked_overrides = parse(InvokeOverrides, settings, prefix="--set")
    literal_inputs.resolve(deployment.inputs, invocation.literals)
    output = yaml_specs.local_or_reference(args.output_path, here) if args.output_path else invocation.output_path
    source = invocation.input
    uploaded = None
    if not yaml_specs.is_reference(source):
        bar = ProgressBar(f"uploading {source}")
        uploaded = service.upload_input(source, progress=bar)
        bar.close()
    try:
        job = service.invoke(
            InvokeRequest(
                endpoint_name=args.name,
                input=uploaded or source,
                input_type=invocation.input_type,
                exclude=invocation.exclude,
                deployment_name=args.deployment_name,
                output_path=output,
                overrides=checked_overrides,
                caller=current_user(),
                experiment_name=args.experiment_name or declared.experiment_name,
                display_name=args.display_name or declared.display_name,
                tags={**declared.tags, **key_values(args.tags, "tags")},
                inputs=invocation.literals,
            )
        )
    except BaseException:
        if uploaded:
            service.discard_upload(uploaded)
        raise
    print_started(service, args, job)
    return follow_and_report(service, job.id) if args.stream else 0


def _invoke_pipeline(
    service: EndpointsApi,
    args: argparse.Namespace,
    declared: yaml_specs.InvokeDeclaration,
    inputs: dict[str, NamedInput],
    settings: Mapping[str, object],
) -> int:
    """A pipeline deployment's job: its inputs and outputs by name; local data inputs uploaded first, and removed
    again if the invocation is refused."""
    run_settings = {"--mini-batch-size": args.mini_batch_size, "--instance-count": args.instance_count}
    run_settings |= {"--output-file-name": args.output_file_name, "--output-path": args.output_path}
    run_settings |= {f"--set {key}": True for key in settings}
    refuse_model_options(
        {flag: value is not None for flag, value in run_settings.items()},
        "a pipeline deployment's steps have their own run settings; give outputs as outputs.NAME.path",
    )
    uploaded: list[str] = []
    try:
        for name, data in inputs.items():
            if data.path is not None and not yaml_specs.is_reference(data.path):
                bar = ProgressBar(f"uploading {data.path}")
                uploaded.append(service.upload_input(data.path, progress=bar))
                bar.close()
                inputs = {**inputs, name: data.model_copy(update={"path": uploaded[-1]})}
        job = service.invoke(
            InvokeRequest(
                endpoint_name=args.name,
                deployment_name=args.deployment_name,
                named_inputs=inputs,
                named_outputs=declared.outputs,
                caller=current_user(),
                experiment_name=args.experiment_name or declared.experiment_name,
                display_name=args.display_name or declared.display_name,
                tags={**declared.tags, **key_values(args.tags, "tags")},
            )
        )
    except BaseException:
        for uri in uploaded:
            service.discard_upload(uri)
        raise
    print_started(service, args, job)
    return follow_and_report(service, job.id) if args.stream else 0


def add_allow_list_arguments(sub: argparse.ArgumentParser, nargs: str, more: str) -> None:
    for kind, verb in (("inputs", "read"), ("outputs", "write")):
        sub.add_argument(
            f"--allowed-{kind}",
            nargs=nargs,
            metavar="PREFIX",
            help=f"s3:// prefixes or absolute folders this endpoint's jobs may {verb}, within the system's own{more}",
        )


def add_commands(groups: Group) -> None:
    endpoints = groups.add_parser("endpoint", help="batch endpoints", aliases=["batch-endpoint"]).add_subparsers(
        dest="verb", required=True
    )
    sub = command(endpoints, "create", endpoint_create, "create an endpoint from endpoint.yml or flags")
    sub.add_argument("--file", "-f")
    sub.add_argument("--name", "-n")
    sub.add_argument("--description", "-d")
    add_allow_list_arguments(sub, "+", "")
    sub = command(
        endpoints, "update", endpoint_update, "change the default deployment, the description or the allow-lists"
    )
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--default-deployment")
    sub.add_argument("--description", "-d")
    add_allow_list_arguments(sub, "*", "; the flag alone removes the narrowing")
    add_set_argument(sub, f"Azure's {DEFAULT_DEPLOYMENT_KEY}=NAME, the only key")
    sub = command(endpoints, "show", endpoint_show, "show an endpoint")
    sub.add_argument("--name", "-n", required=True)
    sub = command(endpoints, "delete", endpoint_delete, "delete an endpoint and its deployments; its jobs are kept")
    sub.add_argument("--name", "-n", required=True)
    add_yes_argument(sub)
    command(endpoints, "list", endpoint_list, "list endpoints")
    sub = command(endpoints, "invoke", endpoint_invoke, "score a folder or file; prints the job id")
    sub.add_argument("--name", "-n", required=True, help="endpoint name")
    sub.add_argument(
        "--input",
        "-i",
        help="what to score: a local folder or file (uploaded first), an s3:// URI, a data asset (name:version, "
        "name@latest) or a datastore path (azureml://datastores/<name>/paths/<path>)",
    )
    sub.add_argument("--file", "-f", help="Azure's inputs.yml / inputs-and-outputs.yml")
    sub.add_argument("--input-type", choices=["uri_folder", "uri_file"])
    sub.add_argument(
        "--exclude",
        action="append",
        metavar="PATTERN",
        help="leave out the input folder's files whose relative path matches this glob pattern (fnmatch: '*' also "
        "matches '/'), e.g. '*.tmp'; repeat for more; default: every file is input",
    )
    sub.add_argument("--deployment-name", "-d", help="default: the endpoint's default deployment")
    sub.add_argument(
        "--output-path", help="folder for the output file (local, s3:// or a datastore path); default: the job's own"
    )
    sub.add_argument("--experiment-name", help="groups jobs for `job list`; default: the endpoint's name")
    sub.add_argument("--display-name")
    sub.add_argument("--tags", nargs="+", action="extend", metavar="KEY=VALUE")
    sub.add_argument("--output-file-name")
    sub.add_argument("--mini-batch-size", type=int)
    sub.add_argument("--instance-count", type=int)
    add_set_argument(
        sub,
        "inputs.NAME.type=uri_folder inputs.NAME.path=PATH (a data input), inputs.NAME=VALUE (a literal), "
        "outputs.score.path=PATH, and settings: mini_batch_size, instance_count, retry_settings.max_retries, "
        "retry_settings.timeout, error_threshold, output_file_name",
    )
    sub.add_argument("--stream", action="store_true", help="follow the job to its end")
