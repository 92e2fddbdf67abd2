"""`python -m batch_container`: score shards of one job. The container's entry point, and the local
orchestrator's instance process.

    python -m batch_container --job-id J --shard URI [--shard URI ...]
    python -m batch_container --job-id J --shards-from-stdin [--instance NAME] [--log-dir PATH]
    python -m batch_container --job-id J --step S     one command step of a pipeline job (batch_container.command_step)

Exit status 0 when the shards ran, even if files failed (failed files are data; finalize decides the job's
fate). 1 when the runner cannot do its work at all: no job, no shard, no model or code, a scoring script that
cannot start. 128+N when ended by signal N.

With --shards-from-stdin, the runner reads shard URIs one per line and answers each on stdout with
`done <uri>` or `error <uri> <message>`; it exits at end of input. Its workers start before the first line
arrives, and they, and their init(), serve all those shards. An unreadable shard only gets an error line; a
shard that fails while running ends the runner (exit 1) after its error line, since what failed (workers,
storage) would fail the next shard too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import TextIO

from batch_container import command_step
from batch_container.runner import ShardRunner
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.backend import local_home
from batch_endpoints.errors import BatchEndpointError

log = logging.getLogger("batch_container")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.step is not None:
        # The image's entry point is this module, and a Batch job overrides only its command: a pipeline's round
        # runs a command step through here.
        return command_step.main(["--job-id", args.job_id, "--step", args.step])
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s runner {args.instance} %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    protocol = _claim_stdout() if args.shards_from_stdin else None
    # AWS Batch stops a job (cancel, Spot interruption) with SIGTERM: unwind, so the workers are ended too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        backend = from_environment()
        if args.log_dir:
            os.makedirs(args.log_dir, exist_ok=True)
        # Locally, fork servers kept warm between jobs spare each job the import of its libraries; in AWS Batch
        # every job is a fresh container.
        fork_servers = os.path.join(local_home(), "fork-servers") if backend.name == "local" else None
        with ShardRunner(
            backend.records,
            backend.blobs,
            args.job_id,
            instance=args.instance,
            log_dir=args.log_dir,
            fork_servers=fork_servers,
        ) as runner:
            if protocol is not None:
                return _serve_stdin(runner, protocol)
            shards = [runner.load_shard(uri) for uri in args.shard]
            for shard in shards:
                runner.run_shard(shard)
        return 0
    except BatchEndpointError as exc:
        log.error("cannot run job %s: %s", args.job_id, exc)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception:
        log.exception("cannot run job %s", args.job_id)
        return 1


def _serve_stdin(runner: ShardRunner, protocol: TextIO) -> int:
    runner.warm_up()
    while line := sys.stdin.readline():
        uri = line.strip()
        if not uri:
            continue
        try:
            shard = runner.load_shard(uri)
        except Exception as exc:  # this shard only: missing or malformed
            log.error("cannot read shard %s: %s", uri, exc)
            _reply(protocol, "error", uri, exc)
            continue
        try:
            runner.run_shard(shard)
        except Exception as exc:
            _reply(protocol, "error", uri, exc)
            raise
        _reply(protocol, "done", uri)
    return 0


def _reply(protocol: TextIO, word: str, uri: str, error: BaseException | None = None) -> None:
    message = f" {' | '.join(str(error).splitlines()) or type(error).__name__}" if error is not None else ""
    protocol.write(f"{word} {uri}{message}\n")
    protocol.flush()


def _claim_stdout() -> TextIO:
    """Keep stdout for protocol lines only: whatever else writes to file descriptor 1 (a library, a worker
    process) lands on stderr instead."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return protocol


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m batch_container", description="Score shards of a job.")
    parser.add_argument("--job-id", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--shard", action="append", metavar="URI", help="a shard file to run; repeatable")
    source.add_argument(
        "--shards-from-stdin",
        action="store_true",
        help="read shard URIs one per line; answer 'done <uri>' or 'error <uri> <message>' on stdout",
    )
    source.add_argument("--step", metavar="NAME", help="run this command step of the pipeline job instead")
    parser.add_argument("--instance", default="0", help="this instance's name in logs (default 0)")
    parser.add_argument(
        "--log-dir", help="folder for the scoring code's output, one <instance>-worker-<n>.log per worker"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
