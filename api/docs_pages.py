"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from the vendored assets in api/static/.

FastAPI's own pages load their scripts from a CDN, so an install without internet showed blank
pages. These are FastAPI's pages with local asset URLs, each with a Content-Security-Policy that
lets exactly its own scripts run: the vendored files ('self') and its inline script, by hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.4"
STATIC = Path(__file__).parent / "static"
STATIC_URL = "/static"
DOCS_URL, REDIRECT_URL, REDOC_URL = "/docs", "/docs/oauth2-redirect", "/redoc"
# No favicon to fetch from anywhere.
NO_ICON = "data:,"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str) -> str:
    """A policy for a docs page: its scripts from here or inlined in ``html`` (by hash), no frames.

    Swagger UI and ReDoc style their elements inline and show data: images; ReDoc runs its
    search in a blob: worker.
    """
    scripts = ["'self'"] + [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    return (
        f"default-src 'none'; script-src {' '.join(scripts)}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = content_security_policy(bytes(page.body).decode())
    return page


def install_docs(app: FastAPI) -> None:
    """Serve the assets under ``/static/`` and the two pages (made with ``docs_url=None``)."""
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    for name in ("swagger-ui", "redoc"):
        app.mount(f"{STATIC_URL}/{name}", StaticFiles(directory=STATIC / name), name=f"static-{name}")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=root + REDIRECT_URL,
                swagger_js_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui.css",
                swagger_favicon_url=NO_ICON,
            )
        )

    async def redirect(_: Request) -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _with_policy(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{STATIC_URL}/redoc/redoc.standalone.js",
                redoc_favicon_url=NO_ICON,
                with_google_fonts=False,
            )
        )

    for url, page in ((DOCS_URL, swagger_ui), (REDIRECT_URL, redirect), (REDOC_URL, redoc)):
        app.add_route(url, page, methods=["GET"], include_in_schema=False)
