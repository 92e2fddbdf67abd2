"""`ml_client.batch_endpoints` and `ml_client.batch_deployments`: Azure's operations over our use cases.

Entities become Azure's YAML mapping and go through the loaders `bep` reads files with (relative paths against
the working folder, as Azure's SDK resolves them), so the SDK and the YAML are one shape with one set of errors.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from typing import Any

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.azure.entities import (
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Input,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    Output,
    SystemData,
)
from batch_endpoints.azure.jobs import BatchJob, refuse_unknown
from batch_endpoints.azure.poller import LROPoller
from batch_endpoints.errors import NotFoundError, ValidationError
from batch_endpoints.service import InvokeRequest
from batch_endpoints.specs import Deployment, Endpoint, InvokeOverrides, parse

# Where Azure's params_override keys put a run setting ({"compute.instance_count": 2}); the overrides take it bare.
OVERRIDE_PREFIXES = ("settings.", "retry_settings.", "compute.", "resources.")
_DATA_TYPES = {"uri_folder", "uri_file"}


class BatchEndpointOperations:
    def __init__(self, service: EndpointsApi, caller: str) -> None:
        self._service = service
        self._caller = caller

    def begin_create_or_update(self, endpoint: BatchEndpoint, **kwargs: Any) -> LROPoller[BatchEndpoint]:
        """Creates the endpoint, or sets the description, tags and default deployment of the one that exists."""
        refuse_unknown("batch_endpoints.begin_create_or_update", kwargs)
        declaration = yaml_specs.load_endpoint_mapping(endpoint.yaml_mapping(), source="BatchEndpoint")
        try:
            self._service.get_endpoint(declaration.name)
        except NotFoundError:
            self._service.create_endpoint(declaration, caller=self._caller)
        else:
            default = declaration.default_deployment
            changes = yaml_specs.EndpointPatch.model_validate(
                {
                    "description": endpoint.description,
                    "tags": declaration.tags or None,
                    "defaults": {"deployment_name": default} if default else None,
                }
            )
            self._service.update_endpoint(declaration.name, changes, caller=self._caller)
        return LROPoller(self.get(declaration.name))

    def get(self, name: str) -> BatchEndpoint:
        return _endpoint(self._service.get_endpoint(name))

    def list(self) -> builtins.list[BatchEndpoint]:
        return [_endpoint(endpoint) for endpoint in self._service.list_endpoints()]

    def begin_delete(self, name: str) -> LROPoller[None]:
        """Deletes the endpoint and its deployments; its jobs and their outputs are kept."""
        self._service.delete_endpoint(name)
        return LROPoller(None)

    def list_jobs(self, endpoint_name: str) -> builtins.list[BatchJob]:
        return [BatchJob.of(job) for job in self._service.list_jobs(endpoint_name)]

    def invoke(
        self,
        endpoint_name: str,
        *,
        deployment_name: str | None = None,
        inputs: Mapping[str, Input | Any] | None = None,
        input: Input | None = None,
        outputs: Mapping[str, Output] | None = None,
        output_path: str | Mapping[str, Input | Output] | None = None,
        output_file_name: str | None = None,
        params_override: builtins.list[Mapping[str, Any]] | None = None,
        experiment_name: str | None = None,
        display_name: str | None = None,
        job_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> BatchJob:
        """Starts a job over one data input: `inputs={"name": Input(path=..., type=...)}` or the older
        `input=Input(...)`. A local folder or file is uploaded first, and removed again if the job is refused.
        Literal inputs are `Input(type="integer", default=5)` (or a plain value) among `inputs`. `job_name` becomes
        the job's display name: job ids are chosen by the service."""
        data, literals = _split_inputs(inputs, input)
        output_folder, file_name = _output_location(outputs, output_path)
        overrides = _overrides(params_override, output_file_name or file_name)
        self._service.deployment_to_invoke(endpoint_name, deployment_name)  # refused before anything is uploaded
        source = yaml_specs.local_or_reference(os.fspath(data.path or ""), os.getcwd())
        uploaded = None if yaml_specs.is_reference(source) else self._service.upload_input(source)
        try:
            job = self._service.invoke(
                InvokeRequest(
                    endpoint_name=endpoint_name,
                    input=uploaded or source,
                    input_type=data.type,
                    deployment_name=deployment_name,
                    output_path=output_folder,
                    overrides=overrides,
                    inputs=literals,
                    caller=self._caller,
                    experiment_name=experiment_name,
                    display_name=display_name or job_name,
                    tags=dict(tags or {}),
                )
            )
        except BaseException:
            if uploaded:
                self._service.discard_upload(uploaded)
            raise
        return BatchJob.of(job)


