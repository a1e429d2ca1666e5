"""One body policy on every endpoint that takes a body (registry/http/body.py): no body or not
JSON is 400 `invalid_json`; JSON of the wrong shape is 422 `invalid_field` with a pointer."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from registry.http.body import decode_body, decode_json
from registry.problems import Problem
from tests.conftest import Registry

# (method, path, role): a subscription or notice that does not exist is never reached, since
# the body is refused first.
ENDPOINTS = [
    ("POST", "/v1/listings", "court"),
    ("POST", "/v1/listings/batch", "court"),
    ("POST", "/v1/listings/01JQ8W3C4X2M5V7B9N0P1R3S5T/amendments", "admin"),
    ("POST", "/v1/listings/01JQ8W3C4X2M5V7B9N0P1R3S5T/removal", "admin"),
    ("POST", "/v1/checks", "bank"),
    ("POST", "/v1/checks/verify", None),
    ("POST", "/v1/watchlist/subjects", "bank"),
    ("POST", "/v1/watchlist/subjects/remove", "bank"),
    ("PUT", "/v1/watchlist/endpoint", "bank"),
    ("POST", "/v1/sync/subscriptions", "admin"),
    ("POST", "/v1/sync/subscriptions/sub_missing/replay", "admin"),
    ("POST", "/v1/sync/sub_missing/ack", "agency"),
    ("POST", "/v1/notices/nt_missing/objection", "agency"),
]
NOT_JSON = [
    pytest.param(b"", id="empty"),
    pytest.param(b"{", id="truncated"),
    pytest.param(b"[", id="truncated-array"),
    pytest.param(b"\xff\xfe", id="not-utf-8"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="nested-too-deep"),
]


def _client(registry: Registry, role: str | None) -> httpx.Client:
    if role == "court":
        return registry.http(registry.court().api_key)
    return registry.http(registry.client(role) if role else None)


def _send(registry: Registry, method: str, path: str, role: str | None, body: bytes) -> dict[str, Any]:
    with _client(registry, role) as http:
        response = http.request(method, path, content=body, headers={"content-type": "application/json"})
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    problem: dict[str, Any] = response.json()
    assert problem["status"] == response.status_code
    return problem


@pytest.mark.parametrize(("method", "path", "role"), ENDPOINTS)
@pytest.mark.parametrize("body", NOT_JSON)
def test_a_body_that_is_not_json_is_400_invalid_json(
    registry: Registry, method: str, path: str, role: str | None, body: bytes
) -> None:
    problem = _send(registry, method, path, role, body)
    assert (problem["status"], problem["code"]) == (400, "invalid_json"), problem


@pytest.mark.parametrize(("method", "path", "role"), ENDPOINTS)
def test_json_of_the_wrong_shape_is_422_invalid_field_with_a_pointer(
    registry: Registry, method: str, path: str, role: str | None
) -> None:
    problem = _send(registry, method, path, role, b'{"no_such_field": 1}')
    assert (problem["status"], problem["code"]) == (422, "invalid_field"), problem
    assert problem["pointer"].startswith("/"), problem


@pytest.mark.parametrize(("method", "path", "role"), ENDPOINTS)
def test_json_that_is_not_an_object_is_422_invalid_field(
    registry: Registry, method: str, path: str, role: str | None
) -> None:
    problem = _send(registry, method, path, role, b"[1, 2]")
    assert (problem["status"], problem["code"]) == (422, "invalid_field"), problem


class _Subject(msgspec.Struct, forbid_unknown_fields=True):
    id_number: str


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    subjects: list[_Subject]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b'{"subjects": [{"id_number": 1}]}', "/subjects/0/id_number"),
        (b'{"subjects": [{"id_number": "1"}, {}]}', "/subjects/1/id_number"),
        (b'{"subjects": [], "extra": true}', "/extra"),
        (b"{}", "/subjects"),
        (b'{"subjects": {}}', "/subjects"),
    ],
)
def test_the_pointer_names_the_field_msgspec_names(body: bytes, pointer: str) -> None:
    with pytest.raises(Problem) as refused:
        decode_body(body, _Request)
    problem = refused.value
    assert (problem.status, problem.code, problem.pointer) == (422, "invalid_field", pointer)


def test_decode_json_takes_any_json_and_refuses_the_rest() -> None:
    assert decode_json(b'[1, {"a": null}]') == [1, {"a": None}]
    for body in (b"", b"{", b"nul"):
        with pytest.raises(Problem) as refused:
            decode_json(body)
        assert (refused.value.status, refused.value.code) == (400, "invalid_json")
