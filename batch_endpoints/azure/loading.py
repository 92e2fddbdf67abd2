"""Azure's `load_job` and `load_component` (`azure.ai.ml`): a pipeline job's or a component's YAML file, read as
`bep job create --file` and `bep component create --file` read it, local paths relative to the file's folder."""

from __future__ import annotations

import os
from typing import Any

from batch_endpoints.azure.jobs import PipelineJob, refuse_unknown
from batch_endpoints.specs.components import ComponentT
from batch_endpoints.yaml_specs import load_component as load_component_file
from batch_endpoints.yaml_specs import load_pipeline_job


def load_job(source: str | os.PathLike[str], **kwargs: Any) -> PipelineJob:
    """Azure's `load_job` for a pipeline job's YAML file (`type: pipeline`), local paths relative to its folder."""
    refuse_unknown("load_job", kwargs)
    declaration = load_pipeline_job(source)
    given = declaration.invocation
    return PipelineJob(
        declaration=declaration,
        name=declaration.name,
        display_name=given.display_name,
        experiment_name=given.experiment_name,
        description=declaration.description,
        tags=dict(given.tags),
        settings=declaration.settings.model_copy(),
    )


def load_component(source: str | os.PathLike[str], **kwargs: Any) -> ComponentT:
    """A command, parallel or pipeline component from its YAML file: what `PipelineComponentBatchDeployment`
    deploys (`component=`)."""
    refuse_unknown("load_component", kwargs)
    return load_component_file(source)
