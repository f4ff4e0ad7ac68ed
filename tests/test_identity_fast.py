"""The lean HS256 check gives every token the verdict PyJWT gives it, with the same error.

``verify`` checks the common token (as ``mint`` makes them) without PyJWT and sends any other token to
PyJWT. Each token here is verified twice, once as the node does and once through PyJWT alone, and the
outcomes (the identity, or the error's type and message) must be equal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling import identity
from signaling.errors import AuthError, SignalingError
from signaling.identity import Identity, Role, TokenKeys, mint, verify

SECRET = "s" * 40
KEYS = TokenKeys(SECRET)
NOW = 1_000_000
PLAIN_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(
    claims: Any,
    *,
    header: dict[str, Any] | None = None,
    secret: str = SECRET,
    raw_payload: bytes | None = None,
) -> str:
    """A token signed by hand, so the header, the payload bytes and the claims can be anything."""
    head = _b64(json.dumps(header or PLAIN_HEADER, separators=(",", ":")).encode())
    body = _b64(raw_payload if raw_payload is not None else json.dumps(claims).encode())
    digest = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(digest)}"


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "podium",
        "aud": "podium",
        "sub": "p-1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 3600,
        "name": "Amina",
        "role": "participant",
        "sessions": ["plenary"],
        "mode": "remote",
    }
    for key, value in changes.items():
        if value is _DROP:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


_DROP = object()


def _outcome(keys: TokenKeys, token: str, now: int = NOW) -> Identity | tuple[str, str, str]:
    try:
        return verify(keys, token, now=now)
    except SignalingError as exc:
        return (type(exc).__name__, exc.code, exc.message)


def _pyjwt_outcome(
    monkeypatch: pytest.MonkeyPatch, keys: TokenKeys, token: str, now: int = NOW
) -> Identity | tuple[str, str, str]:
    with monkeypatch.context() as patch:
        patch.setattr(identity, "_lean_claims", lambda keys, token: None)
        return _outcome(keys, token, now)


def _same(monkeypatch: pytest.MonkeyPatch, token: str, *, now: int = NOW) -> Any:
    lean = _outcome(KEYS, token, now)
    assert lean == _pyjwt_outcome(monkeypatch, KEYS, token, now), token
    return lean


def test_a_minted_token_takes_the_lean_path_and_verifies_to_the_same_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = Identity(
        sub="p-7", name="Zoë", role=Role.INTERPRETER, sessions=("plenary", "*"), mode="venue",
        group="ngo", country="FR", lang="ar",
    )  # fmt: skip
    token = mint(KEYS, person, now=NOW, ttl=600)
    assert identity._lean_claims(KEYS, token) is not None  # the fast path, not PyJWT
    got = _same(monkeypatch, token)
    assert got == Identity(
        sub="p-7", name="Zoë", role=Role.INTERPRETER, sessions=("plenary", "*"), mode="venue",
        group="ngo", country="FR", expires=NOW + 600, lang="ar",
    )  # fmt: skip


BAD_OR_ODD = {
    "another secret": _sign(_claims(), secret="t" * 40),
    "alg none": _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(_claims()).encode()) + ".",
    "HS512 header": _sign(_claims(), header={"alg": "HS512", "typ": "JWT"}),
    "header with kid": _sign(_claims(), header={"alg": "HS256", "typ": "JWT", "kid": "k1"}),
    "header with an int kid": _sign(_claims(), header={"alg": "HS256", "typ": "JWT", "kid": 1}),
    "header in another order": _sign(_claims(), header={"typ": "JWT", "alg": "HS256"}),
    "header with crit": _sign(_claims(), header={"alg": "HS256", "crit": ["exp"]}),
    "header with b64 false": _sign(_claims(), header={"alg": "HS256", "b64": False, "crit": ["b64"]}),
    "audience list with ours": _sign(_claims(aud=["x", "podium"])),
    "audience list without ours": _sign(_claims(aud=["x", "y"])),
    "audience list with a number": _sign(_claims(aud=["podium", 3])),
    "empty audience": _sign(_claims(aud="")),
    "empty audience list": _sign(_claims(aud=[])),
    "audience a number": _sign(_claims(aud=7)),
    "another issuer": _sign(_claims(iss="other")),
    "issuer a number": _sign(_claims(iss=1)),
    "no issuer": _sign(_claims(iss=_DROP)),
    "subject a number": _sign(_claims(sub=12)),
    "no subject": _sign(_claims(sub=_DROP)),
    "null subject": _sign(_claims(sub=None)),
    "subject with a space": _sign(_claims(sub="a b")),
    "no expiry": _sign(_claims(exp=_DROP)),
    "expiry a float": _sign(_claims(exp=NOW + 10.0)),
    "expiry a string": _sign(_claims(exp=str(NOW + 10))),
    "expiry true": _sign(_claims(exp=True)),
    "expired": _sign(_claims(exp=NOW - 60)),
    "not yet valid": _sign(_claims(nbf=NOW + 60)),
    "nbf a string": _sign(_claims(nbf="soon")),
    "iat a string (not checked)": _sign(_claims(iat="whenever")),
    "jti a number": _sign(_claims(jti=5)),
    "jti a string": _sign(_claims(jti="j-1")),
    "unknown role": _sign(_claims(role="king")),
    "payload a list": _sign([1, 2]),
    "payload not JSON": _sign(None, raw_payload=b"{nope"),
    "payload with NaN": _sign(None, raw_payload=json.dumps(_claims(extra=float("nan"))).encode()),
    "payload with a lone surrogate": _sign(None, raw_payload=b'{"x":"\\ud800",' + json.dumps(_claims()).encode()[1:]),
    "payload with a BOM": _sign(None, raw_payload=b"\xef\xbb\xbf" + json.dumps(_claims()).encode()),
    "payload with a huge number": _sign(_claims(extra=10**40)),
    "duplicate keys, last wins": _sign(None, raw_payload=b'{"sub":"other",' + json.dumps(_claims()).encode()[1:]),
    "two segments": ".".join(mint(KEYS, Identity(sub="p", name="P", role=Role.SPEAKER, sessions=("*",)), now=NOW, ttl=60).split(".")[:2]),
    "four segments": mint(KEYS, Identity(sub="p", name="P", role=Role.SPEAKER, sessions=("*",)), now=NOW, ttl=60) + ".x",
    "padded signature": _sign(_claims()) + "=",
    "junk in the signature": _sign(_claims())[:-2] + "!!",
    "empty": "",
    "dots": "..",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_OR_ODD))
def test_odd_and_bad_tokens_get_pyjwt_s_verdict_and_error(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    _same(monkeypatch, BAD_OR_ODD[case])


def test_a_signature_with_its_last_character_changed_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _sign(_claims())
    head, _, last = token.rpartition(".")
    for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        if char != last[-1]:
            outcome = _same(monkeypatch, f"{head}.{last[:-1]}{char}")
            assert not isinstance(outcome, Identity)  # a non-canonical encoding is no way in


def test_a_short_secret_keeps_pyjwt_s_behaviour() -> None:
    # PyJWT warns about a key under 32 bytes (an error under this suite's warning filter); the lean
    # path leaves such keys to PyJWT rather than skipping the warning.
    short = TokenKeys("short")
    with pytest.raises(Warning):
        verify(short, _sign(_claims(), secret="short"), now=NOW)


def test_tokens_of_another_audience_or_issuer_keys_are_refused() -> None:
    token = mint(
        TokenKeys(SECRET, audience="a2"), Identity("p", "P", Role.DISPLAY, ("*",)), now=NOW, ttl=60
    )
    with pytest.raises(AuthError):
        verify(KEYS, token, now=NOW)
    assert isinstance(verify(TokenKeys(SECRET, audience="a2"), token, now=NOW), Identity)


values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=8), st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3),
    st.sampled_from(["podium", "participant", "moderator", "venue", "remote", "p-1", "plenary",
                     "ar", "FR"]),
    st.just(["podium"]), st.just(["plenary"]), st.integers(NOW - 100, NOW + 100),
)  # fmt: skip
claim_names = st.sampled_from(
    ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "name", "role", "sessions", "mode", "group",
     "country", "lang"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(claim_names, st.one_of(values, st.just(_DROP)), max_size=4))
def test_any_signed_claims_get_the_same_verdict_both_ways(changes: dict[str, Any]) -> None:
    token = _sign(_claims(**changes))
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _outcome(KEYS, token) == _pyjwt_outcome(monkeypatch, KEYS, token), changes
