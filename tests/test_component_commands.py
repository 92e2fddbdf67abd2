"""A component's command: the placeholders checked at registration, and the substitution made when it runs."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_endpoints.component_commands import check_command, render_command
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs.components import ComponentInput, ComponentOutput

INPUTS = {
    "data": ComponentInput(type="uri_folder"),
    "mode": ComponentInput(type="string"),
    "size": ComponentInput(type="number", default=0.3),
    "transforms": ComponentInput(type="custom_model", optional=True),
    "encoding": ComponentInput(type="string", optional=True, default="ordinal"),
}
OUTPUTS = {"scores": ComponentOutput(type="uri_folder")}
COMMAND = (
    "python score.py --data ${{inputs.data}} --mode ${{inputs.mode}} --size ${{ inputs.size }} "
    "$[[--transforms ${{inputs.transforms}}]] $[[--encoding ${{inputs.encoding}}]] --out ${{outputs.scores}}"
)


def test_a_command_naming_declared_inputs_and_outputs_is_accepted() -> None:
    check_command(COMMAND, INPUTS, OUTPUTS, field="command")


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("python a.py ${{inputs.missing}}", "${{inputs.missing}}, which the component does not declare"),
        ("python a.py ${{outputs.data}}", "${{outputs.data}}, which the component does not declare"),
        ("python a.py ${{parent.inputs.data}}", "only ${{inputs.NAME}} and ${{outputs.NAME}}"),
        ("python a.py ${{inputs.data", "only ${{inputs.NAME}} and ${{outputs.NAME}}"),
        ("python a.py $[[--mode ${{inputs.mode}}]]", "names a required input, inputs.mode"),
        ("python a.py $[[--out ${{outputs.scores}}]]", "names an output, outputs.scores"),
        ("python a.py $[[--verbose]]", "names no input"),
        ("python a.py $[[--t ${{inputs.transforms}}", "without its ']]'"),
        ("python a.py --t ${{inputs.transforms}}", "the optional input transforms is used outside $[[ ]]"),
    ],
)
def test_a_command_naming_what_is_not_declared_is_refused(command: str, problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_command(command, INPUTS, OUTPUTS, field="command")
    assert refused.value.field == "command"
    assert problem in refused.value.message


def test_placeholders_become_values_defaults_and_paths_and_missing_optional_parts_go() -> None:
    rendered = render_command(COMMAND, INPUTS, {"data": "/in put", "mode": "append"}, {"scores": "/out"})
    assert shlex.split(rendered) == [
        *("python", "score.py", "--data", "/in put", "--mode", "append", "--size", "0.3"),
        *("--encoding", "ordinal", "--out", "/out"),
    ]


def test_an_optional_part_stays_when_its_input_is_given() -> None:
    given_inputs = {"data": "/in", "mode": "m", "transforms": "/t", "encoding": "onehot"}
    rendered = render_command(COMMAND, INPUTS, given_inputs, {"scores": "/out"})
    assert "--transforms /t" in rendered and "--encoding onehot" in rendered


def test_a_required_input_without_a_value_is_named() -> None:
    with pytest.raises(ValidationError) as refused:
        render_command(COMMAND, INPUTS, {"data": "/in"}, {"scores": "/out"})
    assert refused.value.field == "inputs.mode"


@given(mode=st.text(), encoding=st.text(min_size=1))
def test_hostile_strings_stay_one_argument_each(mode: str, encoding: str) -> None:
    values = {"data": "/in", "mode": mode, "encoding": encoding}
    rendered = render_command(COMMAND, INPUTS, values, {"scores": "/out"})
    assert shlex.split(rendered) == [
        *("python", "score.py", "--data", "/in", "--mode", mode, "--size", "0.3"),
        *("--encoding", encoding, "--out", "/out"),
    ]


# Commands built from the language's own tokens, half-written and nested, and the shell's metacharacters.
TOKENS = st.sampled_from(
    [
        "${{",
        "}}",
        "$[[",
        "]]",
        "inputs.",
        "outputs.",
        "mode",
        "encoding",
        "transforms",
        "scores",
        "${{inputs.mode}}",
        "${{inputs.encoding}}",
        "${{inputs.transforms}}",
        "${{outputs.scores}}",
        " ",
        "$(",
        ")",
        ";",
        "|",
        "`",
        "'",
        '"',
        "\n",
        "{",
        "[",
    ]
)


@given(command=st.lists(TOKENS, max_size=14).map("".join), mode=st.text(max_size=10))
def test_any_command_is_refused_naming_the_field_or_renders_with_no_placeholder_left(command: str, mode: str) -> None:
    try:
        check_command(command, INPUTS, OUTPUTS, field="command")
    except ValidationError as refused:
        assert refused.field == "command"
        return
    rendered = render_command(command, INPUTS, {"data": "/in", "mode": mode}, {"scores": "/out"})
    left = rendered.replace(shlex.quote(mode), "")
    assert "${{inputs." not in left and "${{outputs." not in left and "$[[" not in left


@pytest.mark.parametrize(
    "command",
    ["$[[" * 300_000, "$[[ ${{inputs.encoding}}" * 30_000 + "]]", "${{" * 300_000, "${{ inputs." * 100_000],
)
def test_a_long_run_of_openers_is_refused_in_one_pass(command: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_command(command, INPUTS, OUTPUTS, field="command")
    assert refused.value.field == "command"


def test_optional_parts_cannot_nest() -> None:
    with pytest.raises(ValidationError, match="optional parts cannot nest"):
        check_command("a $[[ --x $[[ --e ${{inputs.encoding}} ]] ]]", INPUTS, OUTPUTS, field="command")
