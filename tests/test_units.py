"""Pure pieces of signaling: tokens, the rate limiter, frames, the codec, errors, settings."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from config.settings import Settings, SettingsError, load_settings
from signaling.errors import AuthError, CloseCode, SessionForbidden, TokenExpired
from signaling.framing import text_frame
from signaling.identity import Identity, Role, TokenKeys, mint, verify
from signaling.messages import Auth, Codec, Position
from signaling.ratelimit import TokenBucket

KEYS = TokenKeys("k" * 40)
PERSON = Identity(sub="p1", name="Amina", role=Role.MODERATOR, sessions=("plenary",), mode="venue")


def test_a_minted_token_verifies_to_the_same_identity() -> None:
    tok = mint(KEYS, PERSON, now=1000, ttl=60)
    got = verify(KEYS, tok, now=1010)
    assert (got.sub, got.role, got.sessions, got.mode) == (
        "p1",
        Role.MODERATOR,
        ("plenary",),
        "venue",
    )
    assert got.expires == 1060
    assert got.is_staff


def test_a_token_past_its_expiry_is_refused_as_expired() -> None:
    tok = mint(KEYS, PERSON, now=1000, ttl=60)
    with pytest.raises(TokenExpired):
        verify(KEYS, tok, now=2000)


def test_a_token_from_another_audience_is_refused() -> None:
    tok = mint(TokenKeys("k" * 40, audience="other"), PERSON, now=1000, ttl=60)
    with pytest.raises(AuthError):
        verify(KEYS, tok, now=1000)


def test_a_token_grants_only_its_sessions() -> None:
    PERSON.check_session("plenary")
    with pytest.raises(SessionForbidden):
        PERSON.check_session("workshop")
    everyone = Identity(sub="o", name="O", role=Role.OPERATOR, sessions=("*",))
    assert everyone.may_join("anything")


def test_bucket_allows_a_burst_then_refuses_with_the_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frames_carry_the_payload_length_in_the_right_form(size: int) -> None:
    frame = text_frame(b"x" * size)
    assert frame[0] == 0x81
    if size < 126:
        assert frame[1] == size
    elif size < 65536:
        assert frame[1] == 126
        assert struct.unpack("!H", frame[2:4])[0] == size
    else:
        assert frame[1] == 127
        assert struct.unpack("!Q", frame[2:10])[0] == size
    assert frame.endswith(b"x" * size)


def test_codec_decodes_auth_with_a_resume_position() -> None:
    msg = Codec().decode(
        '{"type":"auth","id":"1","token":"t","session":"plenary","resume":{"epoch":"abc","seq":4}}'
    )
    assert msg == Auth(id="1", token="t", session="plenary", resume=Position("abc", 4))


def test_close_codes_fall_into_the_reconnect_and_do_not_reconnect_ranges() -> None:
    assert CloseCode.GOING_AWAY.reconnect
    assert CloseCode.SLOW_CONSUMER.reconnect
    assert not CloseCode.UNAUTHORIZED.reconnect
    assert not CloseCode.FLOOD.reconnect


def test_settings_come_from_a_file_then_the_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "podium.toml"
    file.write_text(
        'port = 9000\nkey_prefix = "fromfile"\nallowed_origins = ["https://a.example"]\n'
    )
    settings = load_settings(
        {"PODIUM_CONFIG": str(file), "PODIUM_KEY_PREFIX": "fromenv", "PODIUM_DEMO": "yes"},
        overrides={"host": "0.0.0.0"},
    )
    assert (settings.port, settings.key_prefix, settings.demo, settings.host) == (
        9000,
        "fromenv",
        True,
        "0.0.0.0",
    )
    assert "https://a.example" in settings.origins


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PODIUM_PORT": "eighty"}, "PODIUM_PORT"),
        ({"PODIUM_PORT": "70000"}, "port"),
        ({"PODIUM_DEMO": "perhaps"}, "PODIUM_DEMO"),
        ({"PODIUM_JWT_SECRET": "short"}, "jwt_secret"),
        ({"PODIUM_KEY_PREFIX": "a{b}"}, "key_prefix"),
        ({"PODIUM_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"PODIUM_HISTORY_SIZE": "1"}, "history_size"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(env)


def test_unknown_keys_in_the_settings_file_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "podium.toml"
    file.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings({}, file=file)


def test_default_settings_allow_the_nodes_own_origin() -> None:
    assert "http://127.0.0.1:8080" in Settings().origins


def test_shifting_a_session_across_a_clock_change_keeps_its_instant_and_length() -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from signaling.programme import Session

    zurich = ZoneInfo("Europe/Zurich")
    summer = datetime(2027, 5, 24, 9, 0, tzinfo=zurich)
    session = Session("s", "S", "R", "T", summer, summer + timedelta(hours=1))
    moved = session.shifted(timedelta(days=180))
    assert moved.start.astimezone(UTC) - session.start.astimezone(UTC) == timedelta(days=180)
    assert moved.start.astimezone(zurich).hour == 8  # winter time: same instant + 180 days
    assert moved.end - moved.start == timedelta(hours=1)