class BatchDeploymentOperations:
    def __init__(self, service: EndpointsApi, caller: str) -> None:
        self._service = service
        self._caller = caller

    def begin_create_or_update(
        self, deployment: Any, *, skip_script_validation: bool = False, **kwargs: Any
    ) -> LROPoller[ModelBatchDeployment]:
        """Creates the deployment, or updates the one that exists (`skip_script_validation` is accepted: the
        scoring script is checked when a job runs it)."""
        refuse_unknown("batch_deployments.begin_create_or_update", kwargs)
        if not hasattr(deployment, "yaml_mapping"):
            raise ValidationError(
                f"expected a BatchDeployment or ModelBatchDeployment (got {type(deployment).__name__})",
                field="deployment",
            )
        declaration = yaml_specs.load_deployment_mapping(
            deployment.yaml_mapping(), os.getcwd(), source=type(deployment).__name__
        )
        return LROPoller(_deployment(self._service.put_deployment(declaration, caller=self._caller)))

    def get(self, name: str, endpoint_name: str) -> ModelBatchDeployment:
        return _deployment(self._service.get_deployment(endpoint_name, name))

    def list(self, endpoint_name: str) -> builtins.list[ModelBatchDeployment]:
        return [_deployment(deployment) for deployment in self._service.list_deployments(endpoint_name)]

    def begin_delete(self, name: str, endpoint_name: str) -> LROPoller[None]:
        self._service.delete_deployment(endpoint_name, name, caller=self._caller)
        return LROPoller(None)

    def list_jobs(self, endpoint_name: str, *, name: str | None = None) -> builtins.list[BatchJob]:
        """The jobs of one deployment (`name`), or of the endpoint's every deployment, newest first."""
        if name is not None:
            self._service.get_deployment(endpoint_name, name)
        jobs = self._service.list_jobs(endpoint_name)
        return [BatchJob.of(job) for job in jobs if name is None or job.deployment_name == name]


def _split_inputs(inputs: Mapping[str, Input | Any] | None, single: Input | None) -> tuple[Input, dict[str, Any]]:
    """The one data input and the literal inputs, by name."""
    if inputs is not None and not isinstance(inputs, Mapping):
        raise ValidationError(f"must be a dict of input name to Input (got {type(inputs).__name__})", field="inputs")
    data = {name: value for name, value in (inputs or {}).items() if _is_data(value)}
    literals = {
        name: value.default if isinstance(value, Input) else value
        for name, value in (inputs or {}).items()
        if name not in data
    }
    if single is not None:
        if not _is_data(single):
            raise ValidationError("must be Input(type=uri_folder or uri_file, path=...)", field="input")
        data["input"] = single
    if len(data) != 1:
        named = ", ".join(data) or "none"
        raise ValidationError(
            f"a model deployment takes exactly one data input, Input(type=uri_folder or uri_file, path=...) "
            f"(got {len(data)}: {named}); give it in inputs or as input, not both",
            field="inputs",
        )
    (name, only), *_ = data.items()
    if not only.path:
        raise ValidationError("is required", field=f"inputs.{name}.path")
    return only, literals


def _is_data(value: Any) -> bool:
    return isinstance(value, Input | Output) and value.type in _DATA_TYPES


