"""Every kind of input, through the CLI on the local backend: a local folder (uploaded first), a data asset, a
datastore path, an s3:// URI a datastore stands in for, and Azure's inputs YAML; job metadata and its filters.

Jobs run to their end with real processes, so each test also shows that the job read what the input named.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.progress import ProgressBar
from batch_endpoints.uploads import upload_input
from tests.core_fixtures import EVERY_KIND_OF_NAME, write_tree
from tests.faults import errors_of

SCRIPT = "import os\n\ndef run(mini_batch):\n    return [os.path.basename(path) for path in mini_batch]\n"


def records(home: Path) -> list[tuple]:
    db = sqlite3.connect(home / "records.db")
    try:
        return db.execute("SELECT kind, key, version, data FROM records ORDER BY kind, key").fetchall()
    finally:
        db.close()


def stored(home: Path) -> list[str]:
    """The files in storage (empty folders are not content: S3 has none)."""
    root = home / "storage"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def refused(bep, home: Path, *args: object, code: int, field: str, says: str = "") -> str:
    """The command fails with the exit code, names the field, and changes no record and no stored file."""
    before = records(home), stored(home)
    result = bep(*args, ok=False)
    assert result.code == code, result.err
    assert result.err.startswith("error: "), result.err
    assert field in result.err and says in result.err, result.err
    assert (records(home), stored(home)) == before, "a refused command changed something"
    return result.err


def scored(bep, job_id: str) -> list[str]:
    """The file names in a finished job's output, in output order."""
    job = bep("job", "show", "--name", job_id).json()
    assert job["status"] == "Completed", job
    return list(pd.read_csv(job["output_uri"])["prediction"])


def open_shop(bep, root: Path, *, script: str = SCRIPT, deployment_lines: str = "") -> Path:
    """Endpoint `shop`, default deployment `blue` scoring with `script`; returns `root`, now holding `images/`
    (three files)."""
    code = write_tree(root / "code", {"score.py": script})
    model = write_tree(root / "model", {"m.bin": b"\0"})
    write_tree(root / "images", {"a.png": "a", "b.png": "bb", "sub/c.png": "ccc"})
    deployment = root / "deployment.yml"
    deployment.write_text(
        "name: blue\nendpoint_name: shop\nmodel: azureml:m:1\n"
        f"code_configuration:\n  code: {code}\n  scoring_script: score.py\ncompute: azureml:cpu-cluster\n"
        f"settings:\n  mini_batch_size: 2\n{deployment_lines}"
    )
    bep("model", "create", "--name", "m", "--path", model)
    bep("endpoint", "create", "--name", "shop")
    bep("deployment", "create", "--file", deployment, "--set-default")
    return root


@pytest.fixture
def shop(bep, home: Path, tmp_path: Path) -> Path:
    return open_shop(bep, tmp_path)


def invoke(bep, *args: object) -> str:
    result = bep("endpoint", "invoke", "--name", "shop", *args, "--stream")
    return result.out.split()[0]


# ------------------------------------------------------------------------------------------ local files
def test_a_local_folder_is_uploaded_to_the_default_datastore_and_scored_from_there(bep, home, shop):
    job_id = invoke(bep, "--input", shop / "images")

    job = bep("job", "show", "--name", job_id).json()
    uploaded = Path(job["input"]["uri"])
    assert uploaded.is_relative_to(home / "storage" / "uploads" / "inputs")
    assert uploaded.name == "images"
    assert sorted(p.name for p in uploaded.rglob("*.png")) == ["a.png", "b.png", "c.png"]
    assert sorted(scored(bep, job_id)) == ["a.png", "b.png", "c.png"]


def test_files_changed_after_invoke_fail_naming_them_and_the_others_are_scored_as_invoked(bep, home, shop):
    # Taken in as `invoke --input ./images` does, then changed before the job reads them; the job is invoked on
    # the stored input by its datastore path, so that no change races the job's own reads.
    uri = upload_input(FolderBlobStore(str(home / "storage")), str(shop / "images"), field="input")
    (shop / "images" / "b.png").write_text("written in place")
    (shop / "images" / "a.png").unlink()
    write_tree(shop / "images", {"new.png": "added after invoke"})

    job_id = invoke(
        bep, "--input", f"azureml://datastores/workspaceblobstore/paths/{Path(uri).relative_to(home / 'storage')}"
    )

    job = bep("job", "show", "--name", job_id).json()
    assert scored(bep, job_id) == ["c.png"]
    failed = {error["file"]: error["error"] for error in errors_of(job)}
    assert sorted(failed) == ["a.png", "b.png"]
    assert "a.png was removed after the job was invoked" in failed["a.png"]
    assert "b.png was written after the job was invoked" in failed["b.png"]


