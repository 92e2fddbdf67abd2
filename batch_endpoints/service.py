"""The control-plane use cases. The CLI calls them locally; the API Lambda calls the same ones in the cloud.

Nothing here knows which backend it runs on: it sees only the four ports (through Backend). Every check runs
before anything is written, so a refused request changes nothing. The use cases are written by noun in
batch_endpoints/services (assets, components, endpoints and deployments, jobs, reruns and resumes); this one
service offers them all.
"""

from __future__ import annotations

from batch_endpoints.services.components import ComponentService
from batch_endpoints.services.computes import ComputeService
from batch_endpoints.services.endpoints import EndpointService
from batch_endpoints.services.job_reruns import JobRerunService
from batch_endpoints.services.jobs import InvokeRequest, new_job_id
from batch_endpoints.services.pipeline_jobs import PipelineJobService

__all__ = ["BatchEndpointService", "InvokeRequest", "new_job_id"]


class BatchEndpointService(PipelineJobService, EndpointService, ComponentService, JobRerunService, ComputeService):
    """Every use case, on one backend: what the CLI, the local server and the API Lambda call."""
