"""`bep environment`: register versions, list and show them, and deploy with one by reference."""

from __future__ import annotations

from pathlib import Path

CONDA = "name: digits\ndependencies:\n  - python=3.11\n  - pip:\n    - pillow\n"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bep-digits"
SCRIPT = "def run(mini_batch):\n    return [0 for _ in mini_batch]\n"


def test_register_list_show_and_deploy_with_a_registered_environment(bep, tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text(CONDA)
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    (tmp_path / "model.bin").write_bytes(b"\0")
    deployment = tmp_path / "deployment.yml"
    deployment.write_text(
        "name: blue\nendpoint_name: shop\nmodel: azureml:m:1\nenvironment: azureml:digits-env@latest\n"
        f"code_configuration:\n  code: {code}\n  scoring_script: score.py\n"
    )

    first = bep(
        "environment",
        "create",
        "--name",
        "digits-env",
        "--image",
        f"{IMAGE}:1",
        "--conda-file",
        tmp_path / "env.yml",
        "--description",
        "cpu",
        "--tag",
        "team=ml",
    ).json()
    second = bep("environment", "register", "--name", "digits-env", "--image", f"{IMAGE}:2").json()
    bep("environment", "create", "--name", "other", "--conda-file", tmp_path / "env.yml", "--version", "a1")

    assert (first["name"], first["version"], first["image"]) == ("digits-env", "1", f"{IMAGE}:1")
    assert (first["conda_file"], first["pip_requirements"]) == (CONDA, ["pillow"])
    assert (first["description"], first["tags"]) == ("cpu", {"team": "ml"})
    assert first["created_by"]
    assert second["version"] == "2"
    listing = bep("environment", "list").out.splitlines()
    assert listing[0].split() == ["NAME", "VERSION", "IMAGE", "DESCRIPTION", "CREATED_AT"]
    assert sorted(line.split()[:2] for line in listing[1:]) == [
        ["digits-env", "1"],
        ["digits-env", "2"],
        ["other", "a1"],
    ]
    assert len(bep("environment", "list", "--name", "other").out.splitlines()) == 2
    assert bep("environment", "show", "--name", "digits-env", "--label", "latest").json() == second
    assert bep("environment", "show", "--name", "digits-env").json() == second
    assert bep("environment", "show", "--name", "digits-env", "--version", "1").json() == first

    # The deployment keeps the version @latest named when it was created.
    bep("model", "create", "--name", "m", "--path", tmp_path / "model.bin")
    bep("endpoint", "create", "--name", "shop")
    created = bep("deployment", "create", "--file", deployment).json()
    bep("environment", "create", "--name", "digits-env", "--image", f"{IMAGE}:3")
    shown = bep("deployment", "show", "--endpoint-name", "shop", "--name", "blue").json()

    assert created["environment"] == shown["environment"]
    assert (shown["environment"]["name"], shown["environment"]["version"]) == ("digits-env", "2")
    assert shown["environment"]["image"] == f"{IMAGE}:2"
