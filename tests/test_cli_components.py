"""`bep component create|list|show`, as `az ml component`: Azure's example files register as written, on this
machine and over signed HTTP, and a refused file exits 2 naming the field, with nothing registered."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Bep
from tests.server_fixtures import local_api_fixture, remote_fixture

__all__ = ["local_api_fixture", "remote_fixture"]

AZURE = Path(__file__).parent / "data" / "azure_pipelines"
SCORING = AZURE / "batch-scoring-with-preprocessing"
PREPARE = SCORING / "components" / "prepare" / "prepare.yml"


def test_the_scoring_example_registers_and_shows_its_latest_version(bep: Bep) -> None:
    first = bep("component", "create", "--file", PREPARE).json()
    second = bep("component", "create", "--file", PREPARE, "--set", "display_name=Prepare v2", "--tag", "team=ml")
    pipeline = bep("component", "create", "--file", SCORING / "pipeline.yml", "--version", "5").json()

    assert (first["name"], first["version"], second.json()["version"]) == ("uci_heart_prepare", "1", "2")
    assert pipeline["version"] == "5"
    assert pipeline["jobs"]["preprocess_job"]["component"] == "uci_heart_prepare:2"
    latest = bep("component", "show", "-n", "uci_heart_prepare", "--label", "latest").json()
    assert (latest["display_name"], latest["tags"]) == ("Prepare v2", {"team": "ml"})
    assert bep("component", "show", "-n", "uci_heart_prepare", "-v", "1").json()["display_name"] == (
        "UCI Heart dataset prepare"
    )
    listed = bep("component", "list", "-o", "tsv", "--query", "[].version").out.split()
    assert sorted(listed) == ["1", "2", "5"]


def test_a_refused_component_exits_2_naming_the_field_and_registers_nothing(bep: Bep, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(PREPARE.read_text().replace("${{inputs.data}}", "${{inputs.dataset}}"))
    (tmp_path / "src").mkdir()

    refused = bep("component", "create", "--file", broken, ok=False)

    assert refused.code == 2
    assert f"{broken}: field 'command'" in refused.err and "inputs.dataset" in refused.err
    assert bep("component", "list", "-o", "json").out.strip() == "[]"


def test_a_step_naming_an_unregistered_component_exits_3(bep: Bep) -> None:
    refused = bep("component", "create", "--file", SCORING / "pipeline.yml", ok=False)
    assert refused.code == 3 and "uci_heart_prepare" in refused.err


def test_create_needs_a_file(bep: Bep) -> None:
    assert bep("component", "create", "--name", "x", ok=False).code == 2


def test_the_training_example_registers_over_http(remote: Bep) -> None:
    pipeline = AZURE / "training-with-components" / "deployment-ordinal" / "pipeline.yml"
    created = remote("component", "create", "--file", pipeline, "--version", "http-1").json()
    train = created["jobs"]["train_job"]["component"]
    assert (created["version"], train["name"]) == ("http-1", "uci_heart_train_xgb")
    assert remote("component", "show", "-n", created["name"], "-v", "http-1").json() == created
    again = remote("component", "create", "--file", pipeline, "--version", "http-1", ok=False)
    assert again.code == 4
