"""A pipeline's command step made ready to run in a folder of its own, wherever it runs (a process of the local job
host, or a Batch job's container): its code and data inputs brought to local paths, its outputs as empty local
folders, and its command rendered with those paths; once the command succeeded, its outputs stored where its
record says."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from batch_endpoints.component_commands import render_command
from batch_endpoints.ports import BlobStore
from batch_endpoints.specs import LiteralValue, StepRun
from batch_endpoints.specs.components import LITERAL_TYPES, CommandComponent


@dataclass(frozen=True)
class PreparedCommand:
    command: str
    """The rendered command line, for /bin/sh -c."""
    cwd: str
    """The step's code (or an empty working folder without code)."""
    environment: dict[str, str]
    outputs: dict[str, str]
    """Output name -> the local folder the command writes it to."""


def prepare_command(blobs: BlobStore, run: StepRun, component: CommandComponent, folder: str) -> PreparedCommand:
    work = os.path.join(folder, "work")
    os.makedirs(work, exist_ok=True)
    outputs = {name: os.path.join(folder, "outputs", name) for name in run.outputs}
    for path in outputs.values():
        os.makedirs(path, exist_ok=True)
    code = blobs.download_folder(component.code, work) if component.code else work
    command = render_command(component.command, component.inputs, _values(blobs, run, component, work), outputs)
    # `python` in a command is the interpreter the step runs on, as a model deployment's scoring script's is.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    environment = {**os.environ, "PATH": path, **component.environment_variables}
    return PreparedCommand(command=command, cwd=code, environment=environment, outputs=outputs)


def store_outputs(blobs: BlobStore, prepared: PreparedCommand, run: StepRun) -> None:
    for name, path in prepared.outputs.items():
        blobs.upload_folder(path, run.outputs[name])


def _values(blobs: BlobStore, run: StepRun, component: CommandComponent, work: str) -> dict[str, LiteralValue]:
    """The step's inputs as its command reads them: literals as they are, data as local paths."""
    values: dict[str, LiteralValue] = {}
    for name, value in run.inputs.items():
        declared = component.inputs[name]
        if declared.type in LITERAL_TYPES:
            values[name] = value
        elif blobs.is_folder(str(value)):
            values[name] = blobs.download_folder(str(value), os.path.join(work, "inputs", name))
        else:
            values[name] = blobs.localize(str(value), os.path.join(work, "inputs"))
    return values
