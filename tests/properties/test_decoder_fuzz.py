"""The wire decoder under Hypothesis: whatever a client sends, ``Codec.decode`` answers with a command
or one of the three typed protocol errors, and a frame it accepts means exactly what it re-encodes to.

Frames come four ways: arbitrary bytes, arbitrary text, arbitrary JSON, and messages built from the
commands' own schemas (every command a node registers) then broken — a field dropped, an unknown one
added, a value of the wrong kind, the type of another message, or left whole.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import example, given
from hypothesis import strategies as st

from moderation.floor_messages import COMMANDS as FLOOR_COMMANDS
from moderation.messages import COMMANDS as QNA_COMMANDS
from signaling.errors import InvalidMessage, MalformedFrame, UnknownType
from signaling.messages import BASE_COMMANDS, Codec, Command, encode, type_of
from signaling.rtc_messages import COMMANDS as RTC_COMMANDS
from tests.properties.harness import budget

COMMANDS = (*BASE_COMMANDS, *QNA_COMMANDS, *FLOOR_COMMANDS, *RTC_COMMANDS)
CODEC = Codec(COMMANDS)  # as the composition root builds it
TYPED = (MalformedFrame, UnknownType, InvalidMessage)
NO_DEFAULT = msgspec.NODEFAULT

TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def values_of(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values that fit a field's declared type and constraints (JSON-ready)."""
    if isinstance(t, mi.StrType):
        if t.pattern:
            low, high = t.min_length or 0, t.max_length or 10_000
            return st.from_regex(t.pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)
        return st.text(
            st.characters(codec="utf-8"),
            min_size=t.min_length or 0,
            max_size=min(t.max_length or 40, 40),
        )
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else -(2**63)
        high = t.le if t.le is not None else 2**63 - 1
        return st.integers(min_value=low, max_value=high)
    if isinstance(t, mi.FloatType):
        return st.floats(min_value=t.ge, max_value=t.le, allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.UnionType):
        return st.one_of([values_of(member) for member in t.types])
    if isinstance(t, mi.ListType):
        low = t.min_length or 0
        return st.lists(
            values_of(t.item_type), min_size=low, max_size=max(low, min(t.max_length or 4, 4))
        )
    if isinstance(t, mi.DictType):
        return st.dictionaries(values_of(t.key_type), values_of(t.value_type), max_size=3)
    if isinstance(t, mi.StructType):
        return fields_of(t)
    return JSON


def fields_of(t: mi.StructType) -> st.SearchStrategy[dict[str, Any]]:
    """A struct's fields: every required one, each optional one or not."""
    required = {f.encode_name: values_of(f.type) for f in t.fields if f.required}
    optional = {f.encode_name: values_of(f.type) for f in t.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


def valid(command: type[Command]) -> st.SearchStrategy[dict[str, Any]]:
    """A well-formed message of one command, as a client would send it."""
    info = mi.type_info(command)
    assert isinstance(info, mi.StructType)
    return fields_of(info).map(lambda fields: {"type": type_of(command), **fields})


VALID = st.one_of([valid(c) for c in COMMANDS])


@st.composite
def broken(draw: st.DrawFn) -> Any:
    """A well-formed message, then broken one way (or left whole)."""
    message: dict[str, Any] = draw(VALID)
    how = draw(st.sampled_from(["whole", "drop", "add", "retype", "swap", "wrap"]))
    keys = sorted(message)
    if how == "drop":
        message.pop(draw(st.sampled_from(keys)))
    elif how == "add":
        message[draw(TEXT)] = draw(JSON)
    elif how == "retype":
        message[draw(st.sampled_from(keys))] = draw(JSON)
    elif how == "swap":
        message["type"] = draw(st.sampled_from([type_of(c) for c in COMMANDS]) | TEXT)
    elif how == "wrap":
        return draw(st.sampled_from([[message], {"message": message}, json.dumps(message)]))
    return message


def decode_or_refuse(frame: str | bytes) -> Command | None:
    """The command the frame decodes to, or None when it is refused with a typed error."""
    try:
        return CODEC.decode(frame)
    except TYPED:
        return None


def check(frame: str | bytes) -> None:
    """A typed outcome, and an accepted frame equal to its own re-encoding."""
    command = decode_or_refuse(frame)
    if command is None:
        return
    wire = encode(command)
    assert CODEC.decode(wire) == command
    sent = msgspec.json.decode(frame)  # one decoder: duplicate keys read as the codec reads them
    assert _without_defaults(sent, command) == json.loads(wire), (frame, wire)


def _without_defaults(sent: dict[str, Any], command: Command) -> dict[str, Any]:
    # A field sent with its default value is omitted on the way out: the same message.
    defaults = {
        f.encode_name: f.default for f in _fields(type(command)) if f.default is not NO_DEFAULT
    }
    return {k: v for k, v in sent.items() if k not in defaults or v != defaults[k]}


def _fields(command: type[Command]) -> tuple[mi.Field, ...]:
    info = mi.type_info(command)
    assert isinstance(info, mi.StructType)
    return info.fields


@budget(1000)
@given(st.binary(max_size=512))
@example(b"\xff\xfe{}")
@example(b'{"type": "ping", "id": "\xed\xa0\x80"}')  # a UTF-8-encoded surrogate
def test_arbitrary_bytes_decode_or_are_refused_with_a_typed_error(frame: bytes) -> None:
    check(frame)


@budget(1000)
@given(st.text(max_size=512))
@example("[" * 100_000)
@example('{"type": "ping", "id": "\\ud800"}')  # half a UTF-16 pair
@example('{"type": "qa.move", "id": "m", "question": "qabcd", "rank": 1e400}')
def test_arbitrary_text_decodes_or_is_refused_with_a_typed_error(frame: str) -> None:
    check(frame)


@budget(600)
@given(JSON, st.booleans())
def test_arbitrary_json_decodes_or_is_refused_with_a_typed_error(value: Any, ascii: bool) -> None:
    check(json.dumps(value, ensure_ascii=ascii))


@budget(400)
@given(VALID, st.booleans())
def test_every_well_formed_command_is_accepted_and_re_encodes_to_itself(
    message: dict[str, Any], ascii: bool
) -> None:
    frame = json.dumps(message, ensure_ascii=ascii)
    assert decode_or_refuse(frame) is not None, frame
    check(frame)


@budget(1000)
@given(broken(), st.booleans(), st.booleans())
@example({"type": "floor.move", "id": "m", "entry": "fabcd", "position": 2.0}, True, False)
def test_broken_commands_are_refused_with_a_typed_error_or_mean_what_they_re_encode_to(
    message: Any, ascii: bool, as_bytes: bool
) -> None:
    frame = json.dumps(message, ensure_ascii=ascii)
    check(frame.encode() if as_bytes else frame)


def test_a_frame_with_duplicate_keys_means_what_its_last_value_says() -> None:
    check('{"type": "ping", "id": "first", "id": "second"}')
    check('{"type": "ping", "type": "session.set_state", "id": "t", "state": "closed"}')
