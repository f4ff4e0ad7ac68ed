"""Store-side faults: the store killed and restarted, unreachable for a minute, slow to answer.

Each scenario runs real processes — a store server with an append-only file, podium nodes, protocol
clients asking, voting, requesting the floor and moderating — breaks the store or the network to it,
and then checks with the ledger that nothing acknowledged was lost or applied twice, that refusals
were the retryable ``store_unavailable``, and that the nodes recovered without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from websockets.exceptions import ConnectionClosed

from config.settings import Settings
from config.store import store_client
from moderation.keys import QaKeys
from signaling.client import ClientError, Disconnected, PodiumClient
from signaling.identity import Role
from signaling.keys import SessionKeys
from tests.conftest import ORIGIN, token
from tests.faults.ledger import Ledger
from tests.faults.processes import SESSION, PodiumProcess, StoreProcess
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.faults

PREFIX = "podium"


# ---- the rig: a store, an optional proxy, nodes and clients, all closed at the end ----------------


@dataclass
class Rig:
    """The processes and clients of one scenario."""

    dir: Path
    store: StoreProcess
    proxies: list[FaultProxy] = field(default_factory=list)
    nodes: list[PodiumProcess] = field(default_factory=list)
    clients: list[PodiumClient] = field(default_factory=list)

    async def proxy(self) -> FaultProxy:
        """A fault proxy in front of the store."""
        proxy = FaultProxy("127.0.0.1", self.store.port, seed=7)
        await proxy.start()
        self.proxies.append(proxy)
        return proxy

    async def node(self, store_url: str) -> PodiumProcess:
        """A ready podium node on ``store_url``."""
        node = PodiumProcess(0, store_url, f"node-{len(self.nodes) + 1}", dir=self.dir / "nodes")
        self.nodes.append(node)
        await node.start()
        await node.ready()
        return node

    async def client(self, node: PodiumProcess, role: Role, sub: str) -> PodiumClient:
        """A connected protocol client of ``node``."""
        tok = token(role, (SESSION,), sub=sub, name=sub)
        client = PodiumClient(node.ws_url, tok, SESSION, origin=ORIGIN)
        self.clients.append(client)
        await client.connect()
        return client


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A running store (AOF, ``appendfsync always``); nodes, proxies and clients added by the test."""
    store = StoreProcess(tmp_path / "store")
    await store.start()
    rig = Rig(tmp_path, store)
    try:
        yield rig
    finally:
        for client in rig.clients:
            with contextlib.suppress(Exception):
                await client.close()
        for node in rig.nodes:
            await node.stop()
        for proxy in rig.proxies:
            await proxy.stop()
        await store.stop()


# ---- the load: participants ask, vote and request the floor; a moderator approves ----------------


