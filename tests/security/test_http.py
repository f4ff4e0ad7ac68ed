"""The HTTP surface: the security headers on every response (pages, ``/operator``, the API, static
files, errors); ``/metrics`` and every operator route refused without the right token or from an
address not allowed; request size caps; recordings not reachable outside their folder; bytes that
are not UTF-8 in headers, paths and queries, JSON bodies holding half a character, nested deep or
not JSON at all, and join codes outside their alphabet — each a 4xx with a typed error, never a
crash.

Pages under the CSP with no inline script or style: ``tests/test_pages.py::
test_pages_are_served_under_the_csp_with_no_inline_script_or_style``; ``/metrics`` refused outside
the allowed networks and served with its token: ``tests/test_metrics.py::
test_metrics_are_refused_to_callers_outside_the_allowed_networks``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from config.appkeys import SIGNALING
from pages.routes import CSP, SECURITY_HEADERS
from signaling.identity import Role, TokenKeys
from signaling.lifecycle import State
from tests.conftest import NodeFactory, app_of, operator_headers, token

PAGES = (
    "/",
    "/s/plenary",
    "/s/plenary/moderate",
    "/s/plenary/display",
    "/s/plenary/desk",
    "/s/plenary/booth",
    "/operator",
)
OTHER = (
    "/static/js/connection.js",
    "/static/css/podium.css",
    "/api/v1/event",
    "/api/v1/sessions/plenary",
    "/api/v1/overview",  # 401 without a token: errors carry the headers too
    "/healthz",
    "/readyz",
    "/metrics",
    "/no/such/page",
    "/static/../config/settings.py",
    "/whip/plenary/floor/some-resource",  # 405
)
# Every route that needs an operator's (or staff) token: method, path, body.
OPERATOR_ROUTES: tuple[tuple[str, str, object], ...] = (
    ("GET", "/api/v1/overview", None),
    ("GET", "/api/v1/report", None),
    ("GET", "/api/v1/sessions/plenary/report", None),
    ("GET", "/api/v1/sessions/plenary/series", None),
    ("GET", "/api/v1/streams", None),
    ("POST", "/api/v1/sessions/plenary/state", {"state": "closed"}),
    ("POST", "/api/v1/sessions/plenary/channels/fr/release", {}),
    ("PUT", "/api/v1/sessions/plenary/channels/floor/external", {"url": "https://e.example/x"}),
    ("GET", "/api/v1/sessions/plenary/recordings", None),
    ("GET", "/api/v1/sessions/plenary/questions/export", None),
)


@pytest.mark.parametrize("path", PAGES + OTHER)
async def test_every_response_carries_the_csp_and_the_security_headers(
    node: TestServer, path: str
) -> None:
    async with aiohttp.ClientSession() as http, http.get(node.make_url(path)) as resp:
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (path, resp.status, name)
    for weakening in ("'unsafe-inline'", "'unsafe-eval'", "*"):
        assert weakening not in CSP
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in CSP


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_is_served_without_a_token_in_it_and_is_not_cached_by_proxies(
    node: TestServer, path: str
) -> None:
    async with aiohttp.ClientSession() as http, http.get(node.make_url(path)) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "eyJ" not in await resp.text()  # no JWT baked into a page


@pytest.mark.parametrize(("method", "path", "body"), OPERATOR_ROUTES)
async def test_operator_routes_refuse_no_token_a_forged_one_and_people_of_lesser_roles(
    node: TestServer, method: str, path: str, body: object
) -> None:
    forged = token(Role.OPERATOR, ("*",), keys=_other_keys())
    async with aiohttp.ClientSession() as http:
        for headers, status in (
            ({}, 401),
            ({"Authorization": "Bearer " + forged}, 401),
            ({"Authorization": "Basic b3A6b3A="}, 401),
            ({"Authorization": "Bearer " + token(Role.PARTICIPANT)}, 403),
            ({"Authorization": "Bearer " + token(Role.DISPLAY)}, 403),
            ({"Authorization": "Bearer " + token(Role.INTERPRETER)}, 403),
        ):
            async with http.request(
                method, node.make_url(path), json=body, headers=headers
            ) as resp:
                assert resp.status == status, (path, headers, await resp.text())
                assert (await resp.json())["code"] in (
                    "unauthorized",
                    "forbidden",
                    "not_allowed",
                    "channel_forbidden",
                )
        # A token in the query string is never read: tokens do not travel in URLs.
        operator = token(Role.OPERATOR, ("*",))
        async with http.request(
            method, node.make_url(path + "?token=" + operator), json=body
        ) as resp:
            assert resp.status == 401
    assert (await app_of(node)[SIGNALING].store.lifecycle("plenary")).state is State.LIVE


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _other_keys() -> TokenKeys:
    return TokenKeys("another-secret-that-is-long-enough-0123456789")


async def test_metrics_ignore_forwarded_addresses_and_wrong_or_empty_tokens(
    node_factory: NodeFactory,
) -> None:
    closed = await node_factory(metrics_allow=("10.99.0.0/16",), metrics_token="m" * 32)
    open_no_token = await node_factory(metrics_allow=("10.99.0.0/16",), metrics_token="")
    async with aiohttp.ClientSession() as http:
        for server, headers in (
            (closed, {"X-Forwarded-For": "10.99.0.1"}),
            (closed, {"X-Real-IP": "10.99.0.1", "Forwarded": "for=10.99.0.1"}),
            (closed, {"Authorization": "Bearer " + "m" * 31}),
            (closed, {"Authorization": "bearer " + "m" * 32 + "x"}),
            (closed, {"Authorization": "Bearer " + token(Role.OPERATOR, ("*",))}),
            (open_no_token, {"Authorization": "Bearer "}),
            (open_no_token, {"Authorization": "Bearer"}),
        ):
            async with http.get(server.make_url("/metrics"), headers=headers) as resp:
                assert resp.status == 403, headers
                assert "podium_" not in await resp.text()
    # A token header of bytes that are not UTF-8 is a refusal too, not a crash.
    head, _ = await _raw(closed, "GET", "/metrics", b"Authorization: Bearer \xff\xfe" + b"m" * 30)
    assert head.startswith(b"HTTP/1.1 403")


async def _raw(
    server: TestServer, method: str, path: str, *headers: bytes, operator: bool = False
) -> tuple[bytes, bytes]:
    """A request written byte for byte (headers no HTTP client would send); the answer's head
    and body. ``path`` is sent as its Latin-1 bytes; ``operator`` adds an operator's token."""
    if operator:
        headers = (*headers, ("Authorization: " + operator_headers()["Authorization"]).encode())
    if path == "/ws":
        headers = (
            *headers,
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Version: 13",
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        )
    else:
        headers = (*headers, b"Connection: close")
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        lines = [f"{method} {path} HTTP/1.1".encode("latin-1"), b"Host: podium.test", *headers]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        body = b"" if path == "/ws" else await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    return head.rstrip(), body


