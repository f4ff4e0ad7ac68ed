"""The signaling error tree: every refusal a client can meet, with its wire code, close code and status.

Tree::

    SignalingError                      internal            500
    ├── ProtocolError                   bad_request         400
    │   ├── MalformedFrame              malformed_frame
    │   ├── UnknownType                 unknown_type
    │   ├── InvalidMessage              invalid_message
    │   └── NotAuthenticated            not_authenticated
    ├── AuthError                       unauthorized        401  closes 4502
    │   ├── TokenExpired                token_expired       401  closes 4503
    │   └── AuthTimeout                 auth_timeout        401  closes 4501
    ├── Forbidden                       forbidden           403
    │   ├── SessionForbidden            session_forbidden   403  closes 4504
    │   └── OriginRefused               origin_refused      403  (HTTP, at the upgrade)
    ├── UnknownSession                  unknown_session     404  closes 4505
    ├── InvalidTransition               invalid_transition  409
    ├── RateLimited                     rate_limited        429
    ├── Draining                        draining            503  retryable (HTTP, at the upgrade)
    ├── GuestAccessClosed               guest_closed        403
    ├── NotAllowed                      not_allowed         403  (the role, or the floor, does not allow it)
    ├── MediaError                      media_error         400  (the base of the relay's refusals)
    │   ├── SdpInvalid                  sdp_invalid         400
    │   ├── CandidateInvalid            candidate_invalid   400
    │   ├── MediaNotFound               media_not_found     404
    │   └── MediaConflict               media_conflict      409
    └── StoreUnavailable                store_unavailable   503  retryable

Close codes come in two ranges (see ``CloseCode``): 4000–4499 ask the client to reconnect (with backoff
and resume), 4500–4999 tell it not to reconnect with the same credentials.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes podium uses; the range says whether a client should reconnect."""

    # 4000–4499: reconnect (with backoff, resuming from the last (epoch, seq)).
    GOING_AWAY = 4000
    SLOW_CONSUMER = 4001
    STORE_UNAVAILABLE = 4002
    SERVER_ERROR = 4003
    # 4500–4999: do not reconnect with the same credentials.
    PROTOCOL_VIOLATION = 4500
    AUTH_TIMEOUT = 4501
    UNAUTHORIZED = 4502
    TOKEN_EXPIRED = 4503
    SESSION_FORBIDDEN = 4504
    UNKNOWN_SESSION = 4505
    FLOOD = 4506
    # Standard codes aiohttp or podium use for frame-level problems.
    UNSUPPORTED_DATA = 1003
    MESSAGE_TOO_BIG = 1009

    @property
    def reconnect(self) -> bool:
        """True when a client should reconnect after this close."""
        return 4000 <= self < 4500


class SignalingError(Exception):
    """Base of every signaling refusal."""

    code = "internal"
    http_status = 500
    close_code: CloseCode | None = None
    retryable = False

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")
        self.retry_after = retry_after


class ProtocolError(SignalingError):
    """A frame that is not a valid podium message."""

    code = "bad_request"
    http_status = 400


class MalformedFrame(ProtocolError):
    """The frame is not a JSON object."""

    code = "malformed_frame"


class UnknownType(ProtocolError):
    """The message type is not one the server accepts."""

    code = "unknown_type"


class InvalidMessage(ProtocolError):
    """A known message type with missing, extra or ill-typed fields."""

    code = "invalid_message"


class NotAuthenticated(ProtocolError):
    """A command sent before ``auth``, or ``auth`` sent twice."""

    code = "not_authenticated"


class AuthError(SignalingError):
    """The token is missing, forged, of the wrong audience or issuer, or malformed."""

    code = "unauthorized"
    http_status = 401
    close_code = CloseCode.UNAUTHORIZED


class TokenExpired(AuthError):
    """The token's ``exp`` has passed."""

    code = "token_expired"
    close_code = CloseCode.TOKEN_EXPIRED


class AuthTimeout(AuthError):
    """No ``auth`` message arrived within the deadline."""

    code = "auth_timeout"
    close_code = CloseCode.AUTH_TIMEOUT


class Forbidden(SignalingError):
    """The caller's role does not allow this action."""

    code = "forbidden"
    http_status = 403


class SessionForbidden(Forbidden):
    """The token does not grant access to this session."""

    code = "session_forbidden"
    close_code = CloseCode.SESSION_FORBIDDEN


class OriginRefused(Forbidden):
    """The WebSocket upgrade came from an Origin not in the allow-list (or with none)."""

    code = "origin_refused"


class GuestAccessClosed(Forbidden):
    """The session does not allow guests."""

    code = "guest_closed"


class UnknownSession(SignalingError):
    """No session with this id in the programme."""

    code = "unknown_session"
    http_status = 404
    close_code = CloseCode.UNKNOWN_SESSION


class InvalidTransition(SignalingError):
    """The session lifecycle does not allow this change from its current state."""

    code = "invalid_transition"
    http_status = 409


class RateLimited(SignalingError):
    """Too many messages; ``retry_after`` says when to try again."""

    code = "rate_limited"
    http_status = 429


class Draining(SignalingError):
    """The node is shutting down and takes no new connections; another node will."""

    code = "draining"
    http_status = 503
    retryable = True


class NotAllowed(SignalingError):
    """The caller's role (or, for media, not holding the floor) does not allow this action."""

    code = "not_allowed"
    http_status = 403


class MediaError(SignalingError):
    """Base of the media relay's refusals; nothing was relayed."""

    code = "media_error"
    http_status = 400


class SdpInvalid(MediaError):
    """A session description breaks the relay's rules (the message says which)."""

    code = "sdp_invalid"


class CandidateInvalid(MediaError):
    """An ICE candidate is not one (the message says which part is wrong)."""

    code = "candidate_invalid"


class MediaNotFound(MediaError):
    """No such media session (it ended, or never began)."""

    code = "media_not_found"
    http_status = 404


class MediaConflict(MediaError):
    """The media session belongs to someone else: another desk answered it, or it was replaced."""

    code = "media_conflict"
    http_status = 409


class StoreUnavailable(SignalingError):
    """The store did not answer; nothing was written, the client may retry."""

    code = "store_unavailable"
    http_status = 503
    close_code = CloseCode.STORE_UNAVAILABLE
    retryable = True
