"""The API documentation: the OpenAPI document at /schema/openapi.json and Swagger UI at
/schema, whose scripts and styles this service serves itself (the `swagger-ui-bundle-v2`
package), so the page works without reaching a CDN."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from registry.http.openapi import COMPONENTS

ASSETS = "/static/swagger-ui"
# Swagger UI starts from an inline script holding the document, and styles elements inline;
# everything else comes from this origin, and "Try it out" calls only this API.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS,
        directories=[Path(str(swagger_ui_path))],
        name="swagger_ui",
        include_in_schema=False,
        # The files change only with the package version, which is in their directory name.
        cache_control=CacheControlHeader(public=True, max_age=86400),
    )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Defaulter credit registry",
        version="0.1.0",
        description="Court-certified listings of judgment debtors who refuse to perform.",
        path="/schema",
        components=COMPONENTS,
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{ASSETS}/swagger-ui-bundle.js",
                css_url=f"{ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
                path="/swagger",
            )
        ],
        openapi_router=Router(
            path="/schema",
            route_handlers=[],
            include_in_schema=False,
            response_headers=[
                ResponseHeader(name="Content-Security-Policy", value=DOCS_CSP),
                ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
            ],
        ),
    )
