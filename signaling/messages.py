"""The WebSocket wire protocol: typed messages, and the one place that knows JSON.

Client → server messages are decoded into the ``ClientMessage`` union (unknown fields refused); server
→ client messages are encoded from typed structs. Events are the exception: their frames are assembled
once in the store (see ``signaling.history``) and written as the same bytes to every socket.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from signaling.errors import InvalidMessage, MalformedFrame, UnknownType

RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
SessionId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
]
Epoch = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$")]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
StateName = Literal["scheduled", "open", "live", "closed", "archived"]


class Message(msgspec.Struct, forbid_unknown_fields=True, tag_field="type", omit_defaults=True):
    """Base of every wire message; the ``type`` field is the struct's tag."""


class Command(Message):
    """Base of client → server messages; every command carries a request id."""

    id: RequestId


class Position(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A place in a session's event stream."""

    epoch: Epoch
    seq: Seq


# ---- client → server -------------------------------------------------------------------------------


class Auth(Command, tag="auth"):
    """The first message: the token, the session to join and, on reconnect, where to resume from."""

    token: Token
    session: SessionId
    resume: Position | None = None


class Ping(Command, tag="ping"):
    """An application-level ping; answered by ``pong``."""


class SetState(Command, tag="session.set_state"):
    """An operator moves the session's lifecycle."""

    state: StateName


BASE_COMMANDS: tuple[type[Command], ...] = (Auth, Ping, SetState)

# ---- server → client -------------------------------------------------------------------------------


class Ack(Message, tag="ack"):
    """A command succeeded."""

    id: str
    result: dict[str, Any] = msgspec.field(default_factory=dict)


class Error(Message, tag="error"):
    """A command, or a frame, was refused."""

    code: str
    message: str
    id: str | None = None
    retry_after: float | None = None


class Pong(Message, tag="pong"):
    """The answer to ``ping``."""

    id: str


class Welcome(Message, tag="welcome"):
    """The snapshot a client gets after ``auth``: what its role may see, and the stream position."""

    id: str
    session: dict[str, Any]
    you: dict[str, Any]
    state: StateName
    presence: dict[str, Any]
    epoch: str
    seq: int
    parts: dict[str, Any] = msgspec.field(default_factory=dict)


class Resumed(Message, tag="resumed"):
    """A resume succeeded; the missed events follow, then live ones."""

    id: str
    epoch: str
    seq: int
    missed: int


class Resync(Message, tag="resync"):
    """History no longer covers the client's position: drop local state; a ``welcome`` follows."""

    id: str
    reason: Literal["epoch_changed", "history_gone", "ahead_of_stream"]


class Presence(Message, tag="presence"):
    """Who is online in the session (coalesced, at most about one a second)."""

    session: str
    online: int
    venue: int
    remote: int
    roles: dict[str, int]
    unique: int


SERVER_TYPES: tuple[str, ...] = (
    "ack",
    "error",
    "pong",
    "welcome",
    "resumed",
    "resync",
    "presence",
    "event",
    # relayed media signaling (see signaling.rtc_messages)
    "rtc.offer",
    "rtc.answer",
    "rtc.candidate",
    "rtc.restart",
    "rtc.hangup",
    "rtc.state",
)

_raw_decoder = msgspec.json.Decoder()
_UNREADABLE = object()
encode = msgspec.json.Encoder().encode


def type_of(cls: type[Message]) -> str:
    """The wire ``type`` of a message struct."""
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


class Codec:
    """Decodes the commands one server accepts (the base ones plus those other packages register)."""

    def __init__(self, commands: tuple[type[Command], ...] = BASE_COMMANDS) -> None:
        self.commands = commands
        self.types = frozenset(type_of(c) for c in commands)
        union = commands[0]
        for command in commands[1:]:
            union = union | command  # type: ignore[assignment]
        self._decoder: msgspec.json.Decoder[Command] = msgspec.json.Decoder(union)

    def decode(self, frame: str | bytes) -> Command:
        """Decodes one client frame.

        Raises:
            MalformedFrame: not JSON, not an object, a number out of range, or nested too deep.
            UnknownType: an object whose ``type`` the server does not accept.
            InvalidMessage: a known type with missing, extra or ill-typed fields.
        """
        try:
            return self._decoder.decode(frame)
        except RecursionError:
            # msgspec refuses deep nesting by raising RecursionError: a bad frame, not a crash.
            raise MalformedFrame("a frame must not nest that deep") from None
        except msgspec.ValidationError as exc:
            raw = _raw_or_none(frame)
            if raw is _UNREADABLE:
                raise MalformedFrame("a frame must be valid JSON within the number ranges") from exc
            if not isinstance(raw, dict):
                raise MalformedFrame("a frame must be a JSON object") from exc
            kind = raw.get("type")
            if not isinstance(kind, str) or kind not in self.types:
                raise UnknownType(f"unknown message type {_clip(kind)}") from exc
            raise InvalidMessage(f"{kind}: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise MalformedFrame("a frame must be valid JSON") from exc


def request_id_of(frame: str | bytes) -> str | None:
    """Best-effort request id of a refused frame, so the error can name the request it answers."""
    raw = _raw_or_none(frame)
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= 64:
            return rid
    return None


def event_body(name: str, data: dict[str, Any]) -> bytes:
    """The tail of an event frame (``"name":…,"data":…}``); the store prepends the stream position."""
    return encode({"name": name, "data": data})[1:]


def _raw_or_none(frame: str | bytes) -> Any:
    """The frame as plain JSON values, or ``_UNREADABLE`` (not JSON, numbers out of range, too deep)."""
    try:
        return _raw_decoder.decode(frame)
    except (msgspec.DecodeError, RecursionError):
        return _UNREADABLE


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
