"""`bep job`: follow, cancel, rerun, resume and download jobs (`az ml job`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.api.schemas import JobView, LogLineView, console_url
from batch_endpoints.cli import render, stream
from batch_endpoints.cli.commands import Group, add_set_argument, command, current_user, key_values
from batch_endpoints.errors import ConflictError, ValidationError
from batch_endpoints.job_downloads import OUTPUT_NAME, JobFilesToDownload, check_output_name
from batch_endpoints.ports import LogLine
from batch_endpoints.specs import Job, JobStatus, StepStatus

JOB_COLUMNS = ["id", "deployment_name", "status", "files", "experiment_name", "display_name", "created_at"]


def job_create(service: EndpointsApi, args: argparse.Namespace) -> int:
    """A standalone pipeline job from Azure's pipeline-job.yml (`az ml job create --file`); prints its id."""
    overrides = yaml_specs.parse_overrides(args.set or [])
    if args.name:
        overrides["name"] = args.name
    declaration = yaml_specs.load_pipeline_job(args.file, overrides, here=os.getcwd())
    job = service.create_pipeline_job(declaration, caller=current_user())
    print_started(service, args, job)
    return follow_and_report(service, job.id) if args.stream else 0


def job_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.get_job(args.name)
    console = console_url(job.execution) if args.web else None
    if console is not None:
        render.result(args, console, default=lambda out: print(console, file=out))
        return 0
    if args.web:
        # A local job has no console page; scripts written for az run `job show --web` under `set -e`, so this
        # says so and shows the job, as `az` does besides opening its page.
        print(
            f"job {job.id} ran on this machine's backend, which has no console page (--web is for jobs on AWS)",
            file=sys.stderr,
        )
    render.show(args, job_record(service, job))
    return 0


def job_record(service: EndpointsApi, job: Job | JobView) -> dict[str, Any]:
    """What `job show` prints: the job without its deployment snapshot, with its live progress. `name` repeats the
    id, as Azure's jobs are named: `--query name -o tsv` gives the id in scripts written for `az`."""
    return {
        "name": job.id,
        **job.model_dump(mode="json", exclude={"deployment"}),
        "progress": service.job_progress(job.id),
    }


STEP_COLUMNS = ["name", "step", "type", "status", "started_at", "ended_at", "error"]


def job_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    if args.parent_job_name is not None:
        return _list_steps(service, args)
    jobs = service.list_jobs(
        args.endpoint_name,
        args.max_results,
        experiment_name=args.experiment_name,
        tags=key_values(args.tag, "tag"),
    )
    show_jobs(args, jobs)
    return 0


def _list_steps(service: EndpointsApi, args: argparse.Namespace) -> int:
    """A pipeline job's child jobs, one a step, in the order they may run (`az ml job list --parent-job-name`)."""
    pipeline = service.get_job(args.parent_job_name).pipeline
    if pipeline is None:
        raise ValidationError(
            f"job {args.parent_job_name} is a model deployment's job; only pipeline jobs have child jobs",
            field="--parent-job-name",
        )
    render.table(args, [run.model_dump(mode="json") for run in pipeline.steps], STEP_COLUMNS)
    return 0


def show_jobs(args: argparse.Namespace, jobs: Sequence[Job | JobView]) -> None:
    rows = [{"name": j.id, **j.model_dump(mode="json", exclude={"deployment"}), "files": j.counts.files} for j in jobs]
    render.table(args, rows, JOB_COLUMNS)


def job_stream(service: EndpointsApi, args: argparse.Namespace) -> int:
    return follow_and_report(service, args.name)


def job_logs(service: EndpointsApi, args: argparse.Namespace) -> int:
    if getattr(args, "output", None) is None and getattr(args, "query", None) is None:
        for line in _log_lines(service, args.name):
            print(f"[{line.source}] {line.message}")
        return 0
    lines = [
        {"timestamp_ms": line.timestamp_ms, "source": line.source, "message": line.message}
        for line in _log_lines(service, args.name)
    ]
    render.result(args, lines)
    return 0


def _log_lines(service: EndpointsApi, job_id: str) -> Iterator[LogLine | LogLineView]:
    token = None
    while True:
        page = service.job_logs(job_id, next_token=token)
        yield from page.lines
        token = page.next_token
        if token is None:
            return


