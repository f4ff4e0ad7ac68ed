"""The handshake: tokens signed with another algorithm or key family, claims missing or mistyped,
an ``auth`` after the deadline, look-alike Origins. Each is refused with a typed error and a
do-not-reconnect close, nobody joins, and people already connected are not disturbed.

Missing and foreign Origins, no token, ``alg=none``, expired, not-yet-valid, wrong ``aud``/``iss``,
missing ``exp``/``sub``, the deadline and a token expiring while connected (the close only):
``tests/test_bad_input.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from tests.conftest import ORIGIN, SECRET, ClientFactory, token, ws_url
from tests.security.wire import auth, drained, exchange, online, still_served

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "podium",
        "aud": "podium",
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        "name": "Mallory",
        "role": "operator",
        "sessions": ["*"],
        "mode": "remote",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


def _rsa_public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _jwk_injected() -> str:
    # The attacker's own key, embedded in the header for a careless verifier to trust.
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    return jwt.encode(_claims(), RSA_KEY, algorithm="RS256", headers={"jwk": jwk})


def _hs_with_a_public_key() -> str:
    # The classic confusion: an HMAC "signed" with what a RS-expecting server holds as public key.
    header = {"alg": "HS256", "typ": "JWT"}
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(_claims()).encode())
    mac = hmac.new(_rsa_public_pem(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _hs(claims: dict[str, Any], alg: str = "HS256") -> str:
    # The test secret is shorter than PyJWT recommends for HS384/512; the node refuses them anyway.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, SECRET, algorithm=alg)


BAD_TOKENS: dict[str, str] = {
    "rs256-attacker-key": jwt.encode(_claims(), RSA_KEY, algorithm="RS256"),
    "rs256-jwk-injected": _jwk_injected(),
    "hs256-keyed-with-a-public-key": _hs_with_a_public_key(),
    "es256": jwt.encode(_claims(), EC_KEY, algorithm="ES256"),
    "hs384-right-secret": _hs(_claims(), "HS384"),
    "hs512-right-secret": _hs(_claims(), "HS512"),
    "alg-None-capitalised": _unsigned({"alg": "None", "typ": "JWT"}, _claims()),
    "alg-NONE-with-a-signature": _unsigned({"alg": "NONE"}, _claims(), b"sig"),
    "no-alg": _unsigned({"typ": "JWT"}, _claims()),
    "hs256-signature-stripped": jwt.encode(_claims(), SECRET, algorithm="HS256").rsplit(".", 1)[0]
    + ".",
    "no-aud": jwt.encode(_claims(aud=None), SECRET, algorithm="HS256"),
    "no-iss": jwt.encode(_claims(iss=None), SECRET, algorithm="HS256"),
    "aud-list-without-podium": jwt.encode(_claims(aud=["other"]), SECRET, algorithm="HS256"),
    "exp-as-a-string": jwt.encode(_claims(exp=str(int(time.time()) + 600)), SECRET),
    "exp-as-a-float": jwt.encode(_claims(exp=time.time() + 600.5), SECRET),
    "nbf-as-a-string": jwt.encode(_claims(nbf="0"), SECRET),
    "sessions-as-a-string": jwt.encode(_claims(sessions="*"), SECRET),
    "role-as-a-list": jwt.encode(_claims(role=["operator"]), SECRET),
    "sub-with-a-key-separator": jwt.encode(_claims(sub="a:b}{c d"), SECRET),
    "name-of-a-thousand-characters": jwt.encode(_claims(name="x" * 1000), SECRET),
}


@pytest.mark.parametrize("tok", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_tokens_of_another_algorithm_or_with_bad_claims_are_refused_and_nobody_joins(
    node: TestServer, connect: ClientFactory, tok: str
) -> None:
    bystander = await connect(node, token(sub="bystander"))
    received, closed = await exchange(node, auth(tok))
    assert received[0]["type"] == "error"
    assert received[0]["code"] in ("unauthorized", "token_expired")
    assert closed in (4502, 4503)
    await still_served(bystander)
    assert await online(node) == 1


async def test_the_confused_tokens_are_refused_over_http_too(node: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        for name in ("rs256-attacker-key", "hs256-keyed-with-a-public-key", "alg-None-capitalised"):
            resp = await http.post(
                node.make_url("/api/v1/sessions/plenary/state"),
                json={"state": "closed"},
                headers={"Authorization": "Bearer " + BAD_TOKENS[name]},
            )
            assert resp.status == 401, name
            assert (await resp.json())["code"] == "unauthorized"
            resp.release()


async def test_an_auth_sent_after_the_deadline_is_not_read_the_socket_is_closed(
    node: TestServer,
) -> None:
    async with ws_connect(ws_url(node), origin=Origin(ORIGIN)) as ws:
        await asyncio.sleep(1.3)  # the test node's auth deadline is 1 s
        received = []
        with contextlib.suppress(ConnectionClosed):  # the socket may be closed already
            await ws.send(auth(token()))
        with contextlib.suppress(ConnectionClosed):
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 3)))
        assert [m["code"] for m in received] == ["auth_timeout"]
        assert ws.close_code == 4501
    assert await online(node) == 0


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        ORIGIN + ".evil.example",
        ORIGIN.replace("http://", "https://"),
        ORIGIN + ":8443",
        "http://evil.example/" + ORIGIN,
    ],
)
async def test_origins_that_only_look_like_an_allowed_one_are_refused_at_the_upgrade(
    node: TestServer, origin: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await exchange(node, auth(token()), origin=origin)
    assert refused.value.response.status_code == 403
    assert await online(node) == 0


async def test_a_token_expiring_while_connected_is_told_cut_off_and_counted_out(
    node: TestServer, connect: ClientFactory
) -> None:
    bystander = await connect(node, token(sub="bystander"))
    brief = token(sub="brief", ttl=3)
    client = await connect(node, brief)
    assert await online(node) == 2
    closed = await client.wait_closed(timeout=8)
    assert closed.code == 4503
    told = [m for m in drained(client) if m.get("type") == "error"]
    assert [(m["code"], m.get("id")) for m in told] == [("token_expired", None)]
    for _ in range(50):  # the node counts the person out as it closes the socket
        if await online(node) == 1:
            break
        await asyncio.sleep(0.1)
    assert await online(node) == 1
    # Rejoining with it ends the same way: refused, or (inside the verifier's 5 s clock-skew
    # leeway) welcomed and cut off at once.
    received, code = await exchange(node, auth(brief))
    assert (received[-1]["type"], received[-1]["code"], code) == ("error", "token_expired", 4503)
    await still_served(bystander)
