"""Who a client is: join tokens (signed JWTs) minted and verified with a pinned algorithm.

Roles and the sessions a person may join come only from the token, never from what a client sends.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import jwt
import msgspec
from jwt.algorithms import HMACAlgorithm

from signaling.errors import AuthError, SessionForbidden, TokenExpired

ALGORITHM = "HS256"
# Subjects become parts of store keys and audiences: no spaces, braces or separators.
SUBJECT = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
ALL_SESSIONS = "*"
LANG = re.compile(r"[a-z]{2,3}")
Mode = Literal["venue", "remote"]


class Role(StrEnum):
    """What a person may do in a session."""

    PARTICIPANT = "participant"
    SPEAKER = "speaker"
    MODERATOR = "moderator"
    DISPLAY = "display"
    PRODUCTION = "production"
    INTERPRETER = "interpreter"
    OPERATOR = "operator"


STAFF_ROLES: frozenset[Role] = frozenset({Role.MODERATOR, Role.OPERATOR, Role.PRODUCTION})


@dataclass(frozen=True, slots=True)
class TokenKeys:
    """The secret, issuer and audience every token is signed with and checked against."""

    secret: str
    issuer: str = "podium"
    audience: str = "podium"


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified token's claims."""

    sub: str
    name: str
    role: Role
    sessions: tuple[str, ...]
    mode: Mode = "remote"
    group: str = ""
    country: str = ""
    expires: int = 0
    lang: str = ""

    def may_join(self, session_id: str) -> bool:
        """True when the token grants this session."""
        return ALL_SESSIONS in self.sessions or session_id in self.sessions

    def check_session(self, session_id: str) -> None:
        """Raises SessionForbidden unless the token grants this session."""
        if not self.may_join(session_id):
            raise SessionForbidden(f"this token does not grant session {session_id!r}")

    @property
    def is_staff(self) -> bool:
        """Moderators, operators and production see what participants do not."""
        return self.role in STAFF_ROLES


def mint(keys: TokenKeys, identity: Identity, *, now: int, ttl: int) -> str:
    """Signs a join token for ``identity`` valid for ``ttl`` seconds from ``now``."""
    claims: dict[str, Any] = {
        "iss": keys.issuer,
        "aud": keys.audience,
        "sub": identity.sub,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "name": identity.name,
        "role": identity.role.value,
        "sessions": list(identity.sessions),
        "mode": identity.mode,
    }
    if identity.group:
        claims["group"] = identity.group
    if identity.country:
        claims["country"] = identity.country
    if identity.lang:
        claims["lang"] = identity.lang
    return jwt.encode(claims, keys.secret, algorithm=ALGORITHM)


def verify(keys: TokenKeys, token: str, *, now: int, leeway: int = 5) -> Identity:
    """Verifies a join token and returns its identity.

    The algorithm is pinned (a token signed otherwise, or with ``alg: none``, is refused) and
    ``exp``, ``aud``, ``iss`` and ``sub`` are required.

    Raises:
        TokenExpired: ``exp`` has passed.
        AuthError: any other reason the token cannot be trusted.
    """
    if not token.isascii():
        # A JWT is base64url and dots; anything else (bytes that were not UTF-8 in a header)
        # would make PyJWT fail on encoding, not refuse.
        raise AuthError("invalid token: not a JWT")
    try:
        claims = _decode(keys, token, now=now, leeway=leeway)
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    return _identity(claims)


