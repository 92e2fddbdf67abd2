"""The stack's bucket layout and the allow-lists it gives the API: plain names, with no CDK, so that the tests'
fixtures build their AWS from the same values the stack deploys."""

from __future__ import annotations

from collections.abc import Sequence

from batch_endpoints import assets, uploads
from batch_endpoints.data_access import ALLOWED_INPUTS, ALLOWED_OUTPUTS

# The data bucket's layout, as the core writes it: models/<name>/<version>/ and code/<digest>/ (assets.py),
# data/<name>/<version>/, outputs/<endpoint>/<job id>/ and azureml/<job id>/ (service.py),
# uploads/{models,code,data,inputs}/ (uploads.py, batch_endpoints/api/uploads.py), and what the workflow writes under
# jobs/<job id>/: shard lists, parts, per-mini-batch results, summary, errors.
SCRATCH_PREFIX = "jobs/"
MODELS_PREFIX = f"{assets.MODELS_FOLDER}/"
CODE_PREFIX = f"{assets.CODE_FOLDER}/"
DATA_PREFIX = "data/"
UPLOADS_PREFIX = f"{uploads.UPLOADS}/"
OUTPUTS_PREFIX = "outputs/"
# A pipeline job's outputs and its steps' go under azureml/<job id>/ (services/jobs.py), as Azure's default paths
# do: its steps write them and the steps after read them.
PIPELINE_OUTPUTS_PREFIX = "azureml/"
INPUT_PREFIXES = (UPLOADS_PREFIX, DATA_PREFIX, OUTPUTS_PREFIX, PIPELINE_OUTPUTS_PREFIX)
"""Where in the data bucket a job may read its input: what was uploaded or registered, and earlier outputs."""
OUTPUT_PREFIXES = (OUTPUTS_PREFIX, PIPELINE_OUTPUTS_PREFIX)
"""Where in the data bucket a job may write its output: never among models, code or another job's files."""
RUNNER_READ_PREFIXES = (MODELS_PREFIX, CODE_PREFIX, *INPUT_PREFIXES, SCRATCH_PREFIX)
"""What a scoring container reads of the data bucket: its model, its code, its input and its job's files."""
RUNNER_WRITE_PREFIXES = (SCRATCH_PREFIX, *OUTPUT_PREFIXES)
"""What it writes: its job's files, and in the job's output folder the files the scoring script wrote to
AZUREML_BI_OUTPUT_PATH (batch_container/custom_outputs.py)."""


def job_data_access(bucket_name: str, data_buckets: Sequence[str]) -> dict[str, str]:
    """The API's allow-lists (batch_endpoints/data_access.py, the guard against using the system's roles as a
    deputy): jobs read and write only where the system keeps inputs and outputs in its bucket, and in the data
    buckets the deployer named, whole."""
    own = f"s3://{bucket_name}/"
    named = [f"s3://{name}" for name in data_buckets]
    return {
        ALLOWED_INPUTS: ",".join([*(own + prefix for prefix in INPUT_PREFIXES), *named]),
        ALLOWED_OUTPUTS: ",".join([*(own + prefix for prefix in OUTPUT_PREFIXES), *named]),
    }