def test_each_local_upload_gets_its_own_prefix(bep, home, shop):
    first = bep("job", "show", "--name", invoke(bep, "--input", shop / "images")).json()["input"]["uri"]
    second = bep("job", "show", "--name", invoke(bep, "--input", shop / "images" / "a.png")).json()["input"]

    assert first != second["uri"]
    assert second["type"] == "uri_file" and Path(second["uri"]).name == "a.png"


def test_a_refused_invocation_leaves_no_upload_behind(bep, home, shop):
    out = write_tree(shop / "out", {"predictions.csv": "precious\n"})

    refused(
        bep,
        home,
        "endpoint",
        "invoke",
        "-n",
        "shop",
        "-i",
        shop / "images",
        "--output-path",
        out,
        code=4,
        field="output",
    )
    assert (out / "predictions.csv").read_text() == "precious\n"


def test_the_upload_progress_bar_draws_on_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for out in (terminal, pipe):
        bar = ProgressBar("uploading images", out=out)
        for done in (0, 512 * 1024, 1024 * 1024):
            bar(done, 1024 * 1024)
        bar.close()

    assert terminal.getvalue().count("\r") == 3
    assert "[###############...............]  50% 0.5/1.0 MiB" in terminal.getvalue()
    assert terminal.getvalue().endswith("100% 1.0/1.0 MiB\n")
    assert pipe.getvalue() == ""


# ------------------------------------------------------------------------------------------ data assets
def test_data_asset_versions_are_registered_listed_and_invoked_by_reference(bep, home, shop):
    first = bep("data", "create", "--name", "images", "--path", shop / "images").json()
    (shop / "images" / "d.png").write_text("dddd")
    second = bep("data", "create", "-n", "images", "-p", shop / "images", "--type", "uri_folder", "--tag", "k=v").json()

    assert (first["version"], second["version"]) == ("1", "2")
    assert Path(first["path"]) == home / "storage" / "data" / "images" / "1"  # a copy: later edits do not leak in
    assert second["tags"] == {"k": "v"}
    assert bep("data", "show", "--name", "images", "--label", "latest").json()["version"] == "2"
    listed = bep("data", "list", "--name", "images").out.splitlines()
    assert [line.split()[:3] for line in listed[1:]] == [["images", "1", "uri_folder"], ["images", "2", "uri_folder"]]

    pinned = invoke(bep, "--input", "azureml:images:1")
    latest = invoke(bep, "--input", "images@latest")

    assert sorted(scored(bep, pinned)) == ["a.png", "b.png", "c.png"]
    assert sorted(scored(bep, latest)) == ["a.png", "b.png", "c.png", "d.png"]
    assert bep("job", "show", "--name", pinned).json()["input"]["source"] == "azureml:images:1"
    assert bep("job", "show", "--name", latest).json()["input"]["source"] == "azureml:images:2"


def test_a_data_asset_from_azures_yaml_with_a_path_relative_to_the_file(bep, home, shop):
    spec = shop / "specs" / "data.yml"
    spec.parent.mkdir()
    spec.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\n"
        "name: one-image\nversion: 7\ntype: uri_file\npath: ../images/a.png\ndescription: a single image\n"
    )

    asset = bep("data", "create", "--file", spec).json()

    assert (asset["name"], asset["version"], asset["type"]) == ("one-image", "7", "uri_file")
    assert Path(asset["path"]).read_text() == "a"
    job_id = invoke(bep, "--input", "one-image:7")
    assert scored(bep, job_id) == ["a.png"]


