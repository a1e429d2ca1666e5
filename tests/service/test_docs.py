"""The API documentation page loads everything from this service: it works offline."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Route

# A module-scoped Chromium (Debian's, see that module): the docs page is run, not just read.
from tests.search.web.test_public_web_browser import browser  # noqa: F401

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_the_docs_page_uses_only_assets_this_service_serves(server_url: str, page: str) -> None:
    with httpx.Client(base_url=server_url) as http:
        response = http.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        references = REFERENCE.findall(response.text)
        assert len(references) >= 3, references  # the script, the preset and the style sheet
        for reference in references:
            # Same origin: a path on this server, never another host.
            assert reference.startswith("/") and not reference.startswith("//"), reference
            asset = http.get(reference)
            assert asset.status_code == 200, reference
            assert asset.content, reference
        assert "openapi" in response.text  # the document is in the page


def test_the_document_is_served_as_json(server_url: str) -> None:
    response = httpx.get(f"{server_url}/schema/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Defaulter credit registry"


def test_swagger_ui_renders_the_operations_with_no_other_origin_reachable(
    browser: Browser,  # noqa: F811 - the fixture imported above
    server_url: str,
) -> None:
    elsewhere: list[str] = []
    refused: list[str] = []

    def only_here(route: Route) -> None:
        if route.request.url.startswith(server_url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context = browser.new_context(base_url=server_url)
    try:
        page = context.new_page()
        page.route("**/*", only_here)
        page.on("console", lambda message: refused.append(message.text))
        page.goto("/schema")
        page.wait_for_selector(".opblock", timeout=20_000)
        assert page.locator(".opblock").count() >= 40
        assert page.locator(".info .title").inner_text().startswith("Defaulter credit registry")
    finally:
        context.close()
    assert elsewhere == []
    assert not [text for text in refused if "Content Security Policy" in text]
