"""`ml_client.models`, `.environments` and `.data`: register and read versioned assets.

Each entity becomes the mapping of Azure's asset YAML and is read by the loader `bep <asset> create --file`
uses, relative paths against the working folder, so the SDK and the YAML refuse the same things the same way.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

from batch_endpoints import specs, yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.azure.constants import AssetTypes
from batch_endpoints.azure.entities import Data, Environment, Model, SystemData
from batch_endpoints.azure.jobs import refuse_unknown
from batch_endpoints.errors import ValidationError


def _registered(asset: specs.RegisteredAsset | specs.Environment) -> tuple[str, SystemData | None]:
    """The id a registered version is referred to by (azureml:name:version), and who made it when."""
    made = SystemData.of(asset.created_at, asset.created_by, None, "") if asset.created_at else None
    return f"{yaml_specs.AZURE_PREFIX}{asset.name}:{asset.version}", made


class _AssetOperations:
    def __init__(self, service: EndpointsApi, caller: str) -> None:
        self._service = service
        self._caller = caller


class ModelOperations(_AssetOperations):
    def create_or_update(self, model: Model, **kwargs: Any) -> Model:
        """Registers the model's folder or file as a new version (the next number unless `version` is given)."""
        refuse_unknown("models.create_or_update", kwargs)
        declared = yaml_specs.load_model_mapping(model.yaml_mapping(), os.getcwd(), source="Model")
        registered = self._service.register_model(
            declared.name,
            declared.path,
            version=declared.version,
            description=declared.description,
            tags=declared.tags,
            caller=self._caller,
        )
        return _model(registered, declared.type)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        return _model(self._service.get_model(name, version, label))

    def list(self, name: str | None = None) -> builtins.list[Model]:
        return [_model(model) for model in self._service.list_models(name)]


def _model(record: specs.Model, model_type: str = AssetTypes.CUSTOM_MODEL) -> Model:
    """The record as Azure's Model; the type is what registration declared (records keep no type)."""
    found = Model(
        name=record.name,
        version=record.version,
        type=model_type,
        path=record.path,
        description=record.description,
        tags=dict(record.tags),
    )
    found.id, found.creation_context = _registered(record)
    return found


class EnvironmentOperations(_AssetOperations):
    def create_or_update(self, environment: Environment, **kwargs: Any) -> Environment:
        """Registers an image, a conda file (read now, its text kept), or both, as a new version."""
        refuse_unknown("environments.create_or_update", kwargs)
        if environment.name is None:
            raise ValidationError("is required to register an environment", field="Environment.name")
        declared = yaml_specs.load_environment_mapping(environment.yaml_mapping(), os.getcwd(), source="Environment")
        registered = self._service.register_environment(
            environment.name,
            version=declared.version,
            image=declared.image,
            conda_file=declared.conda_file,
            pip_requirements=declared.pip_requirements,
            description=declared.description,
            tags=declared.tags,
            caller=self._caller,
        )
        return _environment(registered)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        return _environment(self._service.get_environment(name, version, label))

    def list(self, name: str | None = None) -> builtins.list[Environment]:
        return [_environment(environment) for environment in self._service.list_environments(name)]


def _environment(record: specs.Environment) -> Environment:
    found = Environment(
        name=record.name,
        version=record.version,
        image=record.image,
        description=record.description,
        tags=dict(record.tags),
    )
    found.id, found.creation_context = _registered(record)
    return found


class DataOperations(_AssetOperations):
    def create_or_update(self, data: Data, **kwargs: Any) -> Data:
        """Registers a folder or file (a local one is uploaded) as a new data asset version."""
        refuse_unknown("data.create_or_update", kwargs)
        declared = yaml_specs.load_data_mapping(data.yaml_mapping(), os.getcwd(), source="Data")
        registered = self._service.register_data(
            declared.name,
            declared.path,
            data_type=declared.type,
            version=declared.version,
            description=declared.description,
            tags=declared.tags,
            caller=self._caller,
        )
        return _data(registered)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Data:
        return _data(self._service.get_data(name, version, label))

    def list(self, name: str | None = None) -> builtins.list[Data]:
        return [_data(asset) for asset in self._service.list_data(name)]


def _data(record: specs.DataAsset) -> Data:
    found = Data(
        name=record.name,
        version=record.version,
        description=record.description,
        tags=dict(record.tags),
        path=record.path,
        type=record.type,
    )
    found.id, found.creation_context = _registered(record)
    return found
