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
