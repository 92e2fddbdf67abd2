"""Planner: seconds and peak memory to plan a job's input into mini-batches and shards.

    python bench/planner.py [--keys 1000000] [--files 100000] [--s3-keys 100000] [--no-s3]

1. Synthetic listing: `batch_endpoints.planning.plan_shards` on a generated list of 1,000,000 relative names
   (what listing the input returns), then every shard serialised to the bytes plan_job writes. At the default
   mini_batch_size 10 (the target) and at mini_batch_size 1 (the most objects: one mini-batch per key).
2. A real local folder of 100,000 empty files, through `workflow.plan_job` as the job host calls it: list the
   folder, plan, write the shard files and the index, update the job record.
3. S3 (moto, in process): 100,000 keys listed, planned and shards written through the S3 blob store, as the
   Plan Lambda does. Optional: skipped with a message when moto or the S3 adapter is missing.

Each measurement runs in a fresh process, so its peak RSS (getrusage maxrss) is its own: "peak RSS" is the
whole process at its highest (interpreter, imports, the listing and the plan), the figure a Lambda's memory size
must cover; "RSS growth" is how far planning pushed that peak above where it stood before planning began.
tracemalloc's peak (Python allocations made while planning) is measured in a second run, since tracing slows
allocation down.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import LocalHome, Target, bar_chart, median, report, spread, tiny_files

MAX_SECONDS = 30.0
MAX_PEAK_MB = 500.0
JOB_ID = "bench-planner-000000000000"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _measured(work: Callable[[], dict[str, Any]], *, trace: bool) -> dict[str, Any]:
    """Run `work` (already set up), timing it and recording how much memory it took."""
    before = _maxrss_mb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    facts = work()
    seconds = time.perf_counter() - started
    result = {**facts, "seconds": seconds, "peak_rss_mb": _maxrss_mb(), "rss_growth_mb": _maxrss_mb() - before}
    if trace:
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result


# ----------------------------------------------------------------------------------- 1. synthetic listing
def synthetic(keys: int, mini_batch_size: int, trace: bool) -> dict[str, Any]:
    from batch_endpoints import planning

    names = [f"images/part-{i // 1000:04d}/image-{i:07d}.png" for i in range(keys)]
    listing = planning.InputListing("s3://bucket/input", names)

    def plan() -> dict[str, Any]:
        started = time.perf_counter()
        shards = planning.plan_shards(JOB_ID, listing, mini_batch_size, instance_count=1)
        planned = time.perf_counter() - started
        shard_bytes = sum(len(shard.to_json()) for shard in shards)
        return {
            "plan_seconds": planned,
            "shards": len(shards),
            "mini_batches": sum(len(s.mini_batches) for s in shards),
            "shard_mb": shard_bytes / 2**20,
        }

    return _measured(plan, trace=trace)


# ----------------------------------------------------------------------------------- 2. local folder
def local_folder(files: int, trace: bool) -> dict[str, Any]:
    from batch_endpoints import workflow
    from batch_endpoints.service import InvokeRequest

    folder = tiny_files(files, content=b"")
    with LocalHome(start_jobs=False) as home:
        endpoint = home.deploy_noop(mini_batch_size=10)
        job = home.service.invoke(InvokeRequest(endpoint, str(folder)))

        def plan() -> dict[str, Any]:
            plan = workflow.plan_job(home.backend, job.id)
            counts = home.service.get_job(job.id).counts
            return {"shards": len(plan.shard_uris), "mini_batches": counts.mini_batches, "files": counts.files}

        return _measured(plan, trace=trace)


# ----------------------------------------------------------------------------------- 3. S3 (moto)
def s3_unavailable() -> str | None:
    try:
        import moto  # noqa: F401

        from batch_endpoints.adapters.aws.blobs import S3BlobStore  # noqa: F401
    except ImportError as exc:
        return f"S3 variant skipped: {exc.name or exc} is not installed or not written yet"
    return None


def s3(keys: int, trace: bool) -> dict[str, Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from batch_endpoints import planning
    from batch_endpoints.adapters.aws.blobs import S3BlobStore
    from batch_endpoints.jobfiles import JobFiles
    from batch_endpoints.specs import JobInput

    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="bench-input")
        client.create_bucket(Bucket="bench-storage")
        # Straight into moto's store: 100,000 PutObject calls through boto3 would take minutes here.
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for i in range(keys):
            backend.put_object("bench-input", f"images/part-{i // 1000:04d}/image-{i:07d}.png", b"")
        blobs = S3BlobStore("bench-storage", client=client)
        files = JobFiles(blobs, blobs.join(blobs.root, "jobs", JOB_ID))

        def plan() -> dict[str, Any]:
            listing = planning.list_input(blobs, JobInput(uri="s3://bench-input/images", type="uri_folder"))
            shards = planning.plan_shards(JOB_ID, listing, 10, instance_count=1)
            for shard in shards:
                blobs.put_bytes(files.shard(shard.index), shard.to_json())
            return {"shards": len(shards), "mini_batches": sum(len(s.mini_batches) for s in shards)}

        return _measured(plan, trace=trace)


# ----------------------------------------------------------------------------------------------- main
def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one measurement in a new process, so that its peak memory is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="names in the synthetic listing")
    parser.add_argument("--files", type=int, default=100_000, help="empty files in the local folder (0: skip)")
    parser.add_argument("--s3-keys", type=int, default=100_000, help="objects in the moto S3 bucket")
    parser.add_argument("--no-s3", action="store_true", help="skip the moto S3 variant")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; medians are reported")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)

    if args.files:
        tiny_files(args.files, content=b"")  # made (once) before anything is timed
    # (key, label, measurement, its arguments, timed runs, whether to make a traced run)
    cases: list[tuple[str, str, Callable[..., dict[str, Any]], tuple[Any, ...], int, bool]] = []
    for size in (10, 1):
        label = f"{args.keys:,} names, plan_shards, mini_batch_size {size}"
        cases.append((f"synthetic-{size}", label, synthetic, (args.keys, size), args.repeats, True))
    if args.files:
        label = f"{args.files:,} files, workflow.plan_job on a folder"
        cases.append(("folder", label, local_folder, (args.files,), args.repeats, True))
    s3_skipped = "--no-s3 given: S3 variant skipped" if args.no_s3 else s3_unavailable()
    if s3_skipped:
        print(s3_skipped)
    else:
        # One run, untraced: moto answers a listing at about 0.4 ms a key here (minutes for several runs), and
        # tracing would count moto's own allocations.
        cases.append(
            ("s3", f"{args.s3_keys:,} S3 keys (moto): list + plan + write shards", s3, (args.s3_keys,), 1, False)
        )

    results: dict[str, dict[str, Any]] = {}
    for key, label, function, case_args, repeats, trace in cases:
        timed_runs = [in_fresh_process(function, *case_args, False) for _ in range(repeats)]
        traced = in_fresh_process(function, *case_args, True) if trace else {}
        seconds = [r["seconds"] for r in timed_runs]
        results[key] = {
            "label": label,
            "seconds": median(seconds),
            "seconds_each": seconds,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in timed_runs),
            "rss_growth_mb": max(r["rss_growth_mb"] for r in timed_runs),
            "tracemalloc_peak_mb": traced.get("tracemalloc_peak_mb", ""),
            **{k: v for k, v in timed_runs[0].items() if k not in {"seconds", "peak_rss_mb", "rss_growth_mb"}},
        }
        if "plan_seconds" in timed_runs[0]:
            results[key]["plan_seconds"] = median([r["plan_seconds"] for r in timed_runs])
        print(f"{label}: {median(seconds):.2f} s, peak RSS {results[key]['peak_rss_mb']:.0f} MB", flush=True)

    rows = [
        {
            "what": r["label"],
            "seconds": r["seconds"],
            "range s": spread(r["seconds_each"]),
            "shards": r["shards"],
            "mini-batches": f"{r['mini_batches']:,}",
            "peak RSS MB": r["peak_rss_mb"],
            "RSS growth MB": r["rss_growth_mb"],
            "tracemalloc peak MB": r["tracemalloc_peak_mb"],
        }
        for r in results.values()
    ]
    main_case = results["synthetic-10"]
    targets = [
        Target(f"{args.keys:,} keys planned", main_case["seconds"], MAX_SECONDS, at_least=False, unit=" s"),
        Target("peak memory while planning them", main_case["peak_rss_mb"], MAX_PEAK_MB, False, unit=" MB"),
    ]
    notes = [
        "synthetic: seconds = plan_shards + serialising every shard as plan_job writes it "
        f"({main_case['plan_seconds']:.2f} s of it plan_shards alone at mini_batch_size 10); the listing itself "
        "is made before timing starts, and is counted in peak RSS",
        "folder: seconds = workflow.plan_job (list the folder, relative names, plan, write shard files and index, "
        "update the job record in SQLite)",
        s3_skipped
        or "s3: one untraced run; moto runs in the same process, so its seconds are mostly moto answering the "
        "listing (about 0.4 ms a key here: an upper bound, not a prediction of S3) and its peak RSS includes "
        "moto's copy of the bucket",
        "memory: peak RSS = the measuring process at its highest; RSS growth = how far planning raised it; "
        "tracemalloc peak = Python allocations while planning (a separate, traced run)",
    ]

    def chart(path: Path) -> None:
        bar_chart(
            path,
            [r["label"] for r in results.values()],
            [r["seconds"] for r in results.values()],
            title="Planning time (median)",
            xlabel="seconds",
        )

    report(
        "planner",
        title="Planner: time and memory to plan a job",
        config={"keys": args.keys, "files": args.files, "s3_keys": args.s3_keys, "repeats": args.repeats},
        tables={"Planning": rows},
        targets=targets,
        data=results,
        notes=notes,
        chart=chart,
        **({"out_dir": args.out} if args.out else {}),
    )


if __name__ == "__main__":
    main()
