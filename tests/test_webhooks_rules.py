"""Webhook rules without a loop: signatures, backoff, targets, cursors, which events become webhooks,
and the settings that configure them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.settings import SettingsError, load_settings
from signaling.store import AUDIENCE_STAFF
from webhooks.delivery import Cursor, Policy, backoff, check_url, delivered, target_key, targets_of
from webhooks.errors import InvalidTarget
from webhooks.events import (
    HOOK_TYPES,
    STAFF,
    Frame,
    Tracker,
    derive,
    fields_needed,
    iso,
    parse,
    payload,
)
from webhooks.signature import headers, sign, verify

SECRET = "a-webhook-secret-of-at-least-32-chars!"
BODY = b'{"id":"plenary:e1:7","type":"session.state"}'


# ---- signatures ----------------------------------------------------------------------------------


def test_a_signed_body_verifies_with_the_secret_and_nothing_else() -> None:
    header = sign(SECRET, BODY)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    assert verify(SECRET, BODY, header)
    assert not verify(SECRET, BODY + b" ", header)  # one byte changed
    assert not verify("another-secret-of-at-least-32-chars!!", BODY, header)
    assert not verify(SECRET, BODY, None)
    assert not verify(SECRET, BODY, header.removeprefix("sha256="))
    assert not verify(SECRET, BODY, "sha1=" + header.removeprefix("sha256="))


def test_the_headers_name_the_event_the_delivery_and_the_attempt_and_sign_the_body() -> None:
    sent = headers(SECRET, BODY, event="session.state", delivery="plenary:e1:7", attempt=3)
    assert sent == {
        "Content-Type": "application/json",
        "X-Podium-Signature": sign(SECRET, BODY),
        "X-Podium-Event": "session.state",
        "X-Podium-Delivery": "plenary:e1:7",
        "X-Podium-Attempt": "3",
    }
    assert SECRET not in json.dumps(sent)


# ---- backoff, targets, cursors -------------------------------------------------------------------


def test_backoff_doubles_per_attempt_with_half_of_it_random_and_stops_at_the_cap() -> None:
    policy = Policy(backoff=1.0, backoff_cap=10.0)
    assert [backoff(policy, n, lambda: 0.0) for n in (1, 2, 3, 4, 5, 6)] == [
        0.5, 1.0, 2.0, 4.0, 5.0, 5.0
    ]  # fmt: skip
    assert [backoff(policy, n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 6)] == [
        1.0, 2.0, 4.0, 8.0, 10.0, 10.0
    ]  # fmt: skip


def test_only_a_2xx_answer_delivers() -> None:
    assert [delivered(s) for s in (200, 201, 204, 299)] == [True] * 4
    assert [delivered(s) for s in (199, 301, 400, 410, 500, 503)] == [False] * 6


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/hook", "example.org/hook", "http:///hook", "https://x.org/h#frag",
     "https://x.org/a b", "https://x.org:99999/h", "https://x.org/" + "a" * 2048],
)  # fmt: skip
def test_a_url_podium_cannot_post_to_is_refused(url: str) -> None:
    with pytest.raises(InvalidTarget):
        check_url(url)


def test_targets_are_keyed_by_a_short_stable_hash_never_the_url() -> None:
    url = "https://hooks.example.org/podium?token=s3cr3t"
    (target,) = targets_of((url,))
    assert target.url == url
    assert target.key == target_key(url)
    assert len(target.key) == 12
    assert "s3cr3t" not in target.key
    with pytest.raises(InvalidTarget, match="twice"):
        targets_of((url, url))
    with pytest.raises(InvalidTarget, match="URL 2 has no host"):
        targets_of((url, "https:///nohost"))
    with pytest.raises(InvalidTarget, match="at most"):
        targets_of(tuple(f"https://h{i}.example.org/" for i in range(17)))


def test_a_cursor_round_trips_and_a_malformed_one_reads_as_the_start() -> None:
    cursor = Cursor("e1f2", 42, 7)
    assert cursor.encode() == "e1f2:42:7"
    assert Cursor.decode("e1f2:42:7") == cursor
    assert Cursor.decode("e1f2:42") == Cursor("e1f2", 42, 0)
    assert Cursor.decode("garbage") == Cursor("", 0, 0)


# ---- which events become webhooks ---------------------------------------------------------------


def _frame(seq: int, name: str, data: dict[str, Any], audience: str = "a") -> Frame:
    return Frame(seq, audience, name, 1_767_225_600_000 + seq, data)


def _question(qid: str, state: str, **extra: Any) -> dict[str, Any]:
    view = {"id": qid, "text": "How is it funded?", "lang": "en", "state": state, "votes": 0,
            "created": 1.0, "anonymous": False, "author_name": "Amina", "author": "sub-amina",
            "group": "civil-society", "reply": "", "labels": [], "rank": 0.0, "edited": False,
            "held": [], "reason": "", "merged_into": ""}  # fmt: skip
    return {"question": {**view, **extra}}


def _types(frames: list[Frame], known: dict[str, str] | None = None) -> list[tuple[int, str]]:
    tracker = Tracker(dict(known or {}))
    return [(h.seq, h.type) for f in frames if (h := derive(f, tracker)) is not None]


def test_a_question_makes_a_webhook_only_when_a_moderator_decides_it() -> None:
    frames = [
        _frame(1, "qa.question", _question("q1", "pending"), "s"),
        _frame(2, "qa.question", _question("q1", "approved")),  # the public copy: not counted
        _frame(3, "qa.question", _question("q1", "approved"), "s"),
        _frame(4, "qa.votes", {"votes": {"q1": 3}}),
        _frame(5, "qa.question", _question("q1", "approved", labels=["budget"]), "s"),  # a label
        _frame(6, "qa.question", _question("q1", "answered"), "s"),
        _frame(7, "qa.question", _question("q2", "pending"), "s"),
        _frame(8, "qa.question", _question("q2", "rejected", reason="off topic"), "s"),
        _frame(9, "qa.question", _question("q2", "rejected"), "u:sub-amina"),  # the asker's copy
        _frame(10, "qa.question", _question("q1", "archived"), "s"),
    ]
    assert _types(frames) == [
        (3, "question.approved"),
        (6, "question.answered"),
        (8, "question.rejected"),
        (10, "question.archived"),
    ]


def test_a_decided_question_carries_its_previous_state_but_never_the_askers_account() -> None:
    tracker = Tracker({"q:q1": "pending"})
    hook = derive(
        _frame(3, "qa.question", _question("q1", "rejected", reason="rude"), "s"), tracker
    )
    assert hook is not None
    assert hook.data["previous"] == "pending"
    assert hook.data["question"]["reason"] == "rude"
    assert "author" not in hook.data["question"]
    assert "held" not in hook.data["question"]
    assert tracker.changed == {"q:q1": "rejected"}
    anonymous = _question("q2", "approved", anonymous=True)
    hook = derive(_frame(4, "qa.question", anonymous, "s"), Tracker({}))
    assert hook is not None
    assert hook.data["question"]["author_name"] == ""
    assert hook.data["previous"] is None  # approved as it was asked (no pre-moderation)


def test_the_floor_makes_a_webhook_when_a_turn_is_given_and_when_it_ends() -> None:
    turn = {"entry": "f1", "name": "Amina", "group": "civil-society", "mode": "remote",
            "requested": 1.0, "granted": 2.0, "seconds": 120, "ends": 122.0}  # fmt: skip
    other = {**turn, "entry": "f2", "name": "Li"}
    frames = [
        _frame(1, "floor.list", {"open": True, "queue": [], "expired": False}),
        _frame(2, "floor.list", {"open": True, "queue": [], "speaker": turn, "expired": False}),
        _frame(
            3, "floor.list", {"open": True, "queue": [other], "speaker": turn, "expired": False}
        ),
        _frame(4, "floor.expired", {"entry": "f1"}),
        _frame(5, "floor.ended", {"entry": "f1", "reason": "replaced"}),
        _frame(6, "floor.list", {"open": True, "queue": [], "speaker": other, "expired": False}),
        _frame(7, "floor.ended", {"entry": "f2", "reason": "revoked"}),
        _frame(8, "floor.list", {"open": True, "queue": [], "expired": False}),
    ]
    assert _types(frames) == [
        (2, "floor.granted"),
        (5, "floor.ended"),
        (6, "floor.granted"),
        (7, "floor.ended"),
    ]
    tracker = Tracker({})
    for frame in frames[:4]:
        derive(frame, tracker)
    ended = derive(frames[4], tracker)
    assert ended is not None
    assert ended.data == {"entry": "f1", "reason": "replaced", "speaker": turn}


def test_a_speaker_already_speaking_when_dispatch_began_is_not_told_as_a_new_grant() -> None:
    turn = {"entry": "f1", "name": "Amina"}
    listed = _frame(9, "floor.list", {"open": True, "queue": [], "speaker": turn})
    assert _types([listed], {"speaker": json.dumps(turn)}) == []


def test_a_channel_makes_a_webhook_when_it_goes_live_or_offline_not_for_a_url() -> None:
    def channel(state: str, url: str | None = None) -> dict[str, Any]:
        return {"channel": {"id": "fr", "state": state, "external_url": url, "reason": "x"}}

    frames = [
        _frame(1, "stream.channel", channel("offline", "https://cdn.example.org/fr")),
        _frame(2, "stream.channel", channel("live")),
        _frame(3, "stream.channel", channel("live", "https://cdn.example.org/fr")),
        _frame(4, "stream.listeners", {"listeners": {"fr": 3}}),
        _frame(5, "stream.channel", channel("offline")),
        _frame(6, "stream.channel", channel("offline")),
    ]
    assert _types(frames) == [(2, "channel.live"), (5, "channel.offline")]


def test_the_staff_audience_is_the_one_the_store_writes() -> None:
    assert STAFF == AUDIENCE_STAFF


def test_session_states_make_webhooks_and_presence_votes_and_the_rest_do_not() -> None:
    frames = [
        _frame(1, "session.state", {"state": "closed", "previous": "live", "by": "operator"}),
        _frame(2, "qa.votes", {"votes": {"q1": 1}}),
        _frame(3, "qa.pinned", {"question": "q1"}),
        _frame(4, "qa.locked", {"locked": True}),
        _frame(5, "stream.listeners", {"listeners": {}}),
    ]
    assert _types(frames) == [(1, "session.state")]
    assert {"session.state", "question.approved", "floor.granted", "floor.ended",
            "channel.live", "channel.offline"} <= HOOK_TYPES  # fmt: skip


def test_the_fields_a_batch_needs_are_its_questions_channels_and_the_speaker() -> None:
    frames = [
        _frame(1, "qa.question", _question("q1", "pending"), "s"),
        _frame(2, "qa.question", _question("q9", "approved")),  # not the staff copy
        _frame(3, "stream.channel", {"channel": {"id": "ar", "state": "live"}}),
    ]
    assert fields_needed(frames) == ["c:ar", "q:q1", "speaker"]


def test_a_history_entry_that_is_not_an_event_is_skipped() -> None:
    assert parse(1, "a", b"not json") is None
    assert parse(1, "a", b'{"name":"x","data":[]}') is None
    frame = parse(7, "s", b'{"type":"event","ts":5,"name":"session.state","data":{"state":"live"}}')
    assert frame == Frame(7, "s", "session.state", 5, {"state": "live"})


def test_the_payload_has_a_stable_id_the_sequence_and_the_commit_time() -> None:
    tracker = Tracker({})
    hook = derive(_frame(7, "session.state", {"state": "closed"}), tracker)
    assert hook is not None
    body = json.loads(payload("plenary", "e1", hook))
    assert body == {
        "id": "plenary:e1:7",
        "type": "session.state",
        "session": "plenary",
        "epoch": "e1",
        "seq": 7,
        "at": iso(1_767_225_600_007),
        "data": {"state": "closed"},
    }
    assert iso(1_767_225_600_007) == "2026-01-01T00:00:00.007Z"


# ---- settings ------------------------------------------------------------------------------------


def test_webhook_settings_are_read_from_the_environment() -> None:
    settings = load_settings(
        {
            "PODIUM_WEBHOOK_URLS": "https://a.example.org/hook, http://10.0.0.5:9000/in",
            "PODIUM_WEBHOOK_SECRET": SECRET,
            "PODIUM_WEBHOOK_ATTEMPTS": "5",
            "PODIUM_WEBHOOK_BACKOFF": "0.5",
            "PODIUM_WEBHOOK_BACKOFF_CAP": "30",
            "PODIUM_WEBHOOK_TIMEOUT": "3",
        }
    )
    assert settings.webhook_urls == ("https://a.example.org/hook", "http://10.0.0.5:9000/in")
    assert (settings.webhook_attempts, settings.webhook_backoff) == (5, 0.5)
    assert (settings.webhook_backoff_cap, settings.webhook_timeout) == (30.0, 3.0)
    assert SECRET not in repr(settings)
    assert load_settings({}).webhook_urls == ()  # off unless configured


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PODIUM_WEBHOOK_URLS": "https://a.example.org/hook"}, "webhook_secret must be at least"),
        ({"PODIUM_WEBHOOK_URLS": "https://a.example.org/h", "PODIUM_WEBHOOK_SECRET": "short-secret"},
         "webhook_secret must be at least 32"),
        ({"PODIUM_WEBHOOK_URLS": "ftp://a.example.org/h"}, "webhook_urls: URL 1 must start with http"),
        ({"PODIUM_WEBHOOK_URLS": "https://a.org/h,https://a.org/h"}, "webhook_urls: a URL is listed"),
        ({"PODIUM_WEBHOOK_ATTEMPTS": "0"}, "webhook_attempts must be 1–50"),
        ({"PODIUM_WEBHOOK_ATTEMPTS": "many"}, "PODIUM_WEBHOOK_ATTEMPTS: webhook_attempts must be"),
        ({"PODIUM_WEBHOOK_BACKOFF": "0"}, "webhook_backoff must be"),
        ({"PODIUM_WEBHOOK_BACKOFF": "5", "PODIUM_WEBHOOK_BACKOFF_CAP": "2"}, "webhook_backoff_cap"),
        ({"PODIUM_WEBHOOK_TIMEOUT": "500"}, "webhook_timeout must be"),
    ],
)  # fmt: skip
def test_bad_webhook_settings_are_refused_naming_the_setting_never_the_secret(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as refused:
        load_settings(env)
    assert "short-secret" not in str(refused.value)
