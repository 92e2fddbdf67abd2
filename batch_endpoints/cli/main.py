"""`bep`: the command line, with the verbs of `az ml batch-endpoint|batch-deployment|model|environment|data|job`
and `az ml datastore`.

Each command parses its flags, calls one service use case and prints the result. Errors map to exit codes here,
once: 2 bad input, 3 not found, 4 conflict, 1 a job that did not complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pydantic import BaseModel

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import config, doctor, render, serve, stream, targets
from batch_endpoints.errors import BatchEndpointError, ConflictError, ForbiddenError, NotFoundError, ValidationError
from batch_endpoints.progress import ProgressBar
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import InvokeOverrides, Job, JobStatus, parse

EXIT_CODES = {ValidationError: 2, NotFoundError: 3, ConflictError: 4, ForbiddenError: 5}
Handler = Callable[[BatchEndpointService, argparse.Namespace], int]


# ---------------------------------------------------------------- registered assets: models, environments
def model_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(service.register_model(args.name, args.path, **_registration(args)))
    return 0


def environment_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    environment = service.register_environment(
        args.name, image=args.image, conda_file=args.conda_file, **_registration(args)
    )
    render.show(environment)
    return 0


def data_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml data create`: from flags, or from Azure's data.yml (`--file`), flags overriding the file."""
    if args.file:
        flags = {"name": args.name, "version": args.version, "type": args.type, "description": args.description}
        declared = yaml_specs.load_data(args.file, {k: v for k, v in flags.items() if v})
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
        tags={**declared.tags, **_key_values(args.tag, "tag")},
        caller=_caller(),
        progress=bar,
    )
    if bar is not None:
        bar.close()
    render.show(asset)
    return 0


def _registration(args: argparse.Namespace) -> dict[str, Any]:
    """What registering any asset version takes besides its content: version, description, tags, who."""
    return {
        "version": args.version,
        "description": args.description,
        "tags": _key_values(args.tag, "tag"),
        "caller": _caller(),
    }


def _key_values(items: Sequence[str] | None, field: str) -> dict[str, str]:
    return {k: str(v) for k, v in yaml_specs.parse_overrides(items or [], field=field).items()}


# ---------------------------------------------------------------- datastores
def datastore_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    datastore = service.create_datastore(
        args.name,
        bucket=args.bucket,
        prefix=args.prefix,
        folder=os.path.abspath(os.path.expanduser(args.path)) if args.path else None,
        description=args.description,
        tags=_key_values(args.tag, "tag"),
        caller=_caller(),
    )
    render.show(datastore)
    return 0


def datastore_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    rows = [{**d.model_dump(), "default": "*" if d.is_default else ""} for d in service.list_datastores()]
    render.table(rows, ["name", "default", "root", "bucket", "description"])
    return 0


def datastore_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(service.get_datastore(args.name))
    return 0


def asset_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    versions: list[BaseModel] = _on_target(service, args.list_versions)(args.name)
    render.table([v.model_dump() for v in versions], args.columns)
    return 0


def asset_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(_on_target(service, args.get_version)(args.name, args.version, args.label))
    return 0


