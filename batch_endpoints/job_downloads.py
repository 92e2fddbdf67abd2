"""Where a downloaded job's files land: Azure's layout, which scripts and notebooks written for Azure read.

Azure's CLI and SDK (azure-ai-ml's `JobOperations.download`) write a job's named output to
<download path>/named-outputs/<name>/ and the job's own files (its logs) to <download path>/artifacts/; notebooks
then read `named-outputs/score/predictions.csv`. A batch job has one output, `score`: the job's output folder, where
the output file and the files the scoring script wrote to AZUREML_BI_OUTPUT_PATH lie together. The job's errors
and summary files are its artifacts.

Which files: with the output named (`--output-name score`), the output alone, as on Azure. Without it, the output
and the artifacts both, the same as Azure's `--all`: Azure then downloads its logs alone, but a script that reads
them finds them where Azure puts them, and a user of ours gets the predictions the command is mostly run for.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from batch_endpoints.errors import ValidationError

OUTPUT_NAME = "score"
NAMED_OUTPUTS = "named-outputs"
ARTIFACTS = "artifacts"


def check_output_name(output_name: str | None, *, field: str) -> None:
    """Refuses any output name but Azure's one for a batch job, `score`."""
    if output_name not in (None, OUTPUT_NAME):
        raise ValidationError(
            f"a batch job has one output, named {OUTPUT_NAME!r} (got {output_name!r}); leave it out or name that one",
            field=field,
        )


def output_location(download_path: str, name: str = OUTPUT_NAME) -> str:
    """The folder that holds a downloaded job's output: <download path>/named-outputs/<name>."""
    return os.path.join(download_path, NAMED_OUTPUTS, name)


@dataclass(frozen=True)
class JobFilesToDownload:
    """A job's files as the storage names them: the output file (None for summary_only), the output folder (None
    in jobs recorded before it existed), and every file to download, the output's and the artifacts'. `name` is the
    output's: a model deployment's job has one, `score`; a pipeline job's are its pipeline's."""

    output_uri: str | None
    output_folder: str | None
    uris: Iterable[str]
    name: str = OUTPUT_NAME

    def is_output(self, uri: str) -> bool:
        base = (self.output_folder or "").rstrip("/")
        return uri == self.output_uri or (bool(base) and uri.startswith(base + "/"))

    def targets(self, download_path: str, *, output_name: str | None = None) -> list[tuple[str, str]]:
        """(URI, local path) of each file to download into `download_path`, which must be absolute: the output's
        files under named-outputs/score/ by their paths in the output folder, the others under artifacts/ by
        their names. With `output_name` (the output's name), the output's files only. A stored name that would
        lead out of its folder ("../") is refused."""
        if output_name not in (None, self.name):
            raise ValidationError(
                f"this job's output is named {self.name!r} (got {output_name!r}); leave it out or name that one",
                field="output_name",
            )
        chosen = []
        for uri in self.uris:
            if self.is_output(uri):
                chosen.append((uri, self._target(output_location(download_path, self.name), uri, self.output_folder)))
            elif output_name is None:
                chosen.append((uri, self._target(os.path.join(download_path, ARTIFACTS), uri, None)))
        return chosen

    def output_target(self, download_path: str) -> str:
        """Where the output file lands; the output's folder for a summary_only job, which has none."""
        if self.output_uri is None:
            return output_location(download_path, self.name)
        return self._target(output_location(download_path, self.name), self.output_uri, self.output_folder)

    @staticmethod
    def _target(folder: str, uri: str, base_folder: str | None) -> str:
        base = (base_folder or "").rstrip("/")
        relative = uri[len(base) + 1 :] if base and uri.startswith(base + "/") else uri.rstrip("/").rpartition("/")[2]
        target = os.path.normpath(os.path.join(folder, *relative.split("/")))
        if os.path.commonpath([target, folder]) != folder or target == folder:
            raise ValidationError(
                f"{uri} has a name that leads out of the download folder; not downloaded", field="name"
            )
        return target
