"""The speakers' list rules, pure: no store, no loop, time passed in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from moderation import floor as rules
from moderation.errors import FloorClosed, FloorConflict, NotAllowed, TextRefused
from moderation.floor import EndReason, Entry, Floor, Turn
from moderation.questions import Actor
from signaling.identity import Mode, Role
from signaling.programme import STAKEHOLDER_GROUPS, FloorSettings

SETTINGS = FloorSettings(speaking_seconds=120)
CHAIR = Actor("chair", "Claire", Role.MODERATOR)
OPERATOR = Actor("op", "Olu", Role.OPERATOR)


def person(sub: str, role: Role = Role.PARTICIPANT, group: str = "civil-society") -> Actor:
    return Actor(sub, sub.title(), role, group)


def requested(floor: Floor, sub: str, now: float = 100.0, mode: Mode = "remote") -> Floor:
    return rules.request(floor, person(sub), mode, "f" + sub, settings=SETTINGS, now=now).floor


def listed(*subs: str) -> Floor:
    floor = Floor()
    for n, sub in enumerate(subs):
        floor = requested(floor, sub, now=100.0 + n)
    return floor


def order(floor: Floor) -> list[str]:
    return [e.sub for e in floor.queue]


def test_requests_queue_in_the_order_they_came_venue_and_remote_alike() -> None:
    floor = requested(Floor(), "amina", 10.0, "remote")
    floor = requested(floor, "li", 11.0, "venue")
    floor = rules.request(
        floor, person("ben", Role.SPEAKER), "remote", "fben", settings=SETTINGS, now=12.0
    ).floor
    assert order(floor) == ["amina", "li", "ben"]
    assert [e.mode for e in floor.queue] == ["remote", "venue", "remote"]
    assert floor.version == 3
    assert floor.view()["queue"][0] == {
        "entry": "famina",
        "name": "Amina",
        "group": "civil-society",
        "mode": "remote",
        "requested": 10.0,
    }


def test_the_public_view_never_names_the_person_behind_an_entry() -> None:
    floor = rules.grant(listed("amina", "li"), CHAIR, "famina", settings=SETTINGS, now=5.0).floor
    view = floor.view()
    assert "sub" not in view["speaker"]
    assert all("sub" not in e for e in view["queue"])
    assert "amina" not in repr(view).replace("Amina", "").replace("famina", "")


def test_grant_takes_the_entry_off_the_queue_and_starts_the_timer() -> None:
    outcome = rules.grant(listed("amina", "li"), CHAIR, "fli", settings=SETTINGS, now=500.0)
    assert order(outcome.floor) == ["amina"]
    assert outcome.granted is not None
    assert outcome.ended is None
    speaker = outcome.floor.view()["speaker"]
    assert (speaker["entry"], speaker["granted"], speaker["seconds"], speaker["ends"]) == (
        "fli",
        500.0,
        120,
        620.0,
    )


def test_granting_another_replaces_the_speaker_whose_spoken_time_is_counted() -> None:
    floor = rules.grant(listed("amina", "li"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    outcome = rules.grant(floor, OPERATOR, "fli", settings=SETTINGS, now=45.0)
    assert outcome.ended is not None
    assert (outcome.ended.turn.entry.sub, outcome.ended.reason) == ("amina", EndReason.REPLACED)
    assert outcome.ended.spoken == 45.0
    assert outcome.floor.speaker is not None
    assert outcome.floor.speaker.entry.sub == "li"
    assert outcome.floor.queue == ()


def test_spoken_time_is_capped_at_the_speaking_time() -> None:
    floor = rules.grant(listed("amina"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    ended = rules.revoke(floor, CHAIR, None, now=1000.0).ended
    assert ended is not None
    assert ended.spoken == 120.0


def test_revoke_without_an_entry_ends_the_turn_and_keeps_the_queue() -> None:
    floor = rules.grant(listed("amina", "li"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    outcome = rules.revoke(floor, CHAIR, None, now=30.0)
    assert outcome.floor.speaker is None
    assert order(outcome.floor) == ["li"]
    assert outcome.ended is not None
    assert outcome.ended.reason is EndReason.REVOKED


def test_revoke_naming_the_speaker_ends_the_turn_too() -> None:
    floor = rules.grant(listed("amina"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    assert rules.revoke(floor, CHAIR, "famina", now=3.0).floor.speaker is None


def test_revoke_with_a_queued_entry_removes_that_request_only() -> None:
    outcome = rules.revoke(listed("amina", "li", "ben"), CHAIR, "fli", now=3.0)
    assert order(outcome.floor) == ["amina", "ben"]
    assert outcome.ended is None


def test_withdraw_takes_the_own_request_back() -> None:
    outcome = rules.withdraw(listed("amina", "li"), person("amina"), now=1.0)
    assert order(outcome.floor) == ["li"]
    assert outcome.entry is not None
    assert outcome.entry.id == "famina"


def test_withdraw_while_speaking_yields_the_floor() -> None:
    floor = rules.grant(listed("amina"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    outcome = rules.withdraw(floor, person("amina"), now=20.0)
    assert outcome.floor.speaker is None
    assert outcome.ended is not None
    assert (outcome.ended.reason, outcome.ended.spoken) == (EndReason.YIELDED, 20.0)


def test_withdraw_with_nothing_on_the_list_is_a_conflict() -> None:
    with pytest.raises(FloorConflict):
        rules.withdraw(listed("li"), person("amina"), now=1.0)


def test_skip_sends_the_entry_to_the_end_of_the_queue() -> None:
    floor = rules.skip(listed("amina", "li", "ben"), CHAIR, "famina").floor
    assert order(floor) == ["li", "ben", "amina"]


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (0, ["ben", "amina", "li"]),
        (1, ["amina", "ben", "li"]),
        (2, ["amina", "li", "ben"]),
        (99, ["amina", "li", "ben"]),
    ],
)
def test_move_places_the_entry_at_a_clamped_position(position: int, expected: list[str]) -> None:
    assert (
        order(rules.move(listed("amina", "li", "ben"), CHAIR, "fben", position).floor) == expected
    )


def test_a_closed_list_refuses_requests_but_keeps_queue_and_speaker() -> None:
    floor = rules.grant(listed("amina", "li"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    closed = rules.close(floor, CHAIR, True).floor
    assert (closed.open, order(closed), closed.speaker) == (False, ["li"], floor.speaker)
    with pytest.raises(FloorClosed):
        requested(closed, "ben")
    reopened = rules.close(closed, CHAIR, False).floor
    assert order(requested(reopened, "ben")) == ["li", "ben"]


def test_a_moderator_adds_a_venue_speaker_even_to_a_closed_list() -> None:
    closed = rules.close(listed("amina"), CHAIR, True).floor
    outcome = rules.add(
        closed, CHAIR, "  Ambassador   Okafor ", "government", "fvenue1",
        groups=STAKEHOLDER_GROUPS, now=7.0,
    )  # fmt: skip
    entry = outcome.floor.queue[-1]
    assert entry == Entry(
        "fvenue1", "venue:fvenue1", "Ambassador Okafor", "government", "venue", 7.0, True
    )


@pytest.mark.parametrize(
    ("name", "group"),
    [("", "government"), ("x" * 81, "government"), ("Okafor\u202e", ""), ("Okafor", "youth")],
)
def test_a_venue_speaker_needs_a_clean_name_and_a_known_group(name: str, group: str) -> None:
    with pytest.raises(TextRefused):
        rules.add(Floor(), CHAIR, name, group, "fvenue1", groups=STAKEHOLDER_GROUPS, now=1.0)


def test_the_timer_expires_once_and_the_moderator_decides_what_follows() -> None:
    floor = rules.grant(listed("amina"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    assert rules.expire(floor, settings=SETTINGS, now=119.9) is None
    outcome = rules.expire(floor, settings=SETTINGS, now=120.0)
    assert outcome is not None
    assert outcome.expired
    assert outcome.ended is None
    assert outcome.floor.expired
    assert outcome.floor.speaker == floor.speaker
    assert rules.expire(outcome.floor, settings=SETTINGS, now=500.0) is None
    assert rules.revoke(outcome.floor, CHAIR, None, now=130.0).floor.expired is False


def test_the_timer_ends_the_turn_when_the_session_revokes_on_expiry() -> None:
    settings = FloorSettings(speaking_seconds=60, revoke_on_expiry=True)
    floor = rules.grant(listed("amina"), CHAIR, "famina", settings=settings, now=0.0).floor
    outcome = rules.expire(floor, settings=settings, now=61.0)
    assert outcome is not None
    assert outcome.expired
    assert outcome.ended is not None
    assert (outcome.ended.reason, outcome.ended.spoken) == (EndReason.EXPIRED, 60.0)
    assert (outcome.floor.speaker, outcome.floor.expired) == (None, False)


def test_nobody_speaking_never_expires() -> None:
    assert rules.expire(listed("amina"), settings=SETTINGS, now=1e12) is None


def test_leaving_removes_the_request_or_ends_the_turn() -> None:
    floor = rules.grant(listed("amina", "li"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    left = rules.leave(floor, "amina", now=10.0)
    assert left is not None
    assert left.ended is not None
    assert left.ended.reason is EndReason.LEFT
    gone = rules.leave(left.floor, "li", now=11.0)
    assert gone is not None
    assert gone.floor.queue == ()
    assert gone.ended is None
    assert rules.leave(gone.floor, "li", now=12.0) is None


def test_mine_is_the_own_entry_whether_queued_or_speaking() -> None:
    floor = rules.grant(listed("amina", "li"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    assert floor.view_for("amina")["mine"] == "famina"
    assert floor.view_for("li")["mine"] == "fli"
    assert "mine" not in floor.view_for("ben")


# ---- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role", [Role.MODERATOR, Role.OPERATOR, Role.DISPLAY, Role.PRODUCTION, Role.INTERPRETER]
)
def test_only_participants_and_speakers_ask_for_the_floor(role: Role) -> None:
    with pytest.raises(NotAllowed):
        rules.request(Floor(), person("x", role), "venue", "fx", settings=SETTINGS, now=1.0)


def test_a_session_without_the_floor_refuses_requests() -> None:
    off = FloorSettings(enabled=False)
    with pytest.raises(NotAllowed):
        rules.request(Floor(), person("amina"), "venue", "fa", settings=off, now=1.0)


def test_remote_requests_are_refused_where_only_the_room_may_speak() -> None:
    room_only = FloorSettings(remote_speakers=False)
    with pytest.raises(NotAllowed):
        rules.request(Floor(), person("amina"), "remote", "fa", settings=room_only, now=1.0)
    venue = rules.request(Floor(), person("li"), "venue", "fl", settings=room_only, now=1.0)
    assert order(venue.floor) == ["li"]


def test_asking_twice_or_while_speaking_is_a_conflict() -> None:
    floor = listed("amina")
    with pytest.raises(FloorConflict):
        requested(floor, "amina")
    speaking = rules.grant(floor, CHAIR, "famina", settings=SETTINGS, now=1.0).floor
    with pytest.raises(FloorConflict):
        requested(speaking, "amina")


def test_a_full_list_refuses_requests_and_additions() -> None:
    full = listed(*(f"p{n}" for n in range(rules.MAX_ENTRIES)))
    assert len(full.queue) == rules.MAX_ENTRIES
    with pytest.raises(FloorConflict, match="full"):
        requested(full, "late")
    with pytest.raises(FloorConflict, match="full"):
        rules.add(full, CHAIR, "Okafor", "", "fv", groups=STAKEHOLDER_GROUPS, now=1.0)


@pytest.mark.parametrize(
    "action",
    [
        lambda f, a: rules.grant(f, a, "famina", settings=SETTINGS, now=1.0),
        lambda f, a: rules.skip(f, a, "famina"),
        lambda f, a: rules.move(f, a, "famina", 0),
        lambda f, a: rules.revoke(f, a, "famina", 1.0),
        lambda f, a: rules.close(f, a, True),
        lambda f, a: rules.add(f, a, "Okafor", "", "fv", groups=STAKEHOLDER_GROUPS, now=1.0),
    ],
)
def test_only_moderators_run_the_list(action: Callable[[Floor, Actor], object]) -> None:
    for actor in (person("amina"), person("s", Role.SPEAKER), person("d", Role.PRODUCTION)):
        with pytest.raises(NotAllowed):
            action(listed("amina"), actor)


@pytest.mark.parametrize(
    "action",
    [
        lambda f: rules.grant(f, CHAIR, "fnobody", settings=SETTINGS, now=1.0),
        lambda f: rules.skip(f, CHAIR, "fnobody"),
        lambda f: rules.move(f, CHAIR, "fnobody", 0),
        lambda f: rules.revoke(f, CHAIR, "fnobody", 1.0),
        lambda f: rules.revoke(f, CHAIR, None, 1.0),
    ],
)
def test_acting_on_an_entry_not_in_the_queue_is_a_conflict(
    action: Callable[[Floor], object],
) -> None:
    with pytest.raises(FloorConflict):
        action(listed("amina"))


def test_the_speaker_s_entry_is_not_in_the_queue_any_more() -> None:
    floor = rules.grant(listed("amina"), CHAIR, "famina", settings=SETTINGS, now=0.0).floor
    acts: list[Callable[[], object]] = [
        lambda: rules.grant(floor, CHAIR, "famina", settings=SETTINGS, now=1.0),
        lambda: rules.skip(floor, CHAIR, "famina"),
        lambda: rules.move(floor, CHAIR, "famina", 0),
    ]
    for act in acts:
        with pytest.raises(FloorConflict):
            act()


def test_a_turn_s_end_is_its_grant_plus_its_seconds() -> None:
    turn = Turn(Entry("fa", "a", "A", "", "venue", 1.0), granted=10.5, seconds=60)
    assert turn.ends == 70.5
    assert turn.view()["ends"] == 70.5