@dataclass
class Load:
    """Steady traffic from participants and one moderator, every answer written in the ledger."""

    ledger: Ledger
    participants: list[tuple[str, PodiumClient]]
    moderator: PodiumClient
    period: float = 0.25
    approved: list[str] = field(default_factory=list)
    pending: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    latency: dict[str, list[float]] = field(default_factory=dict)
    acked_at: list[float] = field(default_factory=list)
    refused_at: list[tuple[float, float]] = field(default_factory=list)  # (when, how long it took)
    errors: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    deduplicated: int = 0  # retried questions answered with the first attempt's question
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _asked: Counter[str] = field(default_factory=Counter)

    async def run(self) -> None:
        """Runs until ``stop`` is set."""
        tasks = [asyncio.create_task(self._participant(sub, c)) for sub, c in self.participants]
        tasks.append(asyncio.create_task(self._moderate()))
        await self.stop.wait()
        await asyncio.gather(*tasks)

    async def _call(self, client: PodiumClient, kind: str, **fields: Any) -> dict[str, Any] | None:
        """One command; its ack's result, or None when refused as ``store_unavailable``."""
        started = time.monotonic()
        try:
            result = await client.request(kind, timeout=15, **fields)
        except ClientError as exc:
            if exc.code != "store_unavailable":
                self.errors[f"{kind}:{exc.code}"] += 1
                raise
            self.refused_at.append((started, time.monotonic() - started))
            return None
        self.latency.setdefault(kind, []).append(time.monotonic() - started)
        self.acked_at.append(time.monotonic())
        return result

    async def _participant(self, sub: str, client: PodiumClient) -> None:
        rng = random.Random(sub)
        voted: set[str] = set()
        requested = False
        step = 0
        retry: tuple[str, str] | None = None  # a refused question, asked again with its key
        while not self.stop.is_set():
            step += 1
            try:
                choices = [q for q in self.approved if q not in voted]
                if retry is not None or step % 3 == 1 or not choices:
                    if retry is None:
                        self._asked[sub] += 1
                        n = self._asked[sub]
                        retry = (f"Question {n} from {sub}?", f"{sub}-ask-{n:04d}")
                    text, key = retry
                    sent = time.time()
                    result = await self._call(client, "qa.ask", text=text, lang="en", key=key)
                    qid = result["question"]["id"] if result else None
                    self.ledger.asked(sub, text, qid)
                    if result is not None:
                        if result["question"]["created"] < sent - 0.5:
                            self.deduplicated += 1  # an earlier, refused attempt had run
                        retry = None
                        self.pending.put_nowait(result["question"]["id"])
                elif not requested:
                    result = await self._call(client, "floor.request")
                    self.ledger.requested_floor(sub, result["entry"] if result else None)
                    requested = result is not None
                else:
                    qid = rng.choice(choices)
                    result = await self._call(client, "qa.vote", question=qid)
                    self.ledger.voted(qid, sub, result is not None)
                    if result is not None:
                        voted.add(qid)
            except ClientError:
                pass  # counted in errors
            except (Disconnected, ConnectionClosed, TimeoutError):
                self.disconnects += 1
                await client.reconnect()
            await asyncio.sleep(self.period * rng.uniform(0.5, 1.5))

    async def _moderate(self) -> None:
        while not self.stop.is_set():
            try:
                qid = await asyncio.wait_for(self.pending.get(), 0.2)
            except TimeoutError:
                continue
            await asyncio.sleep(0.15)  # a chair's pace, under the per-connection rate limit
            try:
                result = await self._call(self.moderator, "qa.approve", question=qid)
            except ClientError:
                continue  # counted in errors
            except (Disconnected, ConnectionClosed, TimeoutError):
                self.disconnects += 1
                await self.moderator.reconnect()
                self.pending.put_nowait(qid)
                continue
            self.ledger.decided(qid, "approve", result is not None)
            if result is None:
                self.pending.put_nowait(qid)  # a refused decision is taken again later
                await asyncio.sleep(self.period)
            else:
                self.approved.append(qid)

    def first_ack_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first acknowledgement after it."""
        later = [t for t in self.acked_at if t > moment]
        return min(later) - moment if later else None

    def refusals_between(self, start: float, end: float) -> list[float]:
        """How long each refusal of a command sent between ``start`` and ``end`` took."""
        return [took for at, took in self.refused_at if start <= at <= end]


async def start_load(rig: Rig, nodes: list[PodiumProcess], people: int) -> tuple[Load, Ledger]:
    """Connects ``people`` participants over ``nodes`` and a moderator on the first node."""
    ledger = Ledger(SESSION, PREFIX)
    participants = []
    for i in range(people):
        sub = f"p{i:03d}"
        participants.append((sub, await rig.client(nodes[i % len(nodes)], Role.PARTICIPANT, sub)))
    moderator = await rig.client(nodes[0], Role.MODERATOR, "mod")
    return Load(ledger, participants, moderator), ledger


async def wait_until_acked(load: Load, after: float, timeout: float) -> float:
    """Seconds from ``after`` until a write was acknowledged again (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        took = load.first_ack_after(after)
        if took is not None:
            return took
        await asyncio.sleep(0.05)
    raise AssertionError(f"no write was acknowledged within {timeout} s of the store's return")


def drained(client: PodiumClient) -> list[dict[str, Any]]:
    """Every event the client has received and not read yet."""
    events = []
    while not client.events.empty():
        events.append(client.events.get_nowait())
    return events


async def visible_history(store: aioredis.Redis, sub: str, role: str, after: int) -> list[int]:
    """The seqs after ``after`` of the stored events a participant ``sub`` may see."""
    audiences = {"a", "u:" + sub, "r:" + role}
    rows = cast(
        list[tuple[bytes, dict[bytes, bytes]]],
        await store.xrange(SessionKeys(PREFIX, SESSION).history, min=f"{after + 1}-0"),
    )
    return [
        int(ident.split(b"-")[0])
        for ident, fields in rows
        if audiences & set(fields[b"a"].decode().split("|"))
    ]


async def check_observer_missed_nothing(
    store: aioredis.Redis, observer: PodiumClient, sub: str, since: int, timeout: float = 15.0
) -> int:
    """Waits until an observer has every event it may see since ``since``; returns how many."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        seen += [e["seq"] for e in drained(observer) if e.get("type") == "event"]
        expected = await visible_history(store, sub, "participant", since)
        if seen == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert seen == expected, f"the observer saw {len(seen)} of {len(expected)} events, in order"
    return len(seen)


def pct(values: list[float], q: float) -> float:
    """The ``q``-quantile (0–1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def table(title: str, rows: dict[str, object]) -> None:
    """Prints a scenario's figures (``pytest -s`` shows them; docs/reliability.md keeps them)."""
    width = max(len(k) for k in rows)
    print(f"\n{title}")
    for key, value in rows.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {shown}")


# ---- the harness itself --------------------------------------------------------------------------


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo_proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of a loopback echo server."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = FaultProxy("127.0.0.1", server.sockets[0].getsockname()[1], seed=1)
    await proxy.start()
    yield proxy
    await proxy.stop()
    server.close()
    await server.wait_closed()


async def _round_trip(
    port: int, payloads: list[bytes], timeout: float = 5.0
) -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        for payload in payloads:
            writer.write(payload)
        await writer.drain()
        expected = sum(len(p) for p in payloads)
        data = await asyncio.wait_for(reader.readexactly(expected), timeout)
        return data, time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_proxy_delays_each_direction_and_keeps_the_order_of_bytes(
    echo_proxy: FaultProxy,
) -> None:
    echo_proxy.latency(100, 50)
    payloads = [bytes([i]) * 10 for i in range(20)]
    data, took = await _round_trip(echo_proxy.port, payloads)
    assert data == b"".join(payloads)
    assert took >= 0.1  # at least 50 ms each way
    assert echo_proxy.counters.bytes_up == echo_proxy.counters.bytes_down == 200


async def test_proxy_blackhole_stalls_connections_until_healed(echo_proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_proxy.port)
    echo_proxy.blackhole()
    writer.write(b"ping")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.5)
    # A connection opened during the partition is accepted but goes nowhere either.
    late = asyncio.create_task(_round_trip(echo_proxy.port, [b"late"], timeout=10))
    await asyncio.sleep(0.3)
    assert not late.done()
    echo_proxy.heal()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    assert (await late)[0] == b"late"
    writer.close()
    await writer.wait_closed()


async def test_proxy_reset_resets_current_and_new_connections(echo_proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_proxy.port)
    writer.write(b"x")
    assert await reader.readexactly(1) == b"x"
    echo_proxy.reset()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    writer.close()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await _round_trip(echo_proxy.port, [b"y"])
    echo_proxy.heal()
    assert (await _round_trip(echo_proxy.port, [b"z"]))[0] == b"z"
    assert echo_proxy.counters.resets >= 2


async def test_the_store_client_never_retries_a_command_on_its_own() -> None:
    # A command that timed out may have run: retrying it inside the client could apply it twice.
    # The node's store client sends each command once; retries are the caller's, and safe.
    settings = Settings(jwt_secret="x" * 40)
    client = store_client(settings, "redis://127.0.0.1:1/0")
    try:
        connection = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        assert connection.retry.get_retries() == 0
    finally:
        await client.aclose()


async def test_the_ledger_counts_what_was_lost_duplicated_or_refused_but_applied(
    store_url: str,
) -> None:
    prefix = "ledger" + str(random.randrange(10**9))
    qa = QaKeys(SessionKeys(prefix, SESSION))
    ledger = Ledger(SESSION, prefix)
    ledger.asked("amina", "Stored once?", "q0001")
    ledger.asked("amina", "Never stored?", "q0002")  # lost
    ledger.asked("omar", "Stored twice?", "q0003")  # duplicated (q0004 is a copy)
    ledger.asked("omar", "Refused, yet stored?", None)
    ledger.voted("q0001", "omar", True)  # lost: not in the set
    ledger.voted("q0001", "amina", False)  # refused, yet counted
    async with aioredis.Redis.from_url(store_url) as store:
        for qid, author, text in [
            ("q0001", "amina", "Stored once?"),
            ("q0003", "omar", "Stored twice?"),
            ("q0004", "omar", "Stored twice?"),
            ("q0005", "omar", "Refused, yet stored?"),
        ]:
            await store.hset(qa.question(qid), mapping={"author": author, "text": text, "votes": 1})
            await store.zadd(qa.ids, {qid: 1})
        await store.sadd(qa.voters("q0001"), "amina")
        audit = await ledger.audit(store)
    assert (audit.acknowledged, audit.refused) == (4, 2)
    assert (audit.lost, audit.duplicated) == (2, 1)
    assert audit.refused_applied_by == {"questions": 1, "votes": 1}


# ---- 2. the store SIGKILLed and restarted after 5 s ----------------------------------------------


async def test_store_killed_and_restarted_loses_nothing_acknowledged_and_nodes_recover(
    rig: Rig,
) -> None:
    nodes = [await rig.node(rig.store.url), await rig.node(rig.store.url)]
    observers = [await rig.client(n, Role.PARTICIPANT, f"watch{i}") for i, n in enumerate(nodes)]
    start_seq = [o.seq for o in observers]
    load, ledger = await start_load(rig, nodes, people=16)
    running = asyncio.create_task(load.run())

    await asyncio.sleep(3)
    killed_at = time.monotonic()
    await rig.store.kill()
    await asyncio.sleep(5)
    restarted_at = time.monotonic()
    await rig.store.restart()
    recovery = await wait_until_acked(load, restarted_at, timeout=20)
    await asyncio.sleep(3)
    load.stop.set()
    await running

    # After the store's return, a question asked on one node, approved on the other, reaches
    # participants on both: each node's fan-out subscribed again by itself.
    late = await rig.client(nodes[1], Role.PARTICIPANT, "late-asker")
    asked = await late.request("qa.ask", text="Asked after the store came back?", lang="en")
    ledger.asked("late-asker", "Asked after the store came back?", asked["question"]["id"])
    await load.moderator.request("qa.approve", question=asked["question"]["id"])
    ledger.decided(asked["question"]["id"], "approve", True)

    async with rig.store.client() as store:
        seen = [
            await check_observer_missed_nothing(store, o, f"watch{i}", start_seq[i])
            for i, o in enumerate(observers)
        ]
        audit = await ledger.audit(store)
    gap = load.refusals_between(killed_at, restarted_at)
    table(
        "2. store SIGKILLed, restarted after 5 s (AOF, appendfsync always)",
        {
            **audit.row(),
            "refused during the gap": len(gap),
            "refusal time p50 (s)": statistics.median(gap) if gap else 0.0,
            "refusal time max (s)": max(gap, default=0.0),
            "refused but applied, by kind": audit.refused_applied_by,
            "retried questions that had run (key)": load.deduplicated,
            "first ack after restart (s)": recovery,
            "events seen by the two observers": seen,
            "other errors": dict(load.errors),
            "client disconnects": load.disconnects,
        },
    )
    assert audit.lost == 0, audit.problems
    assert audit.duplicated == 0, audit.problems
    assert gap, "writes during the gap were refused with store_unavailable"
    assert load.disconnects == 0  # the store's death never cost a client its connection
    assert all(nodes_alive := [n.alive() for n in nodes]), nodes_alive
    assert [await n.readiness() for n in nodes] == [200, 200]


# ---- 3. the store unreachable for 60 s -----------------------------------------------------------


async def sample_while(
    nodes: list[PodiumProcess], stop: asyncio.Event, period: float = 1.0
) -> list[tuple[float, list[int], list[int]]]:
    """(when, each node's /readyz status, each node's RSS) every ``period`` until ``stop``."""
    samples = []
    while not stop.is_set():
        statuses = list(await asyncio.gather(*(n.readiness(timeout=3) for n in nodes)))
        samples.append((time.monotonic(), statuses, [n.rss_bytes() for n in nodes]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
    return samples


async def test_store_unreachable_for_a_minute_refuses_writes_fast_and_recovers_by_itself(
    rig: Rig,
) -> None:
    proxy = await rig.proxy()
    url = f"redis://127.0.0.1:{proxy.port}/0"
    nodes = [await rig.node(url), await rig.node(url)]
    observers = [await rig.client(n, Role.PARTICIPANT, f"watch{i}") for i, n in enumerate(nodes)]
    start_seq = [o.seq for o in observers]
    load, ledger = await start_load(rig, nodes, people=12)
    running = asyncio.create_task(load.run())
    sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_while(nodes, sampling))

    await asyncio.sleep(3)
    cut_at = time.monotonic()
    proxy.blackhole()
    await asyncio.sleep(10)
    # A client joining during the outage is told to come back later, at once.
    joining = PodiumClient(
        nodes[1].ws_url, token(sessions=(SESSION,), sub="joiner"), SESSION, origin=ORIGIN
    )
    joined_at = time.monotonic()
    with pytest.raises(ClientError) as refused_join:
        await joining.connect()
    join_refusal = time.monotonic() - joined_at
    await asyncio.sleep(50)
    healed_at = time.monotonic()
    proxy.heal()
    recovery = await wait_until_acked(load, healed_at, timeout=20)
    await asyncio.sleep(4)
    load.stop.set()
    await running
    sampling.set()
    samples = await sampler

    late = await rig.client(nodes[1], Role.PARTICIPANT, "late-asker")
    asked = await late.request("qa.ask", text="Asked after the partition healed?", lang="en")
    ledger.asked("late-asker", "Asked after the partition healed?", asked["question"]["id"])
    await load.moderator.request("qa.approve", question=asked["question"]["id"])
    ledger.decided(asked["question"]["id"], "approve", True)

    async with rig.store.client() as store:
        seen = [
            await check_observer_missed_nothing(store, o, f"watch{i}", start_seq[i])
            for i, o in enumerate(observers)
        ]
        audit = await ledger.audit(store)

    before = [s for s in samples if s[0] < cut_at]
    during = [s for s in samples if cut_at <= s[0] < healed_at]
    after = [s for s in samples if s[0] >= healed_at]
    not_ready = next(s[0] for s in during if all(code != 200 for code in s[1])) - cut_at
    ready_again = next(s[0] for s in after if all(code == 200 for code in s[1])) - healed_at
    rss_before = max(max(s[2]) for s in before)
    rss_during = max(max(s[2]) for s in during)
    settled = load.refusals_between(cut_at + 6, healed_at)  # after the first timeouts
    first = load.refusals_between(cut_at, cut_at + 6)
    table(
        "3. store unreachable for 60 s (blackhole between both nodes and the store)",
        {
            **audit.row(),
            "refused during the outage": len(load.refusals_between(cut_at, healed_at)),
            "refusal time, first 6 s, max (s)": max(first, default=0.0),
            "refusal time, afterwards, p50 (s)": statistics.median(settled) if settled else 0.0,
            "refusal time, afterwards, max (s)": max(settled, default=0.0),
            "refused but applied, by kind": audit.refused_applied_by,
            "retried questions that had run (key)": load.deduplicated,
            "join refused with": f"{refused_join.value.code} in {join_refusal:.3f} s",
            "/readyz 503 after (s, 1 s sampling)": not_ready,
            "/readyz 200 after heal (s)": ready_again,
            "first ack after heal (s)": recovery,
            "node RSS before, max (MB)": rss_before / 2**20,
            "node RSS during, max (MB)": rss_during / 2**20,
            "events seen by the two observers": seen,
            "other errors": dict(load.errors),
            "client disconnects": load.disconnects,
            "proxy connections": proxy.counters.connections,
        },
    )
    assert audit.lost == 0, audit.problems
    assert audit.duplicated == 0, audit.problems
    assert refused_join.value.code == "store_unavailable"
    assert join_refusal < 1.0
    assert settled, "writes during the outage were refused"
    assert max(settled) < 1.0  # once the store is known down, refusals are immediate
    assert not_ready < 10.0
    assert ready_again < 5.0
    assert rss_during < rss_before + 64 * 2**20  # memory bounded while the outage lasts
    assert load.disconnects == 0


# ---- 4. latency between node and store -----------------------------------------------------------


async def test_slow_store_link_applies_every_write_once_and_reports_submit_latency(
    rig: Rig,
) -> None:
    proxy = await rig.proxy()
    node = await rig.node(f"redis://127.0.0.1:{proxy.port}/0")
    load, ledger = await start_load(rig, [node], people=10)
    proxy.latency(200, 100)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(20)
    readiness = await node.readiness(timeout=5)
    load.stop.set()
    await running
    proxy.heal()

    async with rig.store.client() as store:
        audit = await ledger.audit(store)
    asks = load.latency.get("qa.ask", [])
    votes = load.latency.get("qa.vote", [])
    table(
        "4. node ↔ store latency 200 ± 100 ms (each way)",
        {
            **audit.row(),
            "questions acknowledged": len(asks),
            "submit latency p50 (s)": statistics.median(asks),
            "submit latency p99 (s)": pct(asks, 0.99),
            "submit latency max (s)": max(asks),
            "votes acknowledged": len(votes),
            "vote latency p50 (s)": statistics.median(votes) if votes else 0.0,
            "vote latency p99 (s)": pct(votes, 0.99) if votes else 0.0,
            "/readyz of the slow node": readiness,
            "other errors": dict(load.errors),
        },
    )
    assert audit.refused == 0  # slow is not down: nothing was refused
    assert audit.lost == 0, audit.problems
    assert audit.duplicated == 0, audit.problems
    assert len(asks) >= 10
    assert readiness == 200
    assert not load.errors


# ---- the fan-out after its store connections were reset ------------------------------------------


async def test_events_published_while_a_node_s_store_connections_were_reset_still_reach_its_clients(
    rig: Rig,
) -> None:
    proxy = await rig.proxy()
    cut_off = await rig.node(f"redis://127.0.0.1:{proxy.port}/0")  # reaches the store via the proxy
    direct = await rig.node(rig.store.url)
    observer = await rig.client(cut_off, Role.PARTICIPANT, "watcher")
    since = observer.seq
    asker = await rig.client(direct, Role.PARTICIPANT, "asker")
    moderator = await rig.client(direct, Role.MODERATOR, "mod")

    async def ask_and_approve(n: int) -> None:
        asked = await asker.request("qa.ask", text=f"Question {n}?", key=f"reset-ask-{n:04d}")
        await moderator.request("qa.approve", question=asked["question"]["id"])

    await ask_and_approve(0)
    proxy.reset()  # every connection of the cut-off node to the store, its subscription too
    for n in range(1, 6):
        await ask_and_approve(n)  # published while the cut-off node cannot hear them
        await asyncio.sleep(0.3)
    proxy.heal()
    healed_at = time.monotonic()
    async with rig.store.client() as store:
        seen = await check_observer_missed_nothing(store, observer, "watcher", since, timeout=20)
    caught_up = time.monotonic() - healed_at
    table(
        "fan-out after a reset of the node's store connections (1.5 s)",
        {"events seen vs history": seen, "caught up after heal (s)": caught_up},
    )
    assert seen >= 6  # six approved questions, each public to everyone
