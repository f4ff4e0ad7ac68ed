"""What the contract tests share: the API documents as schemas, recorded sockets and HTTP checks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
import msgspec.inspect as mi
import pytest
import yaml
from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestServer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from config.appkeys import SIGNALING
from config.embedded import EmbeddedStore
from moderation.floor_messages import COMMANDS as FLOOR_COMMANDS
from moderation.messages import COMMANDS as QNA_COMMANDS
from signaling.errors import SignalingError
from signaling.messages import BASE_COMMANDS, SERVER_TYPES, Command, Message, type_of
from signaling.rtc_messages import COMMANDS as RTC_COMMANDS
from tests.conftest import ORIGIN, ClientFactory, NodeFactory, app_of, ws_url

DOCS = Path(__file__).resolve().parent.parent / "docs"
# The commands the composition root (config/app.py) registers with the server's codec.
CLIENT_COMMANDS: Final[tuple[type[Command], ...]] = (
    *BASE_COMMANDS,
    *QNA_COMMANDS,
    *FLOOR_COMMANDS,
    *RTC_COMMANDS,
)
CLIENT_TYPES: Final = frozenset(type_of(command) for command in CLIENT_COMMANDS)
HTTP_METHODS: Final = frozenset(
    {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
)
NO_BODY: Final = object()
_MISSING: Final = object()
_ANSWERS: Final = frozenset({"ack", "pong", "error"})
Side = Literal["client", "server"]


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


def escape(part: str) -> str:
    """A JSON Pointer token for ``part``."""
    return part.replace("~", "~0").replace("/", "~1")


def message_keys() -> dict[str, str]:
    """Wire type → key of its message in the AsyncAPI components (one of them, for a relayed type)."""
    messages = asyncapi().doc["components"]["messages"]
    return {m["payload"]["properties"]["type"]["const"]: key for key, m in messages.items()}


@cache
def keys_by_side() -> dict[Side, dict[str, str]]:
    """Wire type → key of its message, for the messages clients send and those the server sends.

    The operations say which is which. A relayed ``rtc.*`` message has the type of the command the
    other end sent, so one type can name a client message and a (different) server message.
    """
    contract = asyncapi()
    sides: dict[Side, dict[str, str]] = {"client": {}, "server": {}}

    def add(side: Side, ref: dict[str, str]) -> None:
        component = contract.at(ref["$ref"])["$ref"]
        key = component.rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
        kind = contract.at(component)["payload"]["properties"]["type"]["const"]
        assert sides[side].get(kind, key) == key, f"two {side} messages of type {kind}"
        sides[side][kind] = key

    for operation in contract.doc["operations"].values():
        for ref in operation["messages"]:
            add("client" if operation["action"] == "receive" else "server", ref)
        for ref in operation.get("reply", {}).get("messages", []):
            add("server", ref)
    return sides


def _key(kind: str, side: Side | None) -> str:
    sides = keys_by_side()
    if side is None:
        found = [sides[s][kind] for s in ("client", "server") if kind in sides[s]]
        assert len(found) == 1, f"{kind} is sent both ways: say which side"
        return found[0]
    return sides[side][kind]


def payload_ref(kind: str, side: Side | None = None) -> str:
    """The reference of a wire type's payload schema (``side`` for a type sent both ways)."""
    return f"#/components/messages/{escape(_key(kind, side))}/payload"


def ack_result_ref(kind: str) -> str:
    """The reference of the schema an ``ack``'s result to a command of that type matches."""
    return f"#/components/messages/{escape(_key(kind, 'client'))}/x-ack-result"


def event_names() -> set[str]:
    """The names the ``event`` message documents."""
    return set(asyncapi().at(payload_ref("event"))["properties"]["name"]["enum"])


def operation_types() -> tuple[set[str], set[str]]:
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


