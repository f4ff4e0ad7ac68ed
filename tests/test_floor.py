"""The speakers' list end to end: through the protocol, against a real store, on one and two nodes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from config.appkeys import FLOOR
from moderation import floor as rules
from moderation.floor import Floor
from moderation.floor_service import FloorService, new_entry_id
from moderation.questions import Actor
from signaling.client import ClientError, PodiumClient
from signaling.identity import Mode, Role
from signaling.programme import FloorSettings, Programme
from tests.conftest import ClientFactory, NodeFactory, app_of, make_programme, token

# Scenario 8 of issue 7: the same tests on one store server and on a three-primary Redis Cluster.
pytestmark = pytest.mark.both_stores


@pytest.fixture
def programme() -> Programme:
    """The plenary as usual; the forum only takes people in the room and revokes at expiry; the
    workshop has no speakers' list."""
    base = make_programme()
    floors = {
        "plenary": FloorSettings(speaking_seconds=120),
        "open-forum": FloorSettings(
            speaking_seconds=60, remote_speakers=False, revoke_on_expiry=True
        ),
        "workshop": FloorSettings(enabled=False),
    }
    return replace(base, sessions=tuple(replace(s, floor=floors[s.id]) for s in base.sessions))


def floor_of(server: TestServer) -> FloorService:
    return app_of(server)[FLOOR]


async def _person(
    server: TestServer, connect: ClientFactory, sub: str, *, mode: Mode = "remote",
    role: Role = Role.PARTICIPANT, session: str = "plenary",
) -> PodiumClient:  # fmt: skip
    tok = token(role, (session,), sub=sub, name=sub.title(), mode=mode)
    return await connect(server, tok, session)


async def _chair(
    server: TestServer, connect: ClientFactory, sub: str = "chair", session: str = "plenary"
) -> PodiumClient:
    return await _person(server, connect, sub, role=Role.MODERATOR, session=session)


