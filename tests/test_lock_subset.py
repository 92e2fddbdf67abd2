"""The scoring images' share of requirements.lock (batch_endpoints/lock_subset.py): every package they need, each
with its hashes, and none they do not; checked against what pip installed here from the same lock."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from batch_endpoints.lock_subset import canonical, entries, main, roots, subset

ROOT = Path(__file__).resolve().parents[1]
LOCK = (ROOT / "requirements.lock").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What both Dockerfiles ask for (tests/test_infra_compute.py holds them to it).
IMAGE_EXTRAS = ("runner", "torch", "mlflow")
IMAGE = subset(LOCK, roots(PYPROJECT, IMAGE_EXTRAS) | {"boto3"}, without=["torch"])
PINNED = {canonical(line.split("==")[0]) for line in IMAGE.splitlines() if "==" in line}

SMALL_LOCK = """\
#
# header
#
a==1.0 \\
    --hash=sha256:aa
    # via batch-endpoints (pyproject.toml)
b==2.0 \\
    --hash=sha256:b1 \\
    --hash=sha256:b2
    # via
    #   a
    #   c
c==3.0 \\
    --hash=sha256:cc
    # via batch-endpoints
Only_C==4.0 \\
    --hash=sha256:dd
    # via c

# WARNING: The following packages were not pinned, but pip requires them to be
# a
"""


def test_each_package_of_the_image_is_pinned_with_its_hashes() -> None:
    for entry in re.split(r"\n(?=\S)", IMAGE.strip()):
        pin, *hashes = entry.splitlines()
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==\S+ \\", pin), entry
        assert hashes and all(re.fullmatch(r"    --hash=sha256:[0-9a-f]{64}( \\)?", h) for h in hashes), entry
        assert not hashes[-1].endswith("\\"), entry


def test_the_image_gets_the_runner_mlflow_and_aws_libraries_but_not_the_tools_or_torch() -> None:
    wanted = {"pandas", "numpy", "pyarrow", "mlflow-skinny", "skops", "scikit-learn", "boto3", "setuptools"}
    assert wanted | {"sympy", "networkx"} <= PINNED, "torch's own dependencies are checked too"
    assert not {"torch", "moto", "pytest", "aws-cdk-lib", "mkdocs", "mypy", "aws-lambda-powertools"} & PINNED


def test_every_dependency_of_every_package_in_the_image_is_in_it_too() -> None:
    # pip installed these from the same lock here: their metadata says what each needs on Linux with this Python,
    # as it will in the image. torch comes after them, from PyTorch's index; what it needs is here (torch's too).
    missing = {}
    for name in PINNED | {"torch"}:
        for text in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            if canonical(requirement.name) not in PINNED:
                missing[name] = requirement.name
    assert missing == {}


def test_a_left_out_package_is_left_out_but_not_what_it_pulls_in() -> None:
    assert entries(SMALL_LOCK)["b"].pulled_in_by == {"a", "c"}
    assert subset(SMALL_LOCK, ["a", "c"]) == (
        "a==1.0 \\\n    --hash=sha256:aa\n"
        "b==2.0 \\\n    --hash=sha256:b1 \\\n    --hash=sha256:b2\n"
        "c==3.0 \\\n    --hash=sha256:cc\n"
        "Only_C==4.0 \\\n    --hash=sha256:dd\n"
    )
    assert subset(SMALL_LOCK, ["a", "c"], without=["c"]) == (
        "a==1.0 \\\n    --hash=sha256:aa\n"
        "b==2.0 \\\n    --hash=sha256:b1 \\\n    --hash=sha256:b2\n"
        "Only_C==4.0 \\\n    --hash=sha256:dd\n"
    )


def test_a_name_the_lock_does_not_pin_or_an_unknown_extra_is_refused_saying_which() -> None:
    with pytest.raises(ValueError, match="pins no left-pad"):
        subset(SMALL_LOCK, ["a", "left_pad"])
    with pytest.raises(ValueError, match="no extra gpu"):
        roots(PYPROJECT, ["runner", "gpu"])


def test_the_command_writes_the_subset_or_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK)
    arguments = [str(lock), str(ROOT / "pyproject.toml"), "--extras", ",".join(IMAGE_EXTRAS)]

    main([*arguments, "--with", "boto3", "--without", "torch"])
    assert capsys.readouterr().out == IMAGE
    with pytest.raises(SystemExit, match=r"lock_subset: requirements\.lock pins no no-such-package"):
        main([*arguments, "--with", "no-such-package"])


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_each_image_installs_this_subset_with_hashes_torch_by_its_pin_and_the_project_without_fetching(
    dockerfile: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)  # the build's folder: the command names the lock and pyproject.toml relative to it
    text = (ROOT / "batch_container" / dockerfile).read_text().replace("\\\n", " ")
    (command,) = re.findall(r"python -m batch_endpoints\.lock_subset ([^>]+)> /tmp/image\.lock", text)
    installs = [" ".join(found.split()) for found in re.findall(r"pip install ([^&\n]+)", text)]

    main(command.split())
    assert capsys.readouterr().out == IMAGE
    assert installs[0] == "--require-hashes -r /tmp/image.lock"
    assert re.fullmatch(r"--index-url \S+ torch==2\.13\.0", installs[1]), installs
    assert installs[2:] == ["--no-deps --no-build-isolation ."]
