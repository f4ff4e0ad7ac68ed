"""Serving the pages: static ES modules and HTML under a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

STATIC = Path(__file__).parent / "static"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
}


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """Adds the security headers to every HTTP response (not to WebSocket upgrades)."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own 404/405/… carry the headers too
        for name, value in SECURITY_HEADERS.items():
            exc.headers.setdefault(name, value)
        raise
    if not response.prepared:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def _page(name: str) -> Any:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    return handler


def add_page_routes(app: web.Application) -> None:
    """Registers the pages and their static assets."""
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/s/{session}", _page("participant.html"))
    app.router.add_get("/s/{session}/moderate", _page("moderate.html"))
    app.router.add_get("/s/{session}/display", _page("display.html"))
    app.router.add_get("/s/{session}/desk", _page("desk.html"))
    app.router.add_get("/s/{session}/booth", _page("booth.html"))
    app.router.add_get("/operator", _page("operator.html"))
    app.router.add_static("/static/", STATIC, show_index=False, append_version=False)
