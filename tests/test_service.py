"""The control-plane use cases against the real local records and storage; jobs are started but never run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from batch_endpoints.backend import Backend
from batch_endpoints.errors import BatchEndpointError, ConflictError, NotFoundError, ValidationError
from batch_endpoints.repository import DEPLOYMENT, ENDPOINT, ENVIRONMENT, JOB, MODEL
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import Endpoint, Environment, InvokeOverrides, JobStatus, OutputAction, parse
from batch_endpoints.workflow import mark_failed
from batch_endpoints.yaml_specs import EndpointPatch, ModelReference, parse_model_reference
from tests.core_fixtures import (  # noqa: F401 (pytest fixtures)
    RecordingOrchestrator,
    code_dir_fixture,
    deployment_declaration,
    endpoint_declaration,
    input_dir_fixture,
    invoke,
    local_backend_fixture,
    model_dir_fixture,
    ready_service_fixture,
    recorder_fixture,
    service_fixture,
    write_tree,
)


def stored_files(backend: Backend, uri: str) -> list[str]:
    return [backend.blobs.relative(uri, info.uri) for info in backend.blobs.list_files(uri)]


def record_count(backend: Backend, kind: str) -> int:
    return len(backend.records.list(kind))


# ------------------------------------------------------------------------------------------------ models
def test_register_model_numbers_versions_from_one_and_latest_is_the_newest(
    service: BatchEndpointService, model_dir: Path
) -> None:
    versions = [service.register_model("digits", str(model_dir)).version for _ in range(3)]

    assert versions == ["1", "2", "3"]
    assert service.get_model("digits").version == "3"
    assert service.get_model("digits", label="latest").version == "3"
    assert service.get_model("digits", "2").ref == "digits:2"
    assert [m.version for m in service.list_models("digits")] == ["1", "2", "3"]


def test_latest_compares_numeric_versions_as_numbers(service: BatchEndpointService, model_dir: Path) -> None:
    service.register_model("digits", str(model_dir), version="9")
    service.register_model("digits", str(model_dir), version="10")

    assert service.get_model("digits").version == "10"
    assert service.register_model("digits", str(model_dir)).version == "11"


def test_register_model_keeps_its_own_copy_of_the_folder(
    service: BatchEndpointService, local_backend: Backend, model_dir: Path
) -> None:
    model = service.register_model("digits", str(model_dir), description="8x8", tags={"task": "cls"})
    (model_dir / "weights.txt").write_text("changed after registering")

    assert model.path.startswith(local_backend.blobs.root)
    assert stored_files(local_backend, model.path) == ["meta/config.json", "weights.txt"]
    assert local_backend.blobs.get_bytes(local_backend.blobs.join(model.path, "weights.txt")) == b"0.5 0.25\n"
    assert service.get_model("digits", "1").tags == {"task": "cls"}


def test_register_model_from_a_single_file_keeps_its_name(
    service: BatchEndpointService, local_backend: Backend, tmp_path: Path
) -> None:
    (tmp_path / "model.pt").write_bytes(b"\x80weights")

    model = service.register_model("single", str(tmp_path / "model.pt"))

    version_folder = local_backend.blobs.join(local_backend.blobs.root, "models", "single", "1")
    assert model.path == local_backend.blobs.join(version_folder, "model.pt")
    assert stored_files(local_backend, version_folder) == ["model.pt"]


def test_register_model_lays_a_folder_out_as_azure_does_under_its_own_name(
    service: BatchEndpointService, local_backend: Backend, model_dir: Path
) -> None:
    model = service.register_model("digits", str(model_dir))

    # Azure's scoring scripts look for a folder model in AZUREML_MODEL_DIR/*/: the version folder holds the
    # registered folder by its own name, and nothing else.
    version_folder = local_backend.blobs.join(local_backend.blobs.root, "models", "digits", "1")
    assert model.path == local_backend.blobs.join(version_folder, model_dir.name)
    assert stored_files(local_backend, version_folder) == [
        f"{model_dir.name}/meta/config.json",
        f"{model_dir.name}/weights.txt",
    ]


def test_register_model_refuses_an_existing_version_and_keeps_the_first_copy(
    service: BatchEndpointService, local_backend: Backend, model_dir: Path, tmp_path: Path
) -> None:
    first = service.register_model("digits", str(model_dir), version="1")
    other = write_tree(tmp_path / "other-model", {"other.bin": "x"})

    with pytest.raises(ConflictError) as caught:
        service.register_model("digits", str(other), version="1")

    assert caught.value.field == "version"
    assert stored_files(local_backend, first.path) == ["meta/config.json", "weights.txt"]
    assert [m.version for m in service.list_models("digits")] == ["1"]


def test_register_model_from_a_missing_path_writes_nothing(
    service: BatchEndpointService, local_backend: Backend, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as caught:
        service.register_model("digits", str(tmp_path / "no-such-model"))

    assert caught.value.field == "path"
    assert service.list_models() == []
    assert not local_backend.blobs.exists(local_backend.blobs.join(local_backend.blobs.root, "models"))


def test_register_model_with_a_bad_name_writes_nothing(
    service: BatchEndpointService, local_backend: Backend, model_dir: Path
) -> None:
    with pytest.raises(ValidationError) as caught:
        service.register_model("bad name!", str(model_dir))

    assert caught.value.field == "name"
    assert record_count(local_backend, MODEL) == 0


def test_unknown_model_is_not_found(service: BatchEndpointService, model_dir: Path) -> None:
    service.register_model("digits", str(model_dir))

    with pytest.raises(NotFoundError):
        service.get_model("digits", "2")
    with pytest.raises(NotFoundError):
        service.get_model("nothing")


# ------------------------------------------------------------------------------------------------ environments
CONDA = """\
name: digits-env
dependencies:
  - python=3.11
  - pip:
    - torch==2.13.0
    - pillow