async def _event(client: PodiumClient, name: str, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        event = await client.next_event(timeout)
        if event.get("name") == name:
            data: dict[str, Any] = event["data"]
            return data


async def _list_where(client: PodiumClient, test: Any, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        data = await _event(client, "floor.list", timeout)
        if test(data):
            return data


async def _refused(client: PodiumClient, command: str, **fields: Any) -> str:
    with pytest.raises(ClientError) as refused:
        await client.request(command, **fields)
    return refused.value.code


async def test_a_remote_participant_requests_the_chair_grants_and_revokes_everyone_sees_it_live(
    node: TestServer, connect: ClientFactory
) -> None:
    amina = await _person(node, connect, "amina")
    li = await _person(node, connect, "li", mode="venue")
    chair = await _chair(node, connect)
    screen = await _person(node, connect, "screen", role=Role.DISPLAY)
    assert amina.welcome is not None
    assert amina.welcome["parts"]["floor"] == {"open": True, "queue": [], "expired": False}

    first = (await amina.request("floor.request"))["entry"]
    second = (await li.request("floor.request"))["entry"]
    listed = await _list_where(screen, lambda d: len(d["queue"]) == 2)
    assert [(e["entry"], e["name"], e["mode"]) for e in listed["queue"]] == [
        (first, "Amina", "remote"),
        (second, "Li", "venue"),
    ]
    assert all(set(e) == {"entry", "name", "group", "mode", "requested"} for e in listed["queue"])

    granted = await chair.request("floor.grant", entry=first)
    speaking = await _list_where(screen, lambda d: "speaker" in d)
    assert speaking["speaker"]["entry"] == first
    assert speaking["speaker"]["seconds"] == 120
    assert speaking["speaker"]["ends"] == granted["ends"] == speaking["speaker"]["granted"] + 120
    assert [e["entry"] for e in speaking["queue"]] == [second]
    assert await floor_of(node).holder("plenary") == "amina"

    late = await _person(node, connect, "amina")  # a second tab: the snapshot says mine
    assert late.welcome is not None
    assert late.welcome["parts"]["floor"]["mine"] == first
    assert late.welcome["parts"]["floor"]["speaker"]["entry"] == first

    assert await chair.request("floor.revoke") == {"entry": first}
    assert await _event(screen, "floor.ended") == {"entry": first, "reason": "revoked"}
    after = await _event(screen, "floor.list")
    assert "speaker" not in after
    assert await floor_of(node).holder("plenary") is None


async def test_withdrawing_while_speaking_yields_the_floor_and_a_queued_request_just_goes(
    node: TestServer, connect: ClientFactory
) -> None:
    amina = await _person(node, connect, "amina")
    li = await _person(node, connect, "li")
    chair = await _chair(node, connect)
    mine = (await amina.request("floor.request"))["entry"]
    theirs = (await li.request("floor.request"))["entry"]
    await chair.request("floor.grant", entry=mine)
    assert await amina.request("floor.withdraw") == {"entry": mine}
    assert await _event(chair, "floor.ended") == {"entry": mine, "reason": "yielded"}
    assert await li.request("floor.withdraw") == {"entry": theirs}
    assert (await floor_of(node).store.read("plenary")) == Floor(version=5)
    assert await _refused(li, "floor.withdraw") == "floor_conflict"


async def test_the_chair_adds_skips_moves_and_removes_and_closes_the_list(
    node: TestServer, connect: ClientFactory
) -> None:
    chair = await _chair(node, connect)
    people = [await _person(node, connect, sub, mode="venue") for sub in ("a1", "b2", "c3")]
    ids = [(await p.request("floor.request"))["entry"] for p in people]
    okafor = (await chair.request("floor.add", name=" Ambassador  Okafor ", group="government"))[
        "entry"
    ]
    store = floor_of(node).store

    async def order() -> list[str]:
        return [e.id for e in (await store.read("plenary")).queue]

    assert await order() == [*ids, okafor]
    assert await chair.request("floor.skip", entry=ids[0]) == {"entry": ids[0], "position": 3}
    assert await order() == [ids[1], ids[2], okafor, ids[0]]
    assert await chair.request("floor.move", entry=okafor, position=0) == {
        "entry": okafor,
        "position": 0,
    }
    assert await chair.request("floor.move", entry=ids[1], position=99) == {
        "entry": ids[1],
        "position": 3,
    }
    assert await order() == [okafor, ids[2], ids[0], ids[1]]
    assert await chair.request("floor.revoke", entry=ids[2]) == {"entry": ids[2]}
    assert await order() == [okafor, ids[0], ids[1]]
    venue = (await store.read("plenary")).queue[0]
    assert (venue.sub, venue.name, venue.group, venue.mode, venue.by_moderator) == (
        "venue:" + okafor,
        "Ambassador Okafor",
        "government",
        "venue",
        True,
    )

    assert await chair.request("floor.close", closed=True) == {"closed": True}
    newcomer = await _person(node, connect, "newcomer")
    assert newcomer.welcome is not None
    assert newcomer.welcome["parts"]["floor"]["open"] is False
    assert await _refused(newcomer, "floor.request") == "floor_closed"
    await chair.request("floor.add", name="Dr Haddad")  # the chair still adds people in the room
    await chair.request("floor.close", closed=False)
    await newcomer.request("floor.request")
    assert len(await order()) == 5
    actions = [a["action"] for a in await store.audit("plenary")]
    assert actions == ["request"] * 3 + ["add", "skip", "move", "move", "revoke", "close", "add",
                                         "reopen", "request"]  # fmt: skip


async def test_two_hundred_people_requesting_at_once_on_two_nodes_all_land_once(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    people = [
        await _person((first, second)[i % 2], connect, f"p{i}", mode=("venue", "remote")[i % 3 % 2])
        for i in range(rules.MAX_ENTRIES)
    ]
    twice = await _person(second, connect, "p0")  # p0's second tab, on the other node
    outcomes = await asyncio.gather(
        *(p.request("floor.request") for p in people),
        twice.request("floor.request"),
        return_exceptions=True,
    )
    entries = [o["entry"] for o in outcomes if isinstance(o, dict)]
    refused = [o.code for o in outcomes if isinstance(o, ClientError)]
    assert (len(entries), refused) == (rules.MAX_ENTRIES, ["floor_conflict"])
    floor = await floor_of(first).store.read("plenary")
    assert sorted(e.id for e in floor.queue) == sorted(entries)
    assert len({e.sub for e in floor.queue}) == rules.MAX_ENTRIES
    late = await _person(first, connect, "late")
    assert "full" in str(await _refused_error(late))
    assert late.welcome is not None
    assert len(late.welcome["parts"]["floor"]["queue"]) == rules.MAX_ENTRIES


async def _refused_error(client: PodiumClient) -> ClientError:
    with pytest.raises(ClientError) as refused:
        await client.request("floor.request")
    assert refused.value.code == "floor_conflict"
    return refused.value


async def test_grants_raced_by_two_chairs_on_two_nodes_end_with_one_speaker(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    one, two = await _chair(first, connect, "chair-a"), await _chair(second, connect, "chair-b")
    for round_ in range(8):
        a = await _person(first, connect, f"a{round_}")
        b = await _person(second, connect, f"b{round_}")
        ids = [
            (await a.request("floor.request"))["entry"],
            (await b.request("floor.request"))["entry"],
        ]
        outcomes = await asyncio.gather(
            one.request("floor.grant", entry=ids[0]),
            two.request("floor.grant", entry=ids[1]),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, dict)]
        lost = [o.code for o in outcomes if isinstance(o, ClientError)]
        assert (len(won), lost) == (1, ["floor_conflict"])
        floor = await floor_of(second).store.read("plenary")
        assert floor.speaker is not None
        assert floor.speaker.entry.id == won[0]["entry"]
        loser = ids[1] if won[0]["entry"] == ids[0] else ids[0]
        assert [e.id for e in floor.queue] == [loser]
        await one.request("floor.revoke", entry=loser)


async def test_the_same_entry_granted_by_two_chairs_at_once_is_granted_once(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    one, two = await _chair(first, connect, "chair-a"), await _chair(second, connect, "chair-b")
    granted: list[tuple[str, str, float]] = []

    async def record(session: str, sub: str, at: float) -> None:
        granted.append((session, sub, at))

    for server in (first, second):
        floor_of(server).granted_hooks.append(record)
    entry = (await (await _person(first, connect, "amina")).request("floor.request"))["entry"]
    outcomes = await asyncio.gather(
        one.request("floor.grant", entry=entry),
        two.request("floor.grant", entry=entry),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["ClientError", "dict"]
    assert [(s, sub) for s, sub, _ in granted] == [("plenary", "amina")]


async def test_the_hooks_hear_every_grant_and_every_end_with_its_reason(
    node: TestServer, connect: ClientFactory
) -> None:
    heard: list[tuple[str, ...]] = []

    async def ended(session: str, sub: str, reason: str) -> None:
        heard.append(("ended", session, sub, reason))

    async def granted(session: str, sub: str, at: float) -> None:
        assert abs(at - time.time()) < 5
        heard.append(("granted", session, sub))

    async def broken(session: str, sub: str, reason: str) -> None:
        raise RuntimeError("a follower's bug must not undo a stored change")

    service = floor_of(node)
    service.ended_hooks += [broken, ended]
    service.granted_hooks.append(granted)
    chair = await _chair(node, connect)
    amina, li = await _person(node, connect, "amina"), await _person(node, connect, "li")
    a = (await amina.request("floor.request"))["entry"]
    b = (await li.request("floor.request"))["entry"]
    await chair.request("floor.grant", entry=a)
    await chair.request("floor.grant", entry=b)
    await li.request("floor.withdraw")
    venue = (await chair.request("floor.add", name="Dr Haddad"))["entry"]
    await chair.request("floor.grant", entry=venue)
    await chair.request("floor.revoke")
    assert heard == [
        ("granted", "plenary", "amina"),
        ("ended", "plenary", "amina", "replaced"),
        ("granted", "plenary", "li"),
        ("ended", "plenary", "li", "yielded"),
        ("granted", "plenary", "venue:" + venue),
        ("ended", "plenary", "venue:" + venue, "revoked"),
    ]
    assert await service.leave("plenary", "nobody") is False


async def test_time_running_out_is_announced_once_across_two_nodes(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    chair = await _chair(first, connect)
    amina = await _person(second, connect, "amina")
    entry = (await amina.request("floor.request"))["entry"]
    await chair.request("floor.grant", entry=entry)
    services = [floor_of(first), floor_of(second)]
    assert sum(await asyncio.gather(*(s.check_expiry() for s in services))) == 0
    for service in services:
        service.clock = lambda: time.time() + 121  # both nodes past the end of the turn
    counts = await asyncio.gather(*(s.check_expiry() for s in services * 5))
    assert sum(counts) == 1
    assert await _event(amina, "floor.expired") == {"entry": entry}
    expired = await _event(amina, "floor.list")
    assert expired["expired"] is True
    assert expired["speaker"]["entry"] == entry  # the chair decides what follows
    await asyncio.sleep(1.5)  # the nodes' own timer loops run too, and say nothing more
    seen = [e.get("name") for e in _drain(amina)]
    assert "floor.expired" not in seen
    assert await floor_of(first).holder("plenary") == "amina"
    await chair.request("floor.revoke")
    assert await _event(amina, "floor.ended") == {"entry": entry, "reason": "revoked"}


def _drain(client: PodiumClient) -> list[dict[str, Any]]:
    drained = []
    while not client.events.empty():
        drained.append(client.events.get_nowait())
    return drained


async def test_a_session_that_revokes_on_expiry_ends_the_turn_when_time_runs_out(
    node_factory: NodeFactory, connect: ClientFactory
) -> None:
    first, second = await node_factory(), await node_factory()
    ended: list[tuple[str, str, str]] = []

    async def record(session: str, sub: str, reason: str) -> None:
        ended.append((session, sub, reason))

    for server in (first, second):
        floor_of(server).ended_hooks.append(record)
    chair = await _chair(first, connect, session="open-forum")
    amina = await _person(second, connect, "amina", mode="venue", session="open-forum")
    entry = (await amina.request("floor.request"))["entry"]
    granted = await chair.request("floor.grant", entry=entry)
    assert granted["ends"] == pytest.approx(time.time() + 60, abs=5)
    for server in (first, second):
        floor_of(server).clock = lambda: time.time() + 61
    assert sum(await asyncio.gather(*(floor_of(s).check_expiry() for s in (first, second)))) == 1
    assert await _event(amina, "floor.expired") == {"entry": entry}
    assert await _event(amina, "floor.ended") == {"entry": entry, "reason": "expired"}
    assert "speaker" not in await _event(amina, "floor.list")
    assert ended == [("open-forum", "amina", "expired")]
    assert await floor_of(second).holder("open-forum") is None


@pytest.mark.parametrize(
    ("who", "command", "fields", "code"),
    [
        ("amina", "floor.grant", {"entry": "f0000nothere"}, "not_allowed"),
        ("amina", "floor.add", {"name": "Okafor"}, "not_allowed"),
        ("amina", "floor.close", {"closed": True}, "not_allowed"),
        ("amina", "floor.skip", {"entry": "f0000nothere"}, "not_allowed"),
        ("amina", "floor.move", {"entry": "f0000nothere", "position": 0}, "not_allowed"),
        ("amina", "floor.revoke", {}, "not_allowed"),
        ("chair", "floor.request", {}, "not_allowed"),
        ("screen", "floor.request", {}, "not_allowed"),
        ("amina", "floor.withdraw", {}, "floor_conflict"),
        ("chair", "floor.grant", {"entry": "f0000nothere"}, "floor_conflict"),
        ("chair", "floor.skip", {"entry": "f0000nothere"}, "floor_conflict"),
        ("chair", "floor.move", {"entry": "f0000nothere", "position": 1}, "floor_conflict"),
        ("chair", "floor.revoke", {"entry": "f0000nothere"}, "floor_conflict"),
        ("chair", "floor.revoke", {}, "floor_conflict"),
        ("chair", "floor.add", {"name": "   "}, "text_refused"),
        ("chair", "floor.add", {"name": "x" * 81}, "text_refused"),
        ("chair", "floor.add", {"name": "Okafor\u202e"}, "text_refused"),
        ("chair", "floor.add", {"name": "Okafor", "group": "youth"}, "text_refused"),
        ("chair", "floor.grant", {"entry": "F1"}, "invalid_message"),
        ("chair", "floor.grant", {}, "invalid_message"),
        ("chair", "floor.move", {"entry": "f0000nothere", "position": -1}, "invalid_message"),
        ("chair", "floor.close", {"closed": "yes"}, "invalid_message"),
        ("chair", "floor.add", {"name": "x" * 2001}, "invalid_message"),
        ("amina", "floor.request", {"mode": "venue"}, "invalid_message"),
    ],
)
async def test_bad_floor_input_gets_a_typed_error_and_changes_nothing(
    node: TestServer,
    connect: ClientFactory,
    who: str,
    command: str,
    fields: dict[str, Any],
    code: str,
) -> None:
    clients = {
        "amina": await _person(node, connect, "amina"),
        "chair": await _chair(node, connect),
        "screen": await _person(node, connect, "screen", role=Role.DISPLAY),
    }
    queued = (await (await _person(node, connect, "li")).request("floor.request"))["entry"]
    store = floor_of(node).store
    before = await store.read("plenary"), await store.audit("plenary")
    assert await _refused(clients[who], command, **fields) == code
    assert (await store.read("plenary"), await store.audit("plenary")) == before
    assert [e.id for e in before[0].queue] == [queued]


async def test_sessions_settings_decide_who_may_ask(
    node: TestServer, connect: ClientFactory
) -> None:
    remote = await _person(node, connect, "amina", session="open-forum")
    assert await _refused(remote, "floor.request") == "not_allowed"
    in_room = await _person(node, connect, "li", mode="venue", session="open-forum")
    await in_room.request("floor.request")
    nobody = await _person(node, connect, "ben", mode="venue", session="workshop")
    assert await _refused(nobody, "floor.request") == "not_allowed"
    chair = await _chair(node, connect, session="workshop")
    assert await _refused(chair, "floor.add", name="Okafor") == "not_allowed"


async def test_asking_too_often_is_refused_with_retry_after(
    node: TestServer, connect: ClientFactory
) -> None:
    amina = await _person(node, connect, "amina")
    for _ in range(5):
        await amina.request("floor.request")
        await amina.request("floor.withdraw")
    with pytest.raises(ClientError) as refused:
        await amina.request("floor.request")
    assert refused.value.code == "too_many_floor_requests"
    assert refused.value.retry_after is not None
    assert 0 < refused.value.retry_after <= 60
    assert (await floor_of(node).store.read("plenary")).queue == ()


async def test_the_store_and_the_pure_rules_agree_step_by_step(
    node: TestServer, connect: ClientFactory
) -> None:
    """Every acknowledged command leaves in the store exactly the list the pure rules make."""
    chair = await _chair(node, connect)
    people = {sub: await _person(node, connect, sub) for sub in ("amina", "li", "ben", "kofi")}
    store = floor_of(node).store
    model = Floor()
    settings = FloorSettings(speaking_seconds=120)
    moderator = Actor("chair", "Chair", Role.MODERATOR)

    async def step(client: PodiumClient, command: str, **fields: Any) -> dict[str, Any]:
        nonlocal model
        result = await client.request(command, **fields)
        stored = await store.read("plenary")
        expected = _replay(model, stored, command, fields, result, moderator, settings)
        assert stored == expected, command
        model = stored
        return result

    ids = {sub: (await step(c, "floor.request"))["entry"] for sub, c in people.items()}
    await step(chair, "floor.move", entry=ids["kofi"], position=1)
    await step(chair, "floor.skip", entry=ids["amina"])
    await step(chair, "floor.grant", entry=ids["li"])
    await step(chair, "floor.grant", entry=ids["kofi"])
    await step(people["ben"], "floor.withdraw")
    await step(chair, "floor.close", closed=True)
    added = (await step(chair, "floor.add", name="Dr Haddad", group="academia"))["entry"]
    await step(chair, "floor.move", entry=added, position=0)
    await step(people["kofi"], "floor.withdraw")
    await step(chair, "floor.revoke", entry=ids["amina"])
    await step(chair, "floor.close", closed=False)
    await step(people["li"], "floor.request")


def _replay(
    model: Floor,
    stored: Floor,
    command: str,
    fields: dict[str, Any],
    result: dict[str, Any],
    moderator: Actor,
    settings: FloorSettings,
) -> Floor:
    """The pure rules' list after ``command``, with the server's ids and times taken from the store."""
    if command == "floor.request":
        entry = next(e for e in stored.queue if e.id == result["entry"])
        actor = Actor(entry.sub, entry.name, Role.PARTICIPANT, entry.group)
        return rules.request(
            model, actor, entry.mode, entry.id, settings=settings, now=entry.requested
        ).floor
    if command == "floor.add":
        entry = next(e for e in stored.queue if e.id == result["entry"])
        return rules.add(
            model, moderator, entry.name, entry.group, entry.id,
            groups=("academia",), now=entry.requested,
        ).floor  # fmt: skip
    if command == "floor.grant":
        assert stored.speaker is not None
        now = stored.speaker.granted
        return rules.grant(model, moderator, fields["entry"], settings=settings, now=now).floor
    if command == "floor.withdraw":
        owner = next(e.sub for e in (*model.queue, *_speaking(model)) if e.id == result["entry"])
        return rules.withdraw(model, Actor(owner, "", Role.PARTICIPANT), 0.0).floor
    if command == "floor.skip":
        return rules.skip(model, moderator, fields["entry"]).floor
    if command == "floor.move":
        return rules.move(model, moderator, fields["entry"], fields["position"]).floor
    if command == "floor.revoke":
        return rules.revoke(model, moderator, fields.get("entry"), 0.0).floor
    assert command == "floor.close"
    return rules.close(model, moderator, fields["closed"]).floor


def _speaking(floor: Floor) -> tuple[rules.Entry, ...]:
    return () if floor.speaker is None else (floor.speaker.entry,)


async def test_a_person_who_leaves_loses_their_request_and_their_turn(
    node: TestServer, connect: ClientFactory
) -> None:
    chair = await _chair(node, connect)
    amina, li = await _person(node, connect, "amina"), await _person(node, connect, "li")
    speaking = (await amina.request("floor.request"))["entry"]
    await li.request("floor.request")
    await chair.request("floor.grant", entry=speaking)
    service = floor_of(node)
    assert await service.leave("plenary", "amina") is True
    assert await _event(chair, "floor.ended") == {"entry": speaking, "reason": "left"}
    assert await service.leave("plenary", "li") is True
    await _list_where(chair, lambda d: d["queue"] == [] and "speaker" not in d)
    assert [a["action"] for a in await service.store.audit("plenary")][-2:] == ["leave", "leave"]


async def test_a_broadcast_whose_node_died_before_it_was_due_is_made_by_the_timer_loop(
    node: TestServer, connect: ClientFactory
) -> None:
    screen = await _person(node, connect, "screen", role=Role.DISPLAY)
    store = floor_of(node).store
    entry = rules.Entry(new_entry_id(time.time()), "amina", "Amina", "", "remote", time.time())
    # As if a node stored a request, claimed the coalesced broadcast and died before making it.
    written = await store.enqueue(
        "plenary", entry, {}, max_entries=rules.MAX_ENTRIES, need_open=True, coalesce_ms=100
    )
    assert written is not None
    assert (written.seq, written.flush) == (0, True)
    assert await store.flush("plenary", overdue_only=True) is False  # still due: not yet
    listed = await _list_where(screen, lambda d: len(d["queue"]) == 1, timeout=5.0)
    assert listed["queue"][0]["entry"] == entry.id
    assert await store.flush("plenary") is False  # shown once, nothing left to show
