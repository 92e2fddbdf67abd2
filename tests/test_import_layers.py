"""The layering the README draws, as import-linter contracts (pyproject.toml): the code keeps every contract, and
each rule breaks when an import that crosses it is added to the graph, so no contract is vacuous."""

from __future__ import annotations

import copy
from pathlib import Path

import grimp
import pytest
from importlinter.api import read_configuration
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract
from importlinter.contracts.protected import ProtectedContract

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
CONTRACT_TYPES = {
    "layers": LayersContract,
    "protected": ProtectedContract,
    "independence": IndependenceContract,
    "forbidden": ForbiddenContract,
}


@pytest.fixture(scope="module")
def configuration() -> dict:
    return read_configuration(str(PYPROJECT))


@pytest.fixture(scope="module")
def graph(configuration: dict) -> grimp.ImportGraph:
    session = configuration["session_options"]
    return grimp.build_graph(
        *session["root_packages"], include_external_packages=session["include_external_packages"], cache_dir=None
    )


def broken_contracts(configuration: dict, graph: grimp.ImportGraph) -> list[str]:
    broken = []
    for options in configuration["contracts_options"]:
        contract = CONTRACT_TYPES[options["type"]](
            name=options["name"], session_options=configuration["session_options"], contract_options=options
        )
        if not contract.check(copy.deepcopy(graph), verbose=False).kept:
            broken.append(options["name"])
    return broken


def test_the_code_keeps_every_layering_contract(configuration: dict, graph: grimp.ImportGraph) -> None:
    assert len(configuration["contracts_options"]) >= 10
    assert broken_contracts(configuration, graph) == []


@pytest.mark.parametrize(
    ("importer", "imported", "rule"),
    [
        ("batch_endpoints.service", "batch_endpoints.adapters.local.backend", "The core imports no adapter"),
        ("batch_endpoints.backend", "batch_endpoints.adapters.aws.backend", "The core imports no adapter"),
        ("batch_endpoints.specs", "batch_endpoints.cli.render", "The core imports no edge"),
        ("batch_endpoints.workflow", "batch_endpoints.api.schemas", "The core imports no edge"),
        ("batch_endpoints.specs", "boto3", "The core imports no AWS library"),
        ("batch_endpoints.planning", "aws_lambda_powertools", "The core imports no AWS library"),
        ("batch_container.runner", "botocore", "The core imports no AWS library"),
        ("batch_endpoints.adapters.local.blobs", "batch_endpoints.adapters.aws.blobs", "The local and AWS adapters"),
        ("batch_endpoints.adapters.aws.records", "batch_endpoints.adapters.local.records", "The local and AWS"),
        ("batch_endpoints.adapters.aws.blobs", "batch_endpoints.api.schemas", "Layers"),
        ("batch_endpoints.api.app", "batch_endpoints.server.local_api", "Layers"),
        ("batch_endpoints.cli.main", "infra.stack", "Layers"),
        ("batch_endpoints.client.operations", "batch_endpoints.cli.stream", "The SDK imports no other edge"),
        ("batch_endpoints.server.local_api", "batch_endpoints.cli.targets", "The local server imports no other edge"),
        ("lambdas.api.handler", "batch_endpoints.client", "The Lambdas and the runner import no other edge"),
        ("batch_container.runner", "batch_endpoints.server.gateway", "The Lambdas and the runner"),
        ("batch_container.runner", "lambdas.workflow.handlers", "The runner imports no Lambda"),
        ("batch_endpoints.cli.serve", "batch_endpoints.server.gateway", "The CLI starts the local server"),
    ],
)
def test_an_import_across_a_rule_breaks_its_contract(
    configuration: dict, graph: grimp.ImportGraph, importer: str, imported: str, rule: str
) -> None:
    crossed = copy.deepcopy(graph)
    crossed.add_import(importer=importer, imported=imported)
    assert any(name.startswith(rule) for name in broken_contracts(configuration, crossed))