def error_tree() -> list[type[SignalingError]]:
    """SignalingError and every subclass of it, however deep (test doubles left out)."""
    found: list[type[SignalingError]] = []
    pending: list[type[SignalingError]] = [SignalingError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__module__.startswith("tests"):
            found.append(cls)
    return found


def structs(side: Side = "client") -> dict[str, type[Message]]:
    """Every wire message struct clients send (commands) or the server sends, by its type."""
    found: dict[str, type[Message]] = {}
    pending = list(Message.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        tag = cls.__struct_config__.tag
        if isinstance(tag, str) and issubclass(cls, Command) == (side == "client"):
            found[tag] = cls
    return found


def assert_schema_mirrors_struct(
    schema: dict[str, Any], struct: type[msgspec.Struct], *, extra: set[str], exact: bool
) -> None:
    """The schema has the struct's fields, requires those without a default, and types them alike.

    ``exact`` (client messages): every limit, enum, default and ``null`` the code accepts is
    documented and nothing more, so the document accepts exactly the frames the server decodes.
    Otherwise (server messages) the document may be more precise than the struct, never looser.
    """
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    assert set(schema["properties"]) == extra | {f.encode_name for f in info.fields}
    assert len(schema["required"]) == len(set(schema["required"]))
    assert set(schema["required"]) == extra | {f.encode_name for f in info.fields if f.required}
    for f in info.fields:
        documented = schema["properties"][f.encode_name]
        if exact:
            default: Any = _MISSING
            if f.default is not msgspec.NODEFAULT:
                default = f.default
            elif f.default_factory is not msgspec.NODEFAULT:
                default = f.default_factory()
            assert documented.get("default", _MISSING) == default, f"{f.encode_name}.default"
        _assert_type_mirrored(documented, f.type, f.encode_name, exact=exact)


def _assert_type_mirrored(node: Any, t: mi.Type, where: str, *, exact: bool) -> None:
    contract = asyncapi()
    if isinstance(t, mi.UnionType):
        options = [o for o in t.types if not isinstance(o, mi.NoneType)]
        assert len(options) == 1 == len(t.types) - 1, f"{where}: only `X | None` is used"
        if exact:  # a client may send null; a server leaves the field out instead
            node, null = node["oneOf"]
            assert null == {"type": "null"}, where
        t = options[0]
    node = contract.resolve(node)
    if isinstance(t, mi.LiteralType):
        assert set(node["enum"]) == set(t.values), where
        return
    if isinstance(t, mi.DictType | mi.AnyType):
        return  # free-form in the struct; the document describes it
    kinds: dict[type[mi.Type], str] = {
        mi.StrType: "string",
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.BoolType: "boolean",
        mi.ListType: "array",
        mi.StructType: "object",
    }
    assert node.get("type") == kinds[type(t)], f"{where}.type"
    limits: dict[str, Any] = {}
    if isinstance(t, mi.StrType):
        limits = {"minLength": t.min_length, "maxLength": t.max_length, "pattern": t.pattern}
    elif isinstance(t, mi.IntType | mi.FloatType):
        limits = {"minimum": t.ge, "maximum": t.le}
        limits |= {"exclusiveMinimum": t.gt, "exclusiveMaximum": t.lt}
    elif isinstance(t, mi.ListType):
        limits = {"minItems": t.min_length, "maxItems": t.max_length}
        _assert_type_mirrored(node["items"], t.item_type, f"{where}[]", exact=exact)
    elif isinstance(t, mi.StructType):
        assert node["additionalProperties"] is False, where
        assert_schema_mirrors_struct(node, t.cls, extra=set(), exact=exact)
    for keyword, value in limits.items():
        if exact or value is not None:
            assert node.get(keyword) == value, f"{where}.{keyword}"


# ---- recorded sockets ----------------------------------------------------------------------------


@dataclass
class Wire:
    """Every text frame the test's clients sent (and whether meant to be valid) and received."""

    sent: list[tuple[str, bool]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    acks: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    taps: list[Tap] = field(default_factory=list)

    async def open(self, server: TestServer) -> Tap:
        """Opens a recorded socket to a node."""
        ws = await connect(ws_url(server), origin=Origin(ORIGIN), compression=None)
        tap = Tap(ws, self)
        self.taps.append(tap)
        return tap

    async def join(self, server: TestServer, tok: str, session: str = "plenary") -> Tap:
        """Opens a recorded socket and joins a session with a token that must be welcome."""
        tap = await self.open(server)
        assert (await tap.auth(tok, session))["type"] == "welcome"
        return tap

    async def close_all(self) -> None:
        """Reads (and so checks) what every socket still has waiting, then closes them all."""
        await asyncio.gather(*(tap.drain() for tap in self.taps))
        for tap in self.taps:
            await tap.ws.close()

    def kinds(self, kind: str, key: str) -> set[str]:
        """The values of ``key`` in the received messages of one type (``event`` names, say)."""
        return {m[key] for m in self.received if m.get("type") == kind}

    def failures(self) -> list[str]:
        """Every recorded frame that contradicts the AsyncAPI document."""
        contract, failures = asyncapi(), []
        for message in self.received:
            kind = message.get("type")
            if kind not in SERVER_TYPES:
                failures.append(f"undocumented server message {message}")
                continue
            errors = contract.errors(payload_ref(kind, "server"), message)
            failures += [f"{kind}: {e}" for e in errors]
        for command, ack in self.acks:
            if command is None:
                failures.append(f"an ack of no command sent: {ack}")
                continue
            errors = contract.errors(ack_result_ref(command), ack.get("result", {}))
            failures += [f"ack of {command}: {e}" for e in errors]
        for text, valid in self.sent:
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind in CLIENT_TYPES:
                accepted = not contract.errors(payload_ref(kind, "client"), frame)
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
        self.seen: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self._commands: dict[str, str] = {}  # request id → type of the last command sent with it
        self._ids = itertools.count(1)

    async def send(self, frame: dict[str, Any] | str | bytes, *, valid: bool = True) -> None:
        """Sends a frame; a dict as JSON, text and bytes as they are."""
        data = json.dumps(frame) if isinstance(frame, dict) else frame
        if isinstance(data, str):
            self.wire.sent.append((data, valid))
        if isinstance(frame, dict) and isinstance(frame.get("id"), str):
            self._commands[frame["id"]] = str(frame.get("type"))
        await self.ws.send(data)

    async def auth(self, tok: str, session: str = "plenary", **extra: Any) -> dict[str, Any]:
        """Sends ``auth`` and returns the server's first answer."""
        await self.send({"type": "auth", "id": "auth-1", "token": tok, "session": session, **extra})
        first = await self.next()
        if first["type"] == "welcome":
            self.welcome = first
        return first

    async def first(
        self, match: Callable[[dict[str, Any]], bool], what: str, wait: float = 5.0
    ) -> dict[str, Any]:
        """The first unread message ``match`` accepts, reading more as needed."""
        try:
            async with asyncio.timeout(wait):
                while True:
                    for message in self.unread:
                        if match(message):
                            self.unread.remove(message)
                            return message
                    await self._read()
        except TimeoutError:
            unread = [m["type"] for m in self.unread]
            raise AssertionError(f"no {what} within {wait} s; unread: {unread}") from None

    async def next(
        self, kind: str | None = None, wait: float = 5.0, **fields: Any
    ) -> dict[str, Any]:
        """The first unread message of that type with those field values, reading more as needed."""
        return await self.first(
            lambda m: (
                (kind is None or m["type"] == kind)
                and all(m.get(k) == v for k, v in fields.items())
            ),
            f"{kind} {fields}",
            wait,
        )

    async def answer(self, kind: str, *, valid: bool = True, **fields: Any) -> dict[str, Any]:
        """Sends a command with a fresh id; the server's answer to it (ack, pong or error)."""
        rid = f"{kind}-{next(self._ids)}"
        await self.send({"type": kind, "id": rid, **fields}, valid=valid)
        return await self.first(
            lambda m: m.get("id") == rid and m["type"] in _ANSWERS, f"answer to {rid}"
        )

    async def ok(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Sends a command that must succeed; its ack's result."""
        answer = await self.answer(kind, **fields)
        assert answer["type"] == "ack", answer
        return dict(answer.get("result", {}))

    async def refused(self, kind: str, code: str, **fields: Any) -> dict[str, Any]:
        """Sends a valid command the server must refuse with ``code``; the error."""
        answer = await self.answer(kind, **fields)
        assert (answer["type"], answer.get("code")) == ("error", code), answer
        return answer

    async def event(
        self, name: str, where: Callable[[dict[str, Any]], bool] = lambda data: True
    ) -> dict[str, Any]:
        """The ``data`` of the first unread event of that name that ``where`` accepts."""
        message = await self.first(
            lambda m: m["type"] == "event" and m["name"] == name and where(m["data"]),
            f"event {name}",
        )
        data: dict[str, Any] = message["data"]
        return data

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

    async def drain(self, idle: float = 0.3) -> None:
        """Reads every frame that arrives until the socket has been quiet for ``idle`` seconds.

        A socket whose frames are not read stops reading from the network, so its close
        handshake would wait for the close timeout; and an unread frame is an unchecked one.
        """
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            while True:
                async with asyncio.timeout(idle):
                    await self._read()

    def errors(self) -> list[dict[str, Any]]:
        """The unread ``error`` messages."""
        return [m for m in self.unread if m["type"] == "error"]

    async def _read(self) -> None:
        raw = await self.ws.recv()
        assert isinstance(raw, str), "the server sends text frames only"
        message = json.loads(raw)
        assert isinstance(message, dict)
        self.wire.received.append(message)
        if message["type"] == "ack":
            self.wire.acks.append((self._commands.get(message["id"]), message))
        self.unread.append(message)
        self.seen.append(message)


async def outage_node(
    node_factory: NodeFactory, tmp: pytest.TempPathFactory
) -> tuple[TestServer, EmbeddedStore]:
    """A node on a store of its own (which the caller stops to cause an outage)."""
    store = EmbeddedStore(tmp.mktemp("outage"))
    return await node_factory(redis_url=await store.start()), store


# ---- real HTTP responses -------------------------------------------------------------------------


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
        self.node, store = await outage_node(self.nodes, self.tmp)
        self.stores.append(store)
        await store.stop()

    async def live(self) -> None:
        """Runs the schedule now, so the plenary (started ten minutes ago) is live."""
        await app_of(self.node)[SIGNALING].tick()

    def draining(self) -> None:
        """Puts the node in the state a SIGTERM leaves it in."""
        app_of(self.node)[SIGNALING].draining = True


def http_failures(
    method: str, route: str, response: ClientResponse, body: bytes, request: object = NO_BODY
) -> list[str]:
    """What in a real response (and its request's body and query) contradicts the OpenAPI document."""
    contract, verb, status = openapi(), method.lower(), response.status
    operation = contract.doc["paths"][route][verb]
    if str(status) not in operation["responses"]:
        return [f"{method} {route} answered {status}, which is not documented"]
    ref = f"#/paths/{escape(route)}/{verb}/responses/{status}"
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
        schema = f"{ref}/content/{escape(response.content_type)}/schema"
        failures += [f"{status} body: {error}" for error in contract.errors(schema, instance)]
    if request is not NO_BODY:
        schema = f"#/paths/{escape(route)}/{verb}/requestBody/content/application~1json/schema"
        accepted = not isinstance(request, bytes) and not contract.errors(schema, request)
        if status < 300 and not accepted:
            failures.append(f"the server accepted a body the document refuses: {request!r}")
        if status == 400 and accepted:
            failures.append(f"the server refused a body the document accepts: {request!r}")
    return failures + _query_failures(route, verb, response)


def _query_failures(route: str, verb: str, response: ClientResponse) -> list[str]:
    """A 2xx whose query the document refuses, or a bodiless 400 whose query it accepts."""
    contract = openapi()
    item = contract.doc["paths"][route]
    documented = (*item.get("parameters", []), *item[verb].get("parameters", []))
    params = [contract.resolve(p) for p in documented]
    query = {p["name"]: p["schema"] for p in params if p["in"] == "query"}
    if not query:
        return []
    sent = response.url.query
    accepted = all(
        not list(Draft202012Validator(schema).iter_errors(sent[name]))
        for name, schema in query.items()
        if name in sent
    )
    if response.status < 300 and not accepted:
        return [f"the server accepted a query the document refuses: {dict(sent)}"]
    if response.status == 400 and accepted and "requestBody" not in item[verb]:
        return [f"the server refused a query the document accepts: {dict(sent)}"]
    return []
