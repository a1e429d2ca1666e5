"""One body policy on every endpoint that takes a body (registry/http/body.py): no body or not
JSON is 400 `invalid_json`; JSON of the wrong shape is 422 `invalid_field` with a pointer."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import msgspec
import pytest

from registry.http.body import _DuplicateFound, _unique, decode_body, decode_json, refuse_duplicate_members
from registry.problems import Problem
from tests.support.harness import Registry

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


# ---- a member name twice in one object: 422 `duplicate_member`, on every body ----

# (method, path, role, body, pointer): each body has the shape its route takes, so only the
# repeated name refuses it (msgspec alone keeps the last value, and the request went ahead).
DUPLICATES = [
    ("POST", "/v1/sync/sub_missing/ack", "agency", b'{"cursor": 1, "cursor": 2}', "/cursor"),
    ("POST", "/v1/sync/sub_missing/ack", "agency", b'{"cursor": 1, "\\u0063ursor": 2}', "/cursor"),
    (
        "POST",
        "/v1/checks",
        "bank",
        b'{"subjects": [{"id_number": "11010519491231002X", "id_number": "110105194912310021"}],'
        b' "purpose": "loan_application", "reference": "LA-1"}',
        "/subjects/0/id_number",
    ),
    (
        "POST",
        "/v1/checks",
        "bank",
        b'{"subjects": [{"credit_code": "91110000600037341L"}], "purpose": "loan_application",'
        b' "reference": "LA:1", "reference": "LA:2"}',
        "/reference",
    ),
    ("POST", "/v1/checks/verify", None, b'{"receipt": "a.b.c", "receipt": "d.e.f"}', "/receipt"),
    ("POST", "/v1/watchlist/subjects", "bank", b'{"subjects": [], "subjects": []}', "/subjects"),
    ("POST", "/v1/watchlist/subjects/remove", "bank", b'{"subjects": [], "subjects": []}', "/subjects"),
    (
        "PUT",
        "/v1/watchlist/endpoint",
        "bank",
        b'{"endpoint": null, "endpoint": "https://bank.example/hook"}',
        "/endpoint",
    ),
    (
        "POST",
        "/v1/sync/subscriptions",
        "admin",
        b'{"client_id": "c", "profile": "credit_reference", "mode": "pull", "mode": "push"}',
        "/mode",
    ),
    (
        "POST",
        "/v1/sync/subscriptions/sub_missing/replay",
        "admin",
        b'{"from_seq": 1, "from_seq": 2}',
        "/from_seq",
    ),
    ("POST", "/v1/notices/nt_missing/objection", "agency", b'{"text": "a", "text": "b"}', "/text"),
    (
        "POST",
        "/v1/public/corrections/status",
        None,
        b'{"application_number": "a", "tracking_code": "t", "tracking_code": "u"}',
        "/tracking_code",
    ),
    (
        "POST",
        "/v1/public/certificates/verify",
        None,
        b'{"certificate": "a", "certificate": "b"}',
        "/certificate",
    ),
]


@pytest.mark.parametrize(("method", "path", "role", "body", "pointer"), DUPLICATES)
def test_a_member_named_twice_is_422_duplicate_member_on_every_body(
    registry: Registry, method: str, path: str, role: str | None, body: bytes, pointer: str
) -> None:
    problem = _send(registry, method, path, role, body)
    assert (problem["status"], problem["code"], problem["pointer"]) == (422, "duplicate_member", pointer)


class _Named(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    url: str | None = None
    at: float | None = None
    items: list[dict[str, Any]] = []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b'{"name": "a", "name": "b"}', "/name"),
        (b'{"name": "a", "\\u006eame": "b"}', "/name"),
        (b'{"url": "https://a.example", "url": "https://b.example"}', "/url"),
        (b'{"items": [{"a": 1}, {"b": 1, "c": {"d": 1, "d": 2}}]}', "/items/1/c/d"),
        (b'{"items": [{"a/b": 1, "a/b": 2}]}', "/items/0/a~1b"),
        # A `:` in a string takes the place of the lost member: still found.
        (b'{"name": ":", "name": "b"}', "/name"),
        (b'{"items": [{"x": "a:b", "y": 1, "y": 2}]}', "/items/0/y"),
    ],
)
def test_decode_body_refuses_a_member_named_twice_with_the_pointer(body: bytes, pointer: str) -> None:
    with pytest.raises(Problem) as refused:
        decode_body(body, _Named)
    problem = refused.value
    assert (problem.status, problem.code, problem.pointer) == (422, "duplicate_member", pointer)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"name": "a"}',
        b'{"name": "a:b", "url": "https://a.example:8443/x"}',
        b'{"items": [{"a": 1}, {"a": 1}, {"a": {"a": {"a": ":::"}}}]}',
        b'{"name": "\\u003a", "url": ":", "at": 1.5}',
    ],
)
def test_decode_body_takes_objects_that_name_each_member_once(body: bytes) -> None:
    assert isinstance(decode_body(body, _Named), _Named)


def test_a_body_msgspec_cannot_take_as_builtins_is_parsed_for_duplicates_all_the_same() -> None:
    # The quick test needs the body as builtins; without them (numbers out of msgspec's range,
    # which the body types refuse first) the standard library's parse decides, taking the
    # numbers as text (int() refuses 4,300 digits).
    number = b"9" * 5000
    refuse_duplicate_members(b'{"n": ' + number + b', "t": ":", "f": 1e400}')
    with pytest.raises(Problem) as refused:
        refuse_duplicate_members(b'{"n": ' + number + b', "n": 1, "t": ":"}')
    assert (refused.value.code, refused.value.pointer) == ("duplicate_member", "/n")


def _random_json(rng: random.Random, depth: int = 0) -> str:
    """JSON text whose objects often repeat a name, written as it is or escaped, and whose
    strings often hold a `:`."""
    roll = rng.random()
    if depth < 4 and roll < 0.35:
        members = []
        for _ in range(rng.randrange(4)):
            name = rng.choice(["a", "b", ":", "a:b"])
            written = "".join(f"\\u{ord(c):04x}" if rng.random() < 0.3 else c for c in name)
            members.append(f'"{written}": {_random_json(rng, depth + 1)}')
        return "{" + ", ".join(members) + "}"
    if depth < 4 and roll < 0.55:
        return "[" + ", ".join(_random_json(rng, depth + 1) for _ in range(rng.randrange(4))) + "]"
    return rng.choice(['":"', '"x"', "1", "null", '"\\u003a"', "1.5", "18446744073709551615"])


def test_the_quick_test_for_duplicates_agrees_with_a_full_parse() -> None:
    """`refuse_duplicate_members` passes most bodies on a count of `:`: it must refuse exactly
    the bodies the standard library's parser, shown every pair, finds a repeated name in."""
    rng = random.Random(7)
    refused = 0
    for _ in range(20_000):
        text = _random_json(rng).encode()
        try:
            json.loads(text, object_pairs_hook=_unique)
            repeated = False
        except _DuplicateFound:
            repeated = True
        try:
            refuse_duplicate_members(text)
        except Problem as problem:
            assert repeated and problem.code == "duplicate_member", text
            refused += 1
        else:
            assert not repeated, text
    assert refused > 1000  # the generator makes both kinds
