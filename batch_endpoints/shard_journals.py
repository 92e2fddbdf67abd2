"""What a done shard leaves for finalize: its merged output, its error lines, and its journal, written last.

The runner seals a shard when every one of its mini-batches has a result (also when a retried shard finds them
all done already); finalize seals one whose runner stopped just before, and sums what a shard that never got
done has. A shard stopped early (a cancel, the error threshold) is not sealed: its journal would say it is done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping

from batch_endpoints import csv_records, merging
from batch_endpoints.jobfiles import JobFiles, MiniBatchResult, Shard, ShardJournal
from batch_endpoints.ports import BlobStore

NOT_SCORED = "not scored: the job stopped before this mini-batch ran"


def error_lines(shard: Shard, results: Mapping[int, MiniBatchResult]) -> list[bytes]:
    """One line per failed or never-scored file of the shard, in mini-batch order, so every input is
    accounted for: {"file", "mini_batch", "error"}."""
    lines: list[bytes] = []
    for mini_batch in shard.mini_batches:
        result = results.get(mini_batch.index)
        failures = (
            [(f.file, f.error) for f in result.failed] if result else [(name, NOT_SCORED) for name in mini_batch.files]
        )
        lines.extend(
            (json.dumps({"file": name, "mini_batch": mini_batch.index, "error": error}) + "\n").encode()
            for name, error in failures
        )
    return lines


def failed_files(lines: Iterable[bytes]) -> list[str]:
    """The file each error line names."""
    return [json.loads(line)["file"] for line in lines if line.strip()]


def summed(shard: Shard, results: Mapping[int, MiniBatchResult]) -> ShardJournal:
    """The shard's counts from the results it has (all of them for a done shard)."""
    mine = [results[mb.index] for mb in shard.mini_batches if mb.index in results]
    return ShardJournal(
        shard=shard.index,
        mini_batches=len(mine),
        succeeded=sum(r.succeeded for r in mine),
        rows=sum(r.rows for r in mine),
        mini_batches_failed=sum(1 for r in mine if r.succeeded == 0 and r.failed),
        first_error=next((f.error for r in mine for f in r.failed), ""),
        not_scored=sum(mb.inputs for mb in shard.mini_batches if mb.index not in results),
        done=len(mine) == len(shard.mini_batches),
    )


def seal(
    blobs: BlobStore, files: JobFiles, shard: Shard, results: Mapping[int, MiniBatchResult], *, append_rows: bool
) -> ShardJournal:
    """Write a done shard's output (append_row: its parts merged in mini-batch order), its error lines, then its
    journal, which marks it done. `results` holds every one of its mini-batches' results."""
    journal = summed(shard, results)
    if not journal.done:
        raise ValueError(f"shard {shard.index} is not done: {journal.mini_batches} of its mini-batches have a result")
    parts = [(files.part(mb.index), results[mb.index].columns) for mb in shard.mini_batches if results[mb.index].rows]
    if append_rows and parts:
        header = csv_records.FirstRecord()
        journal.output_size = blobs.write_stream(
            files.shard_output(shard.index), _fed(header, merging.merged(files.part_format, blobs.get_bytes, parts))
        )
        journal.columns = list(dict.fromkeys(column for _, columns in parts for column in columns))
        journal.header_size = header.size if files.part_format == "csv" else 0
    lines = error_lines(shard, results)
    if lines:
        journal.errors_size = blobs.write_stream(files.shard_errors(shard.index), lines)
    blobs.put_bytes(files.journal(shard.index), journal.to_json())
    return journal


def _fed(header: csv_records.FirstRecord, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks, unchanged, measuring the CSV header among them as they stream past."""
    for chunk in chunks:
        header.feed(chunk)
        yield chunk
