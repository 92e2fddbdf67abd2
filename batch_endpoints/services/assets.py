"""Use cases of registered assets: models, environments, data assets (each versioned) and datastores."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from batch_endpoints import assets, uploads
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.repository import AssetT, newest, next_version
from batch_endpoints.services.base import ServiceBase
from batch_endpoints.specs import AssetVersion, DataAsset, Datastore, Environment, Model, now, parse
from batch_endpoints.yaml_specs import LATEST, EnvironmentReference, ModelReference, read_conda_file


class AssetService(ServiceBase):
    # ------------------------------------------------------------------ models
    def register_model(
        self,
        name: str,
        path: str,
        *,
        version: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
    ) -> Model:
        version = _version_to_register(name, version, self.repo.list_models)
        model = parse(Model, {**_version_fields(name, version, description, tags, caller), "path": "pending"})
        _refuse_registered("model", name, version, self.repo.get_model)
        if assets.is_stored(path):
            self.access.check_stored_asset(path, field="path")
        model.path = assets.upload_model(self.blobs, path, name, version, field="path")
        self.repo.add_model(model)
        return model

    def get_model(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        return _one_version("model", name, version, label, self.repo.get_model, self.repo.list_models)

    def list_models(self, name: str | None = None) -> list[Model]:
        return self.repo.list_models(name)

    def _resolve_model(self, reference: ModelReference, deployment_name: str, caller: str) -> Model:
        if reference.path is not None:
            # Azure registers an inline model as an asset of its own; unnamed, it is named after the deployment.
            name = reference.name or f"{deployment_name}-model"
            return self.register_model(name, reference.path, version=reference.version, caller=caller)
        return self._registered_model(reference)

    def _registered_model(self, reference: ModelReference) -> Model:
        if reference.name is None:
            # Only a declaration built in code can name neither; without a name, "latest" would be any model's.
            raise ValidationError("names no model: give a registered model's name, or a path", field="model")
        return self.get_model(reference.name, reference.version, reference.label)

    # ------------------------------------------------------------------ environments
    def register_environment(
        self,
        name: str,
        *,
        version: str | None = None,
        image: str | None = None,
        conda_file: str | None = None,
        pip_requirements: Sequence[str] = (),
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
    ) -> Environment:
        """Register an environment version: an image, a conda file, or both (`az ml environment create`).

        `conda_file` is the file's text, or a local path that is read here; its text is recorded, and its pip
        packages join `pip_requirements`. Versions are immutable; deployments resolve `name:version` or
        `name@latest` to one when they are created or updated.
        """
        version = _version_to_register(name, version, self.repo.list_environments)
        conda_text, pip = None, list(pip_requirements)
        if conda_file:
            conda_text, conda_pip = read_conda_file(conda_file, field="conda_file")
            pip += [requirement for requirement in conda_pip if requirement not in pip]
        if not image and conda_text is None:
            raise ValidationError("an environment needs an image, a conda file (conda_file), or both", field="image")
        environment = parse(
            Environment,
            {
                **_version_fields(name, version, description, tags, caller),
                "image": image or None,
                "conda_file": conda_text,
                "pip_requirements": pip,
                "created_at": now(),
            },
        )
        _refuse_registered("environment", name, version, self.repo.get_environment)
        self.repo.add_environment(environment)
        return environment

    def get_environment(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        return _one_version("environment", name, version, label, self.repo.get_environment, self.repo.list_environments)

    def list_environments(self, name: str | None = None) -> list[Environment]:
        return self.repo.list_environments(name)

    def _resolve_environment(self, declared: Environment | EnvironmentReference) -> Environment:
        """An inline environment as declared; a reference as a copy of the registered version it names, so that
        later registrations (a newer `@latest`) never change an existing deployment."""
        if isinstance(declared, EnvironmentReference):
            return self.get_environment(declared.name, declared.version, declared.label).as_deployed()
        return declared

    # ------------------------------------------------------------------ data assets
    def register_data(
        self,
        name: str,
        path: str,
        *,
        data_type: str = "uri_folder",
        version: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
        progress: uploads.Progress | None = None,
    ) -> DataAsset:
        """Register a data asset version (`az ml data create`): a folder (uri_folder) or a file (uri_file).

        A location in storage (s3://..., a datastore path) is registered where it is; a local path is copied
        into the default datastore first, so the version keeps its content whatever happens to the local copy.
        """
        version = _version_to_register(name, version, self.repo.list_data)
        fields = _version_fields(name, version, description, tags, caller)
        asset = parse(DataAsset, {**fields, "type": data_type, "path": "pending"})
        _refuse_registered("data asset", name, version, self.repo.get_data)
        if assets.is_stored(path) or not os.path.lexists(path):
            asset.path = self.locations.data_path(path, asset.type)
        else:
            if os.path.isdir(path) != (asset.type == "uri_folder"):
                kind = "folder" if os.path.isdir(path) else "file"
                raise ValidationError(f"{path} is a {kind}, but the type is {asset.type}", field="type")
            target = self.blobs.join(self.blobs.root, "data", name, version)
            if asset.type == "uri_file":
                target = self.blobs.join(target, os.path.basename(path))
            asset.path = uploads.upload(self.blobs, path, target, field="path", progress=progress)
        self.repo.add_data(asset)
        return asset

    def get_data(self, name: str, version: str | None = None, label: str | None = None) -> DataAsset:
        return _one_version("data asset", name, version, label, self.repo.get_data, self.repo.list_data)

    def list_data(self, name: str | None = None) -> list[DataAsset]:
        return self.repo.list_data(name)

    # ------------------------------------------------------------------ datastores
    def create_datastore(
        self,
        name: str,
        *,
        bucket: str | None = None,
        prefix: str = "",
        folder: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
    ) -> Datastore:
        """Name a storage location (an S3 bucket and prefix; locally, a folder) for paths such as
        azureml://datastores/<name>/paths/<path>. The backend's own storage is `workspaceblobstore`."""
        fields: dict[str, object] = {"description": description, "tags": tags or {}, "created_by": caller}
        datastore = self.locations.new_datastore(name, bucket=bucket, prefix=prefix, folder=folder, fields=fields)
        self.repo.add_datastore(datastore)
        return datastore

    def get_datastore(self, name: str) -> Datastore:
        if name != self.locations.default_datastore().name and self.repo.get_datastore(name) is None:
            raise NotFoundError(f"datastore {name!r} does not exist", field="name")
        return self.locations.datastore(name, field="name")

    def list_datastores(self) -> list[Datastore]:
        return self.locations.datastores()


def _version_to_register(name: str, version: str | None, list_versions: Callable[[str], Sequence[AssetT]]) -> str:
    """The version a registration makes (repository.next_version), checked with its name before anything is
    copied, so a bad name or version writes nothing."""
    version = next_version(version, name, list_versions)
    parse(AssetVersion, {"name": name, "version": version})
    return version


def _version_fields(
    name: str, version: str, description: str, tags: dict[str, str] | None, caller: str
) -> dict[str, Any]:
    """What every registered version's record holds besides its content."""
    return {"name": name, "version": version, "description": description, "tags": tags or {}, "created_by": caller}


def _refuse_registered(noun: str, name: str, version: str, find: Callable[[str, str], AssetT | None]) -> None:
    if find(name, version):
        raise ConflictError(f"{noun} {name}:{version} already exists; versions are immutable", field="version")


def _one_version(
    noun: str,
    name: str,
    version: str | None,
    label: str | None,
    find: Callable[[str, str], AssetT | None],
    list_versions: Callable[[str], list[AssetT]],
) -> AssetT:
    """`name:version`, or the newest version when none is given or the label is `latest`."""
    if version is None or label == LATEST:
        versions = list_versions(name)
        if not versions:
            raise NotFoundError(f"{noun} {name!r} has no versions", field=noun)
        return newest(versions)
    found = find(name, version)
    if found is None:
        raise NotFoundError(f"{noun} {name}:{version} does not exist", field=noun)
    return found
