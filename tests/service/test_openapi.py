"""The OpenAPI document tells the truth: it is valid OpenAPI, and operation by operation it
declares the body each handler takes, a real schema for what it answers, the problems it can
answer (RFC 9457, with their codes), the bearer key where a guard asks for one, and the
query parameters the handlers read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Router
from litestar.exceptions import TooManyRequestsException
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from openapi_spec_validator import validate

from publishing.feeds.controllers import FEED_PARAMETERS
from registry.problems import PROBLEM_MEDIA_TYPE
from registry.settings import Settings
from search.query import PARAMETERS
from service.app import create_app

METHODS = ("get", "put", "post", "delete", "patch")
# Success answers whose JSON is free-form by nature, and why.
FREE_FORM = {
    # A download: manifest.json is one of the export's files, described in the README.
    ("get", "/v1/exports/{day}/{name}"),
}
# Operations that authenticate by themselves, without the roles guard.
SELF_AUTHENTICATED = {("post", "/v1/checks")}

Operations = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def document(server_url: str) -> dict[str, Any]:
    response = httpx.get(f"{server_url}/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def operations(document: dict[str, Any]) -> Operations:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


@pytest.fixture(scope="module")
def handlers(settings: Settings) -> dict[tuple[str, str], HTTPRouteHandler]:
    app = create_app(settings, run_scheduler=False)
    found: dict[tuple[str, str], HTTPRouteHandler] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if method.lower() in METHODS and handler.resolve_include_in_schema():
                found[(method.lower(), route.path_format or "/")] = handler
    return found


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(document, schema["allOf"][0])
    return schema


def _codes(operation: dict[str, Any], status: int) -> set[str]:
    response = operation["responses"].get(str(status))
    if response is None:
        return set()
    examples = response["content"][PROBLEM_MEDIA_TYPE]["examples"].values()
    return {example["value"]["code"] for example in examples}


def _is_public(handler: HTTPRouteHandler) -> bool:
    # The public router (registry.http.ratelimit.public_router) answers its 429 itself.
    return any(
        isinstance(layer, Router) and TooManyRequestsException in (layer.exception_handlers or {})
        for layer in handler.ownership_layers
    )


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_handler_is_documented_and_nothing_else(
    operations: Operations, handlers: dict[tuple[str, str], HTTPRouteHandler]
) -> None:
    assert set(operations) == set(handlers)


def test_an_operation_declares_a_body_exactly_when_its_handler_takes_one(
    document: dict[str, Any], operations: Operations, handlers: dict[tuple[str, str], HTTPRouteHandler]
) -> None:
    for key, operation in operations.items():
        takes_body = "data" in handlers[key].parsed_fn_signature.parameters
        assert ("requestBody" in operation) == takes_body, key
        if takes_body:
            [schema] = [media["schema"] for media in operation["requestBody"]["content"].values()]
            assert _resolve(document, schema).get("properties"), key


def test_every_success_answer_has_a_schema_that_says_something(
    document: dict[str, Any], operations: Operations
) -> None:
    for key, operation in operations.items():
        successes = {status: r for status, r in operation["responses"].items() if status.startswith("2")}
        assert successes, key
        for status, response in successes.items():
            assert response.get("content"), (key, status)
            for media_type, media in response["content"].items():
                schema = _resolve(document, media["schema"])
                assert schema, (key, media_type)
                is_json = media_type == "application/json" or media_type.endswith("+json")
                if is_json and key not in FREE_FORM:
                    says = ("properties", "items", "additionalProperties")
                    assert any(schema.get(word) for word in says), (key, media_type, schema)


def test_every_refusal_is_a_problem_with_its_codes(operations: Operations) -> None:
    for key, operation in operations.items():
        for status, response in operation["responses"].items():
            if not status.startswith("4"):
                continue
            assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (key, status)
            media = response["content"][PROBLEM_MEDIA_TYPE]
            assert media["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}, (key, status)
            codes = _codes(operation, int(status))
            assert codes, (key, status)
            assert all(f"`{code}`" in response["description"] for code in codes), (key, status)


def test_the_problems_the_http_layer_answers_are_declared(
    operations: Operations, handlers: dict[tuple[str, str], HTTPRouteHandler]
) -> None:
    for key, operation in operations.items():
        if operation.get("security"):
            assert "unauthorized" in _codes(operation, 401), key
            assert "forbidden_role" in _codes(operation, 403), key
        if "requestBody" in operation:
            assert "invalid_json" in _codes(operation, 400), key
            assert {"invalid_field", "duplicate_member"} <= _codes(operation, 422), key
            assert "payload_too_large" in _codes(operation, 413), key
        if operation.get("parameters"):
            assert "invalid_parameter" in _codes(operation, 400), key
        if _is_public(handlers[key]):
            assert "rate_limited" in _codes(operation, 429), key


def test_guarded_operations_ask_for_the_bearer_key_and_public_ones_do_not(
    document: dict[str, Any], operations: Operations, handlers: dict[tuple[str, str], HTTPRouteHandler]
) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    for key, operation in operations.items():
        guarded = bool(handlers[key].resolve_guards()) or key in SELF_AUTHENTICATED
        assert operation.get("security") == ([{"bearer": []}] if guarded else None), key


def test_the_query_parameters_read_by_hand_are_declared(operations: Operations) -> None:
    def names(key: tuple[str, str]) -> set[str]:
        return {p["name"] for p in operations[key].get("parameters", []) if p["in"] == "query"}

    assert names(("get", "/v1/public/defaulters")) == set(PARAMETERS)
    for feed in ("/feeds/atom.xml", "/feeds/rss.xml", "/feeds/feed.json"):
        assert names(("get", feed)) == FEED_PARAMETERS


@pytest.mark.parametrize(
    ("key", "media_types"),
    [
        (("get", "/feeds/atom.xml"), {"application/atom+xml"}),
        (("get", "/feeds/rss.xml"), {"application/rss+xml"}),
        (("get", "/feeds/feed.json"), {"application/feed+json"}),
        (
            ("get", "/v1/admin/banks/{client_id}/query-log"),
            {"application/x-ndjson", "text/csv"},
        ),
        (("get", "/v1/sync/{subscription_id}/snapshot"), {"application/x-ndjson"}),
        (("get", "/v1/notices/{notice_id}/print"), {"text/html"}),
        (("get", "/metrics"), {"text/plain; version=1.0.0"}),
        (
            ("get", "/v1/exports/{day}/{name}"),
            {"application/gzip", "application/json", "application/octet-stream"},
        ),
        (("get", "/.well-known/jwks.json"), {"application/jwk-set+json"}),
    ],
)
def test_answers_that_are_not_json_say_what_they_are(
    operations: Operations, key: tuple[str, str], media_types: set[str]
) -> None:
    assert set(operations[key]["responses"]["200"]["content"]) == media_types


def test_the_signed_court_endpoints_document_their_envelopes_with_examples(
    document: dict[str, Any], operations: Operations
) -> None:
    expected = {
        ("post", "/v1/listings"): "ListingEnvelope",
        ("post", "/v1/listings/batch"): "ListingBatch",
        ("post", "/v1/listings/{listing_id}/amendments"): "ListingEnvelope",
        ("post", "/v1/listings/{listing_id}/removal"): "RemovalEnvelope",
    }
    for key, envelope in expected.items():
        schema = operations[key]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["allOf"] == [{"$ref": f"#/components/schemas/{envelope}"}], key
        assert schema["examples"], key
    listing = document["components"]["schemas"]["ListingEnvelope"]
    assert set(listing["required"]) == {"listing", "signature"}


def test_no_schema_shows_made_up_example_values(document: dict[str, Any]) -> None:
    """The framework's generated examples are random strings ("court_name": "VXGihmxirINH…")
    and dates without a zone: only the envelopes' written, signed examples are shown."""
    with_examples = {
        name for name, schema in document["components"]["schemas"].items() if "examples" in schema
    }
    assert with_examples == {"ListingBatch", "ListingEnvelope", "RemovalEnvelope"}
    for operation in document["paths"].values():
        for method in METHODS:
            for status, answer in operation.get(method, {}).get("responses", {}).items():
                for media_type, content in answer.get("content", {}).items():
                    assert media_type == PROBLEM_MEDIA_TYPE or "examples" not in content, (method, status)


def test_the_correction_queue_documents_its_states(server_url: str) -> None:
    document = httpx.get(f"{server_url}/schema/openapi.json").json()
    [state] = [p for p in document["paths"]["/v1/corrections"]["get"]["parameters"] if p["name"] == "state"]
    assert state["in"] == "query" and state["schema"]["enum"] == ["open", "overdue", "all"]
