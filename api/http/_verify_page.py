"""The auditor's page, ``GET /verify``: drop an image (and optionally a ``.c2pa`` sidecar), see
its provenance report.

One static file, ``verify.html`` beside this module: plain HTML, CSS and JavaScript, no build
step and nothing fetched from elsewhere, so it works offline. The page posts the files to
``POST /v1/verify`` (fields ``file`` and ``manifest``) and renders the JSON report, its warnings
(what to know before relying on it: no time-stamp, an untrusted signer, a broken ingredient)
and the consent attestation the moderation assertion records; every string from the report is
set with ``textContent``, since a manifest says whatever its signer wrote.

The badge (``data-testid="state"``) reads one of:

- ``trusted`` / ``valid`` / ``invalid``: the file's Content Credentials (embedded, or the
  sidecar given with it) as c2pa judged them; ``valid`` is shown as a warning (intact, but the
  signer is not among the server's trust anchors). A manifest that is there decides the badge
  even when recovery also found the file, which then gets a second ``recovered`` badge;
- ``recovered``: no Content Credentials, but the watermark and/or fingerprint traced the file
  back to a sealed manifest in the store;
- ``no provenance``: neither.

The page is served with a Content-Security-Policy that allows only its own inline script and
style (by hash) and requests to this origin: even a rendering mistake could not load or run
anything else.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["verify_page_router"]

_PAGE = "verify.html"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy, read once."""
    html = resources.files("api.http").joinpath(_PAGE).read_text(encoding="utf-8")
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(hashes["script"]),
            "style-src " + " ".join(hashes["style"]),
            "connect-src 'self'",
            # The preview of the chosen file is a blob: URL made in the page.
            "img-src blob:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy


def verify_page_router() -> APIRouter:
    """The router serving ``GET /verify``; include it in the app."""
    router = APIRouter()

    @router.get(
        "/verify",
        response_class=HTMLResponse,
        tags=["provenance"],
        summary="Web page for auditors: verify an image (and an optional .c2pa sidecar)",
        description="A static page that posts the chosen files to `POST /v1/verify` and shows "
        "the provenance report: C2PA state, the warnings to heed before relying on it, "
        "recovery from the manifest store, the moderation attestation (with the consent it "
        "records, if any) and watermark.",
        responses={200: {"content": {"text/html": {}}, "description": "The verify page."}},
    )
    def verify_page() -> HTMLResponse:
        html, policy = _page()
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": policy,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )

    return router
