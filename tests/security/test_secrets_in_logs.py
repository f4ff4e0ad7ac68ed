"""Secrets never reach the logs: a scripted run of every feature — tokens, guest and join-code
exchanges, refused tokens, Q&A, the floor, TURN credentials, a WHIP publish, webhooks that fail
then succeed, operator and metrics calls — captured at DEBUG from every logger, then searched for
the JWT secret, the TURN secret, the webhook secret, a receiver URL's key, the metrics token,
every token and TURN credential handed out, join codes and webhook signatures. Settings print
without their secrets.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config.appkeys import SIGNALING
from config.observability import JsonFormatter
from config.settings import Settings
from signaling.identity import Identity, Role
from signaling.routes import create_join_code
from tests.conftest import SECRET, ClientFactory, NodeFactory, app_of, token
from tests.security.wire import auth, exchange
from tests.streaming_helpers import bearer, publish

TURN_SECRET = "turn-secret-" + "t" * 40
WEBHOOK_SECRET = "webhook-secret-" + "w" * 40
METRICS_TOKEN = "metrics-token-" + "m" * 40
HOOK_URL_TOKEN = "hook-url-token-" + "h" * 40  # a receiver that takes its key in the URL


@dataclass
class Receiver:
    """A webhook receiver that refuses the first delivery, then takes the rest."""

    signatures: list[str] = field(default_factory=list)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.signatures.append(request.headers.get("X-Podium-Signature", ""))
        return web.Response(status=500 if len(self.signatures) == 1 else 204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running receiver on loopback."""
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", hooks.handle)
    hooks.server = TestServer(app, host="127.0.0.1")
    # The receiver is not podium: its own access log (which shows the key in its URL) stays out.
    await hooks.server.start_server(access_log=None)
    yield hooks
    await hooks.server.close()


