"""Hostile YAML files against every loader that reads one (invoke's inputs file, compute, component): an alias
bomb, nesting deeper than the parser's stack, a file of megabytes, a chain of step files and a pipeline a thousand
steps deep or wide. Each is refused naming the file, or loads, and none raises anything but our errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_endpoints.errors import ValidationError
from batch_endpoints.pipeline_graph import check_pipeline
from batch_endpoints.specs.components import PipelineComponent
from batch_endpoints.yaml_files import reading
from batch_endpoints.yaml_files.components import MAX_NESTED_FILES, load_component
from batch_endpoints.yaml_files.loading import load_compute, load_invoke
from tests.core_fixtures import write_tree

COMPUTE = "name: cpu-x\ntype: amlcompute\nmax_instances: 2\n"
INVOKE = "inputs:\n  data:\n    type: uri_folder\n    path: ./data\n"
COMPONENT = "type: command\nname: c\ncommand: echo\nenvironment: azureml:env@latest\n"
LOADERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "compute.yml": (load_compute, COMPUTE),
    "inputs.yml": (load_invoke, INVOKE),
    "c.yml": (load_component, COMPONENT),
}


def alias_chain(levels: int, fanout: int) -> str:
    """`tags:` holding an alias bomb: each level a list of `fanout` aliases of the level below."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * fanout)}]" for n in range(1, levels)]
    return "\n".join(lines) + f"\ntags: *l{levels - 1}\n"


def expanded(levels: int, fanout: int) -> int:
    """Values in the document once its aliases are expanded: the mapping, its keys, each level, and `tags`."""
    one_level = [1 + fanout]
    for _ in range(1, levels):
        one_level.append(1 + fanout * one_level[-1])
    return 1 + (levels + 1) + sum(one_level) + one_level[-1]  # the document, its keys, the lists, tags again


@pytest.mark.parametrize("name", LOADERS)
def test_a_billion_laughs_is_refused_naming_the_file_before_anything_expands_it(tmp_path: Path, name: str) -> None:
    load, body = LOADERS[name]
    write_tree(tmp_path, {name: alias_chain(9, 9) + body.replace("tags:", "other:")})
    with pytest.raises(ValidationError, match=r"anchors and aliases expand to more than 100000 values") as refused:
        load(tmp_path / name)
    assert str(tmp_path / name) in refused.value.message


@settings(max_examples=40, deadline=None)
@given(levels=st.integers(1, 10), fanout=st.integers(1, 12))
def test_aliases_load_while_their_expansion_is_within_bounds_and_are_refused_beyond(levels: int, fanout: int) -> None:
    text = alias_chain(levels, fanout)
    loader = reading._StrictLoader(text)
    try:
        node = yaml.SafeLoader.get_single_node(loader)  # the graph unchecked, to count it here
        assert node is not None
        size = reading._expanded_size(node, {})
    except yaml.YAMLError:
        size = reading.MAX_VALUES + 1
    finally:
        loader.dispose()
    assert size == expanded(levels, fanout) or size > reading.MAX_VALUES
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"aliases-{os.getpid()}.yml"
    path.write_text(text)
    try:
        if size <= reading.MAX_VALUES:
            assert len(str(reading.read_yaml(path)["tags"])) > 0
        else:
            with pytest.raises(ValidationError, match="anchors and aliases"):
                reading.read_yaml(path)
    finally:
        path.unlink()


def test_an_anchor_reused_a_few_times_still_loads(tmp_path: Path) -> None:
    write_tree(tmp_path, {"inputs.yml": "inputs:\n  a: &x {type: uri_folder, path: ./a}\n  b: *x\n"})
    loaded = load_invoke(tmp_path / "inputs.yml")
    assert set(loaded.inputs) == {"a", "b"}


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_nesting_deeper_than_the_bound_is_refused_not_a_recursion_error(
    tmp_path: Path, name: str, opening: str
) -> None:
    load, body = LOADERS[name]
    deep = opening * 5000 if opening != "- " else "".join(f"{' ' * (2 * n)}-\n" for n in range(300))
    write_tree(tmp_path, {name: body + "tags: " + (deep if opening != "- " else "\n" + deep) + "\n"})
    with pytest.raises(ValidationError, match=f"nests deeper than {reading.MAX_DEPTH} levels"):
        load(tmp_path / name)