def _output_location(
    outputs: Mapping[str, Output] | None, output_path: str | Mapping[str, Input | Output] | None
) -> tuple[str | None, str | None]:
    """The output folder and file name of `outputs={"score": Output(...)}`, or of the older `output_path`."""
    if outputs is not None and output_path is not None:
        raise ValidationError("give the output once: in outputs or as output_path", field="outputs")
    field = "outputs" if outputs is not None else "output_path"
    given = outputs if outputs is not None else output_path
    if given is None:
        return None, None
    if isinstance(given, str | os.PathLike):
        return yaml_specs.local_or_reference(os.fspath(given), os.getcwd()), None
    if not isinstance(given, Mapping) or len(given) != 1:
        raise ValidationError("a model deployment writes one output: {'score': Output(path=...)}", field=field)
    ((_, output),) = given.items()
    if not isinstance(output, Input | Output) or output.path is None:
        return None, None  # Azure's way of asking for the default location
    location = yaml_specs.local_or_reference(os.fspath(output.path), os.getcwd())
    if output.type == "uri_file":
        folder, _, file_name = location.rstrip("/").rpartition("/")
        return folder, file_name
    return location, None


def _overrides(params_override: list[Mapping[str, Any]] | None, output_file_name: str | None) -> InvokeOverrides:
    """Azure's `params_override=[{"mini_batch_size": "20"}, {"retry_settings.max_retries": 5}]` as the overrides
    `bep endpoint invoke --set` takes, checked by the same model."""
    values: dict[str, Any] = {}
    for item in params_override or []:
        if not isinstance(item, Mapping):
            raise ValidationError(
                f"each item must be a dict such as {{'mini_batch_size': 20}} (got {item!r})", field="params_override"
            )
        for key, value in item.items():
            name = str(key)
            for prefix in OVERRIDE_PREFIXES:
                name = name.removeprefix(prefix)
            values[name] = value
    if output_file_name is not None:
        values["output_file_name"] = output_file_name
    return parse(InvokeOverrides, values, prefix="params_override")


def _endpoint(endpoint: Endpoint) -> BatchEndpoint:
    found = BatchEndpoint(
        name=endpoint.name,
        description=endpoint.description,
        tags=dict(endpoint.tags),
        default_deployment_name=endpoint.default_deployment,
        scoring_uri=endpoint.scoring_uri or None,
    )
    found.id = endpoint.name
    found.provisioning_state = "Succeeded"
    found.creation_context = SystemData.of(
        endpoint.created_at, endpoint.created_by, endpoint.updated_at, endpoint.updated_by
    )
    return found


def _deployment(deployment: Deployment) -> ModelBatchDeployment:
    settings = deployment.settings
    code = deployment.code_configuration
    environment = deployment.environment
    found = ModelBatchDeployment(
        name=deployment.name,
        endpoint_name=deployment.endpoint_name,
        description=deployment.description,
        tags=dict(deployment.tags),
        model=None if deployment.model is None else f"{yaml_specs.AZURE_PREFIX}{deployment.model}",
        code_configuration=None if code is None else CodeConfiguration(code.code, code.scoring_script),
        environment=f"{yaml_specs.AZURE_PREFIX}{environment.name}:{environment.version}"
        if environment.name and environment.version
        else environment.image,
        compute=deployment.compute,
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=settings.mini_batch_size,
            instance_count=settings.instance_count,
            max_concurrency_per_instance=settings.max_concurrency_per_instance,
            output_action=settings.output_action.value,
            output_file_name=settings.output_file_name,
            retry_settings=BatchRetrySettings(
                max_retries=settings.retry_settings.max_retries, timeout=settings.retry_settings.timeout
            ),
            environment_variables=dict(settings.environment_variables),
            error_threshold=settings.error_threshold,
            logging_level=settings.logging_level,
        ),
    )
    found.provisioning_state = "Succeeded"
    found.creation_context = SystemData.of(
        deployment.created_at, deployment.created_by, deployment.updated_at, deployment.updated_by
    )
    return found