@pytest.mark.parametrize(
    ("method", "path", "authorised"),
    [
        ("POST", "/api/v1/join", False),
        ("POST", "/api/v1/sessions/open-forum/guest", False),
        ("POST", "/api/v1/sessions/plenary/state", True),
        ("PUT", "/api/v1/sessions/plenary/channels/floor/external", True),
        ("POST", "/whip/plenary/floor", True),
        ("POST", "/whep/plenary/floor", True),
    ],
)
async def test_request_bodies_over_the_cap_are_refused_and_change_nothing(
    node: TestServer, method: str, path: str, authorised: bool
) -> None:
    # (A release takes no body: it reads none, so there is nothing to cap.)
    headers = operator_headers() if authorised else {}
    if path.startswith(("/whip", "/whep")):
        headers["Content-Type"] = "application/sdp"
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    async with aiohttp.ClientSession() as http:
        for body in (io.BytesIO(big), _chunks(big)):  # with a Content-Length, and chunked
            async with http.request(
                method, node.make_url(path), data=body, headers=headers
            ) as resp:
                assert resp.status in (400, 413), (path, resp.status)
                if resp.status == 400:
                    assert (await resp.json())["code"] in (
                        "invalid_message",
                        "invalid_body",
                        "malformed_sdp",
                        "unsupported_media_type",
                    )
        async with http.get(node.make_url("/healthz")) as resp:
            assert resp.status == 200
    assert (await app_of(node)[SIGNALING].store.lifecycle("plenary")).state is State.LIVE


async def test_a_header_of_a_hundred_kilobytes_is_refused_and_the_node_carries_on(
    node: TestServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(node.make_url("/api/v1/event"), headers={"X-Big": "x" * 100_000}) as r:
            assert r.status in (400, 431)
        async with http.get(node.make_url("/api/v1/event")) as resp:
            assert resp.status == 200


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fdemo-jwt-secret", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2fsecret", ".hidden"],
)
async def test_recordings_cannot_be_read_outside_their_folder(node: TestServer, name: str) -> None:
    url = str(node.make_url("/api/v1/sessions/plenary/recordings/")) + name
    async with (
        aiohttp.ClientSession() as http,
        http.get(URL(url, encoded=True), headers=operator_headers()) as resp,
    ):
        assert resp.status in (400, 404)
        assert resp.content_type == "application/json"


NOT_UTF8 = b"\xff\xfe\xc3\x28"


