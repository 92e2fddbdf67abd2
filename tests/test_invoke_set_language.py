"""`--set` at invoke, as a property: whatever the key and value, a pair is read as Azure writes it (the first '='
splits it), lands in one place (a named input or output, a run setting, or a refusal naming the key), and a value
read back is the one given."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_endpoints import yaml_specs
from batch_endpoints.errors import ValidationError
from batch_endpoints.yaml_files.set_language import INVOKE_SETTINGS

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
# Words YAML 1.1 reads as booleans or null: `--set inputs.x=on` is True, as in Azure's CLI, which reads YAML too.
YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null"}
TEXT = st.from_regex(r"[A-Za-z][A-Za-z0-9/_@.:-]{0,30}[A-Za-z0-9]", fullmatch=True).filter(
    lambda text: text.lower() not in YAML_WORDS
)
KEYS = st.text(string.printable.replace("=", ""), min_size=1, max_size=40).filter(str.strip)


@given(key=KEYS, value=st.text(max_size=40))
def test_a_pair_splits_at_its_first_equals_sign(key: str, value: str) -> None:
    assert yaml_specs.parse_overrides([f"{key}={value}"]) == {key.strip(): value}


@given(key=KEYS, value=st.text(max_size=20))
def test_every_key_is_an_input_an_output_a_setting_or_refused_by_name(key: str, value: str) -> None:
    try:
        named, settings = yaml_specs.split_invoke_overrides({key: value})
    except ValidationError as refused:
        assert key in str(refused.field)
        return
    assert (named, settings) in (({key: value}, {}), ({}, {INVOKE_SETTINGS[key.removeprefix("settings.")]: value}))


@given(name=NAMES.filter(lambda name: name != "data"), text=TEXT)
def test_a_literal_given_by_set_reads_back_as_written(name: str, text: str) -> None:
    declared = yaml_specs.load_invoke(None, {f"inputs.{name}": text, "inputs.data.path": "s3://bucket/in"})

    assert declared.inputs[name].default == text and declared.inputs["data"].is_data


@given(name=NAMES, path=TEXT.map(lambda text: f"s3://bucket/{text}"))
def test_a_data_input_given_by_set_keeps_its_reference_as_written(name: str, path: str) -> None:
    declared = yaml_specs.load_invoke(None, {f"inputs.{name}.type": "uri_folder", f"inputs.{name}.path": path})

    assert declared.inputs[name].path == path and declared.inputs[name].type == "uri_folder"


@pytest.mark.parametrize("written", ["settings.mini_batch_size", "mini_batch_size"])
def test_a_setting_is_taken_with_or_without_settings(written: str) -> None:
    assert yaml_specs.split_invoke_overrides({written: "3"}) == ({}, {"mini_batch_size": "3"})


@given(
    name=NAMES,
    text=st.tuples(st.text(max_size=15), st.sampled_from(["\n", "\r", "\r\n", "\n\n"]), st.text(max_size=15)).map(
        "".join
    ),
)
def test_a_value_with_a_line_break_reads_back_as_written_not_folded(name: str, text: str) -> None:
    pair = yaml_specs.parse_overrides([f"inputs.{name}.type=string", f"inputs.{name}.default={text}"])
    declared = yaml_specs.load_invoke(None, yaml_specs.split_invoke_overrides(pair)[0])

    assert declared.inputs[name].default == text


@pytest.mark.parametrize("key", ["inputs..path", "inputs.a.", "inputs. .path", "outputs..", "inputs.a..type"])
def test_a_key_with_an_empty_part_is_refused_naming_it(key: str) -> None:
    with pytest.raises(ValidationError, match="is not a valid override key") as refused:
        yaml_specs.load_invoke(None, yaml_specs.split_invoke_overrides({key: "x"})[0])
    assert key in str(refused.value)


@pytest.mark.parametrize("name", ["ä", "a b", "$(touch x)", "a;b", "`id`", "x" * 65])
def test_an_input_name_outside_azures_rule_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ValidationError, match="must be a letter or '_', then letters, digits or '_'"):
        yaml_specs.load_invoke(None, {f"inputs.{name}.type": "string", f"inputs.{name}.default": "1"})


def test_ten_thousand_pairs_each_read_back() -> None:
    pairs = [f"inputs.i{n}.type=string" for n in range(10_000)] + [f"inputs.i{n}.default=v={n}" for n in range(10_000)]
    declared = yaml_specs.load_invoke(None, yaml_specs.split_invoke_overrides(yaml_specs.parse_overrides(pairs))[0])

    assert {name: given.default for name, given in declared.inputs.items()} == {
        f"i{n}": f"v={n}" for n in range(10_000)
    }
