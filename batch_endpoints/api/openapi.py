"""docs/openapi.json, generated from the routes: `python -m batch_endpoints.api.openapi` rewrites it.

Powertools documents what its own validation would answer (422 with its error list); this API answers every
refusal with 400-499 and one error shape, so the document is corrected to say so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batch_endpoints.api.app import app
from batch_endpoints.api.schemas import ErrorBody

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def openapi_document() -> dict[str, Any]:
    document = json.loads(app.get_openapi_json_schema())
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            responses.pop("422", None)
            if "204" in responses:
                responses["204"] = {"description": "Done; no content"}
            responses["4XX"] = {
                "description": "Refused: invalid (400), not found (404), conflict (409), too large (413)",
                "content": {"application/json": {"schema": ERROR_REF}},
            }
            responses["5XX"] = {
                "description": "Internal error",
                "content": {"application/json": {"schema": ERROR_REF}},
            }
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in POWERTOOLS_ERROR_SCHEMAS:
        schemas.pop(name, None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    return document


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(render())
    print(DOCUMENT)


if __name__ == "__main__":
    main()
