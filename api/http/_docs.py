"""The API documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), whole from this
server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN: on a machine without internet they
stay blank. The same files ship inside the ``fastapi-offline`` wheel (Swagger UI's bundle and
stylesheet, ReDoc's standalone bundle, a favicon); they are served from the installed package
under ``/docs/assets`` and the pages are FastAPI's own HTML pointed there. Only the files are
used, not the package's code: the app stays ours.

Each page carries a Content-Security-Policy that confines it to this origin: neither page, nor
anything it loads, can reach another host. ReDoc's sidebar credits Redocly with a logo from
Redocly's CDN; the policy refuses it before any request leaves the browser, and ReDoc then
leaves the logo out. Both bundles style elements at run time (ReDoc through ``<style>``
elements it writes), so styles may be inline; ReDoc runs its search in a worker it makes from a
``blob:`` URL.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS_ASSETS_URL", "install_docs"]

DOCS_ASSETS_URL = "/docs/assets"
_ASSETS_PACKAGE = ("fastapi_offline", "static")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its OAuth2 redirect page and ``/redoc`` on ``app``, with the assets
    mounted beside them. ``app`` must be built with ``docs_url=None, redoc_url=None``: FastAPI's
    own pages would otherwise answer first, from the CDN."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("build the app with docs_url=None and redoc_url=None")
    openapi_url = app.openapi_url
    if openapi_url is None:
        return
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
    # check_dir (the default) fails here, at start-up, if the package lost its files.
    app.mount(DOCS_ASSETS_URL, StaticFiles(packages=[_ASSETS_PACKAGE]), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _locked_down(page)

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        def swagger_ui_oauth2_redirect() -> HTMLResponse:
            return _locked_down(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        return _locked_down(page)


def _root_path(request: Request) -> str:
    """The path the app is mounted under behind a proxy ("" when served at the root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _locked_down(page: HTMLResponse) -> HTMLResponse:
    """``page`` with a Content-Security-Policy that keeps it to this origin: scripts from here
    or inline by hash, requests, images and fonts from here (or made in the page) only."""
    html = bytes(page.body).decode("utf-8")
    scripts = ["'self'"]
    for body in _INLINE_SCRIPT.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        scripts.append(f"'sha256-{digest}'")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(scripts),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src blob:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