def _decode(keys: TokenKeys, token: str, *, now: int, leeway: int) -> dict[str, Any]:
    # The common case (a token as ``mint`` makes them, valid) is checked by a lean HS256 path; any
    # token it does not accept goes through PyJWT, which refuses it (or accepts it) as it always
    # did, with the same error.
    claims = _lean_claims(keys, token)
    if claims is None:
        # PyJWT would read the wall clock for exp/nbf; podium checks them against its own ``now``.
        claims = jwt.decode(
            token,
            keys.secret,
            algorithms=[ALGORITHM],
            audience=keys.audience,
            issuer=keys.issuer,
            options={
                "require": ["exp", "aud", "iss", "sub"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    exp = claims["exp"]
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise jwt.InvalidTokenError("exp must be an integer")
    if now > exp + leeway:
        raise jwt.ExpiredSignatureError("expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int) or now + leeway < nbf):
        raise jwt.ImmatureSignatureError("the token is not yet valid")
    return claims


# The header segment of every HS256 token PyJWT (and so ``mint``) writes: {"alg":"HS256","typ":"JWT"}.
# A token with any other header (a ``kid``, ``crit``, another order) takes the PyJWT path.
_PLAIN_HEADERS = frozenset({"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_REQUIRED = ("exp", "aud", "iss", "sub")


@functools.lru_cache(maxsize=8)
def _hmac_key(secret: str) -> bytes | None:
    """The HMAC key PyJWT would use for ``secret``; None when PyJWT would refuse the key or warn
    that it is short (those secrets keep PyJWT's own behaviour on every token)."""
    algorithm = HMACAlgorithm(HMACAlgorithm.SHA256)
    try:
        key = algorithm.prepare_key(secret)
    except jwt.InvalidKeyError:
        return None
    return None if algorithm.check_key_length(key) else key


def _segment(text: str) -> bytes | None:
    """A base64url segment's bytes when it is in the canonical unpadded form PyJWT accepts."""
    if len(text) % 4 == 1 or not _BASE64URL.fullmatch(text):
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        return None
    return data


def _lean_claims(keys: TokenKeys, token: str) -> dict[str, Any] | None:
    """The claims of a token PyJWT's ``decode`` (with podium's options) would accept; else None.

    Accepted only when every check PyJWT makes passes: the plain HS256 header, the HMAC-SHA256
    signature over the raw ``header.payload`` (constant-time comparison), a JSON object payload,
    ``exp``/``aud``/``iss``/``sub`` present, ``iss`` equal to the issuer, ``aud`` a string or list
    of strings naming the audience, ``sub`` (and ``jti`` if any) a string. None sends the token to
    PyJWT, which gives the verdict and the error message. About a tenth of PyJWT's cost per join.
    """
    key = _hmac_key(keys.secret)
    header, _, rest = token.partition(".")
    payload_segment, _, signature = rest.partition(".")
    if key is None or header not in _PLAIN_HEADERS or not signature:
        return None
    signing_input = token[: len(header) + 1 + len(payload_segment)].encode()
    digest = hmac.new(key, signing_input, hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=")
    if not hmac.compare_digest(expected, signature.encode()):
        return None
    payload = _segment(payload_segment)
    if payload is None:
        return None
    try:
        claims = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None  # json.loads may read what msgspec refuses (a lone surrogate, say)
    if not isinstance(claims, dict) or any(claims.get(c) is None for c in _REQUIRED):
        return None
    aud = claims["aud"]
    if not aud:
        return None  # PyJWT: an empty audience is a missing one
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        return None
    if keys.audience not in audiences or claims["iss"] != keys.issuer:
        return None
    if not isinstance(claims["iss"], str) or not isinstance(claims["sub"], str):
        return None
    if "jti" in claims and not isinstance(claims["jti"], str):
        return None
    return claims


def _identity(claims: dict[str, Any]) -> Identity:
    role = claims.get("role")
    sessions = claims.get("sessions")
    mode = claims.get("mode", "remote")
    sub = claims.get("sub")
    name = claims.get("name", "")
    if role not in Role.__members__.values():
        raise AuthError("the token carries no valid role")
    if not isinstance(sessions, list) or not all(isinstance(s, str) for s in sessions):
        raise AuthError("the token carries no session list")
    if mode not in ("venue", "remote"):
        raise AuthError("the token's mode must be venue or remote")
    if not isinstance(sub, str) or not SUBJECT.fullmatch(sub):
        raise AuthError("the token's subject must be 1–128 of A–Z a–z 0–9 . _ : @ -")
    if not isinstance(name, str) or len(name) > 100:
        raise AuthError("the token's name is invalid")
    group, country = claims.get("group", ""), claims.get("country", "")
    if not isinstance(group, str) or not isinstance(country, str):
        raise AuthError("the token's group and country must be strings")
    # An interpreter's language: the interpretation channel the token may publish to.
    lang = claims.get("lang", "")
    if not isinstance(lang, str) or not LANG.fullmatch(lang or "xx"):
        raise AuthError("the token's lang must be a language code (2–3 lowercase letters)")
    return Identity(
        sub=sub,
        name=name or "Anonymous",
        role=Role(str(role)),
        sessions=tuple(sessions),
        mode=mode,
        group=group[:64],
        country=country[:2].upper(),
        expires=int(claims["exp"]),
        lang=lang,
    )
