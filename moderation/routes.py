"""Q&A over HTTP: a session's questions as the caller may see them, and the moderators' export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from moderation.errors import NotAllowed
from moderation.questions import Actor, visible_to
from moderation.service import QnaService
from moderation.store import QuestionStore
from signaling.errors import InvalidMessage
from signaling.routes import bearer_identity

QUESTION_COLUMNS = (
    "id", "state", "text", "lang", "author_name", "author", "group", "anonymous", "votes",
    "created", "decided", "reason", "reply", "labels", "merged_into", "edited",
)  # fmt: skip
AUDIT_COLUMNS = ("at", "action", "question", "actor", "name", "role", "detail")


class QnaRoutes:
    """The Q&A HTTP surface; bound to the node's service once it has started."""

    def __init__(self) -> None:
        self._service: QnaService | None = None

    def bind(self, service: QnaService) -> None:
        """Attaches the node's Q&A service."""
        self._service = service

    @property
    def service(self) -> QnaService:
        """The bound service."""
        assert self._service is not None, "the node has not started"
        return self._service

    def add_to(self, app: web.Application) -> None:
        """Registers the routes."""
        app.router.add_get("/api/v1/sessions/{session}/questions", self.questions)
        app.router.add_get("/api/v1/sessions/{session}/questions/export", self.export)

    def _actor(self, request: web.Request) -> tuple[str, Actor]:
        signaling = self.service.signaling
        identity = bearer_identity(request, signaling)
        session = signaling.session(request.match_info["session"]).id
        identity.check_session(session)
        return session, Actor(identity.sub, identity.name, identity.role, identity.group)

    async def questions(self, request: web.Request) -> web.Response:
        """The questions the caller may see, with their views for the caller's role."""
        session, actor = self._actor(request)
        everything = await self.service.store.all(session)
        views = [self.service.view_for(q, actor) for q in everything if visible_to(q, actor)]
        return web.json_response({"session": session, "questions": views})

    async def export(self, request: web.Request) -> web.Response:
        """Moderators and operators: every question and the full audit trail, as JSON or CSV."""
        session, actor = self._actor(request)
        if not actor.moderates:
            raise NotAllowed("only moderators and operators export the Q&A")
        fmt = request.query.get("format", "json")
        table = request.query.get("table", "questions")
        if fmt not in ("json", "csv") or table not in ("questions", "audit"):
            raise InvalidMessage("format must be json or csv; table must be questions or audit")
        data = await export_data(self.service.store, session)
        if fmt == "json":
            return web.json_response(data, dumps=_dumps)
        body = to_csv(data, table)
        name = f"{session}-{table}.csv"
        return web.Response(
            text=body,
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


async def export_data(store: QuestionStore, session: str) -> dict[str, Any]:
    """The session's questions (with voters) and audit trail, as one document."""
    questions = await store.all(session)
    rows = []
    for q in questions:
        row = q.staff_view()
        row["decided"] = q.decided
        row["voters"] = await store.voters(session, q.id)
        rows.append(row)
    return {
        "session": session,
        "exported_at": datetime.now(UTC).isoformat(),
        "questions": rows,
        "audit": await store.audit(session),
    }


def to_csv(data: dict[str, Any], table: str) -> str:
    """One table of the export as CSV (questions, or the audit trail)."""
    out = io.StringIO()
    writer = csv.writer(out)
    if table == "questions":
        writer.writerow(QUESTION_COLUMNS)
        for q in data["questions"]:
            writer.writerow(
                [";".join(q[c]) if c == "labels" else _cell(q.get(c, "")) for c in QUESTION_COLUMNS]
            )
    else:
        writer.writerow(AUDIT_COLUMNS)
        for entry in data["audit"]:
            cells = [_cell(entry.get(c, "")) for c in AUDIT_COLUMNS[:-1]]
            writer.writerow([*cells, json.dumps(entry["detail"], ensure_ascii=False)])
    return out.getvalue()


def _cell(value: Any) -> str:
    text = str(value)
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)
