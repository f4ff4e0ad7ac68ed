"""The moderation error tree (a branch of signaling's, so connections and routes translate it alike).

Tree::

    ModerationError                 moderation_error     400
    ├── TextRefused                 text_refused         400   empty, too long, control/bidi/zero-width
    ├── QnaClosed                   qna_closed           409   Q&A disabled or locked for new questions
    ├── QuestionNotFound            question_not_found   404   no such question in this session
    ├── QuestionConflict            question_conflict    409   the question's state does not allow it
    ├── TooManyQuestions            too_many_questions   429   the per-person rate limit
    ├── FloorClosed                 floor_closed         409   the speakers' list takes no requests now
    ├── FloorConflict               floor_conflict       409   already listed, not listed, list full, raced
    └── TooManyFloorRequests        too_many_floor_requests  429  the per-person request rate limit

``NotAllowed`` (``not_allowed``, 403: the role may not do this) is signaling's, re-exported here: the
media relay refuses with the same code, and one code has one class.
"""

from __future__ import annotations

from signaling.errors import NotAllowed as NotAllowed
from signaling.errors import SignalingError


class ModerationError(SignalingError):
    """Base of every refusal of a Q&A or floor action."""

    code = "moderation_error"
    http_status = 400


class TextRefused(ModerationError):
    """The text cannot be accepted as it is (the message says why)."""

    code = "text_refused"


class QnaClosed(ModerationError):
    """The session takes no new questions now."""

    code = "qna_closed"
    http_status = 409


class QuestionNotFound(ModerationError):
    """No question with that id in this session."""

    code = "question_not_found"
    http_status = 404


class QuestionConflict(ModerationError):
    """The question's current state does not allow this action (or it changed meanwhile)."""

    code = "question_conflict"
    http_status = 409


class TooManyQuestions(ModerationError):
    """The person asked too often; ``retry_after`` says when they may ask again."""

    code = "too_many_questions"
    http_status = 429


class FloorClosed(ModerationError):
    """The moderators closed the speakers' list to new requests."""

    code = "floor_closed"
    http_status = 409


class FloorConflict(ModerationError):
    """The speakers' list does not allow this now (or another moderator changed it first)."""

    code = "floor_conflict"
    http_status = 409


class TooManyFloorRequests(ModerationError):
    """The person asked for the floor too often; ``retry_after`` says when they may again."""

    code = "too_many_floor_requests"
    http_status = 429
