"""Property: whatever correctly signed request a client sends the local server (any route, any path names, any
body shaped or misshaped after the OpenAPI schemas), the answer is never a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_endpoints.api.openapi import openapi_document
from tests.server_fixtures import LocalApi, local_api_fixture  # noqa: F401 (pytest fixture)

DOCUMENT = openapi_document()
SCHEMAS = DOCUMENT["components"]["schemas"]
OPERATIONS = sorted((method, template) for template, ops in DOCUMENT["paths"].items() for method in ops)
# Any text but '/' and '\\': a string that could be an absolute path would have the server copy folders of this
# machine into its storage (registering a model where it is), which is what it is for, not what we test here.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/\\"), max_size=12)
NAMES = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{1,10}[a-z0-9]", fullmatch=True), TEXT.filter(bool))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that mostly fit `schema` (JSON Schema as the document writes it); deep down, anything."""
    if depth > 4:
        return JSON_VALUES
    if "$ref" in schema:
        return from_schema(SCHEMAS[schema["$ref"].rpartition("/")[2]], depth + 1)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return st.one_of([from_schema(option, depth + 1) for option in schema[combinator]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        values = {name: from_schema(sub, depth + 1) for name, sub in properties.items()}
        return st.fixed_dictionaries(
            {name: values[name] for name in required}, optional={n: v for n, v in values.items() if n not in required}
        )
    simple = {
        "array": lambda: st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=3),
        "string": lambda: TEXT,
        "integer": lambda: st.integers(min_value=-5, max_value=2_000_000),
        "number": lambda: st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans,
        "null": st.none,
    }
    return simple[kind]() if kind in simple else JSON_VALUES


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, Any]:
    method, template = draw(st.sampled_from(OPERATIONS))
    operation = DOCUMENT["paths"][template][method]
    target = template
    query = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            target = target.replace(f"{{{parameter['name']}}}", quote(draw(NAMES), safe=""))
        elif parameter["in"] == "query" and draw(st.booleans()):
            value = draw(from_schema(parameter["schema"]))
            if value is not None:
                query[parameter["name"]] = str(value).lower() if isinstance(value, bool) else str(value)
    if query:
        target += "?" + urlencode(query, quote_via=quote)
    body = None
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        body = draw(st.one_of(from_schema(schema), JSON_VALUES))  # mostly shaped, sometimes anything
    return method.upper(), target, body


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_no_signed_request_gets_a_server_error(local_api: LocalApi, request: tuple[str, str, Any]) -> None:
    method, target, body = request

    reply = local_api.call(method, target, body)

    assert reply.status < 500, (method, target, json.dumps(body), reply.body[:500])