def _on_target(service: EndpointsApi, method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` (one of EndpointsApi's) as the target implements it."""
    return getattr(service, method.__name__)


# ---------------------------------------------------------------- endpoints
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
    render.show(service.create_endpoint(declaration, caller=_caller()))
    return 0


def endpoint_update(service: EndpointsApi, args: argparse.Namespace) -> int:
    endpoint = service.update_endpoint(
        args.name,
        description=args.description,
        default_deployment=args.default_deployment,
        allowed_inputs=args.allowed_inputs,
        allowed_outputs=args.allowed_outputs,
        caller=_caller(),
    )
    render.show(endpoint)
    return 0


def endpoint_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(service.get_endpoint(args.name))
    return 0


def endpoint_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    rows = [e.model_dump() for e in service.list_endpoints()]
    render.table(rows, ["name", "default_deployment", "description", "scoring_uri"])
    return 0


def endpoint_delete(service: EndpointsApi, args: argparse.Namespace) -> int:
    service.delete_endpoint(args.name)
    print(f"deleted endpoint {args.name} and its deployments (jobs and outputs are kept)", file=sys.stderr)
    return 0


def endpoint_invoke(service: EndpointsApi, args: argparse.Namespace) -> int:
    """`az ml batch-endpoint invoke`: the input from --input or Azure's inputs YAML (--file), flags overriding the
    file. A local file or folder is first uploaded to the default datastore, and removed again if the invocation
    is refused."""
    if not args.file and not args.input:
        raise ValidationError("is required: give --input, or --file with the inputs YAML", field="input")
    declared = yaml_specs.load_invoke(args.file) if args.file else yaml_specs.InvokeDeclaration(input="")
    overrides = yaml_specs.parse_overrides(args.set or [])
    # `--set inputs.NAME=VALUE`: literal inputs, kept as written; the deployment's declared type reads them.
    inputs = {key.removeprefix("inputs."): overrides.pop(key) for key in list(overrides) if key.startswith("inputs.")}
    overrides.update(
        {
            k: v
            for k, v in {
                "mini_batch_size": args.mini_batch_size,
                "instance_count": args.instance_count,
                "output_file_name": args.output_file_name or declared.output_file_name,
            }.items()
            if v is not None
        }
    )
    checked_overrides = parse(InvokeOverrides, overrides, prefix="--set")
    service.deployment_to_invoke(args.name, args.deployment_name)  # refused before anything is uploaded
    here = os.getcwd()
    source = yaml_specs.local_or_reference(args.input, here) if args.input else declared.input
    output = yaml_specs.local_or_reference(args.output_path, here) if args.output_path else None
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
                input_type=args.input_type or declared.input_type,
                exclude=args.exclude if args.exclude is not None else declared.exclude,
                deployment_name=args.deployment_name,
                output_path=output or declared.output_path,
                overrides=checked_overrides,
                caller=_caller(),
                experiment_name=args.experiment_name or declared.experiment_name,
                display_name=args.display_name or declared.display_name,
                tags={**declared.tags, **_key_values(args.tags, "tags")},
                inputs=inputs,
            )
        )
    except BaseException:
        if uploaded:
            service.discard_upload(uploaded)
        raise
    print(job.id)
    return _stream(service, job.id) if args.stream else 0


# ---------------------------------------------------------------- deployments
def _deployment_declaration(args: argparse.Namespace) -> yaml_specs.DeploymentDeclaration:
    overrides = yaml_specs.parse_overrides(args.set or [])
    overrides.update({k: v for k, v in {"name": args.name, "endpoint_name": args.endpoint_name}.items() if v})
    return yaml_specs.load_deployment(args.file, overrides)


def deployment_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    deployment = service.create_deployment(
        _deployment_declaration(args), set_default=args.set_default, caller=_caller()
    )
    render.show(deployment)
    return 0


def deployment_update(service: EndpointsApi, args: argparse.Namespace) -> int:
    deployment = service.update_deployment(
        _deployment_declaration(args), set_default=args.set_default, caller=_caller()
    )
    render.show(deployment)
    return 0


def deployment_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(service.get_deployment(args.endpoint_name, args.name))
    return 0


def deployment_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    default = service.get_endpoint(args.endpoint_name).default_deployment
    rows = [
        {**d.model_dump(), "default": "*" if d.name == default else ""}
        for d in service.list_deployments(args.endpoint_name)
    ]
    render.table(rows, ["name", "default", "model", "compute", "description"])
    return 0


def deployment_delete(service: EndpointsApi, args: argparse.Namespace) -> int:
    service.delete_deployment(args.endpoint_name, args.name, caller=_caller())
    print(f"deleted deployment {args.name} of endpoint {args.endpoint_name}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- jobs
def job_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.get_job(args.name)
    render.show({**job.model_dump(mode="json", exclude={"deployment"}), "progress": service.job_progress(job.id)})
    return 0


def job_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    jobs = service.list_jobs(
        args.endpoint_name,
        args.max_results,
        experiment_name=args.experiment_name,
        tags=_key_values(args.tag, "tag"),
    )
    rows = [{**j.model_dump(), "status": j.status.value, "files": j.counts.files} for j in jobs]
    render.table(rows, ["id", "deployment_name", "status", "files", "experiment_name", "display_name", "created_at"])
    return 0


def job_stream(service: EndpointsApi, args: argparse.Namespace) -> int:
    return _stream(service, args.name)


def job_logs(service: EndpointsApi, args: argparse.Namespace) -> int:
    token = None
    while True:
        page = service.job_logs(args.name, next_token=token)
        for line in page.lines:
            print(f"[{line.source}] {line.message}")
        token = page.next_token
        if token is None:
            return 0


def job_cancel(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.cancel_job(args.name, caller=_caller())
    print(f"{job.id}: {job.status.value}", file=sys.stderr)
    return 0


def job_rerun(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.rerun_job(
        args.name,
        failed_only=args.failed,
        # An s3:// or azureml:// output stays as written; a local folder is made absolute.
        output_path=yaml_specs.local_or_reference(args.output_path, os.getcwd()) if args.output_path else None,
        output_file_name=args.output_file_name,
        caller=_caller(),
    )
    print(job.id)
    return _stream(service, job.id) if args.stream else 0


def job_resume(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.resume_job(args.name, caller=_caller())
    print(f"{job.id}: resumed ({job.status.value})", file=sys.stderr)
    return _stream(service, job.id) if args.stream else 0


def job_download(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.get_job(args.name)
    if not job.status.is_final:
        raise ConflictError(f"job {job.id} is {job.status.value}; download it once it has ended", field="name")
    target = os.path.abspath(args.download_path)
    os.makedirs(target, exist_ok=True)
    for uri in service.job_artifacts(job.id):
        path = os.path.join(target, uri.rstrip("/").rpartition("/")[2])
        with open(path, "wb") as out:
            out.write(service.blobs.get_bytes(uri))
        print(path)
    return 0


def _stream(service: EndpointsApi, job_id: str) -> int:
    job = stream.follow(service, job_id)
    _report(job)
    return 0 if job.status == JobStatus.COMPLETED else 1


def _report(job: Job) -> None:
    counts = job.counts
    print(
        f"job {job.id} {job.status.value}: {counts.files_succeeded} of {counts.files} {counts.unit} scored, "
        f"{counts.files_failed} failed, {counts.files_not_scored} not scored, {counts.rows} output rows",
        file=sys.stderr,
    )
    if job.error:
        print(f"error: {job.error}", file=sys.stderr)
    if job.status == JobStatus.COMPLETED and job.output_uri:
        print(f"output: {job.output_uri}", file=sys.stderr)


def _caller() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "local-user"


# ---------------------------------------------------------------- parser
def command(
    group: argparse._SubParsersAction, name: str, handler: Handler, help_text: str, aliases: Sequence[str] = ()
) -> argparse.ArgumentParser:
    sub = group.add_parser(name, help=help_text, aliases=list(aliases))
    sub.set_defaults(handler=handler)
    return sub


def add_asset_commands(
    groups: argparse._SubParsersAction,
    noun: str,
    *,
    help_text: str,
    create: Handler,
    create_help: str,
    list_versions: Callable[[EndpointsApi, str | None], Sequence[BaseModel]],
    get_version: Callable[[EndpointsApi, str, str | None, str | None], BaseModel],
    columns: Sequence[str],
    from_file: bool = False,
) -> argparse.ArgumentParser:
    """`bep <noun> create|register|list|show`, the verbs every versioned asset has (`az ml model|environment`).
    Returns the create command, for the flags that say what the version holds. With from_file, create also
    reads Azure's YAML for the asset (`--file`), which may hold the name."""
    verbs = groups.add_parser(noun, help=help_text).add_subparsers(dest="verb", required=True)
    create_command = command(verbs, "create", create, create_help, aliases=["register"])
    if from_file:
        create_command.add_argument("--file", "-f", help=f"Azure's {noun} YAML; flags override its fields")
    create_command.add_argument("--name", "-n", required=not from_file)
    create_command.add_argument("--version", "-v", help="default: one more than the latest numeric version")
    create_command.add_argument("--description", "-d", default="")
    create_command.add_argument("--tag", action="append", metavar="KEY=VALUE")
    sub = command(verbs, "list", asset_list, f"list {noun} versions")
    sub.add_argument("--name", "-n")
    sub.set_defaults(list_versions=list_versions, columns=list(columns))
    sub = command(verbs, "show", asset_show, f"show one {noun} version (default: the latest)")
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--version", "-v")
    sub.add_argument("--label", "-l", choices=[yaml_specs.LATEST])
    sub.set_defaults(get_version=get_version)
    return create_command


def add_allow_list_arguments(sub: argparse.ArgumentParser, nargs: str, more: str) -> None:
    for kind, verb in (("inputs", "read"), ("outputs", "write")):
        sub.add_argument(
            f"--allowed-{kind}",
            nargs=nargs,
            metavar="PREFIX",
            help=f"s3:// prefixes or absolute folders this endpoint's jobs may {verb}, within the system's own{more}",
        )


class CommandLineParser(argparse.ArgumentParser):
    """argparse, whose refusals (exit 2) quote an overlong value shortened, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        render.error(message)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="bep", description="Batch endpoints: score folders of files with a registered model, locally or on AWS."
    )
    groups = parser.add_subparsers(
        dest="group",
        required=True,
        metavar="{model,environment,data,datastore,endpoint,deployment,job,serve,configure,doctor}",
    )

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
    for verb, handler in (("show", endpoint_show), ("delete", endpoint_delete)):
        sub = command(endpoints, verb, handler, f"{verb} an endpoint")
        sub.add_argument("--name", "-n", required=True)
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
    sub.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="other overrides: max_retries, timeout, error_threshold; inputs.NAME=VALUE gives a literal input",
    )
    sub.add_argument("--stream", action="store_true", help="follow the job to its end")

    deployments = groups.add_parser(
        "deployment", help="deployments of an endpoint", aliases=["batch-deployment"]
    ).add_subparsers(dest="verb", required=True)
    for verb, handler in (("create", deployment_create), ("update", deployment_update)):
        sub = command(deployments, verb, handler, f"{verb} a deployment from deployment.yml")
        sub.add_argument("--file", "-f", required=True)
        sub.add_argument("--endpoint-name", "-e")
        sub.add_argument("--name", "-n")
        sub.add_argument("--set-default", action="store_true")
        sub.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a field of the file, e.g. settings.mini_batch_size=5",
        )
    for verb, handler in (("show", deployment_show), ("delete", deployment_delete)):
        sub = command(deployments, verb, handler, f"{verb} a deployment")
        sub.add_argument("--endpoint-name", "-e", required=True)
        sub.add_argument("--name", "-n", required=True)
    sub = command(deployments, "list", deployment_list, "list an endpoint's deployments")
    sub.add_argument("--endpoint-name", "-e", required=True)

    jobs = groups.add_parser("job", help="jobs (invocations)").add_subparsers(dest="verb", required=True)
    for verb, handler, help_text in (
        ("show", job_show, "show a job and its progress"),
        ("stream", job_stream, "follow a job to its end"),
        ("cancel", job_cancel, "cancel a running job"),
        ("logs", job_logs, "print what the job's scoring code printed or logged"),
    ):
        sub = command(jobs, verb, handler, help_text)
        sub.add_argument("--name", "-n", required=True, help="job id")
    sub = command(jobs, "list", job_list, "list jobs, newest first")
    sub.add_argument("--endpoint-name", "-e")
    sub.add_argument("--max-results", type=int)
    sub.add_argument("--experiment-name")
    sub.add_argument("--tag", action="append", metavar="KEY=VALUE", help="only jobs with this tag (repeatable)")
    sub = command(jobs, "rerun", job_rerun, "start a new job over an ended job's files; prints the new job id")
    sub.add_argument("--name", "-n", required=True, help="job id of the ended job")
    sub.add_argument("--failed", action="store_true", help="only the files that failed or were never scored")
    sub.add_argument("--output-path", help="folder for the output file; default: the new job's own folder")
    sub.add_argument("--output-file-name")
    sub.add_argument("--stream", action="store_true", help="follow the new job to its end")
    sub = command(jobs, "resume", job_resume, "continue a job whose run stopped (finished mini-batches are kept)")
    sub.add_argument("--name", "-n", required=True, help="job id")
    sub.add_argument("--stream", action="store_true", help="follow the job to its end")
    sub = command(jobs, "download", job_download, "copy a job's output, errors and summary to a folder")
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--download-path", default=".")

    sub = command(groups, "serve", serve.serve, "serve the REST API on this machine, checking SigV4 signatures")
    serve.add_arguments(sub)
    sub.set_defaults(scope=targets.SCOPE_LOCAL)
    sub = command(groups, "configure", config.configure, "set defaults: target, api_url, stack, region, profile")
    config.add_arguments(sub)
    sub.set_defaults(scope=targets.SCOPE_NONE)
    sub = command(groups, "doctor", doctor.doctor, "check an AWS account and this machine: credentials, stack, quotas")
    doctor.add_arguments(sub)
    sub.set_defaults(scope=targets.SCOPE_OPTIONS)
    targets.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(targets.open_operations(args), args)
    except BatchEndpointError as error:
        render.error(str(error))
        return next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), 1)


if __name__ == "__main__":
    sys.exit(main())