def job_cancel(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.cancel_job(args.name, caller=current_user())
    render.result(
        args, job_record(service, job), default=lambda _: print(f"{job.id}: {job.status.value}", file=sys.stderr)
    )
    return 0


def job_rerun(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.rerun_job(
        args.name,
        failed_only=args.failed,
        # An s3:// or azureml:// output stays as written; a local folder is made absolute.
        output_path=yaml_specs.local_or_reference(args.output_path, os.getcwd()) if args.output_path else None,
        output_file_name=args.output_file_name,
        caller=current_user(),
    )
    print_started(service, args, job)
    return follow_and_report(service, job.id) if args.stream else 0


def print_started(service: EndpointsApi, args: argparse.Namespace, job: Job | JobView) -> None:
    """A new job: its bare id by default (for `JOB=$(bep ...)`), or the job as -o and --query ask, as az prints it."""
    render.result(args, job_record(service, job), default=lambda out: print(job.id, file=out))


def job_resume(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.resume_job(args.name, caller=current_user())
    render.result(
        args,
        job_record(service, job),
        default=lambda _: print(f"{job.id}: resumed ({job.status.value})", file=sys.stderr),
    )
    return follow_and_report(service, job.id) if args.stream else 0


def job_download(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.get_job(args.name)
    if not job.status.is_final:
        raise ConflictError(f"job {job.id} is {job.status.value}; download it once it has ended", field="name")
    if job.pipeline is not None:
        files = _pipeline_output(service, args.output_name, job.pipeline.outputs, job)
    else:
        check_output_name(args.output_name, field="--output-name")
        files = JobFilesToDownload(job.output_uri, job.output_folder, service.job_artifacts(job.id))
    targets = files.targets(os.path.abspath(args.download_path), output_name=args.output_name)
    for uri, path in targets:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(service.blobs.get_bytes(uri))
    paths = [path for _, path in targets]
    render.result(args, paths, default=lambda out: out.writelines(f"{path}\n" for path in paths))
    return 0


def _pipeline_output(
    service: EndpointsApi, output_name: str | None, outputs: dict[str, str], job: Job | JobView
) -> JobFilesToDownload:
    """A pipeline output's files, to land under named-outputs/NAME/ as `az ml job download --output-name` lays
    them."""
    if output_name not in outputs:
        raise ValidationError(
            f"is not an output of job {job.id} (its outputs: {', '.join(outputs) or 'none'})", field="--output-name"
        )
    folder = outputs[output_name].rstrip("/")
    uris = [uri for uri in service.job_artifacts(job.id) if uri.startswith(folder + "/")]
    return JobFilesToDownload(None, folder, uris, name=output_name)


def follow_and_report(service: EndpointsApi, job_id: str) -> int:
    job = stream.follow(service, job_id)
    _report(job)
    return 0 if job.status == JobStatus.COMPLETED else 1


def _report(job: Job | JobView) -> None:
    if job.pipeline is not None:
        done = sum(run.status == StepStatus.COMPLETED for run in job.pipeline.steps)
        print(f"job {job.id} {job.status.value}: {done} of {len(job.pipeline.steps)} steps completed", file=sys.stderr)
        if job.error:
            print(f"error: {job.error}", file=sys.stderr)
        return
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


def add_commands(groups: Group) -> None:
    jobs = groups.add_parser("job", help="jobs (invocations)").add_subparsers(dest="verb", required=True)
    for verb, handler, help_text in (
        ("show", job_show, "show a job and its progress"),
        ("stream", job_stream, "follow a job to its end"),
        ("cancel", job_cancel, "cancel a running job"),
        ("logs", job_logs, "print what the job's scoring code printed or logged"),
    ):
        sub = command(jobs, verb, handler, help_text)
        sub.add_argument("--name", "-n", required=True, help="job id")
        if verb == "show":
            sub.add_argument(
                "--web", action="store_true", help="print the job's console page (its Step Functions execution)"
            )
    sub = command(jobs, "create", job_create, "run a pipeline job (Azure's pipeline-job.yml); prints its id")
    sub.add_argument("--file", "-f", required=True, help="the pipeline job's YAML file")
    sub.add_argument("--name", "-n", help="the job's name; default: a new one")
    add_set_argument(sub, "override a field of the file, e.g. inputs.NAME.path=PATH (relative to here)")
    sub.add_argument("--stream", action="store_true", help="follow the job to its end")
    sub = command(jobs, "list", job_list, "list jobs, newest first")
    sub.add_argument("--endpoint-name", "-e")
    sub.add_argument("--max-results", type=int)
    sub.add_argument("--experiment-name")
    sub.add_argument("--tag", action="append", metavar="KEY=VALUE", help="only jobs with this tag (repeatable)")
    sub.add_argument("--parent-job-name", help="list a pipeline job's child jobs, one a step")
    sub = command(jobs, "rerun", job_rerun, "start a new job over an ended job's files; prints the new job id")
    sub.add_argument("--name", "-n", required=True, help="job id of the ended job")
    sub.add_argument("--failed", action="store_true", help="only the files that failed or were never scored")
    sub.add_argument("--output-path", help="folder for the output file; default: the new job's own folder")
    sub.add_argument("--output-file-name")
    sub.add_argument("--stream", action="store_true", help="follow the new job to its end")
    sub = command(jobs, "resume", job_resume, "continue a job whose run stopped (finished mini-batches are kept)")
    sub.add_argument("--name", "-n", required=True, help="job id")
    sub.add_argument("--stream", action="store_true", help="follow the job to its end")
    sub = command(
        jobs,
        "download",
        job_download,
        "copy a job's output to DOWNLOAD_PATH/named-outputs/score/ and its errors and summary to "
        "DOWNLOAD_PATH/artifacts/, as Azure lays them out",
    )
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--download-path", default=".")
    sub.add_argument(
        "--output-name",
        help=f"the output alone: a model deployment's job has one, {OUTPUT_NAME!r} as Azure names it; a pipeline "
        "job's are its pipeline's outputs, one of which must be named; default (model deployments): the output and "
        "the artifacts",
    )
    sub.add_argument(
        "--all", action="store_true", help="the output and the artifacts, as Azure's --all; the default already"
    )
