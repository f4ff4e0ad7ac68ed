"""The API documents (docs/asyncapi.yaml, docs/openapi.yaml) against the code and real traffic."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import yaml
from aiohttp import ClientResponse, ClientSession, web
from aiohttp.test_utils import TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from config.app import create_app
from config.appkeys import SIGNALING
from config.embedded import EmbeddedStore
from config.settings import Settings
from signaling.errors import CloseCode, SignalingError
from signaling.identity import Identity, Role, TokenKeys
from signaling.messages import BASE_COMMANDS, SERVER_TYPES, Message, Position, type_of
from signaling.programme import Programme
from signaling.routes import create_join_code
from tests.conftest import (
    ORIGIN,
    ClientFactory,
    NodeFactory,
    app_of,
    operator_headers,
    token,
    ws_url,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
CLIENT_TYPES: Final = frozenset(type_of(command) for command in BASE_COMMANDS)
HTTP_METHODS: Final = frozenset(
    {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
)
METRICS_TOKEN: Final = "metrics-token-for-the-contract-tests"
NEVER_SENT: Final = {
    CloseCode.SLOW_CONSUMER: "a slow socket is aborted without a close frame (clients see 1006)",
    CloseCode.SERVER_ERROR: "no code path sends it",
    CloseCode.STORE_UNAVAILABLE: "needs a store outage (see the outage test)",
}


# ---- the documents -------------------------------------------------------------------------------


class Contract:
    """An API document, also registered as a JSON Schema resource so any schema in it validates."""

    def __init__(self, name: str) -> None:
        loaded = yaml.safe_load((DOCS / name).read_text(encoding="utf-8"))
        assert isinstance(loaded, dict), f"{name} is not a YAML mapping"
        self.doc: dict[str, Any] = loaded
        self.uri = f"urn:podium:{name}"
        resource: Resource[Any] = Resource.from_contents(loaded, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(self.uri, resource)

    def at(self, ref: str) -> Any:
        """The node a local reference (``#/a/b``) points at."""
        assert ref.startswith("#/"), f"only local references are used, not {ref}"
        node: Any = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def resolve(self, node: Any) -> Any:
        """Follows ``$ref``s until it reaches a node that is not one."""
        while isinstance(node, dict) and "$ref" in node:
            node = self.at(node["$ref"])
        return node

    def errors(self, ref: str, instance: Any) -> list[str]:
        """Why ``instance`` fails the schema at ``ref`` (Draft 2020-12); empty when it matches."""
        validator = Draft202012Validator(
            {"$ref": self.uri + ref},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]


@cache
def asyncapi() -> Contract:
    """docs/asyncapi.yaml."""
    return Contract("asyncapi.yaml")


@cache
def openapi() -> Contract:
    """docs/openapi.yaml."""
    return Contract("openapi.yaml")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _message_keys() -> dict[str, str]:
    """Wire type → key of its message in the AsyncAPI components."""
    messages = asyncapi().doc["components"]["messages"]
    return {m["payload"]["properties"]["type"]["const"]: key for key, m in messages.items()}


def _payload_ref(kind: str) -> str:
    return f"#/components/messages/{_escape(_message_keys()[kind])}/payload"


def _operation_types() -> tuple[set[str], set[str]]:
    """The wire types the server receives, and those it sends (messages and replies)."""
    contract = asyncapi()
    received: set[str] = set()
    sent: set[str] = set()

    def kind(ref: dict[str, str]) -> str:
        assert ref["$ref"].startswith("#/channels/ws/messages/"), ref
        return str(contract.resolve(ref)["payload"]["properties"]["type"]["const"])

    for name, operation in contract.doc["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        assert operation["channel"] == {"$ref": "#/channels/ws"}, name
        (received if operation["action"] == "receive" else sent).update(
            kind(ref) for ref in operation["messages"]
        )
        if "reply" in operation:
            sent.update(kind(ref) for ref in operation["reply"]["messages"])
    return received, sent


def _error_tree() -> list[type[SignalingError]]:
    """SignalingError and every subclass of it, however deep (test doubles left out)."""
    found: list[type[SignalingError]] = []
    pending: list[type[SignalingError]] = [SignalingError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__module__.startswith("tests"):
            found.append(cls)
    return found


def _structs() -> dict[str, type[Message]]:
    """Every wire message struct, by its type."""
    found: dict[str, type[Message]] = {}
    pending = list(Message.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        tag = cls.__struct_config__.tag
        if isinstance(tag, str):
            found[tag] = cls
    return found


# ---- (a) the AsyncAPI document and the code ------------------------------------------------------


def test_asyncapi_document_parses_and_lists_exactly_the_server_s_message_types() -> None:
    doc = asyncapi().doc
    assert doc["asyncapi"] == "3.0.0"
    assert list(doc["channels"]) == ["ws"]
    assert doc["channels"]["ws"]["address"] == "/ws"
    received, sent = _operation_types()
    assert received == CLIENT_TYPES
    assert sent == set(SERVER_TYPES)
    channel_types = {
        asyncapi().resolve(ref)["payload"]["properties"]["type"]["const"]
        for ref in doc["channels"]["ws"]["messages"].values()
    }
    assert channel_types == CLIENT_TYPES | set(SERVER_TYPES) == set(_message_keys())
    for key, message in doc["components"]["messages"].items():
        Draft202012Validator.check_schema(message["payload"])
        for example in message.get("examples", []):
            assert (
                asyncapi().errors(
                    f"#/components/messages/{_escape(key)}/payload", example["payload"]
                )
                == []
            )


@pytest.mark.parametrize("kind", sorted(CLIENT_TYPES | set(SERVER_TYPES) - {"event"}))
def test_message_schema_has_exactly_its_struct_s_fields_and_requires_those_without_default(
    kind: str,
) -> None:
    contract = asyncapi()
    payload = contract.at(_payload_ref(kind))
    assert payload["additionalProperties"] is False
    assert payload["properties"]["type"] == {"const": kind}
    _assert_schema_mirrors_struct(payload, _structs()[kind], extra={"type"})
    if kind == "auth":
        resume = payload["properties"]["resume"]["oneOf"]
        assert resume == [{"$ref": "#/components/schemas/Position"}, {"type": "null"}]
        position = contract.at("#/components/schemas/Position")
        assert position["additionalProperties"] is False
        _assert_schema_mirrors_struct(position, Position, extra=set())


def _assert_schema_mirrors_struct(
    schema: dict[str, Any], struct: type[msgspec.Struct], *, extra: set[str]
) -> None:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    assert set(schema["properties"]) == extra | {f.encode_name for f in info.fields}
    assert len(schema["required"]) == len(set(schema["required"]))
    assert set(schema["required"]) == extra | {f.encode_name for f in info.fields if f.required}
    for f in info.fields:
        documented = asyncapi().resolve(schema["properties"][f.encode_name])
        if isinstance(f.type, msgspec.inspect.LiteralType):
            assert set(documented["enum"]) == set(f.type.values), f.encode_name
        limits: dict[str, Any] = {}
        if isinstance(f.type, msgspec.inspect.StrType):
            limits = {"minLength": f.type.min_length, "maxLength": f.type.max_length}
            limits["pattern"] = f.type.pattern
        elif isinstance(f.type, msgspec.inspect.IntType):
            limits = {"minimum": f.type.ge, "maximum": f.type.le}
        for keyword, value in limits.items():
            if value is not None:
                assert documented.get(keyword) == value, f"{f.encode_name}.{keyword}"


# ---- (b) close codes and error codes -------------------------------------------------------------


def test_documented_close_codes_are_exactly_the_server_s_close_codes() -> None:
    channel = asyncapi().doc["channels"]["ws"]
    documented = channel["x-close-codes"]
    assert all(set(entry) == {"code", "name", "reconnect"} for entry in documented)
    assert len(documented) == len(CloseCode)
    assert sorted((e["code"], e["name"], e["reconnect"]) for e in documented) == sorted(
        (int(code), code.name, code.reconnect) for code in CloseCode
    )
    for code in CloseCode:
        row = rf"^\| {int(code)} \| {code.name} \| {'yes' if code.reconnect else 'no'} \|"
        assert re.search(row, channel["description"], re.MULTILINE), f"no table row for {code!r}"


def test_documented_error_codes_are_exactly_the_codes_of_the_signaling_error_tree() -> None:
    tree = _error_tree()
    assert len({cls.code for cls in tree}) == len(tree), "two errors share a code"
    expected = {
        cls.code: {
            "code": cls.code,
            "http_status": cls.http_status,
            "close_code": None if cls.close_code is None else int(cls.close_code),
            "retryable": cls.retryable,
        }
        for cls in tree
    }
    documented = asyncapi().doc["channels"]["ws"]["x-error-codes"]
    assert len(documented) == len(expected)
    assert {entry["code"]: entry for entry in documented} == expected
    assert set(asyncapi().at("#/components/schemas/ErrorCode")["enum"]) == set(expected)
    table = asyncapi().doc["components"]["messages"]["error"]["description"]
    for code in expected:
        assert re.search(rf"^\| {code} \|", table, re.MULTILINE), f"no table row for {code}"


def test_both_documents_describe_the_shared_objects_identically() -> None:
    ours, theirs = asyncapi().doc["components"]["schemas"], openapi().doc["components"]["schemas"]
    for name in ("SessionName", "StateName", "Role", "Mode", "Count", "RoleCounts"):
        assert ours[name] == theirs[name], name
    for name in ("PresenceCounts", "QnaSettings", "FloorSettings"):
        assert ours[name] == theirs[name], name
    view, fields = ours["SessionView"], theirs["SessionFields"]
    assert (view["properties"], view["required"]) == (fields["properties"], fields["required"])


# ---- (c) real WebSocket traffic ------------------------------------------------------------------


@dataclass
class Wire:
    """Every text frame the test's clients sent (and whether meant to be valid) and received."""

    sent: list[tuple[str, bool]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    taps: list[Tap] = field(default_factory=list)

    async def open(self, server: TestServer) -> Tap:
        """Opens a recorded socket to a node."""
        ws = await connect(ws_url(server), origin=Origin(ORIGIN), compression=None)
        tap = Tap(ws, self)
        self.taps.append(tap)
        return tap

    async def close_all(self) -> None:
        """Closes every socket still open."""
        for tap in self.taps:
            await tap.ws.close()

    def failures(self) -> list[str]:
        """Every recorded frame that contradicts the AsyncAPI document."""
        contract, failures = asyncapi(), []
        for message in self.received:
            kind = message.get("type")
            if kind not in SERVER_TYPES:
                failures.append(f"undocumented server message {message}")
                continue
            failures += [f"{kind}: {e}" for e in contract.errors(_payload_ref(kind), message)]
        for text, valid in self.sent:
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind in CLIENT_TYPES:
                accepted = not contract.errors(_payload_ref(kind), frame)
            else:
                accepted = False
            if accepted != valid:
                verdict = "refuses a frame meant to be valid" if valid else "accepts a bad frame"
                failures.append(f"the document {verdict}: {text[:120]}")
        return failures


class Tap:
    """One raw client socket (websockets) whose frames both ways are recorded in a Wire."""

    def __init__(self, ws: ClientConnection, wire: Wire) -> None:
        self.ws = ws
        self.wire = wire
        self.unread: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str | bytes, *, valid: bool = True) -> None:
        """Sends a frame; a dict as JSON, text and bytes as they are."""
        data = json.dumps(frame) if isinstance(frame, dict) else frame
        if isinstance(data, str):
            self.wire.sent.append((data, valid))
        await self.ws.send(data)

    async def auth(self, tok: str, session: str = "plenary", **extra: Any) -> dict[str, Any]:
        """Sends ``auth`` and returns the server's first answer."""
        await self.send({"type": "auth", "id": "auth-1", "token": tok, "session": session, **extra})
        return await self.next()

    async def next(
        self, kind: str | None = None, wait: float = 5.0, **fields: Any
    ) -> dict[str, Any]:
        """The first unread message of that type with those field values, reading more as needed."""
        try:
            async with asyncio.timeout(wait):
                while True:
                    for message in self.unread:
                        if (kind is None or message["type"] == kind) and all(
                            message.get(k) == v for k, v in fields.items()
                        ):
                            self.unread.remove(message)
                            return message
                    await self._read()
        except TimeoutError:
            unread = [m["type"] for m in self.unread]
            raise AssertionError(f"no {kind} {fields} within {wait} s; unread: {unread}") from None

    async def closed(self, wait: float = 5.0) -> int:
        """Reads until the server closes the socket; its close code (1006 without a close frame)."""
        async with asyncio.timeout(wait):
            try:
                while True:
                    await self._read()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
        self.wire.closes.append(code)
        return code

    def errors(self) -> list[dict[str, Any]]:
        """The unread ``error`` messages."""
        return [m for m in self.unread if m["type"] == "error"]

    async def _read(self) -> None:
        raw = await self.ws.recv()
        assert isinstance(raw, str), "the server sends text frames only"
        message = json.loads(raw)
        assert isinstance(message, dict)
        self.wire.received.append(message)
        self.unread.append(message)


async def test_real_websocket_traffic_matches_the_asyncapi_document_and_shows_every_server_type(
    node: TestServer, node_factory: NodeFactory
) -> None:
    wire = Wire()
    try:
        await _converse(node, wire)
        await asyncio.gather(*(_refused(node, wire, *case) for case in _refusal_cases()))
        await asyncio.gather(_expires(node, wire), _bad_frames(node, wire), _oversized(node, wire))
        await _going_away(node_factory, wire)
    finally:
        await wire.close_all()
    assert wire.failures() == []
    assert {message["type"] for message in wire.received} == set(SERVER_TYPES)
    assert set(wire.closes) == {int(code) for code in CloseCode} - {int(c) for c in NEVER_SENT}


async def _converse(node: TestServer, wire: Wire) -> None:
    """Operators and participants at work: commands, refusals, resume and the three resyncs."""
    await app_of(node)[SIGNALING].tick()  # the plenary started ten minutes ago: live from now on
    op = await wire.open(node)
    assert (await op.auth(token(Role.OPERATOR, ("*",), name="Olu")))["state"] == "live"
    amina = token(mode="venue")
    alice = await wire.open(node)
    assert (await alice.auth(amina))["type"] == "welcome"
    await op.next("presence", online=2)
    await op.send({"type": "ping", "id": "p1"})
    await op.next("pong", id="p1")
    await op.send({"type": "session.set_state", "id": "s1", "state": "open"})
    assert (await op.next("ack", id="s1"))["result"] == {"state": "open"}
    seen = await alice.next("event", name="session.state")
    assert seen["data"]["state"] == "open"
    await alice.send({"type": "session.set_state", "id": "s2", "state": "live"})
    assert (await alice.next("error", id="s2"))["code"] == "forbidden"
    await op.send({"type": "session.set_state", "id": "s3", "state": "open"})
    assert (await op.next("error", id="s3"))["code"] == "invalid_transition"
    refused: list[tuple[dict[str, Any] | str, bool, str, str | None]] = [
        ("{nope", False, "malformed_frame", None),
        ("[1, 2]", False, "malformed_frame", None),
        ({"type": "shout", "id": "u1"}, False, "unknown_type", "u1"),
        ({"type": "ping", "id": "x1", "extra": True}, False, "invalid_message", "x1"),
        (_auth(amina, rid="a2"), True, "not_authenticated", "a2"),
    ]
    for frame, valid, code, rid in refused:
        await alice.send(frame, valid=valid)
        error = await alice.next("error", code=code)
        assert error.get("id") == rid

    # Away for two events, then back: exactly those two, then presence, then live.
    await alice.ws.close()
    for rid, state in (("s4", "live"), ("s5", "open")):
        await op.send({"type": "session.set_state", "id": rid, "state": state})
        await op.next("ack", id=rid)
    alice = await wire.open(node)
    resumed = await alice.auth(amina, resume={"epoch": seen["epoch"], "seq": seen["seq"]})
    assert (resumed["type"], resumed["missed"]) == ("resumed", 2)
    missed = [await alice.next("event"), await alice.next("event")]
    assert [e["seq"] for e in missed] == [seen["seq"] + 1, seen["seq"] + 2]
    await alice.next("presence")

    # Away for 60 events (the test node keeps 50): the history is gone.
    await alice.ws.close()
    async with ClientSession() as http:
        for n in range(60):
            body = {"state": "live" if n % 2 == 0 else "open"}
            url = node.make_url("/api/v1/sessions/plenary/state")
            response = await http.post(url, json=body, headers=operator_headers())
            assert response.status == 200, await response.text()
            route = "/api/v1/sessions/{session}/state"
            assert _http_failures("POST", route, response, await response.read(), body) == []
    for _ in range(60):
        await op.next("event")
    last = missed[-1]
    for resume, reason in (
        ({"epoch": last["epoch"], "seq": last["seq"]}, "history_gone"),
        ({"epoch": "0000feedbeef0000", "seq": 1}, "epoch_changed"),
        ({"epoch": last["epoch"], "seq": last["seq"] + 1000}, "ahead_of_stream"),
    ):
        alice = await wire.open(node)
        assert await alice.auth(amina, resume=resume) == {
            "type": "resync",
            "id": "auth-1",
            "reason": reason,
        }
        assert (await alice.next("welcome"))["id"] == "auth-1"
        await alice.ws.close()

    # A flood: rate-limited errors with retry_after, then the socket is closed.
    flooder = await wire.open(node)
    await flooder.auth(token())
    with contextlib.suppress(ConnectionClosed):
        for n in range(60):
            await flooder.send({"type": "ping", "id": f"f{n}"})
    assert await flooder.closed() == CloseCode.FLOOD
    assert all(e["code"] == "rate_limited" and e["retry_after"] >= 0 for e in flooder.errors())
    assert len(flooder.errors()) == 30  # the 30th rate-limited frame closes the socket


def _auth(tok: str, session: str = "plenary", rid: str = "a1", **extra: Any) -> dict[str, Any]:
    return {"type": "auth", "id": rid, "token": tok, "session": session, **extra}


def _refusal_cases() -> list[tuple[dict[str, Any] | str | bytes | None, bool, str | None]]:
    """First frames the server refuses at auth: (frame, meant to be valid, error code)."""
    expired = token(now=int(time.time()) - 7200, ttl=3600)
    forged = token(keys=TokenKeys("another-secret-another-secret-another-secret"))
    return [
        (_auth(expired), True, "token_expired"),
        (_auth(forged), True, "unauthorized"),
        (_auth(token(Role.OPERATOR, ("*",)), "nowhere"), True, "unknown_session"),
        (_auth(token(sessions=("workshop",))), True, "session_forbidden"),
        ({"type": "ping", "id": "early"}, True, "not_authenticated"),
        ("{nope", False, "malformed_frame"),
        (_auth(token(), role="operator"), False, "invalid_message"),
        (None, True, "auth_timeout"),
        (b"\x00binary", True, None),
    ]


async def _refused(
    node: TestServer,
    wire: Wire,
    first: dict[str, Any] | str | bytes | None,
    valid: bool,
    code: str | None,
) -> None:
    """Sends one first frame (or nothing); the error and the close must be the documented ones."""
    tap = await wire.open(node)
    if first is not None:
        await tap.send(first, valid=valid)
    closed = await tap.closed()
    if code is None:
        assert (tap.errors(), closed) == ([], CloseCode.UNSUPPORTED_DATA)
        return
    assert [e["code"] for e in tap.errors()] == [code]
    documented = {
        e["code"]: e["close_code"] for e in asyncapi().doc["channels"]["ws"]["x-error-codes"]
    }
    assert closed == (documented[code] or CloseCode.PROTOCOL_VIOLATION)


async def _expires(node: TestServer, wire: Wire) -> None:
    tap = await wire.open(node)
    assert (await tap.auth(token(ttl=2)))["type"] == "welcome"
    assert await tap.closed() == CloseCode.TOKEN_EXPIRED
    assert [(e["code"], "id" in e) for e in tap.errors()] == [("token_expired", False)]


async def _bad_frames(node: TestServer, wire: Wire) -> None:
    tap = await wire.open(node)
    await tap.auth(token())
    for _ in range(10):
        await tap.send("{nope", valid=False)
    assert await tap.closed() == CloseCode.PROTOCOL_VIOLATION
    assert [e["code"] for e in tap.errors()] == ["malformed_frame"] * 10


async def _oversized(node: TestServer, wire: Wire) -> None:
    for frame, code in (
        (b"\x00binary", CloseCode.UNSUPPORTED_DATA),
        ("x" * 70_000, CloseCode.MESSAGE_TOO_BIG),
    ):
        tap = await wire.open(node)
        await tap.auth(token())
        await tap.send(frame, valid=False)
        assert await tap.closed() == code


async def _going_away(node_factory: NodeFactory, wire: Wire) -> None:
    other = await node_factory()
    tap = await wire.open(other)
    assert (await tap.auth(token()))["type"] == "welcome"
    closing = asyncio.create_task(other.close())
    assert await tap.closed() == CloseCode.GOING_AWAY
    await closing


async def _outage_node(
    node_factory: NodeFactory, tmp: pytest.TempPathFactory
) -> tuple[TestServer, EmbeddedStore]:
    store = EmbeddedStore(tmp.mktemp("outage"))
    return await node_factory(redis_url=await store.start()), store


async def test_clients_joining_during_a_store_outage_get_store_unavailable_and_4002(
    node_factory: NodeFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    node, store = await _outage_node(node_factory, tmp_path_factory)
    wire = Wire()
    try:
        first = await wire.open(node)
        assert (await first.auth(token()))["type"] == "welcome"  # the node now follows the plenary
        await store.stop()
        for session in ("plenary", "open-forum"):  # one the node follows, one it does not yet
            late = await wire.open(node)
            assert await late.auth(token(sessions=("*",)), session) == {
                "type": "error",
                "code": "store_unavailable",
                "message": "the store is unavailable",
                "id": "auth-1",
            }
            assert await late.closed() == CloseCode.STORE_UNAVAILABLE
    finally:
        await wire.close_all()
        await store.stop()
    assert wire.failures() == []


# ---- (d) the OpenAPI document and the router -----------------------------------------------------


def test_openapi_document_is_valid_openapi_3_1() -> None:
    assert openapi().doc["openapi"] == "3.1.0"
    validate_openapi(openapi().doc)


def test_openapi_documents_every_route_of_the_app_and_nothing_else(
    settings: Settings, programme: Programme
) -> None:
    app = create_app(settings, programme=programme)
    registered: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.resource is None:
            continue
        registered.add((route.method.lower(), route.resource.canonical))
    heads = {path for method, path in registered if method == "head"}
    assert heads == {path for method, path in registered if method == "get"}
    # add_get registers a HEAD beside every GET; the document says so instead of listing them.
    registered -= {("head", path) for path in heads}
    documented = {
        (method, path)
        for path, item in openapi().doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert registered == documented


# ---- (e) real HTTP responses ---------------------------------------------------------------------

NO_BODY: Final = object()


@dataclass
class Ctx:
    """What an exchange works with: an HTTP client and a node (it may start one of its own)."""

    http: ClientSession
    node: TestServer
    nodes: NodeFactory
    connect: ClientFactory
    tmp: pytest.TempPathFactory
    stores: list[EmbeddedStore] = field(default_factory=list)
    body: object = NO_BODY

    async def get(self, path: str, headers: dict[str, str] | None = None) -> ClientResponse:
        """GETs a path of the node."""
        return await self.http.get(self.node.make_url(path), headers=headers)

    async def post(
        self, path: str, body: object, headers: dict[str, str] | None = None
    ) -> ClientResponse:
        """POSTs ``body`` as JSON, or bytes as they are."""
        self.body = body
        url = self.node.make_url(path)
        if isinstance(body, bytes):
            return await self.http.post(url, data=body, headers=headers)
        return await self.http.post(url, json=body, headers=headers)

    async def own_node(self, **changes: Any) -> None:
        """Swaps in a node of the exchange's own, with changed settings."""
        self.node = await self.nodes(**changes)

    async def outage(self) -> None:
        """Swaps in a node whose store has just stopped."""
        self.node, store = await _outage_node(self.nodes, self.tmp)
        self.stores.append(store)
        await store.stop()

    async def live(self) -> None:
        """Runs the schedule now, so the plenary (started ten minutes ago) is live."""
        await app_of(self.node)[SIGNALING].tick()

    def draining(self) -> None:
        """Puts the node in the state a SIGTERM leaves it in."""
        app_of(self.node)[SIGNALING].draining = True


Send = Callable[[Ctx], Awaitable[ClientResponse]]
EXCHANGES: dict[str, tuple[str, str, int, Send]] = {}


def exchange(method: str, route: str, status: int) -> Callable[[Send], Send]:
    """Registers a real request whose response must match the documented ``status`` response."""

    def register(send: Send) -> Send:
        EXCHANGES[send.__name__] = (method, route, status, send)
        return send

    return register


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + tok}


def _upgrade() -> dict[str, str]:
    key = base64.b64encode(os.urandom(16)).decode()
    return {
        "Origin": ORIGIN,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }


@exchange("GET", "/healthz", 200)
async def a_live_node_says_ok(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/healthz")


@exchange("GET", "/readyz", 200)
async def a_node_whose_store_answers_is_ready(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/readyz")


@exchange("GET", "/readyz", 503)
async def a_draining_node_is_not_ready(ctx: Ctx) -> ClientResponse:
    ctx.draining()
    return await ctx.get("/readyz")


@exchange("GET", "/readyz", 503)
async def a_node_without_its_store_is_not_ready(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/readyz")


@exchange("GET", "/metrics", 200)
async def metrics_are_served_to_loopback(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/metrics")


@exchange("GET", "/metrics", 200)
async def metrics_are_served_to_the_metrics_token_from_any_network(ctx: Ctx) -> ClientResponse:
    await ctx.own_node(metrics_allow=(), metrics_token=METRICS_TOKEN)
    return await ctx.get("/metrics", _bearer(METRICS_TOKEN))


@exchange("GET", "/metrics", 403)
async def metrics_are_refused_outside_the_allowed_networks(ctx: Ctx) -> ClientResponse:
    await ctx.own_node(metrics_allow=(), metrics_token=METRICS_TOKEN)
    return await ctx.get("/metrics", _bearer("not-the-metrics-token"))


@exchange("GET", "/api/v1/event", 200)
async def the_event_lists_its_sessions_with_their_states(ctx: Ctx) -> ClientResponse:
    await ctx.live()
    return await ctx.get("/api/v1/event")


@exchange("GET", "/api/v1/event", 503)
async def the_event_is_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/event")


@exchange("GET", "/api/v1/sessions/{session}", 200)
async def a_session_shows_its_state_and_who_is_online(ctx: Ctx) -> ClientResponse:
    await ctx.connect(ctx.node, token(mode="venue"))
    await ctx.connect(ctx.node, token(Role.MODERATOR))
    return await ctx.get("/api/v1/sessions/plenary")


@exchange("GET", "/api/v1/sessions/{session}", 404)
async def an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/api/v1/sessions/nowhere")


@exchange("GET", "/api/v1/sessions/{session}", 503)
async def a_session_is_unavailable_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.get("/api/v1/sessions/plenary")


STATE = "/api/v1/sessions/{session}/state"


@exchange("POST", STATE, 200)
async def an_operator_pauses_a_live_session(ctx: Ctx) -> ClientResponse:
    await ctx.live()
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, operator_headers())


@exchange("POST", STATE, 401)
async def a_state_change_without_a_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"})


@exchange("POST", STATE, 401)
async def a_state_change_with_a_forged_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    forged = token(Role.OPERATOR, ("*",), keys=TokenKeys("x" * 40))
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(forged))


@exchange("POST", STATE, 401)
async def a_state_change_with_an_expired_token_is_unauthorized(ctx: Ctx) -> ClientResponse:
    expired = token(Role.OPERATOR, ("*",), now=int(time.time()) - 7200, ttl=3600)
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(expired))


@exchange("POST", STATE, 403)
async def a_participant_may_not_change_the_state(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(token()))


@exchange("POST", STATE, 403)
async def an_operator_of_other_sessions_may_not_change_this_one(ctx: Ctx) -> ClientResponse:
    other = token(Role.OPERATOR, ("workshop",))
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, _bearer(other))


@exchange("POST", STATE, 404)
async def the_state_of_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/nowhere/state", {"state": "open"}, operator_headers())


@exchange("POST", STATE, 400)
async def a_state_that_does_not_exist_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "paused"}, operator_headers())


@exchange("POST", STATE, 400)
async def a_state_body_with_extra_fields_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    body = {"state": "open", "reason": "lunch"}
    return await ctx.post("/api/v1/sessions/plenary/state", body, operator_headers())


@exchange("POST", STATE, 400)
async def a_state_body_that_is_not_json_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/state", b"state=open", operator_headers())


@exchange("POST", STATE, 409)
async def a_backward_move_the_lifecycle_forbids_is_a_conflict(ctx: Ctx) -> ClientResponse:
    await ctx.live()
    body = {"state": "scheduled"}
    return await ctx.post("/api/v1/sessions/plenary/state", body, operator_headers())


@exchange("POST", STATE, 503)
async def a_state_change_is_refused_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.post("/api/v1/sessions/plenary/state", {"state": "open"}, operator_headers())


GUEST = "/api/v1/sessions/{session}/guest"


@exchange("POST", GUEST, 200)
async def a_guest_gets_a_participant_token(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": "  Amina   Diallo "})


@exchange("POST", GUEST, 200)
async def a_guest_in_the_room_gets_a_venue_token(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": "Li Wei", "mode": "venue"})


@exchange("POST", GUEST, 400)
async def a_guest_without_a_name_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": " "})


@exchange("POST", GUEST, 400)
async def a_guest_in_an_unknown_mode_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/open-forum/guest", {"name": "Li", "mode": "car"})


@exchange("POST", GUEST, 403)
async def a_session_without_guest_access_refuses_guests(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/plenary/guest", {"name": "Amina"})


@exchange("POST", GUEST, 404)
async def a_guest_of_an_unknown_session_is_not_found(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/sessions/nowhere/guest", {"name": "Amina"})


@exchange("POST", GUEST, 429)
async def a_burst_of_guests_is_rate_limited(ctx: Ctx) -> ClientResponse:
    for n in range(40):
        response = await ctx.post("/api/v1/sessions/open-forum/guest", {"name": f"Guest {n}"})
        if response.status == 429:
            return response
        assert response.status == 200
        response.release()
    raise AssertionError("40 guest joins in a row were not rate-limited")


@exchange("POST", "/api/v1/join", 200)
async def a_join_code_is_exchanged_for_a_token(ctx: Ctx) -> ClientResponse:
    service = app_of(ctx.node)[SIGNALING]
    speaker = Identity(sub="d-7", name="Delegate", role=Role.SPEAKER, sessions=("plenary",))
    code = await create_join_code(service, speaker, ttl=3600, code_ttl=60)
    return await ctx.post("/api/v1/join", {"code": code})


@exchange("POST", "/api/v1/join", 400)
async def a_join_code_of_the_wrong_shape_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/join", {"code": "short"})


@exchange("POST", "/api/v1/join", 401)
async def an_unknown_join_code_is_unauthorized(ctx: Ctx) -> ClientResponse:
    return await ctx.post("/api/v1/join", {"code": "x" * 32})


@exchange("POST", "/api/v1/join", 503)
async def a_join_code_cannot_be_exchanged_without_the_store(ctx: Ctx) -> ClientResponse:
    await ctx.outage()
    return await ctx.post("/api/v1/join", {"code": "x" * 32})


@exchange("GET", "/ws", 101)
async def an_upgrade_from_an_allowed_origin_switches_protocols(ctx: Ctx) -> ClientResponse:
    response = await ctx.get("/ws", _upgrade())
    response.close()
    return response


@exchange("GET", "/ws", 400)
async def a_plain_request_to_the_socket_is_a_bad_request(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/ws", {"Origin": ORIGIN})


@exchange("GET", "/ws", 403)
async def an_upgrade_from_a_foreign_origin_is_forbidden(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/ws", {**_upgrade(), "Origin": "https://evil.example"})


@exchange("GET", "/ws", 403)
async def an_upgrade_without_an_origin_is_forbidden(ctx: Ctx) -> ClientResponse:
    headers = _upgrade()
    del headers["Origin"]
    return await ctx.get("/ws", headers)


@exchange("GET", "/ws", 503)
async def a_draining_node_refuses_upgrades(ctx: Ctx) -> ClientResponse:
    ctx.draining()
    return await ctx.get("/ws", _upgrade())


@exchange("GET", "/", 200)
async def the_home_page_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/")


@exchange("GET", "/s/{session}", 200)
async def a_session_page_is_served(ctx: Ctx) -> ClientResponse:
    return await ctx.get("/s/plenary")


def test_every_documented_http_response_is_produced_by_a_real_exchange() -> None:
    documented = {
        (method.upper(), path, int(status))
        for path, item in openapi().doc["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for status in operation["responses"]
    }
    assert {(m, route, status) for m, route, status, _ in EXCHANGES.values()} == documented


@pytest.mark.parametrize("name", sorted(EXCHANGES))
async def test_real_http_response_matches_the_documented_response_for_its_status(
    name: str,
    node: TestServer,
    node_factory: NodeFactory,
    connect: ClientFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    method, route, status, send = EXCHANGES[name]
    async with ClientSession() as http:
        ctx = Ctx(http, node, node_factory, connect, tmp_path_factory)
        try:
            response = await send(ctx)
            body = b"" if response.status == 101 else await response.read()
        finally:
            for store in ctx.stores:
                await store.stop()
    assert response.status == status, body
    assert _http_failures(method, route, response, body, ctx.body) == []


def _http_failures(
    method: str, route: str, response: ClientResponse, body: bytes, request: object = NO_BODY
) -> list[str]:
    """What in a real response (and its request body) contradicts the OpenAPI document."""
    contract, verb, status = openapi(), method.lower(), response.status
    operation = contract.doc["paths"][route][verb]
    if str(status) not in operation["responses"]:
        return [f"{method} {route} answered {status}, which is not documented"]
    ref = f"#/paths/{_escape(route)}/{verb}/responses/{status}"
    documented = contract.at(ref)
    while "$ref" in documented:
        ref = documented["$ref"]
        documented = contract.at(ref)
    failures: list[str] = []
    for name, header in documented.get("headers", {}).items():
        header = contract.resolve(header)
        value = response.headers.get(name)
        if value is None:
            failures += [f"header {name} is missing"] if header.get("required") else []
            continue
        errors = Draft202012Validator(header["schema"]).iter_errors(value)
        failures += [f"header {name}: {error.message}" for error in errors]
    content = documented.get("content")
    if not content:
        failures += [f"a body where none is documented: {body[:80]!r}"] if body else []
    elif response.content_type not in content:
        failures.append(f"{response.content_type} is not among the documented {sorted(content)}")
    else:
        instance = (
            json.loads(body) if response.content_type == "application/json" else body.decode()
        )
        schema = f"{ref}/content/{_escape(response.content_type)}/schema"
        failures += [f"{status} body: {error}" for error in contract.errors(schema, instance)]
    if request is not NO_BODY:
        schema = f"#/paths/{_escape(route)}/{verb}/requestBody/content/application~1json/schema"
        accepted = not isinstance(request, bytes) and not contract.errors(schema, request)
        if status < 300 and not accepted:
            failures.append(f"the server accepted a body the document refuses: {request!r}")
        if status == 400 and accepted:
            failures.append(f"the server refused a body the document accepts: {request!r}")
    return failures
