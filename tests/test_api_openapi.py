"""The OpenAPI document comes from the routes, lists every route, and the committed copy is current."""

from __future__ import annotations

from batch_endpoints.api.openapi import DOCUMENT, openapi_document, render

# The API as README and clients know it: (method, resource). A route added to the app must be added here.
ROUTES = {
    ("put", "/endpoints/{endpoint_name}"),
    ("get", "/endpoints/{endpoint_name}"),
    ("patch", "/endpoints/{endpoint_name}"),
    ("delete", "/endpoints/{endpoint_name}"),
    ("get", "/endpoints"),
    ("put", "/endpoints/{endpoint_name}/deployments/{deployment_name}"),
    ("get", "/endpoints/{endpoint_name}/deployments/{deployment_name}"),
    ("delete", "/endpoints/{endpoint_name}/deployments/{deployment_name}"),
    ("get", "/endpoints/{endpoint_name}/deployments"),
    ("put", "/models/{model_name}/versions/{version}"),
    ("get", "/models/{model_name}/versions/{version}"),
    ("get", "/models/{model_name}/versions"),
    ("get", "/models"),
    ("post", "/models/{model_name}/uploads"),
    ("put", "/environments/{environment_name}/versions/{version}"),
    ("get", "/environments/{environment_name}/versions/{version}"),
    ("get", "/environments/{environment_name}/versions"),
    ("get", "/environments"),
    ("put", "/components/{component_name}/versions/{version}"),
    ("get", "/components/{component_name}/versions/{version}"),
    ("get", "/components/{component_name}/versions"),
    ("get", "/components"),
    ("post", "/code/uploads"),
    ("post", "/inputs/uploads"),
    ("put", "/data/{data_name}/versions/{version}"),
    ("get", "/data/{data_name}/versions/{version}"),
    ("get", "/data/{data_name}/versions"),
    ("get", "/data"),
    ("post", "/data/{data_name}/uploads"),
    ("put", "/datastores/{datastore_name}"),
    ("get", "/datastores/{datastore_name}"),
    ("get", "/datastores"),
    ("get", "/computes"),
    ("put", "/computes/{compute_name}"),
    ("get", "/computes/{compute_name}"),
    ("patch", "/computes/{compute_name}"),
    ("delete", "/computes/{compute_name}"),
    ("post", "/endpoints/{endpoint_name}/jobs"),
    ("get", "/endpoints/{endpoint_name}/jobs"),
    ("post", "/jobs"),
    ("get", "/jobs"),
    ("get", "/jobs/{job_id}"),
    ("post", "/jobs/{job_id}/cancel"),
    ("post", "/jobs/{job_id}/rerun"),
    ("post", "/jobs/{job_id}/resume"),
    ("get", "/jobs/{job_id}/logs"),
}


def test_every_route_is_documented_and_nothing_else() -> None:
    paths = openapi_document()["paths"]

    assert {(method, path) for path, operations in paths.items() for method in operations} == ROUTES


def test_the_committed_document_is_current() -> None:
    # If this fails after changing a route: python -m batch_endpoints.api.openapi
    assert DOCUMENT.read_text() == render()


def test_errors_are_documented_in_the_apis_one_shape_not_powertools() -> None:
    document = openapi_document()

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert responses["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == {"code", "message", "field"}


def test_every_operation_is_signed_with_sigv4() -> None:
    document = openapi_document()

    assert document["security"] == [{"sigv4": []}]
    assert document["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_invoke_documents_its_202_and_the_idempotency_key() -> None:
    invoke = openapi_document()["paths"]["/endpoints/{endpoint_name}/jobs"]["post"]

    assert invoke["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobView"
    }
    assert "idempotency-key" in {p["name"].lower() for p in invoke["parameters"] if p["in"] == "header"}
    assert "204" in openapi_document()["paths"]["/endpoints/{endpoint_name}"]["delete"]["responses"]