@pytest.mark.parametrize(
    ("flags", "code", "field", "says"),
    [
        (["--type", "mltable"], 2, "type", "uri_folder"),
        (["--type", "uri_file"], 2, "type", "is a folder, but the type is uri_file"),
        (["--version", "1"], 4, "version", "already exists"),
        (["--version", "latest"], 2, "version", "label"),
    ],
)
def test_bad_data_assets_are_refused_and_change_nothing(bep, home, shop, flags, code, field, says):
    bep("data", "create", "--name", "images", "--path", shop / "images")

    refused(
        bep,
        home,
        "data",
        "create",
        "--name",
        "images",
        "--path",
        shop / "images",
        *flags,
        code=code,
        field=field,
        says=says,
    )


@pytest.mark.parametrize(
    "path", ["missing-folder", "azureml://datastores/nowhere/paths/x", "s3://some-bucket/x", "https://example.com/x"]
)
def test_a_data_asset_whose_path_cannot_be_read_is_refused(bep, home, shop, path):
    refused(bep, home, "data", "create", "--name", "images", "--path", path, code=2, field="path")


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("azureml:images:9", "images:9 does not exist"),
        ("ghost@latest", "'ghost' has no versions"),
        ("azureml://datastores/nowhere/paths/x", "datastore 'nowhere' does not exist"),
        ("azureml://datastores/workspaceblobstore/paths/nothing-here", "does not exist"),
        ("azureml://datastores/workspaceblobstore/x", "/paths/"),
        ("azureml://datastores/workspaceblobstore/paths/../escape", "may not go up"),
        ("s3://unmapped-bucket/images", "register a datastore"),
        ("wasbs://container@account.blob.core.windows.net/x", "not supported"),
    ],
)
def test_an_input_the_backend_cannot_read_is_refused_at_invoke(bep, home, shop, reference, says):
    bep("data", "create", "--name", "images", "--path", shop / "images")

    refused(bep, home, "endpoint", "invoke", "--name", "shop", "--input", reference, code=2, field="input", says=says)


def test_a_uri_file_asset_cannot_be_scored_as_a_folder(bep, home, shop):
    bep("data", "create", "--name", "one", "--type", "uri_file", "--path", shop / "images" / "a.png")

    args = ("endpoint", "invoke", "-n", "shop", "-i", "one:1", "--input-type", "uri_folder")
    refused(bep, home, *args, code=2, field="input_type", says="is a uri_file")


# ------------------------------------------------------------------------------------------ datastores
def test_datastore_paths_for_input_and_output(bep, home, shop):
    write_tree(shop / "lake" / "batch1", {"x.png": "x", "y.png": "y"})
    bep("datastore", "create", "--name", "lake", "--path", shop / "lake", "--description", "the lake")

    job_id = invoke(
        bep,
        "--input",
        "azureml://datastores/lake/paths/batch1",
        "--output-path",
        "azureml://datastores/workspaceblobstore/paths/results/run1",
    )

    job = bep("job", "show", "--name", job_id).json()
    assert job["input"]["uri"] == str(shop / "lake" / "batch1")
    assert job["output_uri"] == str(home / "storage" / "results" / "run1" / "predictions.csv")
    assert sorted(scored(bep, job_id)) == ["x.png", "y.png"]
    listed = bep("datastore", "list").out.splitlines()
    assert [line.split()[:2] for line in listed[1:]] == [["workspaceblobstore", "*"], ["lake", str(shop / "lake")]]
    assert bep("datastore", "show", "--name", "workspaceblobstore").json()["root"] == str(home / "storage")


def test_a_local_datastore_stands_in_for_an_s3_bucket(bep, home, shop):
    write_tree(shop / "mirror" / "images", {"m.png": "m"})
    bep(
        "datastore",
        "create",
        "--name",
        "mirror",
        "--bucket",
        "my-bucket",
        "--prefix",
        "images",
        "--path",
        shop / "mirror" / "images",
    )

    job_id = invoke(bep, "--input", "s3://my-bucket/images/")

    assert bep("job", "show", "--name", job_id).json()["input"]["uri"] == str(shop / "mirror" / "images")
    assert scored(bep, job_id) == ["m.png"]