def test_nesting_up_to_the_bound_loads() -> None:
    assert yaml.load("[" * (reading.MAX_DEPTH - 1) + "]" * (reading.MAX_DEPTH - 1), Loader=reading._StrictLoader)


@pytest.mark.parametrize("name", LOADERS)
def test_a_file_larger_than_the_bound_is_refused_unread(tmp_path: Path, name: str) -> None:
    load, body = LOADERS[name]
    write_tree(tmp_path, {name: body + "# " + "x" * reading.MAX_FILE_BYTES + "\n"})
    with pytest.raises(ValidationError, match=f"larger than {reading.MAX_FILE_BYTES} bytes"):
        load(tmp_path / name)


def test_a_key_given_twice_is_still_refused_naming_it(tmp_path: Path) -> None:
    write_tree(tmp_path, {"compute.yml": COMPUTE + "max_instances: 3\n"})
    with pytest.raises(ValidationError, match="key 'max_instances' appears twice"):
        load_compute(tmp_path / "compute.yml")


STEP_COMPONENT = {
    "type": "command",
    "code": "src",
    "environment": "azureml:env@latest",
    "command": "echo ${{inputs.x}}",
    "inputs": {"x": {"type": "uri_folder"}},
    "outputs": {"y": {"type": "uri_folder"}},
}


def pipeline_file(tmp_path: Path, jobs: dict[str, Any]) -> Path:
    document = {"type": "pipeline", "name": "p", "inputs": {"data": {"type": "uri_folder"}}, "jobs": jobs}
    write_tree(tmp_path, {"p.yml": yaml.safe_dump(document), "src/run.sh": "echo\n"})
    return tmp_path / "p.yml"


def reads(source: str) -> dict[str, Any]:
    return {"type": "command", "component": STEP_COMPONENT, "inputs": {"x": source}}


def checked(loaded: object) -> list[str]:
    """The pipeline's steps in the order check_pipeline gives, with their components inline."""
    assert isinstance(loaded, PipelineComponent)
    inline = {name: step.component for name, step in loaded.jobs.items() if not isinstance(step.component, str)}
    return check_pipeline(loaded, inline)


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_a_pipeline_of_a_thousand_steps_loads_and_orders_each_step_after_what_it_reads(
    tmp_path: Path, shape: str
) -> None:
    steps = 1000
    jobs = {
        f"s{n}": reads(
            "${{parent.inputs.data}}" if shape == "wide" or n == 0 else f"${{{{parent.jobs.s{n - 1}.outputs.y}}}}"
        )
        for n in reversed(range(steps))
    }
    order = checked(load_component(pipeline_file(tmp_path, jobs)))
    assert sorted(order) == sorted(jobs)
    if shape == "deep":
        assert order == [f"s{n}" for n in range(steps)]


def test_a_cycle_through_a_thousand_steps_is_refused_naming_an_input_on_it(tmp_path: Path) -> None:
    steps = 1000
    jobs = {f"s{n}": reads(f"${{{{parent.jobs.s{(n - 1) % steps}.outputs.y}}}}") for n in range(steps)}
    loaded = load_component(pipeline_file(tmp_path, jobs))
    with pytest.raises(ValidationError, match="makes a cycle between steps") as refused:
        checked(loaded)
    assert refused.value.field is not None and refused.value.field.endswith(".inputs.x")


def test_a_chain_of_step_files_longer_than_the_bound_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    files = {
        f"c{n}.yml": yaml.safe_dump(
            {"type": "pipeline", "name": f"p{n}", "jobs": {"a": {"type": "pipeline", "component": f"c{n + 1}.yml"}}}
        )
        for n in range(400)
    }
    write_tree(tmp_path, {**files, "c400.yml": COMPONENT})
    with pytest.raises(ValidationError, match=f"chain of step files; at most {MAX_NESTED_FILES}"):
        load_component(tmp_path / "c0.yml")


def test_a_step_file_naming_its_pipeline_through_a_link_is_refused(tmp_path: Path) -> None:
    path = pipeline_file(tmp_path, {"a": {"type": "command", "component": "steps/link.yml"}})
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "link.yml").symlink_to(path)
    with pytest.raises(ValidationError, match="names itself"):
        load_component(path)
