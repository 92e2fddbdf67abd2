"""Use cases of endpoints and their deployments. A deployment names registered assets (or declares them inline,
which registers them), so these build on the asset use cases."""

from __future__ import annotations

from typing import Any

from batch_endpoints import assets, mlflow_models
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.pipeline_graph import pipeline_steps
from batch_endpoints.services.components import ComponentService
from batch_endpoints.specs import (
    CodeConfiguration,
    Compute,
    Deployment,
    Endpoint,
    Environment,
    PipelineSettings,
    now,
    parse,
)
from batch_endpoints.specs.components import CommandComponent, ComponentT, PipelineComponent
from batch_endpoints.yaml_specs import AZURE_PREFIX, DeploymentDeclaration, EndpointPatch, asset_reference


class EndpointService(ComponentService):
    # ------------------------------------------------------------------ endpoints
    def create_endpoint(self, declaration: Endpoint, *, caller: str = "") -> Endpoint:
        """Record the endpoint as declared (the YAML loaders' and the API's Endpoint), created now by `caller`."""
        if declaration.default_deployment:
            raise ValidationError(
                "an endpoint has no deployments when it is created; set the default deployment after creating one",
                field="defaults.deployment_name",
            )
        created_at = now()
        # Through the model's validation, as every record is written: a declaration built without it is checked.
        endpoint = parse(
            Endpoint,
            {
                **declaration.model_dump(),
                "created_at": created_at,
                "created_by": caller,
                "updated_at": created_at,
                "updated_by": caller,
                "scoring_uri": f"{self.backend.api_base_url}/endpoints/{declaration.name}/jobs",
            },
        )
        self.repo.add_endpoint(endpoint)
        return endpoint

    def put_endpoint(self, declaration: Endpoint, *, caller: str = "") -> Endpoint:
        """Create the endpoint, or give the existing one the declared description, tags and allow-lists (and
        default deployment, when one is declared). The API's PUT: sending the same declaration twice changes
        nothing but who changed it last."""
        try:
            self.repo.get_endpoint(declaration.name)
        except NotFoundError:
            try:
                return self.create_endpoint(declaration, caller=caller)
            except ConflictError:
                pass  # created by a concurrent request meanwhile: update it like any existing endpoint
        return self.update_endpoint(declaration.name, EndpointPatch.every_field_of(declaration), caller=caller)

    def update_endpoint(self, name: str, changes: EndpointPatch, *, caller: str = "") -> Endpoint:
        """Change what `changes` gives; an empty allow-list removes the endpoint's narrowing."""
        updates = changes.updates()
        if "default_deployment" in updates:
            self.repo.get_deployment(name, updates["default_deployment"])

        def change(endpoint: Endpoint) -> Endpoint:
            # Through the model's validation (model_copy would skip it), so a bad value is refused, not stored.
            changed = parse(Endpoint, {**endpoint.model_dump(), **updates})
            if changed == endpoint:
                return endpoint  # a repeated request changes nothing, not even who changed it last
            return changed.model_copy(update={"updated_at": now(), "updated_by": caller})

        change(self.repo.get_endpoint(name))  # refused before anything is written
        return self.repo.update_endpoint(name, change)

    def get_endpoint(self, name: str) -> Endpoint:
        return self.repo.get_endpoint(name)

    def list_endpoints(self) -> list[Endpoint]:
        return self.repo.list_endpoints()

    def delete_endpoint(self, name: str) -> None:
        """Deletes the endpoint and its deployments; its jobs and their outputs stay."""
        self.repo.get_endpoint(name)
        for deployment in self.repo.list_deployments(name):
            self.backend.computes.deregister_deployment(deployment)
            self.repo.delete_deployment(name, deployment.name)
        self.repo.delete_endpoint(name)

    # ------------------------------------------------------------------ deployments
    def create_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        return self._put_deployment(declaration, must_exist=False, set_default=set_default, caller=caller)

    def update_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        return self._put_deployment(declaration, must_exist=True, set_default=set_default, caller=caller)

    def put_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        """Create the deployment, or update it when it exists (the API's PUT)."""
        return self._put_deployment(declaration, must_exist=None, set_default=set_default, caller=caller)

    def _put_deployment(
        self, declaration: DeploymentDeclaration, *, must_exist: bool | None, set_default: bool, caller: str
    ) -> Deployment:
        endpoint = self.repo.get_endpoint(declaration.endpoint_name)
        existing = self.repo.find_deployment(endpoint.name, declaration.name)
        version = self.repo.deployment_version(endpoint.name, declaration.name)
        if must_exist and existing is None:
            raise NotFoundError(
                f"deployment {declaration.name!r} does not exist in endpoint {endpoint.name!r}; create it first",
                field="name",
            )
        if must_exist is False and existing is not None:
            raise ConflictError(
                f"deployment {declaration.name!r} already exists in endpoint {endpoint.name!r}; use update",
                field="name",
            )
        if declaration.component is not None or declaration.job_definition is not None:
            deployment = self._pipeline_deployment(declaration, existing, caller)
        else:
            deployment = self._model_deployment(declaration, existing, caller)
        self.register_on_compute(deployment)
        self.repo.put_deployment(deployment, expected_version=version)
        if set_default:
            self.update_endpoint(endpoint.name, EndpointPatch.default_deployment(deployment.name), caller=caller)
        return deployment

    def register_on_compute(self, deployment: Deployment) -> None:
        """Register the deployment with its compute, and a pipeline's command steps in their environments, each
        registered environment a step names pinned in the deployment as it is now (as a model deployment's is)."""
        deployment.compute_handle = self.backend.computes.register_deployment(deployment)
        if deployment.component is not None:
            deployment.component = self._with_step_environments(deployment.component)
            environments = {
                step: component.environment
                for step, component in pipeline_steps(deployment.component).items()
                if isinstance(component, CommandComponent) and isinstance(component.environment, Environment)
            }
            deployment.step_handles = self.backend.computes.register_steps(deployment, environments)

    def _with_step_environments(self, pipeline: PipelineComponent) -> PipelineComponent:
        """The pipeline, each command step's environment reference replaced by the registered version it names. One
        not registered here (Azure's curated environments: their images hold no runner) is kept as written: the
        step runs in the runner's image, as a step that names none does."""
        jobs = dict(pipeline.jobs)
        for step, component in pipeline_steps(pipeline).items():
            if not isinstance(component, CommandComponent) or not isinstance(component.environment, str):
                continue
            field = f"jobs.{step}.component.environment"
            name, version, label = asset_reference(component.environment, field=field, noun="environment")
            try:
                registered = self.get_environment(name, version, label).as_deployed()
            except NotFoundError:
                continue
            pinned = component.model_copy(update={"environment": registered})
            jobs[step] = jobs[step].model_copy(update={"component": pinned})
        return pipeline.model_copy(update={"jobs": jobs})

    def _compute(self, name: str, *, field: str) -> Compute:
        compute = self.backend.computes.get(name)
        if compute is None:
            known = ", ".join(c.name for c in self.backend.computes.list())
            raise ValidationError(f"compute {name!r} does not exist; known: {known}", field=field)
        if compute.provisioning_state == "Deleting":
            raise ValidationError(f"compute {compute.name!r} is being deleted", field=field)
        return compute

    def _pipeline_deployment(
        self, declaration: DeploymentDeclaration, existing: Deployment | None, caller: str
    ) -> Deployment:
        """A pipeline deployment: its component checked, and its code stored, last, once everything else is. Made
        from a pipeline job, it runs the job's pipeline with the job's inputs as its defaults and the job's settings
        where the declaration gives none."""
        settings = declaration.pipeline_settings
        assert settings is not None, "a pipeline deployment's declaration has its settings"
        component = declaration.component
        if declaration.job_definition is not None:
            component, job_settings = self._pipeline_of_job(declaration.job_definition)
            written = {name: getattr(settings, name) for name in settings.model_fields_set}
            settings = job_settings.model_copy(update=written)
        assert component is not None, "a pipeline deployment's declaration has its component or its job"
        pipeline, reference, compute = self.pipeline_to_run(component, settings)
        return parse(
            Deployment,
            {
                **_record_fields(declaration, existing, caller),
                "type": "pipeline",
                "component": pipeline,
                "component_ref": reference,
                "pipeline_settings": settings,
                "compute": compute.name,
            },
        )

    def pipeline_to_run(
        self, component: ComponentT | str, settings: PipelineSettings
    ) -> tuple[PipelineComponent, str | None, Compute]:
        """A pipeline checked and its code stored (see pipeline_to_deploy), with the compute its steps run on by
        default; every compute it names must exist."""
        compute = self._compute(settings.default_compute, field="settings.default_compute")
        pipeline, reference = self.pipeline_to_deploy(component)
        for name, step in pipeline.jobs.items():
            if step.compute is not None:
                self._compute(step.compute.removeprefix(AZURE_PREFIX), field=f"jobs.{name}.compute")
        return pipeline, reference, compute

    def _pipeline_of_job(self, job_name: str) -> tuple[PipelineComponent, PipelineSettings]:
        """A pipeline job's pipeline, the inputs the job was given as its defaults, and the job's settings."""
        try:
            job = self.repo.get_job(job_name)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, field="job_definition") from None
        pipeline, settings = job.deployment.component, job.deployment.pipeline_settings
        if job.pipeline is None or pipeline is None or settings is None or job.parent_job_name is not None:
            raise ValidationError(f"job {job_name} is not a pipeline job", field="job_definition")
        given = {**job.pipeline.data_inputs, **job.pipeline.literal_inputs}
        inputs = {
            name: declared.model_copy(update={"default": given[name]}) if name in given else declared
            for name, declared in pipeline.inputs.items()
        }
        return pipeline.model_copy(update={"inputs": inputs}), settings

    def _model_deployment(
        self, declaration: DeploymentDeclaration, existing: Deployment | None, caller: str
    ) -> Deployment:
        if declaration.model is None:
            raise ValidationError("is required: the registered model or a local folder to score with", field="model")
        compute = self._compute(declaration.compute, field="compute")
        model_location = declaration.model.path
        if model_location is None:
            model_location = self._registered_model(declaration.model).path
        environment = self._resolve_environment(declaration.environment)
        if declaration.code is None:
            environment = self._no_code_environment(model_location, environment)
        else:
            assets.check_scoring_script(self.blobs, declaration.code, declaration.scoring_script or "")
        # Validate the record before registering an inline model or copying the code, so a refusal writes nothing.
        deployment = parse(
            Deployment,
            {
                **_record_fields(declaration, existing, caller),
                "model": "pending",
                "code_configuration": (
                    None
                    if declaration.code is None
                    else {"code": "pending", "scoring_script": declaration.scoring_script}
                ),
                "inputs": declaration.inputs,
                "environment": environment,
                "compute": compute.name,
                "settings": declaration.settings,
            },
        )
        if declaration.code and assets.is_stored(declaration.code):
            self.access.check_stored_asset(declaration.code, field="code_configuration.code")
        deployment.model = self._resolve_model(declaration.model, declaration.name, caller).ref
        if deployment.code_configuration is not None:
            deployment.code_configuration = CodeConfiguration(
                code=assets.upload_code(self.blobs, declaration.code or "", field="code_configuration.code"),
                scoring_script=deployment.code_configuration.scoring_script,
            )
        return deployment

    def _no_code_environment(self, model_location: str, environment: Environment) -> Environment:
        """A deployment without code scores an MLflow model with the built-in scorer. Unless an image is given,
        its environment records the model's pip requirements (installed where the image lacks them)."""
        model_dir = mlflow_models.find(self.blobs, model_location)
        if model_dir is None:
            raise ValidationError(
                f"the model {model_location} is not an MLflow model (it has no MLmodel file); give a "
                "code_configuration with a scoring script",
                field="code_configuration",
            )
        if environment.image or environment.pip_requirements:
            return environment
        return environment.model_copy(
            update={"pip_requirements": mlflow_models.pip_requirements(self.blobs, model_dir)}
        )

    def get_deployment(self, endpoint_name: str, name: str) -> Deployment:
        self.repo.get_endpoint(endpoint_name)
        return self.repo.get_deployment(endpoint_name, name)

    def list_deployments(self, endpoint_name: str) -> list[Deployment]:
        self.repo.get_endpoint(endpoint_name)
        return self.repo.list_deployments(endpoint_name)

    def delete_deployment(self, endpoint_name: str, name: str, *, caller: str = "") -> None:
        endpoint = self.repo.get_endpoint(endpoint_name)
        deployment = self.repo.get_deployment(endpoint_name, name)
        others = [d for d in self.repo.list_deployments(endpoint_name) if d.name != name]
        if endpoint.default_deployment == name and others:
            raise ConflictError(
                f"deployment {name!r} is the default of endpoint {endpoint_name!r}; make another deployment "
                f"the default first (one of: {', '.join(d.name for d in others)})",
                field="name",
            )
        self.backend.computes.deregister_deployment(deployment)
        self.repo.delete_deployment(endpoint_name, name)
        if endpoint.default_deployment == name:
            self.repo.update_endpoint(
                endpoint_name,
                lambda e: e.model_copy(update={"default_deployment": None, "updated_at": now(), "updated_by": caller}),
            )


def _record_fields(declaration: DeploymentDeclaration, existing: Deployment | None, caller: str) -> dict[str, Any]:
    """What every deployment's record takes from its declaration, and keeps of the version it replaces."""
    return {
        "name": declaration.name,
        "endpoint_name": declaration.endpoint_name,
        "description": declaration.description,
        "tags": declaration.tags,
        "created_at": existing.created_at if existing else now(),
        "created_by": existing.created_by if existing else caller,
        "updated_by": caller,
    }
