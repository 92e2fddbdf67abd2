"""`bep job`: follow, cancel, rerun, resume and download jobs (`az ml job`)."""

from __future__ import annotations

import argparse
import os
import sys

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.api.schemas import JobView
from batch_endpoints.cli import render, stream
from batch_endpoints.cli.commands import Group, command, current_user, key_values
from batch_endpoints.errors import ConflictError
from batch_endpoints.specs import Job, JobStatus


def job_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.get_job(args.name)
    render.show({**job.model_dump(mode="json", exclude={"deployment"}), "progress": service.job_progress(job.id)})
    return 0


def job_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    jobs = service.list_jobs(
        args.endpoint_name,
        args.max_results,
        experiment_name=args.experiment_name,
        tags=key_values(args.tag, "tag"),
    )
    rows = [{**j.model_dump(), "status": j.status.value, "files": j.counts.files} for j in jobs]
    render.table(rows, ["id", "deployment_name", "status", "files", "experiment_name", "display_name", "created_at"])
    return 0


def job_stream(service: EndpointsApi, args: argparse.Namespace) -> int:
    return follow_and_report(service, args.name)


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
    job = service.cancel_job(args.name, caller=current_user())
    print(f"{job.id}: {job.status.value}", file=sys.stderr)
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
    print(job.id)
    return follow_and_report(service, job.id) if args.stream else 0


def job_resume(service: EndpointsApi, args: argparse.Namespace) -> int:
    job = service.resume_job(args.name, caller=current_user())
    print(f"{job.id}: resumed ({job.status.value})", file=sys.stderr)
    return follow_and_report(service, job.id) if args.stream else 0


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


def follow_and_report(service: EndpointsApi, job_id: str) -> int:
    job = stream.follow(service, job_id)
    _report(job)
    return 0 if job.status == JobStatus.COMPLETED else 1


def _report(job: Job | JobView) -> None:
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
