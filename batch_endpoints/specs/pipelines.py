"""Pipeline deployments and their jobs: the settings a pipeline deployment records (Azure's `settings:` of a
`type: pipeline` deployment), and what a pipeline job records of its inputs, outputs and child step jobs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from batch_endpoints.specs.base import AssetName, Spec
from batch_endpoints.specs.literals import InputName, LiteralValue

DEFAULT_PIPELINE_COMPUTE = "cpu-cluster"


class PipelineSettings(Spec):
    """Azure's pipeline deployment settings, with Azure's defaults."""

    default_compute: AssetName = Field(DEFAULT_PIPELINE_COMPUTE, description="where steps without a compute run")
    continue_on_step_failure: bool = Field(
        False, description="whether the steps that do not read a failed step's outputs go on after it fails"
    )
    default_datastore: str | None = Field(
        None, description="accepted as Azure writes it; outputs go to the system's own storage"
    )


class StepStatus(StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"
    """Never run: a step it reads from failed."""

    @property
    def is_final(self) -> bool:
        return self not in {StepStatus.NOT_STARTED, StepStatus.RUNNING}


class StepRun(Spec):
    """One child job of a pipeline job: one step of the pipeline, run once."""

    name: str = Field(description="the child job's name: <pipeline job>-<step>")
    step: InputName
    type: str
    display_name: str = ""
    status: StepStatus = StepStatus.NOT_STARTED
    started_at: str | None = None
    ended_at: str | None = None
    error: str | None = None
    depends_on: list[str] = Field(default_factory=list, description="the steps whose outputs it reads")
    inputs: dict[str, LiteralValue] = Field(
        default_factory=dict, description="input name -> a literal value, or the storage URI of a data input"
    )
    outputs: dict[str, str] = Field(default_factory=dict, description="output name -> storage URI of its folder")
    log_uri: str = ""


class PipelineRun(Spec):
    """What a pipeline job runs: its inputs and outputs as invoked, and its steps in dependency order."""

    data_inputs: dict[str, str] = Field(default_factory=dict, description="input name -> the data's storage URI")
    literal_inputs: dict[str, LiteralValue] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict, description="output name -> storage URI of its folder")
    steps: list[StepRun] = Field(default_factory=list)
    max_parallel_steps: int = Field(1, ge=1, description="the default compute's instances")

    def step(self, name: str) -> StepRun:
        return next(run for run in self.steps if run.step == name)
