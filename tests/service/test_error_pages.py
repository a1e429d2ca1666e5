"""Errors no page handler answers (an unknown address, a wrong method, a form over its cap, a
failure): a browser reads them on a small page in Chinese, with the same status; a program,
and every client of the JSON API under /v1/, keeps the RFC 9457 problem with its code.
(The page's accessibility in Chromium: tests/search/web/test_public_web_browser.py.)"""

from __future__ import annotations

import socket

import httpx
import pytest
from litestar import get

from registry.corrections.controllers import APPLICATION_BODY_BYTES
from registry.http.pages import PUBLIC_PAGE_HEADERS
from registry.settings import Settings
from registry.wiring import Plugin
from service.app import create_app
from service.plugins import PLUGINS
from tests.support.harness import Registry, serve_app

# What Chromium sends when it opens a page.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def assert_error_page(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    for name, value in PUBLIC_PAGE_HEADERS.items():
        assert answer.headers[name] == value, name
    page = answer.text
    assert '<html lang="zh-CN">' in page
    assert "<title>" in page and "<h1>" in page
    assert '<a href="/">返回首页</a>' in page
    # Nothing of the problem's English.
    assert "resource" not in page and "error" not in page


def assert_problem(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/defaulters", 404, "not_found"),
        ("POST", "/", 405, "method_not_allowed"),
        ("DELETE", "/corrections/apply", 405, "method_not_allowed"),
    ],
)
def test_a_browser_reads_an_unanswered_error_in_chinese_a_program_gets_the_problem(
    registry: Registry, method: str, path: str, status: int, code: str
) -> None:
    with registry.http() as http:
        page = http.request(method, path, headers={"Accept": BROWSER})
        problem = http.request(method, path)  # httpx says */*: a program
        asked_json = http.request(method, path, headers={"Accept": "application/json, text/html"})
    assert_error_page(page, status)
    assert_problem(problem, status, code)
    assert_problem(asked_json, status, code)
    if status == 405:
        assert page.headers["allow"] == problem.headers["allow"] != ""


def _answer_to_announced_body(url: str, path: str, announced: int) -> tuple[int, str]:
    """POST a multipart form announcing `announced` bytes but sending none: the status and the
    content type of the answer, which the server gives from the Content-Length alone."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}",
            f"Accept: {BROWSER}",
            "Content-Type: multipart/form-data; boundary=X",
            f"Content-Length: {announced}",
        ]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status_line, *headers = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    content_type = next(h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("content-type:"))
    return int(status_line.split(" ")[1]), content_type


def test_a_correction_form_over_its_cap_is_a_page_too(registry: Registry) -> None:
    status, content_type = _answer_to_announced_body(
        registry.url, "/corrections/apply", APPLICATION_BODY_BYTES + 1
    )
    assert (status, content_type.split(";")[0]) == (413, "text/html")


@get(["/fails", "/v1/fails"], sync_to_thread=False)
def fails() -> None:
    raise RuntimeError("a defect")


def test_a_failure_is_a_page_for_a_browser_and_the_problem_for_a_program(settings: Settings) -> None:
    plugins = [*PLUGINS, Plugin(name="failing", public_routes=[fails])]
    app = create_app(settings, run_scheduler=False, plugins=plugins)
    with serve_app(app) as url, httpx.Client(base_url=url) as http:
        page = http.get("/fails", headers={"Accept": BROWSER})
        problem = http.get("/fails")
        # The JSON API answers a browser too with its problem.
        api = http.get("/v1/fails", headers={"Accept": BROWSER})
        api_unknown = http.get("/v1/nope", headers={"Accept": BROWSER})
    assert_error_page(page, 500)
    assert "系统出错" in page.text
    assert_problem(problem, 500, "internal_error")
    assert_problem(api, 500, "internal_error")
    assert_problem(api_unknown, 404, "not_found")
