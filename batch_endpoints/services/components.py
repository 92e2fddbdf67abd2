"""Use cases of components (`az ml component create|list|show`): versioned, immutable assets like models.

A component is checked whole before anything is written: its command's placeholders, and for a pipeline the
step graph, with each registered component a step names resolved and pinned to its version (so `@latest` today
stays the version it was). Then code folders are uploaded, inline components' with the pipeline, and the record
is written once.
"""

from __future__ import annotations

from batch_endpoints import assets
from batch_endpoints.component_commands import check_component
from batch_endpoints.errors import NotFoundError, ValidationError
from batch_endpoints.pipeline_graph import check_pipeline
from batch_endpoints.services.assets import AssetService, _one_version, _refuse_registered, _version_to_register
from batch_endpoints.specs import now
from batch_endpoints.specs.components import (
    ComponentT,
    PipelineComponent,
    PipelineStep,
    StepComponent,
    with_code,
)
from batch_endpoints.yaml_files.references import asset_reference


class ComponentService(AssetService):
    def create_component(self, component: ComponentT, *, version: str | None = None, caller: str = "") -> ComponentT:
        """Register a component version: the version given, the file's, or one more than the latest."""
        if not component.name:
            raise ValidationError("is required: a registered component has a name", field="name")
        version = _version_to_register(component.name, version or component.version, self.repo.list_components)
        _refuse_registered("component", component.name, version, self.repo.get_component)
        checked = self._checked(component)
        stored = with_code(checked, self._stored_code)
        stored = stored.model_copy(update={"version": version, "created_at": now(), "created_by": caller})
        self.repo.add_component(stored)
        return stored

    def get_component(self, name: str, version: str | None = None, label: str | None = None) -> ComponentT:
        return _one_version("component", name, version, label, self.repo.get_component, self.repo.list_components)

    def list_components(self, name: str | None = None) -> list[ComponentT]:
        return self.repo.list_components(name)

    def pipeline_to_deploy(self, component: ComponentT | str) -> tuple[PipelineComponent, str | None]:
        """A pipeline deployment's component, checked and with its code stored, each step's component written
        inline (registered ones at the version resolved now), so a deployment's jobs run what it was made with;
        and the registered component's reference, when it names one."""
        reference = None
        if isinstance(component, str):
            name, version, label = asset_reference(component, field="component", noun="component")
            try:
                component = self.get_component(name, version, label)
            except NotFoundError as exc:
                raise NotFoundError(exc.message, field="component") from None
            reference = component.ref
        if not isinstance(component, PipelineComponent):
            raise ValidationError(
                f"is a {component.type} component; a pipeline deployment runs a pipeline component", field="component"
            )
        checked = self._checked(component) if reference is None else component
        assert isinstance(checked, PipelineComponent), "checking keeps a component's type"
        jobs = {
            name: step.model_copy(update={"component": self._registered_step(step.component, f"jobs.{name}.component")})
            if isinstance(step.component, str)
            else step
            for name, step in checked.jobs.items()
        }
        pipeline = checked.model_copy(update={"jobs": jobs})
        if reference is None:
            stored = with_code(pipeline, self._stored_code)
            assert isinstance(stored, PipelineComponent), "storing code keeps a component's type"
            pipeline = stored
        return pipeline, reference

    def _checked(self, component: ComponentT) -> ComponentT:
        """The component, checked; a pipeline's references to registered components pinned to their versions."""
        if not isinstance(component, PipelineComponent):
            check_component(component)
            return component
        resolved: dict[str, StepComponent] = {}
        jobs: dict[str, PipelineStep] = {}
        for name, step in component.jobs.items():
            field = f"jobs.{name}.component"
            if isinstance(step.component, str):
                registered = self._registered_step(step.component, field)
                resolved[name] = registered
                jobs[name] = step.model_copy(update={"component": registered.ref})
            else:
                check_component(step.component, prefix=f"{field}.")
                resolved[name], jobs[name] = step.component, step
        check_pipeline(component, resolved)
        return component.model_copy(update={"jobs": jobs})

    def _registered_step(self, reference: str, field: str) -> StepComponent:
        name, version, label = asset_reference(reference, field=field, noun="component")
        try:
            found = self.get_component(name, version, label)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, field=field) from None
        if isinstance(found, PipelineComponent):
            raise ValidationError(
                f"{found.ref} is a pipeline component; a step runs a command or parallel one", field=field
            )
        return found

    def _stored_code(self, field: str, code: str) -> str:
        if assets.is_stored(code):
            self.access.check_stored_asset(code, field=field)
        return assets.upload_code(self.blobs, code, field=field)
