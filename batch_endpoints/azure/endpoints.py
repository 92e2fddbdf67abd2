"""`ml_client.batch_endpoints` and `ml_client.batch_deployments`: Azure's operations over our use cases.

Entities become Azure's YAML mapping and go through the loaders `bep` reads files with (relative paths against
the working folder, as Azure's SDK resolves them), so the SDK and the YAML are one shape with one set of errors.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from batch_endpoints import literal_inputs, yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.azure.entities import (
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Input,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    Output,
    PipelineComponentBatchDeployment,
    SystemData,
)
from batch_endpoints.azure.jobs import BatchJob, refuse_unknown
from batch_endpoints.azure.poller import LROPoller
from batch_endpoints.errors import NotFoundError, ValidationError
from batch_endpoints.service import InvokeRequest
from batch_endpoints.specs import (
    MODEL_OUTPUT,
    Deployment,
    Endpoint,
    InvokeOverrides,
    NamedInput,
    for_model_deployment,
    named_inputs,
    named_outputs,
    parse,
    with_data_input,
)
from batch_endpoints.specs.invocation import refuse_model_options


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
        Literal inputs are `Input(type="integer", default=5)` (or a plain value) among `inputs`; the output is
        `outputs={"score": Output(path=...)}` or the older `output_path`. `job_name` becomes the job's display name:
        job ids are chosen by the service. A pipeline deployment takes its inputs and outputs by name only."""
        here = os.getcwd()
        named = named_inputs(_mappings(inputs, "inputs", here))
        try:
            found: Deployment | None = self._service.deployment_to_invoke(endpoint_name, deployment_name)
        except (NotFoundError, ValidationError):
            found = None  # a model job's inputs are checked first, as the YAML's are; the lookup then says why
        if found is not None and found.type == "pipeline":
            model_options = {"input": input, "output_path": output_path, "output_file_name": output_file_name}
            refuse_model_options(
                {**model_options, "params_override": params_override},
                "a pipeline deployment takes its inputs and outputs by name (inputs=, outputs=)",
            )
            request = InvokeRequest(
                endpoint_name=endpoint_name,
                deployment_name=deployment_name,
                named_inputs=named,
                named_outputs=named_outputs(_mappings(outputs, "outputs", here)),
                caller=self._caller,
                experiment_name=experiment_name,
                display_name=display_name or job_name,
                tags=dict(tags or {}),
            )
            return BatchJob.of(self._service.invoke(request))
        if input is not None:
            named = _with_single_input(named, input, here)
        named_out = named_outputs(_mappings(_outputs(outputs, output_path), "outputs", here))
        invocation = for_model_deployment(named, named_out)
        overrides = _overrides(params_override, output_file_name or invocation.output_file_name)
        deployment = found or self._service.deployment_to_invoke(endpoint_name, deployment_name)
        literal_inputs.resolve(deployment.inputs, invocation.literals)  # refused before anything is uploaded
        source = invocation.input
        uploaded = None if yaml_specs.is_reference(source) else self._service.upload_input(source)
        try:
            job = self._service.invoke(
                InvokeRequest(
                    endpoint_name=endpoint_name,
                    input=uploaded or source,
                    input_type=invocation.input_type,
                    exclude=invocation.exclude,
                    deployment_name=deployment_name,
                    output_path=invocation.output_path,
                    overrides=overrides,
                    inputs=invocation.literals,
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


AnyDeployment = ModelBatchDeployment | PipelineComponentBatchDeployment


class BatchDeploymentOperations:
    def __init__(self, service: EndpointsApi, caller: str) -> None:
        self._service = service
        self._caller = caller

    def begin_create_or_update(
        self, deployment: Any, *, skip_script_validation: bool = False, **kwargs: Any
    ) -> LROPoller[AnyDeployment]:
        """Creates the deployment, or updates the one that exists (`skip_script_validation` is accepted: the
        scoring script is checked when a job runs it)."""
        refuse_unknown("batch_deployments.begin_create_or_update", kwargs)
        if not hasattr(deployment, "yaml_mapping"):
            raise ValidationError(
                "expected a BatchDeployment, ModelBatchDeployment or PipelineComponentBatchDeployment "
                f"(got {type(deployment).__name__})",
                field="deployment",
            )
        declaration = yaml_specs.load_deployment_mapping(
            deployment.yaml_mapping(), os.getcwd(), source=type(deployment).__name__
        )
        return LROPoller(_deployment(self._service.put_deployment(declaration, caller=self._caller)))

    def get(self, name: str, endpoint_name: str) -> AnyDeployment:
        return _deployment(self._service.get_deployment(endpoint_name, name))

    def list(self, endpoint_name: str) -> builtins.list[AnyDeployment]:
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


def _mappings(given: Mapping[str, Any] | None, field: str, here: str) -> dict[str, Any]:
    """Azure's `Input`/`Output` objects (or plain values) as the invocation's named inputs or outputs take them, a
    local path made absolute against the working folder."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise ValidationError(f"must be a dict of name to Input or Output (got {type(given).__name__})", field=field)
    mappings: dict[str, Any] = {}
    for name, value in given.items():
        if isinstance(value, Input | Output):
            fields = {"type": value.type, "path": _location(value.path, here), "mode": value.mode}
            if isinstance(value, Input):
                fields["default"] = value.default
            value = {key: item for key, item in fields.items() if item is not None}
        mappings[name] = value
    return mappings


def _with_single_input(named: dict[str, NamedInput], single: Any, here: str) -> dict[str, NamedInput]:
    """Azure's older `input=Input(...)`: the one data input, beside the literals of `inputs`."""
    if not isinstance(single, Input) or single.path is None:
        raise ValidationError("must be Input(type=uri_folder or uri_file, path=...)", field="input")
    if any(given.is_data for given in named.values()):
        raise ValidationError("give the data input once: in inputs or as input, not both", field="inputs")
    return with_data_input(named, _location(single.path, here), type=single.type, field="input")


def _location(path: str | os.PathLike[str] | None, here: str) -> str | None:
    return None if path is None else yaml_specs.local_or_reference(os.fspath(path), here)


def _outputs(
    outputs: Mapping[str, Output] | None, output_path: str | os.PathLike[str] | Mapping[str, Input | Output] | None
) -> Mapping[str, Input | Output] | None:
    """`outputs`, or the older `output_path` (a location, or the outputs' dict) as the `score` output."""
    if outputs is not None and output_path is not None:
        raise ValidationError("give the output once: in outputs or as output_path", field="outputs")
    if isinstance(output_path, str | os.PathLike):
        return {MODEL_OUTPUT: Output(path=output_path)}
    return outputs if outputs is not None else output_path


def _overrides(params_override: list[Mapping[str, Any]] | None, output_file_name: str | None) -> InvokeOverrides:
    """Azure's `params_override=[{"mini_batch_size": "20"}, {"retry_settings.max_retries": 5}]`: the keys and
    spellings `bep endpoint invoke --set` takes, checked by the same model."""
    given: dict[str, Any] = {}
    for item in params_override or []:
        if not isinstance(item, Mapping):
            raise ValidationError(
                f"each item must be a dict such as {{'mini_batch_size': 20}} (got {item!r})", field="params_override"
            )
        given.update({str(key): value for key, value in item.items()})
    data, settings = yaml_specs.split_invoke_overrides(given, field="params_override.")
    if data:
        key = next(iter(data))
        raise ValidationError(
            "give inputs and outputs as invoke's inputs= and outputs=", field=f"params_override.{key}"
        )
    if output_file_name is not None:
        settings["output_file_name"] = output_file_name
    return parse(InvokeOverrides, settings, prefix="params_override")


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


def _deployment(deployment: Deployment) -> AnyDeployment:
    if deployment.type == "pipeline":
        return _pipeline_deployment(deployment)
    settings = deployment.settings
    code = deployment.code_configuration
    environment = deployment.environment
    found = ModelBatchDeployment(
        **_names(deployment),
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
    return _created(found, deployment)


def _pipeline_deployment(deployment: Deployment) -> PipelineComponentBatchDeployment:
    settings = deployment.pipeline_settings
    found = PipelineComponentBatchDeployment(
        **_names(deployment),
        component=f"{yaml_specs.AZURE_PREFIX}{deployment.component_ref}"
        if deployment.component_ref
        else deployment.component,
        settings=settings.model_dump(mode="json", exclude_none=True) if settings else {},
    )
    return _created(found, deployment)


DeploymentT = TypeVar("DeploymentT", ModelBatchDeployment, PipelineComponentBatchDeployment)


def _names(deployment: Deployment) -> dict[str, Any]:
    return {
        "name": deployment.name,
        "endpoint_name": deployment.endpoint_name,
        "description": deployment.description,
        "tags": dict(deployment.tags),
    }


def _created(found: DeploymentT, deployment: Deployment) -> DeploymentT:
    """`found` as Azure returns a deployment that exists: provisioned, with who made and changed it when."""
    found.provisioning_state = "Succeeded"
    found.creation_context = SystemData.of(
        deployment.created_at, deployment.created_by, deployment.updated_at, deployment.updated_by
    )
    return found
