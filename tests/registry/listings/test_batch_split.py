"""A listing batch split into its envelopes, each the bytes the court sent: what one envelope
holds never decides the batch (registry/listings/batch.py)."""

from __future__ import annotations

import pytest

from registry.http.body import decode_signed_json
from registry.listings.batch import envelopes_of
from registry.problems import Problem


def _refused(body: bytes) -> tuple[int, str, str | None]:
    with pytest.raises(Problem) as caught:
        envelopes_of(body)
    return caught.value.status, caught.value.code, caught.value.pointer


def test_each_envelope_is_kept_as_sent() -> None:
    body = b'{"envelopes": [{"b": 1, "a": "\\u4e2d"} , {"c":[1,2]}]}'
    assert envelopes_of(body) == [b'{"b": 1, "a": "\\u4e2d"}', b'{"c":[1,2]}']


def test_an_unpaired_surrogate_or_a_huge_number_stays_in_its_own_envelope() -> None:
    """msgspec refuses the first and the standard library's int() the second: the scanner
    that splits such a body keeps numbers as text."""
    huge = b"1" * 5000
    body = b'{"envelopes": [{"a": "\\ud800"}, {"n": ' + huge + b'}, {"ok": true}]}'
    assert envelopes_of(body) == [b'{"a": "\\ud800"}', b'{"n": ' + huge + b"}", b'{"ok": true}']


@pytest.mark.parametrize(
    "body",
    [
        b'{"envelopes": [{"a": 1}], "envelopes": [{"b": 2}]}',
        b'{"envelopes": [{"a": 1}], "\\u0065nvelopes": [{"b": 2}]}',  # the name spelt with an escape
        b'{"envelopes": [{"a": "\\ud800"}], "envelopes": []}',
    ],
)
def test_envelopes_named_twice_is_refused_not_the_first_list_dropped(body: bytes) -> None:
    assert _refused(body) == (422, "duplicate_member", "/envelopes")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"[", 400, "invalid_json"),
        (b'{"envelopes": [', 400, "invalid_json"),
        (b'{"envelopes": [], "x\\ud800": 1}', 400, "invalid_json"),  # no answer could show the name
        (b'{"envelopes": [{"a": "\\ud800"}], "other": 1}', 422, "invalid_field"),
        (b'{"envelopes": {}}', 422, "invalid_field"),
        (b"", 400, "invalid_json"),
    ],
)
def test_a_body_that_is_not_a_batch_is_refused_whole(body: bytes, status: int, code: str) -> None:
    assert _refused(body)[:2] == (status, code)


def test_a_duplicate_nested_deeper_than_the_parsers_stack_is_400_not_a_crash() -> None:
    for depth in (900, 990, 2000):
        body = b'{"listing":' + b"[" * depth + b'{"a":1,"a":2}' + b"]" * depth + b',"signature":{}}'
        with pytest.raises(Problem) as caught:
            decode_signed_json(body)
        assert caught.value.code in ("duplicate_member", "invalid_json")


def test_an_envelope_nested_past_the_scanners_stack_is_kept_for_its_worker_to_refuse() -> None:
    """Brackets inside a string do not count; the envelopes beside it are split as sent."""
    deep = b'{"a": "]}[{", "b": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    body = b'{"envelopes": [{"a": "\\ud800"}, ' + deep + b', {"ok": true}]}'
    assert envelopes_of(body) == [b'{"a": "\\ud800"}', deep, b'{"ok": true}']
    assert _refused(b'{"envelopes": [{"a": "\\ud800"}, ' + b"[" * 5000 + b"]}")[:2] == (400, "invalid_json")