"""
TORCH_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bep-torch"


def test_register_environment_numbers_versions_from_one_and_latest_is_the_newest(
    service: BatchEndpointService,
) -> None:
    versions = [service.register_environment("torch", image=f"{TORCH_IMAGE}:{n}").version for n in range(3)]
    service.register_environment("torch", version="10", image=f"{TORCH_IMAGE}:10")

    assert versions == ["1", "2", "3"]
    assert service.get_environment("torch").version == "10"
    assert service.get_environment("torch", label="latest").image == f"{TORCH_IMAGE}:10"
    assert service.get_environment("torch", "2").ref == "torch:2"
    assert sorted(e.version for e in service.list_environments("torch")) == ["1", "10", "2", "3"]
    assert service.register_environment("torch", image="x").version == "11"


def test_register_environment_records_the_conda_files_text_and_its_pip_packages(
    service: BatchEndpointService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "env.yml").write_text(CONDA)
    monkeypatch.chdir(tmp_path)

    from_path = service.register_environment(
        "digits-env", conda_file="env.yml", pip_requirements=["numpy"], description="cpu", tags={"a": "b"}, caller="ann"
    )
    (tmp_path / "env.yml").write_text("changed after registering")
    from_text = service.register_environment("digits-env", conda_file=CONDA, image=TORCH_IMAGE)

    assert (from_path.conda_file, from_path.image) == (CONDA, None)
    assert from_path.pip_requirements == ["numpy", "torch==2.13.0", "pillow"]
    assert (from_path.description, from_path.tags, from_path.created_by) == ("cpu", {"a": "b"}, "ann")
    assert from_path.created_at
    assert service.get_environment("digits-env", "1") == from_path
    assert (from_text.conda_file, from_text.image, from_text.version) == (CONDA, TORCH_IMAGE, "2")


def test_register_environment_refuses_an_existing_version_and_keeps_the_first(service: BatchEndpointService) -> None:
    first = service.register_environment("torch", version="1", image=f"{TORCH_IMAGE}:1")

    with pytest.raises(ConflictError) as caught:
        service.register_environment("torch", version="1", image=f"{TORCH_IMAGE}:2")

    assert caught.value.field == "version"
    assert service.list_environments() == [first]


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"name": "torch"}, "image", "needs an image, a conda file"),
        ({"name": "torch", "image": ""}, "image", "needs an image, a conda file"),
        ({"name": "bad name!", "image": "x"}, "name", "must start with a letter or digit"),
        ({"name": "torch", "version": "latest", "image": "x"}, "version", "'latest' is the label"),
        ({"name": "torch", "version": "1/2", "image": "x"}, "version", "must start with a letter or digit"),
        ({"name": "torch", "conda_file": "no-such-env.yml"}, "conda_file", "not a readable text file"),
        ({"name": "torch", "conda_file": "- just\n- a list\n"}, "conda_file", "not a conda environment file"),
    ],
)
def test_bad_environment_is_refused_naming_the_field_and_writes_nothing(
    service: BatchEndpointService, local_backend: Backend, fields: dict, field: str, says: str
) -> None:
    name = fields.pop("name")

    with pytest.raises(ValidationError) as caught:
        service.register_environment(name, **fields)

    assert caught.value.field == field
    assert says in caught.value.message
    assert record_count(local_backend, ENVIRONMENT) == 0


def test_unknown_environment_is_not_found(service: BatchEndpointService) -> None:
    service.register_environment("torch", image="x")

    for version, label in (("2", None), (None, None), (None, "latest")):
        name = "torch" if version else "nothing"
        with pytest.raises(NotFoundError) as caught:
            service.get_environment(name, version, label)
        assert caught.value.field == "environment"


# ------------------------------------------------------------------------------------------------ endpoints
def test_create_endpoint_then_show_and_list(service: BatchEndpointService, local_backend: Backend) -> None:
    created = service.create_endpoint(endpoint_declaration("digits", description="handwriting", auth_mode="key"))
    service.create_endpoint(endpoint_declaration("alpha"))

    shown = service.get_endpoint("digits")

    assert shown == created
    assert (shown.description, shown.auth_mode, shown.default_deployment) == ("handwriting", "aws_iam", None)
    assert shown.scoring_uri == f"{local_backend.api_base_url}/endpoints/digits/jobs"
    assert [e.name for e in service.list_endpoints()] == ["alpha", "digits"]


@pytest.mark.parametrize("name", ["1digits", "ab", "digits-", "dig_its", "x" * 33])
def test_bad_endpoint_name_is_refused_and_writes_nothing(
    service: BatchEndpointService, local_backend: Backend, name: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        service.create_endpoint(Endpoint.model_construct(name=name))  # a declaration built without validation

    assert caught.value.field == "name"
    assert record_count(local_backend, ENDPOINT) == 0


def test_duplicate_endpoint_is_a_conflict_and_keeps_the_first(service: BatchEndpointService) -> None:
    service.create_endpoint(endpoint_declaration("digits", description="first"))

    with pytest.raises(ConflictError) as caught:
        service.create_endpoint(endpoint_declaration("digits", description="second"))

    assert caught.value.field == "name"
    assert service.get_endpoint("digits").description == "first"


def test_create_endpoint_with_a_default_deployment_is_refused(service: BatchEndpointService) -> None:
    with pytest.raises(ValidationError):
        service.create_endpoint(endpoint_declaration("digits", defaults={"deployment_name": "blue"}))

    assert service.list_endpoints() == []


def test_update_endpoint_changes_only_what_is_given(service: BatchEndpointService) -> None:
    service.create_endpoint(endpoint_declaration("digits", description="old", tags={"team": "a"}))

    service.update_endpoint("digits", EndpointPatch(tags={"team": "b"}))
    updated = service.update_endpoint("digits", EndpointPatch(description="new"))

    assert (updated.description, updated.tags) == ("new", {"team": "b"})
    assert service.get_endpoint("digits") == updated


def test_unknown_endpoint_is_not_found(service: BatchEndpointService) -> None:
    with pytest.raises(NotFoundError):
        service.get_endpoint("ghost")
    with pytest.raises(NotFoundError):
        service.update_endpoint("ghost", EndpointPatch(description="x"))
    with pytest.raises(NotFoundError):
        service.delete_endpoint("ghost")
    with pytest.raises(NotFoundError):
        service.list_deployments("ghost")


def test_delete_endpoint_removes_its_deployments_and_keeps_its_jobs(
    ready_service: BatchEndpointService, local_backend: Backend, code_dir: Path, input_dir: Path
) -> None:
    service = ready_service
    service.create_deployment(deployment_declaration(code_dir, name="green"))
    job = invoke(service, input_dir)

    service.delete_endpoint("digits")

    assert service.list_endpoints() == []
    assert record_count(local_backend, DEPLOYMENT) == 0
    assert service.get_job(job.id).id == job.id
    assert [j.id for j in service.list_jobs()] == [job.id]
    # The name is free again, and the old deployments do not come back with it.
    service.create_endpoint(endpoint_declaration("digits"))
    assert service.list_deployments("digits") == []


# ------------------------------------------------------------------------------------------------ deployments
def test_create_deployment_records_model_code_and_settings(
    service: BatchEndpointService, local_backend: Backend, code_dir: Path, model_dir: Path
) -> None:
    service.register_model("digits", str(model_dir))
    service.register_model("digits", str(model_dir))
    service.create_endpoint(endpoint_declaration("digits"))

    deployment = service.create_deployment(
        deployment_declaration(
            code_dir,
            model="azureml:digits@latest",
            settings={"mini_batch_size": 7, "error_threshold": 2, "retry_settings": {"timeout": 90}},
        )
    )

    assert service.get_deployment("digits", "blue") == deployment
    assert deployment.model == "digits:2"
    assert (deployment.settings.mini_batch_size, deployment.settings.error_threshold) == (7, 2)
    assert deployment.settings.retry_settings.timeout == 90
    assert deployment.compute_handle == "local:digits/blue"
    code = deployment.code_configuration.code
    assert code.startswith(local_backend.blobs.root)
    assert stored_files(local_backend, code) == ["helpers/labels.txt", "score.py"]
    assert service.get_endpoint("digits").default_deployment is None


def test_create_deployment_with_set_default_makes_it_the_default(
    ready_service: BatchEndpointService, code_dir: Path
) -> None:
    ready_service.create_deployment(deployment_declaration(code_dir, name="green"), set_default=True)

    assert ready_service.get_endpoint("digits").default_deployment == "green"
    assert [d.name for d in ready_service.list_deployments("digits")] == ["blue", "green"]


def test_set_default_through_update_endpoint(ready_service: BatchEndpointService, code_dir: Path) -> None:
    ready_service.create_deployment(deployment_declaration(code_dir, name="green"))

    ready_service.update_endpoint("digits", EndpointPatch.default_deployment("green"))

    assert ready_service.get_endpoint("digits").default_deployment == "green"
    with pytest.raises(NotFoundError):
        ready_service.update_endpoint("digits", EndpointPatch.default_deployment("purple"))
    assert ready_service.get_endpoint("digits").default_deployment == "green"


def test_create_of_an_existing_deployment_is_a_conflict(ready_service: BatchEndpointService, code_dir: Path) -> None:
    with pytest.raises(ConflictError) as caught:
        ready_service.create_deployment(deployment_declaration(code_dir, settings={"mini_batch_size": 99}))

    assert caught.value.field == "name"
    assert ready_service.get_deployment("digits", "blue").settings.mini_batch_size == 3


def test_update_of_a_missing_deployment_is_not_found_and_writes_nothing(
    ready_service: BatchEndpointService, local_backend: Backend, code_dir: Path
) -> None:
    with pytest.raises(NotFoundError):
        ready_service.update_deployment(deployment_declaration(code_dir, name="green"))

    assert record_count(local_backend, DEPLOYMENT) == 1


def test_update_deployment_changes_settings_and_keeps_its_creation(
    ready_service: BatchEndpointService, code_dir: Path
) -> None:
    before = ready_service.get_deployment("digits", "blue")

    after = ready_service.update_deployment(
        deployment_declaration(code_dir, settings={"mini_batch_size": 5, "output_action": "summary_only"})
    )

    assert ready_service.get_deployment("digits", "blue") == after
    assert (after.settings.mini_batch_size, after.settings.output_action) == (5, OutputAction.SUMMARY_ONLY)
    assert after.created_at == before.created_at
    assert len(ready_service.list_deployments("digits")) == 1


def test_deployment_in_a_missing_endpoint_is_not_found(
    service: BatchEndpointService, local_backend: Backend, code_dir: Path, model_dir: Path
) -> None:
    service.register_model("digits", str(model_dir))

    with pytest.raises(NotFoundError):
        service.create_deployment(deployment_declaration(code_dir, endpoint="ghost"))

    assert record_count(local_backend, DEPLOYMENT) == 0


def test_unknown_compute_is_refused_and_writes_nothing(
    service: BatchEndpointService, local_backend: Backend, code_dir: Path, model_dir: Path
) -> None:
    service.register_model("digits", str(model_dir))
    service.create_endpoint(endpoint_declaration("digits"))

    with pytest.raises(ValidationError) as caught:
        service.create_deployment(deployment_declaration(code_dir, compute="tpu-cluster"))

    assert caught.value.field == "compute"
    assert "cpu-cluster" in caught.value.message
    assert record_count(local_backend, DEPLOYMENT) == 0
    assert not local_backend.blobs.exists(local_backend.blobs.join(local_backend.blobs.root, "code"))


@pytest.mark.parametrize(
    ("model", "refusal"),
    [
        (parse_model_reference("azureml:digits:2"), NotFoundError),
        (parse_model_reference("azureml:nothing:1"), NotFoundError),
        (parse_model_reference("azureml:nothing@latest"), NotFoundError),
        # Only a declaration built in code, not loaded from a file, can name no model: the newest of any is not it.
        (ModelReference(), ValidationError),
        (ModelReference(version="1"), ValidationError),
        (ModelReference(label="latest"), ValidationError),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else str(value),
)
def test_a_model_that_is_unknown_or_unnamed_is_refused_and_writes_nothing(
    service: BatchEndpointService,
    local_backend: Backend,
    code_dir: Path,
    model_dir: Path,
    model: ModelReference,
    refusal: type[BatchEndpointError],
) -> None:
    service.register_model("digits", str(model_dir))
    service.create_endpoint(endpoint_declaration("digits"))

    with pytest.raises(refusal) as caught:
        service.create_deployment(dataclasses.replace(deployment_declaration(code_dir), model=model))

    assert caught.value.field == "model"
    assert record_count(local_backend, DEPLOYMENT) == 0
    assert record_count(local_backend, MODEL) == 1
    assert not local_backend.blobs.exists(local_backend.blobs.join(local_backend.blobs.root, "code"))


@pytest.mark.parametrize(("reference", "version"), [("azureml:torch:1", "1"), ("torch@latest", "2"), ("torch:2", "2")])
def test_deployment_keeps_a_copy_of_the_registered_environment_it_names(
    ready_service: BatchEndpointService, code_dir: Path, reference: str, version: str
) -> None:
    ready_service.register_environment("torch", image=f"{TORCH_IMAGE}:1", description="first", caller="ann")
    ready_service.register_environment("torch", image=f"{TORCH_IMAGE}:2", conda_file=CONDA)
    registered = ready_service.get_environment("torch", version)

    deployment = ready_service.create_deployment(deployment_declaration(code_dir, name="green", environment=reference))

    assert deployment.environment == Environment(
        name="torch",
        version=version,
        image=f"{TORCH_IMAGE}:{version}",
        conda_file=registered.conda_file,
        pip_requirements=registered.pip_requirements,
    )
    assert deployment.environment.ref == f"torch:{version}"
    assert ready_service.get_deployment("digits", "green").environment == deployment.environment


def test_a_later_registration_does_not_change_an_existing_deployment_until_it_is_updated(
    ready_service: BatchEndpointService, code_dir: Path, input_dir: Path
) -> None:
    ready_service.register_environment("torch", image=f"{TORCH_IMAGE}:1")
    ready_service.update_deployment(deployment_declaration(code_dir, environment="azureml:torch@latest"))

    ready_service.register_environment("torch", image=f"{TORCH_IMAGE}:2")

    assert ready_service.get_deployment("digits", "blue").environment.ref == "torch:1"
    assert invoke(ready_service, input_dir).deployment.environment.image == f"{TORCH_IMAGE}:1"
    # Updating the deployment resolves @latest again, as Azure does.
    updated = ready_service.update_deployment(deployment_declaration(code_dir, environment="azureml:torch@latest"))
    assert (updated.environment.ref, updated.environment.image) == ("torch:2", f"{TORCH_IMAGE}:2")


@pytest.mark.parametrize("reference", ["azureml:torch:2", "azureml:nothing:1", "nothing@latest"])
def test_unknown_environment_reference_is_not_found_and_writes_nothing(
    ready_service: BatchEndpointService, local_backend: Backend, code_dir: Path, reference: str
) -> None:
    ready_service.register_environment("torch", image=f"{TORCH_IMAGE}:1")
    before = ready_service.get_deployment("digits", "blue")
    for name in ("green", "blue"):  # a new deployment, and an update of an existing one
        declaration = deployment_declaration(
            code_dir, name=name, environment=reference, settings={"mini_batch_size": 9}
        )

        with pytest.raises(NotFoundError) as caught:
            ready_service.put_deployment(declaration)

        assert caught.value.field == "environment"
    assert [d.name for d in ready_service.list_deployments("digits")] == ["blue"]
    assert ready_service.get_deployment("digits", "blue") == before
    assert record_count(local_backend, ENVIRONMENT) == 1


def test_unknown_environment_refuses_a_deployment_before_its_inline_model_or_code_is_stored(
    service: BatchEndpointService, local_backend: Backend, code_dir: Path, model_dir: Path
) -> None:
    service.create_endpoint(endpoint_declaration("digits"))
    declaration = deployment_declaration(code_dir, model={"path": str(model_dir)}, environment="azureml:torch@latest")

    with pytest.raises(NotFoundError) as caught:
        service.create_deployment(declaration)

    assert caught.value.field == "environment"
    assert service.list_models() == []
    assert record_count(local_backend, DEPLOYMENT) == 0
    assert stored_files(local_backend, local_backend.blobs.root) == []


def test_inline_environment_is_kept_as_declared_and_registers_nothing(
    ready_service: BatchEndpointService, local_backend: Backend, code_dir: Path
) -> None:
    inline = {"name": "torch", "version": "7", "image": "img:1", "pip_requirements": ["numpy"]}

    deployment = ready_service.create_deployment(deployment_declaration(code_dir, name="green", environment=inline))

    assert deployment.environment == Environment(name="torch", version="7", image="img:1", pip_requirements=["numpy"])
    assert record_count(local_backend, ENVIRONMENT) == 0


def test_missing_scoring_script_is_refused_and_writes_nothing(
    ready_service: BatchEndpointService, local_backend: Backend, code_dir: Path
) -> None:
    declaration = deployment_declaration(code_dir, name="green")
    (code_dir / "score.py").unlink()

    with pytest.raises(ValidationError) as caught:
        ready_service.create_deployment(declaration)

    assert caught.value.field == "code_configuration.scoring_script"
    assert record_count(local_backend, DEPLOYMENT) == 1


def test_inline_model_is_registered_under_the_deployment_name(
    service: BatchEndpointService, code_dir: Path, model_dir: Path
) -> None:
    service.create_endpoint(endpoint_declaration("digits"))

    deployment = service.create_deployment(deployment_declaration(code_dir, model={"path": str(model_dir)}))

    assert deployment.model == "blue-model:1"
    assert service.get_model("blue-model").version == "1"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"name": "1bad"}, "name"), ({"scoring_script": "../score.py"}, "code_configuration.scoring_script")],
)
def test_refused_deployment_with_an_inline_model_registers_and_copies_nothing(
    service: BatchEndpointService,
    local_backend: Backend,
    code_dir: Path,
    model_dir: Path,
    changes: dict[str, str],
    field: str,
) -> None:
    service.create_endpoint(endpoint_declaration("digits"))
    (code_dir.parent / "score.py").write_text("def run(b): return b")  # so ../score.py exists on disk
    declaration = dataclasses.replace(deployment_declaration(code_dir, model={"path": str(model_dir)}), **changes)

    with pytest.raises(ValidationError) as caught:
        service.create_deployment(declaration)

    assert caught.value.field == field
    assert service.list_models() == []
    assert record_count(local_backend, DEPLOYMENT) == 0
    assert stored_files(local_backend, local_backend.blobs.root) == []


def test_deleting_the_default_while_others_exist_is_a_conflict(
    ready_service: BatchEndpointService, code_dir: Path
) -> None:
    ready_service.create_deployment(deployment_declaration(code_dir, name="green"))

    with pytest.raises(ConflictError) as caught:
        ready_service.delete_deployment("digits", "blue")

    assert "green" in caught.value.message
    assert [d.name for d in ready_service.list_deployments("digits")] == ["blue", "green"]
    assert ready_service.get_endpoint("digits").default_deployment == "blue"


def test_deleting_a_non_default_deployment_keeps_the_default(
    ready_service: BatchEndpointService, code_dir: Path
) -> None:
    ready_service.create_deployment(deployment_declaration(code_dir, name="green"))

    ready_service.delete_deployment("digits", "green")

    assert [d.name for d in ready_service.list_deployments("digits")] == ["blue"]
    assert ready_service.get_endpoint("digits").default_deployment == "blue"
    with pytest.raises(NotFoundError):
        ready_service.get_deployment("digits", "green")


def test_deleting_the_only_deployment_clears_the_default(ready_service: BatchEndpointService) -> None:
    ready_service.delete_deployment("digits", "blue")

    assert ready_service.list_deployments("digits") == []
    assert ready_service.get_endpoint("digits").default_deployment is None
    with pytest.raises(NotFoundError):
        ready_service.delete_deployment("digits", "blue")


# ------------------------------------------------------------------------------------------------ invoke
def test_invoke_records_a_queued_job_and_starts_it(
    ready_service: BatchEndpointService, local_backend: Backend, recorder: RecordingOrchestrator, input_dir: Path
) -> None:
    job = invoke(ready_service, input_dir, caller="arn:aws:iam::1:user/ana")

    stored = ready_service.get_job(job.id)
    assert stored == job
    assert recorder.started == [job.id]
    assert job.execution == f"recorded:{job.id}"
    assert job.status == JobStatus.QUEUED
    assert (job.endpoint_name, job.deployment_name, job.created_by) == ("digits", "blue", "arn:aws:iam::1:user/ana")
    assert (job.input.uri, job.input.type) == (str(input_dir), "uri_folder")
    assert job.model_path == ready_service.get_model("digits", "1").path
    blobs = local_backend.blobs
    assert job.output_uri == blobs.join(blobs.root, "outputs", "digits", job.id, "predictions.csv")
    assert job.scratch_uri == blobs.join(blobs.root, "jobs", job.id)
    assert job.id.startswith("digits-")


def test_invoke_with_a_single_file_infers_uri_file(ready_service: BatchEndpointService, input_dir: Path) -> None:
    job = invoke(ready_service, input_dir / "a.txt")

    assert job.input.type == "uri_file"


def test_invoke_writes_to_the_given_output_folder(
    ready_service: BatchEndpointService, input_dir: Path, tmp_path: Path
) -> None:
    job = invoke(ready_service, input_dir, output_path=str(tmp_path / "results"))

    assert job.output_uri == str(tmp_path / "results" / "predictions.csv")


def test_invoke_without_a_default_or_a_deployment_name_is_refused(
    service: BatchEndpointService,
    local_backend: Backend,
    recorder: RecordingOrchestrator,
    code_dir: Path,
    model_dir: Path,
    input_dir: Path,
) -> None:
    service.register_model("digits", str(model_dir))
    service.create_endpoint(endpoint_declaration("digits"))
    service.create_deployment(deployment_declaration(code_dir))

    with pytest.raises(ValidationError) as caught:
        invoke(service, input_dir)

    assert caught.value.field == "deployment_name"
    assert record_count(local_backend, JOB) == 0
    assert recorder.started == []
    assert invoke(service, input_dir, deployment_name="blue").deployment_name == "blue"


def test_invoke_of_an_unknown_deployment_is_not_found(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    with pytest.raises(NotFoundError) as caught:
        invoke(ready_service, input_dir, deployment_name="purple")

    assert caught.value.field == "deployment_name"
    assert record_count(local_backend, JOB) == 0


def test_invoke_of_an_unknown_endpoint_is_not_found(ready_service: BatchEndpointService, input_dir: Path) -> None:
    with pytest.raises(NotFoundError):
        ready_service.invoke(InvokeRequest(endpoint_name="ghost", input=str(input_dir)))


def test_invoke_with_a_missing_input_is_refused(
    ready_service: BatchEndpointService, local_backend: Backend, recorder: RecordingOrchestrator, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as caught:
        invoke(ready_service, tmp_path / "no-such-input")

    assert caught.value.field == "input"
    assert record_count(local_backend, JOB) == 0
    assert recorder.started == []


def test_invoke_with_an_empty_input_folder_is_refused(
    ready_service: BatchEndpointService, local_backend: Backend, tmp_path: Path
) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)

    with pytest.raises(ValidationError) as caught:
        invoke(ready_service, tmp_path / "empty")

    assert caught.value.field == "input"
    assert record_count(local_backend, JOB) == 0


def test_invoke_with_a_mismatched_input_type_is_refused(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    with pytest.raises(ValidationError) as caught:
        invoke(ready_service, input_dir, input_type="uri_file")
    with pytest.raises(ValidationError):
        invoke(ready_service, input_dir / "a.txt", input_type="uri_folder")

    assert caught.value.field == "input_type"
    assert record_count(local_backend, JOB) == 0


def test_invoke_onto_an_existing_output_file_is_a_conflict_and_touches_nothing(
    ready_service: BatchEndpointService,
    local_backend: Backend,
    recorder: RecordingOrchestrator,
    input_dir: Path,
    tmp_path: Path,
) -> None:
    existing = write_tree(tmp_path / "results", {"scores.csv": "earlier,results\n"}) / "scores.csv"
    overrides = InvokeOverrides(output_file_name="scores.csv")

    with pytest.raises(ConflictError) as caught:
        invoke(ready_service, input_dir, output_path=str(tmp_path / "results"), overrides=overrides)

    assert caught.value.field == "output"
    assert existing.read_text() == "earlier,results\n"
    assert record_count(local_backend, JOB) == 0
    assert recorder.started == []


def test_overrides_are_applied_to_the_job_settings_only(ready_service: BatchEndpointService, input_dir: Path) -> None:
    overrides = parse(
        InvokeOverrides,
        {
            "mini_batch_size": 2,
            "instance_count": 4,
            "max_retries": 0,
            "timeout": 600,
            "error_threshold": 5,
            "output_file_name": "scores.csv",
        },
    )

    job = invoke(ready_service, input_dir, overrides=overrides)

    settings = job.settings
    assert (settings.mini_batch_size, settings.instance_count, settings.error_threshold) == (2, 4, 5)
    assert (settings.retry_settings.max_retries, settings.retry_settings.timeout) == (0, 600)
    assert settings.output_file_name == "scores.csv"
    assert job.output_uri is not None and job.output_uri.endswith("/scores.csv")
    assert ready_service.get_job(job.id).settings == settings
    # The deployment itself is unchanged, and so is the job's snapshot of it.
    assert ready_service.get_deployment("digits", "blue").settings.mini_batch_size == 3
    assert job.deployment.settings.mini_batch_size == 3


def test_no_overrides_keep_the_deployment_settings(ready_service: BatchEndpointService, input_dir: Path) -> None:
    job = invoke(ready_service, input_dir)

    assert job.settings == ready_service.get_deployment("digits", "blue").settings


@pytest.mark.parametrize(
    ("override", "value"),
    [
        ("mini_batch_size", 0),
        ("mini_batch_size", -1),
        ("instance_count", 0),
        ("max_retries", -1),
        ("timeout", 0),
        ("timeout", -30),
        ("error_threshold", -2),
    ],
)
def test_zero_or_negative_overrides_are_refused_naming_the_field(override: str, value: int) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(InvokeOverrides, {override: value})

    assert caught.value.field == override


@pytest.mark.parametrize(
    ("override", "value", "field"),
    [
        ("mini_batch_size", 0, "mini_batch_size"),
        ("instance_count", -1, "instance_count"),
        ("timeout", 0, "retry_settings.timeout"),
        ("output_file_name", "../escape.csv", "output_file_name"),
    ],
)
def test_invoke_refuses_bad_overrides_that_skipped_parsing(
    ready_service: BatchEndpointService,
    local_backend: Backend,
    input_dir: Path,
    override: str,
    value: object,
    field: str,
) -> None:
    overrides = InvokeOverrides.model_construct(**{override: value})

    with pytest.raises(ValidationError) as caught:
        invoke(ready_service, input_dir, overrides=overrides)

    assert caught.value.field == field
    assert record_count(local_backend, JOB) == 0


def test_summary_only_job_has_no_output_file(
    ready_service: BatchEndpointService, code_dir: Path, input_dir: Path, tmp_path: Path
) -> None:
    ready_service.create_deployment(
        deployment_declaration(code_dir, name="green", settings={"output_action": "summary_only"})
    )
    # An existing file where an output would go does not matter: nothing will be written there.
    write_tree(tmp_path / "results", {"predictions.csv": "x\n"})

    job = invoke(ready_service, input_dir, deployment_name="green", output_path=str(tmp_path / "results"))

    assert job.output_uri is None
    assert job.settings.output_action == OutputAction.SUMMARY_ONLY


def test_job_keeps_the_deployment_as_it_was_when_invoked(ready_service: BatchEndpointService, input_dir: Path) -> None:
    job = invoke(ready_service, input_dir)
    original = job.deployment

    ready_service.update_deployment(
        deployment_declaration(Path(original.code_configuration.code), settings={"mini_batch_size": 50})
    )

    stored = ready_service.get_job(job.id)
    assert stored.deployment == original
    assert stored.deployment.settings.mini_batch_size == 3
    assert stored.settings.mini_batch_size == 3
    assert ready_service.get_deployment("digits", "blue").settings.mini_batch_size == 50


def test_list_jobs_is_newest_first_and_per_endpoint(
    ready_service: BatchEndpointService, code_dir: Path, model_dir: Path, input_dir: Path
) -> None:
    first = invoke(ready_service, input_dir)
    second = invoke(ready_service, input_dir)
    ready_service.create_endpoint(endpoint_declaration("other"))
    ready_service.create_deployment(deployment_declaration(code_dir, endpoint="other"), set_default=True)
    elsewhere = ready_service.invoke(InvokeRequest(endpoint_name="other", input=str(input_dir)))

    assert [j.id for j in ready_service.list_jobs("digits")] == [second.id, first.id]
    assert [j.id for j in ready_service.list_jobs(limit=2)] == [elsewhere.id, second.id]
    with pytest.raises(NotFoundError):
        ready_service.list_jobs("ghost")


# ------------------------------------------------------------------------------------------------ cancel
def test_cancel_of_a_queued_job_requests_it_from_the_orchestrator(
    ready_service: BatchEndpointService, recorder: RecordingOrchestrator, input_dir: Path
) -> None:
    job = invoke(ready_service, input_dir)

    canceled = ready_service.cancel_job(job.id)

    assert canceled.status == JobStatus.CANCEL_REQUESTED
    assert ready_service.get_job(job.id).status == JobStatus.CANCEL_REQUESTED
    assert recorder.canceled == [job.id]


@pytest.mark.parametrize("final", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED])
def test_cancel_of_a_finished_job_is_a_conflict(
    ready_service: BatchEndpointService,
    recorder: RecordingOrchestrator,
    input_dir: Path,
    final: JobStatus,
) -> None:
    job = invoke(ready_service, input_dir)
    ready_service.repo.update_job(job.id, lambda j: j.model_copy(update={"status": final}))

    with pytest.raises(ConflictError) as caught:
        ready_service.cancel_job(job.id)

    assert caught.value.field == "job"
    assert ready_service.get_job(job.id).status == final
    assert recorder.canceled == []


def test_cancel_after_mark_failed_is_a_conflict(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    job = invoke(ready_service, input_dir)
    mark_failed(local_backend, job.id, "host died")

    with pytest.raises(ConflictError):
        ready_service.cancel_job(job.id)


def test_cancel_of_an_unknown_job_is_not_found(ready_service: BatchEndpointService) -> None:
    with pytest.raises(NotFoundError):
        ready_service.cancel_job("digits-000000000000")


def test_a_job_whose_workflow_cannot_start_ends_failed_not_queued(ready_service, input_dir):
    service = ready_service

    class BrokenOrchestrator:
        def start(self, job):
            raise RuntimeError("state machine is gone")

        def cancel(self, job):
            raise AssertionError("not expected")

    service.backend.orchestrator = BrokenOrchestrator()
    with pytest.raises(RuntimeError, match="state machine is gone"):
        service.invoke(InvokeRequest(endpoint_name="digits", input=str(input_dir)))
    [job] = service.list_jobs("digits")
    assert job.status == JobStatus.FAILED
    assert "could not be started: state machine is gone" in job.error