@pytest.mark.parametrize(
    ("flags", "code", "field"),
    [
        (["--name", "workspaceblobstore", "--path", "."], 2, "name"),
        (["--name", "lake", "--path", "no-such-folder"], 2, "folder"),
        (["--name", "lake"], 2, "folder"),
        (["--name", "lake", "--path", ".", "--bucket", "Not_A_Bucket"], 2, "bucket"),
        (["--name", "taken", "--path", "."], 4, "name"),
    ],
)
def test_bad_datastores_are_refused_and_change_nothing(bep, home, shop, flags, code, field):
    bep("datastore", "create", "--name", "taken", "--path", shop)

    refused(bep, home, "datastore", "create", *flags, code=code, field=field)


def test_an_unknown_datastore_is_not_found(bep, home, shop):
    assert bep("datastore", "show", "--name", "ghost", ok=False).code == 3


# ------------------------------------------------------------------------------------------ inputs YAML
def test_azures_inputs_and_outputs_yaml(bep, home, shop):
    spec = shop / "inputs-and-outputs.yml"
    spec.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/batchJob.schema.json\n"
        "inputs:\n  heart_data:\n    type: uri_folder\n    path: images\n    mode: ro_mount\n"
        "outputs:\n  score:\n    type: uri_file\n"
        "    path: azureml://datastores/workspaceblobstore/paths/batch-jobs/run-7/scores.csv\n"
    )

    job_id = invoke(bep, "--file", spec, "--experiment-name", "from-yaml")

    job = bep("job", "show", "--name", job_id).json()
    assert Path(job["input"]["uri"]).is_relative_to(home / "storage" / "uploads" / "inputs")
    assert job["output_uri"] == str(home / "storage" / "batch-jobs" / "run-7" / "scores.csv")
    assert job["experiment_name"] == "from-yaml"
    assert sorted(scored(bep, job_id)) == ["a.png", "b.png", "c.png"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("inputs: {}\n", "inputs"),
        ("inputs:\n  a: {type: uri_folder, path: images}\n  b: {type: uri_folder, path: images}\n", "inputs"),
        ("inputs:\n  a: {path: images}\n  mode:\n    type: string\n    default: append\n", "inputs.mode"),
        ("inputs:\n  mode:\n    type: string\n    default: append\n", "inputs"),
        ("inputs:\n  a: {type: mltable, path: images}\n", "inputs.a.type"),
        ("inputs:\n  a: {type: uri_folder}\n", "inputs.a.path"),
        ("inputs:\n  a: {type: uri_folder, path: images, colour: red}\n", "inputs.a.colour"),
        ("inputs:\n  a: {path: missing-folder}\n", "input"),
        ("outputs:\n  score: {path: out}\n", "inputs"),
    ],
)
def test_a_bad_inputs_yaml_is_refused_naming_the_field(bep, home, shop, text, field):
    spec = shop / "inputs.yml"
    spec.write_text(text)

    refused(bep, home, "endpoint", "invoke", "--name", "shop", "--file", spec, code=2, field=field)


def test_invoke_needs_an_input(bep, home, shop):
    refused(bep, home, "endpoint", "invoke", "--name", "shop", code=2, field="input")


# ------------------------------------------------------------------------------------------ job metadata
def test_jobs_carry_experiment_display_name_and_tags_and_list_filters_by_them(bep, home, shop):
    tagged = invoke(
        bep,
        "-i",
        shop / "images",
        "--experiment-name",
        "nightly",
        "--display-name",
        "Night 1",
        "--tags",
        "team=vision",
        "run=1",
    )
    plain = invoke(bep, "-i", shop / "images")

    job = bep("job", "show", "--name", tagged).json()
    assert (job["experiment_name"], job["display_name"], job["tags"]) == (
        "nightly",
        "Night 1",
        {"team": "vision", "run": "1"},
    )
    assert bep("job", "show", "--name", plain).json()["experiment_name"] == "shop"  # Azure's default: the endpoint

    def listed(*flags: str) -> list[str]:
        return [line.split()[0] for line in bep("job", "list", *flags).out.splitlines()[1:]]

    assert listed() == [plain, tagged]
    assert listed("--experiment-name", "nightly") == [tagged]
    assert listed("--experiment-name", "shop") == [plain]
    assert listed("--tag", "team=vision", "--tag", "run=1") == [tagged]
    assert listed("--tag", "team=vision", "--tag", "run=2") == []
    assert listed("--endpoint-name", "shop", "--tag", "team=vision", "--max-results", "1") == [tagged]


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--experiment-name", "has space"], "experiment_name"),
        (["--tags", "novalue"], "tags"),
        (["--tags", "=v"], "tags"),
    ],
)
def test_bad_job_metadata_is_refused(bep, home, shop, flags, field):
    refused(bep, home, "endpoint", "invoke", "--name", "shop", "--input", shop / "images", *flags, code=2, field=field)


