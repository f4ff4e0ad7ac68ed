"""The streaming error tree: every refusal of a WHIP/WHEP or channel request, with its HTTP status.

Streaming errors travel over HTTP only (never over the client socket), so the tree stands beside
signaling's rather than under it; the body has the same shape (``{"code", "message"}``). Token and
session refusals reuse signaling's errors (401, 403, 404) as every other route does.

Tree::

    StreamingError                  streaming_error          400
    ├── MalformedSdp                malformed_sdp            400  not an SDP offer / fragment
    ├── InvalidBody                 invalid_body             400  a JSON body of the wrong shape
    ├── ChannelElsewhere            channel_elsewhere        307  live on another node (Location)
    ├── ChannelForbidden            channel_forbidden        403  the role may not use this channel
    ├── UnknownChannel              unknown_channel          404  not a channel of the session
    ├── UnknownResource             unknown_resource         404  no such WHIP/WHEP session (ended)
    ├── UnknownRecording            unknown_recording        404
    ├── MethodNotAllowed            method_not_allowed       405  (with Allow)
    ├── NotAcceptable               not_acceptable           406  media podium cannot take, or Accept
    ├── ChannelBusy                 channel_busy             409  the channel has a publisher
    ├── ChannelOffline              channel_offline          409  nothing to play (WHEP)
    ├── PreconditionFailed          precondition_failed      412  stale If-Match
    ├── UnsupportedMediaType        unsupported_media_type   415
    ├── IceRestartUnsupported       ice_restart_unsupported  422
    ├── PreconditionRequired        precondition_required    428  PATCH without If-Match
    └── OverCapacity                over_capacity            503  retryable, with Retry-After
"""

from __future__ import annotations


class StreamingError(Exception):
    """Base of every streaming refusal."""

    code = "streaming_error"
    http_status = 400
    retryable = False

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")
        self.retry_after = retry_after


class MalformedSdp(StreamingError):
    """The body is not a usable SDP offer (or trickle-ICE fragment)."""

    code = "malformed_sdp"


class ChannelElsewhere(StreamingError):
    """The channel is live on another node: play it there (``location``, a 307 redirect)."""

    code = "channel_elsewhere"
    http_status = 307

    def __init__(self, message: str, *, location: str) -> None:
        super().__init__(message)
        self.location = location


class InvalidBody(StreamingError):
    """A JSON body of the wrong shape."""

    code = "invalid_body"


class ChannelForbidden(StreamingError):
    """The caller's role (or interpreter language) does not allow this channel."""

    code = "channel_forbidden"
    http_status = 403


class UnknownChannel(StreamingError):
    """The session has no such channel (the floor, or one of its languages)."""

    code = "unknown_channel"
    http_status = 404


class UnknownResource(StreamingError):
    """No WHIP/WHEP session with this id on this node (it ended, or never existed)."""

    code = "unknown_resource"
    http_status = 404


class UnknownRecording(StreamingError):
    """No recording with this name for this session."""

    code = "unknown_recording"
    http_status = 404


class MethodNotAllowed(StreamingError):
    """The resource URL takes only PATCH and DELETE (RFC 9725 reserves the others)."""

    code = "method_not_allowed"
    http_status = 405


class NotAcceptable(StreamingError):
    """The offer's media are not what the channel carries, or the client does not accept SDP."""

    code = "not_acceptable"
    http_status = 406


class ChannelBusy(StreamingError):
    """Another publisher holds the channel; an operator may force a takeover."""

    code = "channel_busy"
    http_status = 409


class ChannelOffline(StreamingError):
    """The channel is not live: there is nothing to play (its external URL may be)."""

    code = "channel_offline"
    http_status = 409


class PreconditionFailed(StreamingError):
    """The If-Match entity-tag is not the ICE session's current one."""

    code = "precondition_failed"
    http_status = 412


class UnsupportedMediaType(StreamingError):
    """The body's content type is not the one the route takes."""

    code = "unsupported_media_type"
    http_status = 415


class IceRestartUnsupported(StreamingError):
    """An ICE restart (new ufrag and password): podium's media stack cannot do one; re-POST."""

    code = "ice_restart_unsupported"
    http_status = 422


class PreconditionRequired(StreamingError):
    """A PATCH without If-Match: trickle candidates must name the ICE session they belong to."""

    code = "precondition_required"
    http_status = 428


class OverCapacity(StreamingError):
    """The node's listener or channel cap is reached; ``retry_after`` says when to try again."""

    code = "over_capacity"
    http_status = 503
    retryable = True
