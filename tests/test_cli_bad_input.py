"""Bad input through the CLI: a clear error that names the field, a non-zero exit code, and nothing changed.

The table at the end runs every verb with malformed, oversized, wrong-typed, unicode, path-traversal and
injection-looking values, comparing the home folder's records and every file under it before and after."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = "def run(mini_batch):\n    return [0 for _ in mini_batch]\n"


# SQLite's own files: the records are compared by their rows, since opening the database rewrites its WAL.
DATABASE_FILES = {"records.db", "records.db-wal", "records.db-shm", "records.db-journal"}


def snapshot(home: Path) -> tuple[list[tuple], dict[str, str]]:
    """Every record and counter, and a digest of every other file under the home folder: the stored files
    (models, code, job files, outputs) and whatever else the local backend keeps there."""
    db = sqlite3.connect(home / "records.db")
    try:
        rows = db.execute("SELECT kind, key, version, data FROM records ORDER BY kind, key").fetchall()
        rows += db.execute("SELECT * FROM counters ORDER BY kind, key, name").fetchall()
    finally:
        db.close()
    files = {
        path.relative_to(home).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file() and path.relative_to(home).as_posix() not in DATABASE_FILES
    }
    return rows, files


@pytest.fixture
def ready(bep, home: Path, tmp_path: Path) -> dict[str, Path]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "m.bin").write_bytes(b"\0")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "a.txt").write_text("a")
    (tmp_path / "empty").mkdir()
    deployment = tmp_path / "deployment.yml"
    deployment.write_text(
        "name: blue\nendpoint_name: shop\nmodel: azureml:m:1\n"
        f"code_configuration:\n  code: {code}\n  scoring_script: score.py\ncompute: azureml:cpu-cluster\n"
    )
    bep("model", "create", "--name", "m", "--path", tmp_path / "model")
    bep("endpoint", "create", "--name", "shop")
    return {"root": tmp_path, "inputs": inputs, "deployment": deployment}


def refused(bep, home: Path, *args: object, code: int, field: str | None = None, says: str = "") -> str:
    before = snapshot(home)
    result = bep(*args, ok=False)
    assert result.code == code, result.err
    assert result.err.startswith("error: ")
    if field:
        assert f"{field}" in result.err
    assert says in result.err
    assert snapshot(home) == before, "a refused command changed a record or a stored file"
    return result.err


def test_bad_endpoint_name_is_refused(bep, home, ready):
    refused(
        bep,
        home,
        "endpoint",
        "create",
        "--name",
        "9-starts-with-digit",
        code=2,
        field="name",
        says="must be 3-32 characters",
    )
    refused(bep, home, "endpoint", "create", "--name", "ends-with-dash-", code=2, field="name")


def test_existing_endpoint_name_is_a_conflict(bep, home, ready):
    refused(bep, home, "endpoint", "create", "--name", "shop", code=4, says="already exists")


def test_invoking_without_a_default_deployment_is_a_clear_error(bep, home, ready):
    bep("deployment", "create", "--file", ready["deployment"])  # not the default
    refused(
        bep,
        home,
        "endpoint",
        "invoke",
        "--name",
        "shop",
        "--input",
        ready["inputs"],
        code=2,
        field="deployment_name",
        says="no default deployment",
    )


def test_unknown_deployment_and_endpoint_are_not_found(bep, home, ready):
    bep("deployment", "create", "--file", ready["deployment"], "--set-default")
    refused(
        bep,
        home,
        "endpoint",
        "invoke",
        "--name",
        "shop",
        "--input",
        ready["inputs"],
        "--deployment-name",
        "green",
        code=3,
        says="'green' does not exist",
    )
    refused(bep, home, "endpoint", "invoke", "--name", "nowhere", "--input", ready["inputs"], code=3)
    refused(bep, home, "deployment", "show", "--endpoint-name", "shop", "--name", "green", code=3)


@pytest.mark.parametrize("input_name", ["missing", "empty"])
def test_missing_or_empty_input_is_refused_before_any_job(bep, home, ready, input_name):
    bep("deployment", "create", "--file", ready["deployment"], "--set-default")
    says = "does not exist" if input_name == "missing" else "holds no files"
    refused(
        bep,
        home,
        "endpoint",
        "invoke",
        "--name",
        "shop",
        "--input",
        ready["root"] / input_name,
        code=2,
        field="input",
        says=says,
    )


def test_existing_output_file_is_refused_up_front_and_left_untouched(bep, home, ready):
    bep("deployment", "create", "--file", ready["deployment"], "--set-default")
    out = ready["root"] / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("precious\n")
    refused(
        bep,
        home,
        "endpoint",
        "invoke",
        "--name",
        "shop",
        "--input",
        ready["inputs"],
        "--output-path",
        out,
        code=4,
        field="output",
        says="already exists",
    )
    assert (out / "predictions.csv").read_text() == "precious\n"


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--mini-batch-size", "0"], "mini_batch_size"),
        (["--mini-batch-size", "-3"], "mini_batch_size"),
        (["--instance-count", "0"], "instance_count"),
        (["--instance-count", "10001"], "instance_count"),
        (["--set", "max_retries=-1"], "max_retries"),
        (["--set", "timeout=0"], "timeout"),
        (["--set", "error_threshold=-2"], "error_threshold"),
        (["--set", "batch_size=4"], "batch_size"),
        (["--output-file-name", "../escape.csv"], "output_file_name"),
    ],
)
def test_bad_invoke_overrides_are_refused_naming_the_field(bep, home, ready, flags, field):
    bep("deployment", "create", "--file", ready["deployment"], "--set-default")
    refused(bep, home, "endpoint", "invoke", "--name", "shop", "--input", ready["inputs"], *flags, code=2, field=field)


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("settings.mini_batch_size=0", "mini_batch_size"),
        ("settings.max_concurrency_per_instance=-1", "max_concurrency_per_instance"),
        ("resources.instance_count=0", "instance_count"),
        ("resources.instance_count=10001", "instance_count"),
        ("settings.output_action=overwrite", "output_action"),
    ],
)
def test_bad_deployment_settings_are_refused_naming_the_field(bep, home, ready, setting, field):
    refused(bep, home, "deployment", "create", "--file", ready["deployment"], "--set", setting, code=2, field=field)


def test_malformed_yaml_is_refused_naming_the_file(bep, home, ready):
    broken = ready["root"] / "broken.yml"
    broken.write_text("name: blue\nsettings: [unclosed\n")
    err = refused(bep, home, "deployment", "create", "--file", broken, code=2)
    assert "broken.yml" in err


def test_unknown_compute_is_refused(bep, home, ready):
    refused(
        bep,
        home,
        "deployment",
        "create",
        "--file",
        ready["deployment"],
        "--set",
        "compute=azureml:tpu",
        code=2,
        field="compute",
        says="does not exist",
    )


@pytest.mark.parametrize(
    ("flags", "code", "field", "says"),
    [
        ([], 2, "image", "needs an image, a conda file"),
        (["--conda-file", "missing.yml"], 2, "conda_file", "not a readable text file"),
        (["--image", "img:1", "--version", "latest"], 2, "version", "'latest' is the label"),
        (["--image", "img:1", "--version", "1"], 4, "version", "already exists; versions are immutable"),
    ],
)
def test_bad_environment_registration_is_refused(bep, home, ready, flags, code, field, says):
    bep("environment", "create", "--name", "torch", "--image", "img:1")
    refused(bep, home, "environment", "create", "--name", "torch", *flags, code=code, field=field, says=says)


def test_bad_environment_name_is_refused(bep, home, ready):
    refused(bep, home, "environment", "create", "--name", "bad name", "--image", "img:1", code=2, field="name")


def test_unknown_environment_is_not_found(bep, home, ready):
    bep("environment", "create", "--name", "torch", "--image", "img:1")
    refused(
        bep, home, "environment", "show", "--name", "torch", "--version", "2", code=3, says="torch:2 does not exist"
    )
    refused(bep, home, "environment", "show", "--name", "nothing", code=3, says="has no versions")


@pytest.mark.parametrize("reference", ["azureml:torch:2", "azureml:nothing@latest"])
def test_deployment_with_an_unknown_environment_is_not_found_and_changes_nothing(bep, home, ready, reference):
    bep("environment", "create", "--name", "torch", "--image", "img:1")
    bep("deployment", "create", "--file", ready["deployment"], "--set-default")
    for verb, name in (("create", "green"), ("update", "blue")):
        refused(
            bep,
            home,
            "deployment",
            verb,
            "--file",
            ready["deployment"],
            "--name",
            name,
            "--set",
            f"environment={reference}",
            code=3,
            field="environment",
            says="does not exist" if "torch" in reference else "has no versions",
        )


def test_deleting_the_default_deployment_while_others_exist_is_refused(bep, home, ready):
    bep("deployment", "create", "--file", ready["deployment"], "--set-default")
    bep("deployment", "create", "--file", ready["deployment"], "--name", "green")
    refused(
        bep,
        home,
        "deployment",
        "delete",
        "--endpoint-name",
        "shop",
        "--name",
        "blue",
        code=4,
        says="make another deployment the default first",
    )


# ------------------------------------------------------------------------------------------------ every verb
HOSTILE = [
    "../../etc/passwd",
    "'; DROP TABLE records;--",
    "$(rm -rf ~)",
    "{{7*7}}",
    "ünïcødé-名前",
    "line\nbreak",
    "x" * 5000,
]
H = object()
"""Where a row's command takes the hostile value."""
BAD_VALUES = [
    # (command, exit code, the field or option the error names): malformed values refused as bad input
    (("model", "create", "--name", H, "--path", "model"), 2, "name"),
    (("model", "create", "--name", "m2", "--version", H, "--path", "model"), 2, "version"),
    (("model", "create", "--name", "m2", "--path", H), 2, "path"),
    (("environment", "create", "--name", H, "--image", "img:1"), 2, "name"),
    (("environment", "create", "--name", "torch", "--image", "img:1", "--version", H), 2, "version"),
    (("environment", "create", "--name", "torch", "--conda-file", H), 2, "conda_file"),
    (("data", "create", "--name", H, "--path", "inputs"), 2, "name"),
    (("data", "create", "--name", "images", "--path", H), 2, "path"),
    (("data", "create", "--name", "images", "--type", H, "--path", "inputs"), 2, "type"),
    (("data", "create", "--name", "images", "--path", "inputs", "--tag", H), 2, "tag"),
    (("datastore", "create", "--name", H, "--path", "empty"), 2, "name"),
    (("endpoint", "create", "--name", H), 2, "name"),
    (("endpoint", "create", "--name", "shop2", "--allowed-inputs", H), 2, "allowed_inputs"),
    (("endpoint", "update", "--name", "shop", "--allowed-outputs", H), 2, "allowed_outputs"),
    (("endpoint", "invoke", "--name", "shop", "--input", H), 2, "input"),
    (("endpoint", "invoke", "--name", "shop", "--input", "inputs", "--set", H), 2, "--set"),
    (("endpoint", "invoke", "--name", "shop", "--input", "inputs", "--tags", H), 2, "tags"),
    (("endpoint", "invoke", "--name", "shop", "--input", "inputs", "--experiment-name", H), 2, "experiment_name"),
    (("endpoint", "invoke", "--name", "shop", "--input", "inputs", "--mini-batch-size", H), 2, "--mini-batch-size"),
    (("endpoint", "invoke", "--name", "shop", "--input", "inputs", "--input-type", H), 2, "--input-type"),
    (("deployment", "create", "--file", "deployment.yml", "--name", H), 2, "name"),
    (("deployment", "create", "--file", "deployment.yml", "--name", "green", "--set", H), 2, "--set"),
    (("deployment", "create", "--file", H), (2, 3), "file"),
    (("deployment", "update", "--file", "deployment.yml", "--set", f"settings.mini_batch_size={'{H}'}"), 2, ""),
    (("job", "list", "--tag", H), 2, "tag"),
    (("job", "list", "--max-results", H), 2, "--max-results"),
]
LOOKUPS = [
    # A name that cannot exist: not found (or refused as bad input), and nothing looked up leaks or runs.
    ("model", "show", "--name", H),
    ("environment", "show", "--name", H),
    ("data", "show", "--name", H),
    ("datastore", "show", "--name", H),
    ("endpoint", "show", "--name", H),
    ("endpoint", "delete", "--name", H),
    ("endpoint", "update", "--name", H, "--description", "x"),
    ("endpoint", "update", "--name", "shop", "--default-deployment", H),
    ("endpoint", "invoke", "--name", H, "--input", "inputs"),
    ("endpoint", "invoke", "--name", "shop", "--input", "inputs", "--deployment-name", H),
    ("deployment", "show", "--endpoint-name", "shop", "--name", H),
    ("deployment", "delete", "--endpoint-name", H, "--name", "blue"),
    ("deployment", "list", "--endpoint-name", H),
    ("job", "show", "--name", H),
    ("job", "stream", "--name", H),
    ("job", "cancel", "--name", H),
    ("job", "logs", "--name", H),
    ("job", "rerun", "--name", H, "--failed"),
    ("job", "resume", "--name", H),
    ("job", "download", "--name", H, "--download-path", "out"),
    ("job", "list", "--endpoint-name", H),
]