# The test's own client library logs the frames it sends at DEBUG (tokens included): that is the
# test talking, not the node. Everything the node's process logs is searched.
CLIENT_SIDE = ("websockets.client",)


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as the JSON line podium would write (message, extras, traceback)."""
    formatter = JsonFormatter()
    return "\n".join(
        formatter.format(record)
        for record in caplog.records
        if not record.name.startswith(CLIENT_SIDE)
    )


def _secrets_of(tok: str) -> list[str]:
    """A token, and its signature on its own (a log could cut a token at its last dot)."""
    return [tok, tok.rsplit(".", 1)[-1]]


async def test_a_run_of_every_feature_logs_no_secret_token_or_credential(
    node_factory: NodeFactory,
    connect: ClientFactory,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert receiver.server is not None
    node = await node_factory(
        ice_servers=("stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp"),
        turn_secret=TURN_SECRET,
        webhook_urls=(str(receiver.server.make_url("/hooks")) + "?key=" + HOOK_URL_TOKEN,),
        webhook_secret=WEBHOOK_SECRET,
        webhook_backoff=0.05,
        webhook_backoff_cap=0.1,
        metrics_token=METRICS_TOKEN,
        metrics_allow=("10.99.0.0/16",),
    )
    secrets: list[str] = [SECRET, TURN_SECRET, WEBHOOK_SECRET, METRICS_TOKEN, HOOK_URL_TOKEN]
    service = app_of(node)[SIGNALING]

    # Tokens: minted, traded for a join code, issued to a guest.
    chair_tok = token(Role.MODERATOR, sub="chair", name="Chair")
    speaker_tok = token(Role.SPEAKER, sub="amina", name="Amina")
    desk_tok = token(Role.PRODUCTION, sub="desk", name="Desk")
    operator_tok = token(Role.OPERATOR, ("*",), sub="ops", name="Ops")
    secrets += [
        t for tok in (chair_tok, speaker_tok, desk_tok, operator_tok) for t in _secrets_of(tok)
    ]
    code = await create_join_code(
        service,
        Identity(sub="li", name="Li", role=Role.PARTICIPANT, sessions=("plenary",)),
        ttl=600,
        code_ttl=60,
    )
    secrets.append(code)
    async with aiohttp.ClientSession() as http:
        async with http.post(node.make_url("/api/v1/join"), json={"code": code}) as resp:
            joined = (await resp.json())["token"]
        async with http.post(
            node.make_url("/api/v1/sessions/open-forum/guest"), json={"name": "Guest"}
        ) as resp:
            guest = (await resp.json())["token"]
    secrets += _secrets_of(joined) + _secrets_of(guest)

    # Refused tokens: expired, forged, for another session.
    expired = token(sub="late", ttl=-3600)
    forged = token(sub="forger").rsplit(".", 1)[0] + ".Zm9yZ2Vk"
    for bad in (expired, forged, token(sessions=("workshop",))):
        await exchange(node, auth(bad), wait=0.5)
        secrets += _secrets_of(bad)

    # Q&A and the floor; TURN credentials for the speaker and the desk.
    chair = await connect(node, chair_tok)
    speaker = await connect(node, speaker_tok)
    desk = await connect(node, desk_tok)
    participant = await connect(node, joined)
    qid = (await participant.request("qa.ask", text="Is this logged?"))["question"]["id"]
    await chair.request("qa.approve", question=qid)
    entry = (await speaker.request("floor.request"))["entry"]
    await chair.request("floor.grant", entry=entry)
    for client in (speaker, desk):
        ice = await client.request("rtc.ice")
        turn = [s["credential"] for s in ice["ice_servers"] if "credential" in s]
        assert len(turn) == 1
        secrets += turn

    # A WHIP publish (TURN credentials in its Link headers), operator calls, metrics with a token.
    async with aiohttp.ClientSession() as http:
        publisher = await publish(http, node, "/whip/plenary/floor", desk_tok)
        links = re.findall(r'credential="([^"]+)"', " ".join(publisher.links))
        assert len(links) == 1
        secrets += links
        for path in ("/api/v1/overview", "/api/v1/streams", "/api/v1/sessions/plenary/report"):
            async with http.get(node.make_url(path), headers=bearer(operator_tok)) as resp:
                assert resp.status == 200, path
        async with http.get(node.make_url("/metrics"), headers=bearer(METRICS_TOKEN)) as resp:
            assert resp.status == 200
        async with http.get(
            node.make_url("/metrics"), headers=bearer("wrong-" + METRICS_TOKEN)
        ) as r:
            assert r.status == 403
        async with http.delete(node.make_url(publisher.location), headers=bearer(desk_tok)) as r:
            assert r.status == 200
        await publisher.pc.close()
    await chair.request("floor.revoke")

    # Webhooks: the first delivery fails (logged), the rest arrive signed.
    for _ in range(100):
        if len(receiver.signatures) >= 3:
            break
        await asyncio.sleep(0.05)
    assert len(receiver.signatures) >= 3
    secrets += [s.split("=", 1)[-1] for s in receiver.signatures]

    logged = _logged(caplog)
    assert "webhooks: attempt failed" in logged  # the run did log, failures included
    leaked = [s[:12] + "…" for s in secrets if s and s in logged]
    assert leaked == []


def test_settings_print_without_their_secrets() -> None:
    settings = Settings(
        jwt_secret=SECRET,
        turn_secret=TURN_SECRET,
        webhook_secret=WEBHOOK_SECRET,
        metrics_token=METRICS_TOKEN,
        redis_url="redis://:store-password@127.0.0.1:6379/0",
    )
    printed = repr(settings) + str(settings)
    for secret in (SECRET, TURN_SECRET, WEBHOOK_SECRET, METRICS_TOKEN, "store-password"):
        assert secret not in printed


def test_a_log_field_that_cannot_be_printed_costs_that_field_not_the_line() -> None:
    class Broken:
        def __str__(self) -> str:
            raise ReferenceError("weakly-referenced object no longer exists")

    record = logging.makeLogRecord({"name": "podium.test", "msg": "hello", "thing": Broken()})
    line = JsonFormatter().format(record)
    assert '"msg": "hello"' in line
    assert '"thing": "<unprintable Broken>"' in line