def test_a_bad_tag_filter_is_refused(bep, home, shop):
    assert bep("job", "list", "--tag", "novalue", ok=False).code == 2


# ------------------------------------------------------------------------------------------ scoring code
def test_an_unchanged_code_folder_is_stored_once(bep, home, shop):
    deployment = shop / "deployment.yml"
    blue = bep("deployment", "show", "-e", "shop", "-n", "blue").json()
    green = bep("deployment", "create", "--file", deployment, "--name", "green").json()
    bep("deployment", "update", "--file", deployment)

    code_folders = sorted(p.name for p in (home / "storage" / "code").iterdir())
    assert green["code_configuration"]["code"] == blue["code_configuration"]["code"]
    assert code_folders == [Path(blue["code_configuration"]["code"]).name]

    (shop / "code" / "score.py").write_text(SCRIPT + "\n# changed\n")
    changed = bep("deployment", "update", "--file", deployment).json()

    assert changed["code_configuration"]["code"] != blue["code_configuration"]["code"]
    assert len(list((home / "storage" / "code").iterdir())) == 2


# ------------------------------------------------------------------------------------------ what a folder holds
def test_every_file_of_a_local_folder_is_scored_whatever_its_name(bep, home, shop):
    write_tree(shop / "every", EVERY_KIND_OF_NAME)

    job_id = invoke(bep, "--input", shop / "every")

    job = bep("job", "show", "--name", job_id).json()
    assert (job["counts"]["files"], job["counts"]["files_succeeded"]) == (len(EVERY_KIND_OF_NAME),) * 2
    assert sorted(scored(bep, job_id)) == sorted(name.rpartition("/")[2] for name in EVERY_KIND_OF_NAME)


def test_exclude_leaves_out_the_files_it_matches_and_only_those(bep, home, shop):
    write_tree(shop / "every", EVERY_KIND_OF_NAME)

    job_id = invoke(bep, "--input", shop / "every", "--exclude", ".*", "--exclude", "*.pyc")

    assert bep("job", "show", "--name", job_id).json()["input"]["exclude"] == [".*", "*.pyc"]
    assert sorted(scored(bep, job_id)) == ["one.txt", "three.txt", "two.txt"]


@pytest.mark.parametrize(
    ("target", "pattern", "field", "says"),
    [
        ("images", "", "input.exclude.0", "must be a glob pattern"),
        ("images", "/abs/*", "input.exclude.0", "no leading '/'"),
        ("images/a.png", "*.tmp", "input.exclude", "exclude applies to folder inputs"),
    ],
)
def test_a_bad_exclude_is_refused_naming_it(bep, home, shop, target, pattern, field, says):
    invocation = ("endpoint", "invoke", "--name", "shop", "--input", shop / target, "--exclude", pattern)
    refused(bep, home, *invocation, code=2, field=field, says=says)


@pytest.mark.parametrize("kind", ["dangling", "self", "folder-loop"])
def test_a_bad_link_in_a_local_folder_is_refused_naming_it_and_nothing_changes(bep, home, shop, kind):
    folder = write_tree(shop / "linked", {"a.png": "a", "sub/b.png": "b"})
    link = folder / "sub" / "bad"
    link.symlink_to({"dangling": shop / "deleted.png", "self": link, "folder-loop": folder}[kind])
    says = {"dangling": "which does not exist", "self": "a loop of links", "folder-loop": "a folder it is in"}[kind]

    err = refused(
        bep, home, "endpoint", "invoke", "--name", "shop", "--input", folder, code=2, field="input", says=says
    )

    assert err.startswith(f"error: input: {link} is a link to ")
    assert "Traceback" not in err