@pytest.fixture
def deployed(bep, ready: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """`shop` with default deployment blue; the working folder holds model/, inputs/, empty/ and deployment.yml."""
    bep("deployment", "create", "--file", ready["deployment"], "--set-default")
    monkeypatch.chdir(ready["root"])
    return ready["root"]


def _run(bep, command: tuple, value: str):
    args = [value if part is H else str(part).replace("{H}", value) for part in command]
    try:
        return bep(*args, ok=False)
    except SystemExit as exit_:  # argparse refuses a malformed option itself: usage and exit 2
        return SimpleNamespace(code=exit_.code, err=bep.capsys.readouterr().err)


@pytest.mark.parametrize("command,code,field", BAD_VALUES, ids=[" ".join(map(str, c[:3])) for c, _, _ in BAD_VALUES])
def test_every_verb_refuses_hostile_values_naming_the_field_and_changes_nothing(
    bep, home: Path, deployed: Path, command: tuple, code: int, field: str
) -> None:
    before = snapshot(home)
    for value in HOSTILE:
        result = _run(bep, command, value)
        assert result.code in (code if isinstance(code, tuple) else (code,)), (command, value[:20], result.err)
        assert "error: " in result.err and field in result.err, (command, value[:20], result.err)
        assert "49" not in result.err and "Traceback" not in result.err
        assert len(value) < 200 or value not in result.err, "an oversized value is not echoed whole"
    assert snapshot(home) == before


@pytest.mark.parametrize("command", LOOKUPS, ids=[" ".join(map(str, c[:3])) for c in LOOKUPS])
def test_looking_up_a_hostile_name_is_a_clear_error_and_changes_nothing(
    bep, home: Path, deployed: Path, command: tuple
) -> None:
    before = snapshot(home)
    for value in HOSTILE:
        result = _run(bep, command, value)
        assert result.code in (2, 3), (command, value[:20], result.err)
        assert result.err.startswith("error: ") and "Traceback" not in result.err, result.err
        assert len(value) < 200 or value not in result.err, "an oversized value is not echoed whole"
    assert snapshot(home) == before
    assert not (deployed / "out").exists()


@pytest.mark.parametrize("place", ["a stored file", "a new stored file", "a file beside the storage"])
def test_the_snapshot_sees_any_file_under_the_home_folder_change(bep, home: Path, ready, place: str) -> None:
    stored = sorted(path for path in (home / "storage").rglob("*") if path.is_file())
    changed = {
        "a stored file": stored[0],
        "a new stored file": home / "storage" / "jobs" / "new.json",
        "a file beside the storage": home / "elsewhere.txt",
    }[place]
    before = snapshot(home)
    changed.parent.mkdir(parents=True, exist_ok=True)
    changed.write_bytes(b"changed")

    assert snapshot(home) != before