@pytest.mark.parametrize(
    ("method", "path", "header"),
    [
        ("GET", "/api/v1/overview", b"Authorization: Bearer " + NOT_UTF8),
        ("GET", "/api/v1/sessions/plenary/questions", b"Authorization: Bearer " + NOT_UTF8),
        ("GET", "/api/v1/report", b"Authorization: " + NOT_UTF8),
        ("GET", "/metrics", b"Authorization: Bearer " + NOT_UTF8),
        ("GET", "/ws", b"Origin: http://" + NOT_UTF8),
        ("GET", "/s/plenary", b"Accept: " + NOT_UTF8),
        ("GET", "/api/v1/sessions/plenary/recordings/" + NOT_UTF8.decode("latin-1"), b"X: y"),
    ],
)
async def test_headers_and_paths_of_bytes_that_are_not_utf8_are_refused_never_a_crash(
    node: TestServer, method: str, path: str, header: bytes
) -> None:
    head, _ = await _raw(node, method, path, header, operator=not header.startswith(b"Auth"))
    status = int(head.split(b" ", 2)[1])
    assert 400 <= status < 500 or status == 200, head
    async with aiohttp.ClientSession() as http, http.get(node.make_url("/healthz")) as resp:
        assert resp.status == 200


HALF = "\ud800"  # half a UTF-16 pair: JSON can escape it, no UTF-8 string can hold it


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/join", {"code": HALF * 20}),
        ("POST", "/api/v1/sessions/open-forum/guest", {"name": "Eve" + HALF}),
        ("POST", "/api/v1/sessions/open-forum/guest", {"name": "Eve", "mode": HALF}),
        ("POST", "/api/v1/sessions/plenary/state", {"state": HALF}),
        ("PUT", "/api/v1/sessions/plenary/channels/floor/external", {"url": "https://e.x/" + HALF}),
        ("POST", "/api/v1/sessions/plenary/state", {HALF: "closed"}),
    ],
)
async def test_json_bodies_holding_half_a_character_are_refused_never_a_crash(
    node: TestServer, method: str, path: str, body: dict[str, str]
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, node.make_url(path), json=body, headers=operator_headers()) as resp,
    ):
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["code"] in ("invalid_message", "invalid_body")
    assert (await app_of(node)[SIGNALING].store.lifecycle("plenary")).state is State.LIVE


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sessions/%ED%A0%80",
        "/api/v1/sessions/%FF%FE/report",
        "/api/v1/sessions/plenary/series?since=%FF",
        "/api/v1/overview?%FF=1",
        "/api/v1/report?format=%ED%A0%80",
        "/api/v1/sessions/plenary/questions/export?format=%FF&table=%ED%A0%80",
        "/api/v1/sessions/plenary/recordings/%ED%A0%80.webm",
        "/s/%FF%FE",
        "/static/%ED%A0%80.js",
    ],
)
async def test_paths_and_queries_of_bytes_that_are_not_utf8_are_refused_never_a_crash(
    node: TestServer, path: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            URL(str(node.make_url("/")) + path[1:], encoded=True), headers=operator_headers()
        ) as resp,
    ):
        # A page answers any session name (the page itself says it is unknown); never a 5xx.
        assert resp.status < 500, (path, resp.status, await resp.text())
        if not path.startswith("/s/"):
            assert resp.status >= 400, path


JSON_ROUTES = (
    ("POST", "/api/v1/join"),
    ("POST", "/api/v1/sessions/open-forum/guest"),
    ("POST", "/api/v1/sessions/plenary/state"),
    ("PUT", "/api/v1/sessions/plenary/channels/floor/external"),
)
JUNK_BODIES = {
    "nested-20000-deep": b"[" * 20_000 + b"]" * 20_000,
    "object-nested-deep": b'{"name": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    "not-utf8": b'{"name": "caf\xc3\x28"}',
    "nan": b'{"state": NaN}',
    "infinity": b'{"url": Infinity}',
    "a-5000-digit-number": b'{"code": ' + b"9" * 5000 + b"}",
    "trailing-garbage": b'{"state": "closed"} {"state": "live"}',
}


@pytest.mark.parametrize("junk", JUNK_BODIES.values(), ids=JUNK_BODIES.keys())
@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
async def test_json_bodies_nested_deep_or_not_json_are_refused_never_a_crash(
    node: TestServer, method: str, path: str, junk: bytes
) -> None:
    headers = {"Content-Type": "application/json", **operator_headers()}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, node.make_url(path), data=junk, headers=headers) as resp,
    ):
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["code"] in ("invalid_message", "invalid_body")
    assert (await app_of(node)[SIGNALING].store.lifecycle("plenary")).state is State.LIVE


@pytest.mark.parametrize(
    "code",
    ["é" * 20, "podium:{plenary}:*" + "x" * 10, "a" * 15, "a" * 65, "a" * 16 + "\n", 10**20],
)
async def test_join_codes_outside_their_alphabet_are_refused_and_no_token_is_issued(
    node: TestServer, code: object
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(node.make_url("/api/v1/join"), json={"code": code}) as resp,
    ):
        assert resp.status == 400
        body = await resp.json()
    assert body["code"] == "invalid_message"
    assert "token" not in body
