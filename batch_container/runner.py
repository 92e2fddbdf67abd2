"""Run the shards of one job on this instance: prefetch → workers → part writer, with timeouts and retries.

One ShardRunner serves one job for as many shards as it is given (one per Batch job in the cloud, a stream of
them in the local orchestrator's instance mode). Its workers, and their init(), live as long as it does.
It reaches storage and records only through the BlobStore and RecordStore ports, so the same code runs against
a folder and SQLite on a laptop and against S3 and DynamoDB in AWS Batch.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass

from batch_container import preload, requirements, warm_fork
from batch_container.custom_outputs import path_budget
from batch_container.parts import FinishedMiniBatch, PartWriter
from batch_container.prefetch import FetchedMiniBatch, Prefetcher
from batch_container.scoring import RunReply, RunRequest, WorkerSetup
from batch_container.script_arguments import script_arguments
from batch_container.stopping import StopConditions
from batch_container.warm_fork import WarmForkServer
from batch_container.workers import WorkerPool
from batch_endpoints import fetch_sizing, literal_inputs, shard_journals
from batch_endpoints.errors import BatchEndpointError, NotFoundError, ValidationError
from batch_endpoints.jobfiles import FileError, JobFiles, MiniBatchResult, RowSlice, Shard
from batch_endpoints.ports import BlobStore, RecordStore
from batch_endpoints.specs import Job, OutputAction, RunSettings

# The built-in scorer of MLflow models, by path: importing it would load pandas into the runner (half a second
# before the workers can start), and only the workers run it.
MLFLOW_SCORER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlflow_scorer.py")

log = logging.getLogger(__name__)

# Math libraries start one thread per core in every process; with several workers that oversubscribes the
# cores and runs slower than one worker. Each worker gets its share unless the deployment says otherwise.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Waiting for input with a worker idle: look again soon. Otherwise workers' replies wake the loop, and this
# bounds how late a cancel or an exceeded error threshold is noticed.
INPUT_POLL_S = 0.02
IDLE_POLL_S = 0.25


class ScoringScriptError(BatchEndpointError):
    """The scoring script cannot be used: it fails to import, or init() fails in every worker."""

    status = 400
    code = "ScoringScriptError"

    def __init__(self, init_error: str, *, field: str = "scoring_script") -> None:
        super().__init__(f"no worker could start: {init_error}", field=field)
        self.init_error = init_error


@dataclass
class ShardReport:
    shard: int
    done: int = 0
    """Mini-batches finished by this run."""
    skipped: int = 0
    """Mini-batches that already had a result."""
    stopped: str | None = None
    """Why the shard stopped early, if it did."""


@dataclass
class Attempting:
    """A mini-batch on its way through the workers, with the attempts it has used."""

    fetched: FetchedMiniBatch
    attempts: int = 0

    def request(self, slices: list[RowSlice]) -> RunRequest:
        return RunRequest(self.fetched.index, self.fetched.paths, self.fetched.fetched_names, slices)


class ShardRunner:
    def __init__(
        self,
        records: RecordStore,
        blobs: BlobStore,
        job_id: str,
        *,
        instance: str = "0",
        log_dir: str | None = None,
        fork_servers: str | None = None,
    ) -> None:
        """`fork_servers`: the folder of the fork servers kept warm between jobs (see warm_fork.py); None = each
        runner starts its own."""
        record = records.get("job", job_id)
        if record is None:
            raise NotFoundError(f"job {job_id!r} does not exist", field="job_id")
        self.job = Job.model_validate(record.data)
        self.settings: RunSettings = self.job.settings
        self.records = records
        self.blobs = blobs
        self.instance = instance
        self.log_dir = log_dir
        self.fork_servers = fork_servers
        self.files = JobFiles(blobs, self.job.scratch_uri, part_format=self.settings.part_format)
        self.append_rows = self.settings.output_action == OutputAction.APPEND_ROW
        self.stop = StopConditions(records, job_id, self.settings.error_threshold)
        workers = self.settings.max_concurrency_per_instance
        self.writer = PartWriter(
            records,
            self.files,
            job_id,
            append_rows=self.append_rows,
            output_folder=self.job.output_folder,
            depth=2 * workers,
            on_counted=self.stop.counted,
        )
        self.scratch = tempfile.mkdtemp(prefix=f"bep-runner-{instance}-")
        self.pool: WorkerPool | None = None
        # Known once the code and model are fetched, on first need (see _workers).
        self._code_dir = ""
        self._script_path = ""
        self._environment: dict[str, str] = {}
        self._requirements_error: str | None = None
        """Why the environment's pip requirements cannot be met, once known: not tried again per shard."""
        self._slices: dict[int, list[RowSlice]] = {}
        """Tabular mini-batches of the shard being run: index -> the rows they read."""
        self._results: dict[int, MiniBatchResult] = {}
        """Results of the shard being run, written by this run."""

    # --- the public surface ---------------------------------------------------------------------------

    def load_shard(self, uri: str) -> Shard:
        raw = self.blobs.get_bytes(uri)
        try:
            shard = Shard.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError(f"{uri} is not a shard file ({type(exc).__name__}: {exc})", field="shard") from None
        if shard.job_id != self.job.id:
            raise ValidationError(f"shard {uri} belongs to job {shard.job_id!r}, not {self.job.id!r}", field="shard")
        return shard

    def warm_up(self) -> None:
        """Start the workers now, before the first shard arrives: importing the scoring code's libraries and
        init() then overlap with whatever comes before (the plan, locally). What fails here fails again, and is
        reported, when the first shard needs the workers."""
        try:
            self._workers()
        except BatchEndpointError as exc:
            log.warning("could not start workers ahead of the first shard: %s", exc)

    def run_shard(self, shard: Shard) -> ShardReport:
        """Score every mini-batch of the shard that has no result yet. Failed files are data, not errors:
        this raises only when scoring cannot go on at all (no worker can start, storage fails)."""
        report = ShardReport(shard.index)
        self._results = {}
        self._slices = {mini_batch.index: mini_batch.slices for mini_batch in shard.mini_batches if mini_batch.slices}
        report.stopped = self.stop.reason()
        if report.stopped is None:
            download_dir = os.path.join(self.scratch, "inputs", f"shard-{shard.index:05d}")
            sizing = fetch_sizing.fetch_sizing(self.settings.max_concurrency_per_instance, self._variables())
            with Prefetcher(
                self.blobs, self.files, shard, download_dir, sizing=sizing, input_format=self.settings.input_format
            ) as prefetch:
                try:
                    self._score(prefetch, report)
                except ScoringScriptError as exc:
                    prefetch.close()
                    self._fail_unfinished(shard, exc.init_error, report)
                    self._seal(shard)
                    raise
            report.skipped = prefetch.skipped
            self.writer.drain()
            if report.stopped is None:
                self._seal(shard)
        log.info(
            "shard %d: %d mini-batches done, %d already done before%s",
            shard.index,
            report.done,
            report.skipped,
            f"; stopped early: {report.stopped}" if report.stopped else "",
        )
        return report

    def close(self) -> None:
        """End the workers, finish writing what is finished, remove local copies. Safe to call twice."""
        try:
            if self.pool is not None:
                self.pool.close()
            self.writer.close()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> ShardRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the pipeline ---------------------------------------------------------------------------------

    def _score(self, prefetch: Prefetcher, report: ShardReport) -> None:
        waiting: deque[Attempting] = deque()  # fetched (or to be retried), waiting for a worker
        in_flight: dict[int, Attempting] = {}
        while True:
            self.writer.raise_if_failed()
            if report.stopped is None:
                report.stopped = self.stop.reason()
            if report.stopped is not None and self.stop.job_stopping:
                # Canceled or failed: finishing in-flight work would be wasted time.
                if self.pool is not None:
                    self.pool.stop_busy()
                for pending in [*in_flight.values(), *waiting]:
                    pending.fetched.discard_copies()
                return
            if report.stopped is None:
                self._take_input(prefetch, waiting, in_flight, report)
                self._dispatch(waiting, in_flight)
            if not in_flight and (report.stopped is not None or (not waiting and prefetch.exhausted)):
                return
            if self.pool is None:
                continue  # nothing to score yet; _take_input waited for the prefetcher
            hungry = self.pool.free_slots > 0
            for reply in self.pool.poll(INPUT_POLL_S if hungry and not prefetch.exhausted else IDLE_POLL_S):
                attempt = in_flight.pop(reply.index, None)
                if attempt is not None:
                    self._settle(attempt, reply, waiting, report)

    def _take_input(
        self,
        prefetch: Prefetcher,
        waiting: deque[Attempting],
        in_flight: dict[int, Attempting],
        report: ShardReport,
    ) -> None:
        """Move fetched mini-batches to `waiting`, one more than the workers can take."""
        room = 1 + (self.pool.free_slots if self.pool is not None else 0)
        while len(waiting) < room:
            # Block briefly only when there is nothing else to wait for.
            fetched = prefetch.take(timeout=0 if in_flight or waiting else IDLE_POLL_S)
            if fetched is None:
                return
            if fetched.paths:
                waiting.append(Attempting(fetched))
            else:
                # No input could be read: nothing to run, every file failed.
                self._finish(Attempting(fetched), None, None, report)

    def _dispatch(self, waiting: deque[Attempting], in_flight: dict[int, Attempting]) -> None:
        if not waiting:
            return
        pool = self._workers()
        while waiting and (accepting := pool.accepting()):
            attempt = waiting.popleft()
            in_flight[attempt.fetched.index] = attempt
            pool.assign(accepting[0], attempt.request(self._slices.get(attempt.fetched.index, [])))
        if not pool.usable:
            raise ScoringScriptError(pool.init_error)

    def _settle(self, attempt: Attempting, reply: RunReply, waiting: deque[Attempting], report: ShardReport) -> None:
        """Decide what an ended attempt means: done, retry, or failed for good."""
        if not reply.started:
            if report.stopped is None:
                waiting.appendleft(attempt)
            else:
                attempt.fetched.discard_copies()
            return
        attempt.attempts += 1
        index = attempt.fetched.index
        if reply.error is None:
            self._finish(attempt, reply, None, report)
            return
        retries = self.settings.retry_settings.max_retries
        log.warning("mini-batch %d, attempt %d of %d failed: %s", index, attempt.attempts, retries + 1, reply.error)
        if attempt.attempts > retries:
            self._finish(attempt, None, reply.error, report)
        elif report.stopped is None:
            waiting.appendleft(attempt)  # retried first: its files are already here
        else:
            # Stopping: leave it without a result, so a rerun of the shard scores it again.
            attempt.fetched.discard_copies()

    def _finish(self, attempt: Attempting, reply: RunReply | None, error: str | None, report: ShardReport) -> None:
        """Hand a mini-batch's outcome to the part writer: `reply` if run() succeeded, else `error` (or
        neither, when no input could be read)."""
        fetched = attempt.fetched
        failed = dict(fetched.fetch_errors)
        rows, columns, csv, custom_outputs = 0, [], None, None
        if error is not None:
            failed.update(dict.fromkeys(fetched.fetched_names, error))
        elif reply is not None:
            failed.update(reply.failed)
            rows, columns = reply.rows, reply.columns
            csv = reply.csv if self.append_rows and reply.rows else None
            custom_outputs = reply.custom_outputs
        slices = self._slices.get(fetched.index)
        if slices:
            result = MiniBatchResult.for_slices(fetched.index, slices, failed, attempt.attempts, rows, columns)
        else:
            result = MiniBatchResult(
                index=fetched.index,
                files=len(fetched.names),
                succeeded=len(fetched.names) - len(failed),
                rows=rows,
                attempts=attempt.attempts,
                failed=[FileError(name, failed[name]) for name in fetched.names if name in failed],
                columns=columns,
            )
        fetched.discard_copies()
        self._results[result.index] = result
        self.stop.finishing(result)
        self.writer.submit(FinishedMiniBatch(result, csv, custom_outputs))
        report.done += 1

    def _fail_unfinished(self, shard: Shard, error: str, report: ShardReport) -> None:
        """No worker can start: record every mini-batch left as failed with init()'s error, so the job's
        summary says per file why, and a retry of the shard does not start the same broken script again."""
        self.writer.drain()
        for mini_batch in shard.mini_batches:
            if not self.blobs.exists(self.files.result(mini_batch.index)):
                names = [Prefetcher.name_in(shard, rel) for rel in mini_batch.files]
                never_ran = FetchedMiniBatch(mini_batch.index, names, fetched_names=names)
                self._finish(Attempting(never_ran), None, error, report)
        self.writer.drain()

    def _seal(self, shard: Shard) -> None:
        """Every mini-batch of the shard has a result: write its merged output, error lines and journal, so
        finalize reads one file for the shard instead of one per mini-batch (see shard_journals.py). The results
        of mini-batches an earlier run finished are read back; parts are read back to be merged."""
        results = dict(self._results)
        for mini_batch in shard.mini_batches:
            if mini_batch.index not in results:
                try:
                    raw = self.blobs.get_bytes(self.files.result(mini_batch.index))
                except NotFoundError:
                    log.warning("shard %d: mini-batch %d has no result; not sealed", shard.index, mini_batch.index)
                    return
                results[mini_batch.index] = MiniBatchResult.from_json(raw)
        shard_journals.seal(self.blobs, self.files, shard, results, append_rows=self.append_rows)

    # --- workers --------------------------------------------------------------------------------------

    def _workers(self) -> WorkerPool:
        """The worker pool, started on first need: a shard whose mini-batches are all done never loads the
        model, and a canceled job never runs init()."""
        if self.pool is None:
            self._code_dir, self._script_path, model = self._fetch_code_and_model()
            self._environment = worker_environment(self.settings, model, fetch_sizing.cpus(self._variables()))
            site = self._meet_requirements()
            if site is not None:
                # First on the workers' path: what was installed wins over an image's older version.
                self._environment["PYTHONPATH"] = os.pathsep.join(
                    filter(None, (site, self._environment.get("PYTHONPATH", "")))
                )
            warm_server = self._warm_server()
            self._environment.update(literal_inputs.environment(self.job.inputs))
            self.pool = WorkerPool(
                self.settings.max_concurrency_per_instance,
                self._worker_setup,
                timeout_s=self.settings.retry_settings.timeout,
                init_timeout_s=self.settings.init_timeout,
                max_mini_batches=self.settings.max_mini_batches_per_worker,
                max_memory_mb=self.settings.max_worker_memory_mb,
                preload=preload.libraries(self._script_path),
                warm_server=warm_server,
            )
            log.info(
                "starting %d workers for job %s (%s)",
                self.settings.max_concurrency_per_instance,
                self.job.id,
                os.path.basename(self._script_path),
            )
        self.pool.start()
        return self.pool

    def _warm_server(self) -> WarmForkServer | None:
        """The deployment's warm fork server, keyed by what its imports read: the runner's environment and the
        workers' own, less what changes with every job (the model's folder; literal inputs are added later)."""
        if self.fork_servers is None or not warm_fork.supported():
            return None
        per_job = {"MODEL_DIR", "AZUREML_MODEL_DIR"}
        environment = {**os.environ, **{k: v for k, v in self._environment.items() if k not in per_job}}
        return WarmForkServer(self.fork_servers, preload.libraries(self._script_path), environment)

    def _worker_setup(self, slot: int) -> WorkerSetup:
        name = f"{self.instance}-worker-{slot}"
        return WorkerSetup(
            name=name,
            script_path=self._script_path,
            code_dir=self._code_dir,
            environment=self._environment,
            logging_level=self.settings.logging_level,
            log_path=os.path.join(self.log_dir, f"{name}.log") if self.log_dir else None,
            render_csv=self.append_rows,
            part_format=self.settings.part_format,
            input_format=self.settings.input_format,
            keep_input_columns=list(self.settings.keep_input_columns),
            inputs=dict(self.job.inputs),
            arguments=[
                *script_arguments(self.settings, os.path.relpath(self._script_path, self._code_dir)),
                *self.job.program_arguments,
            ],
            # Jobs recorded before they had an output folder give their scripts none.
            custom_outputs_dir=os.path.join(self.scratch, "custom-outputs") if self.job.output_folder else "",
            reserved_outputs=[self.settings.output_file_name] if self.append_rows else [],
            custom_output_path_bytes=path_budget(self.job.output_folder or ""),
        )

    def _meet_requirements(self) -> str | None:
        """Check the environment's pip requirements (see requirements.py), installing the unmet ones into a folder
        of the scratch area where this runner may (the cloud, our image); returns that folder, if any."""
        try:
            if self._requirements_error is not None:
                raise requirements.RequirementsError(self._requirements_error)
            return requirements.meet(
                self.job.deployment.environment.pip_requirements,
                os.path.join(self.scratch, "site"),
                variables=self.settings.environment_variables,
                needed_by="the deployment's environment",
            )
        except requirements.RequirementsError as exc:
            self._requirements_error = str(exc)
            raise ScoringScriptError(str(exc), field="environment.pip_requirements") from None

    def _fetch_code_and_model(self) -> tuple[str, str, ModelFolders]:
        model = self._fetch_model()
        code = self.job.deployment.code_configuration
        if code is None:
            # A no-code deployment of an MLflow model: the built-in scorer, from this package.
            return os.path.dirname(MLFLOW_SCORER), MLFLOW_SCORER, model
        if not self.blobs.is_folder(code.code):
            raise NotFoundError(f"the deployment's code folder {code.code} does not exist", field="code")
        code_dir = self.blobs.download_folder(code.code, os.path.join(self.scratch, "code"))
        script_path = os.path.join(code_dir, code.scoring_script)
        if not os.path.isfile(script_path):
            raise NotFoundError(
                f"scoring script {code.scoring_script} is not in the code folder {code.code}", field="scoring_script"
            )
        return code_dir, script_path, model

    def _fetch_model(self) -> ModelFolders:
        model_uri = self.job.model_path
        if self.blobs.is_folder(model_uri):
            # Kept under its own name, as Azure mounts a registered folder: AZUREML_MODEL_DIR/<folder>/...
            own_name = model_uri.rstrip("/").rpartition("/")[2]
            model_dir = self.blobs.download_folder(model_uri, os.path.join(self.scratch, "model", own_name))
            return ModelFolders(model_dir, os.path.dirname(model_dir))
        if self.blobs.exists(model_uri):
            # A single-file model: both are the folder holding it, as on Azure.
            model_dir = os.path.dirname(self.blobs.localize(model_uri, os.path.join(self.scratch, "model")))
            return ModelFolders(model_dir, model_dir)
        raise NotFoundError(f"the model {model_uri} does not exist", field="model")

    def _variables(self) -> dict[str, str]:
        """The runner's environment with the deployment's variables over it: what tunes the runner itself."""
        return {**os.environ, **self.settings.environment_variables}


@dataclass(frozen=True)
class ModelFolders:
    """Where a worker finds the model: MODEL_DIR is the model folder itself (or the folder holding a single-file
    model); AZUREML_MODEL_DIR is what Azure sets, the folder the model lies in under its own name."""

    model_dir: str
    azure_model_dir: str


def worker_environment(settings: RunSettings, model: ModelFolders, cpus: int) -> dict[str, str]:
    """What each worker adds to its environment. The deployment's own variables win over ours."""
    threads = str(max(1, cpus // settings.max_concurrency_per_instance))
    environment = dict.fromkeys(THREAD_VARIABLES, threads)
    environment["MODEL_DIR"] = model.model_dir
    environment["AZUREML_MODEL_DIR"] = model.azure_model_dir  # scripts written for Azure run unchanged
    environment.update(settings.environment_variables)
    return environment
