"""The participation report written out: JSON, one tidy CSV table, and a printable HTML page (pure).

The three carry the same figures (docs/reports.md documents the JSON keys and the CSV rows). The
HTML page is one self-contained document: inline SVG charts (``reporting.charts``), one inline style
sheet with print rules, no script, no external asset; served with ``REPORT_CSP``, which allows that
one style sheet by its hash and nothing else.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from html import escape
from typing import Any

from reporting import charts
from reporting.errors import UnknownFormat
from reporting.report import (
    EventReport,
    FloorFigures,
    Participation,
    Point,
    Questions,
    SessionReport,
    Totals,
)

FORMATS = ("json", "csv", "html")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "html": "text/html"}
CSV_COLUMNS = ("session", "section", "item", "value")
EVENT_ROW = "*"  # the ``session`` cell of the event's totals in the CSV

STYLE = """
@page { size: A4; margin: 14mm; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24;
  max-width: 980px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 1.8rem 0 .5rem; border-bottom: 2px solid #d0d7de; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.meta { color: #57606a; margin: 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 8px;
  margin: 1rem 0; padding: 0; list-style: none; }
.figures li { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px; }
.figures b { display: block; font-size: 1.5rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { max-width: 100%; height: auto; }
caption.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
th, td { border-bottom: 1px solid #d0d7de; padding: 3px 8px; text-align: start; }
.n { text-align: end; font-variant-numeric: tabular-nums; }
.empty { color: #57606a; font-style: italic; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10pt; }
  .session { break-before: page; }
  figure, table, .figures { break-inside: avoid; }
}
"""

# The HTML report's own policy: no script, no fetch, nothing external; only its one style sheet.
REPORT_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'sha256-"
        + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
        + "'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def iso(ms: int) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC time (seconds), or None for 0 (never)."""
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


# ---- JSON -------------------------------------------------------------------------------------------


def _participation(p: Participation) -> dict[str, Any]:
    return {
        "peak_online": p.peak_online,
        "peak_at": iso(p.peak_at_ms),
        "unique": p.unique,
        "by_mode": p.by_mode,
        "by_role": p.by_role,
        "by_group": p.by_group,
        "by_country": p.by_country,
        "by_language": p.by_language,
    }


def _questions(q: Questions) -> dict[str, Any]:
    return {
        "asked": q.asked,
        "approved": q.approved,
        "answered": q.answered,
        "rejected": q.rejected,
        "pending": q.pending,
        "merged": q.merged,
        "votes": q.votes,
        "by_group": q.by_group,
        "by_language": q.by_language,
    }


def _floor(f: FloorFigures) -> dict[str, Any]:
    return {
        "requests": f.requests,
        "interventions": f.interventions,
        "speaking_seconds": f.speaking_seconds,
        "by_group": {
            g: {
                "requests": v.requests,
                "interventions": v.interventions,
                "speaking_seconds": v.speaking_seconds,
            }
            for g, v in f.by_group.items()
        },
    }


def session_data(report: SessionReport) -> dict[str, Any]:
    """One session's figures as a JSON-ready document (the keys docs/reports.md lists)."""
    s = report.session
    return {
        "session": {
            "id": s.id,
            "title": s.title,
            "room": s.room,
            "track": s.track,
            "start": s.start.isoformat(),
            "end": s.end.isoformat(),
            "state": report.state,
        },
        "participation": _participation(report.participation),
        "questions": _questions(report.questions),
        "floor": _floor(report.floor),
        "series": [
            {"at": iso(p.at), "online": p.online, "venue": p.venue, "remote": p.remote}
            for p in report.series
        ],
    }


def _totals(t: Totals) -> dict[str, Any]:
    return {
        "sessions": t.sessions,
        "peak_session": t.peak_session or None,
        "participation": _participation(t.participation),
        "questions": _questions(t.questions),
        "floor": _floor(t.floor),
    }


def session_json(report: SessionReport, *, event_id: str, event_title: str, now_ms: int) -> str:
    """A session's report as JSON."""
    document = {
        "report": "session",
        "generated_at": iso(now_ms),
        "event": {"id": event_id, "title": event_title},
        **session_data(report),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def event_json(report: EventReport) -> str:
    """The event's report as JSON: the totals and every session."""
    document = {
        "report": "event",
        "generated_at": iso(report.generated_at_ms),
        "event": {"id": report.event_id, "title": report.title},
        "totals": _totals(report.totals),
        "sessions": [session_data(r) for r in report.sessions],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# ---- CSV --------------------------------------------------------------------------------------------


def _figure_rows(
    session: str, p: Participation, q: Questions, f: FloorFigures
) -> Iterator[tuple[str, str, str, object]]:
    yield session, "participation", "peak_online", p.peak_online
    yield session, "participation", "peak_at", iso(p.peak_at_ms) or ""
    yield session, "participation", "unique", p.unique
    for section, data in (
        ("mode", p.by_mode),
        ("role", p.by_role),
        ("group", p.by_group),
        ("country", p.by_country),
        ("language", p.by_language),
    ):
        for item, n in data.items():
            yield session, section, item, n
    for name in ("asked", "approved", "answered", "rejected", "pending", "merged", "votes"):
        yield session, "questions", name, getattr(q, name)
    for item, n in q.by_group.items():
        yield session, "questions_group", item, n
    for item, n in q.by_language.items():
        yield session, "questions_language", item, n
    yield session, "floor", "requests", f.requests
    yield session, "floor", "interventions", f.interventions
    yield session, "floor", "speaking_seconds", f.speaking_seconds
    for item, g in f.by_group.items():
        yield session, "floor_requests", item, g.requests
        yield session, "floor_interventions", item, g.interventions
        yield session, "floor_speaking_seconds", item, g.speaking_seconds


def _session_rows(report: SessionReport) -> Iterator[tuple[str, str, str, object]]:
    s = report.session
    for item, value in (
        ("title", s.title),
        ("room", s.room),
        ("start", s.start.isoformat()),
        ("end", s.end.isoformat()),
        ("state", report.state),
    ):
        yield s.id, "session", item, value
    yield from _figure_rows(s.id, report.participation, report.questions, report.floor)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _csv(rows: Iterator[tuple[str, str, str, object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180: lines end in CRLF
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def session_csv(report: SessionReport) -> str:
    """A session's report as one tidy table: ``session,section,item,value``."""
    return _csv(_session_rows(report))


def event_csv(report: EventReport) -> str:
    """The event's report as one tidy table: the totals (session ``*``), then every session."""

    def rows() -> Iterator[tuple[str, str, str, object]]:
        t = report.totals
        yield EVENT_ROW, "event", "id", report.event_id
        yield EVENT_ROW, "event", "title", report.title
        yield EVENT_ROW, "event", "sessions", t.sessions
        yield EVENT_ROW, "event", "peak_session", t.peak_session
        yield from _figure_rows(EVENT_ROW, t.participation, t.questions, t.floor)
        for session in report.sessions:
            yield from _session_rows(session)

    return _csv(rows())


# ---- HTML -------------------------------------------------------------------------------------------


def _when(ms: int, zone: tzinfo) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime("%d %b %Y %H:%M:%S %Z")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _table(
    caption: str, heads: tuple[str, ...], rows: list[tuple[object, ...]], *, shown: bool = False
) -> str:
    numeric, hidden = ' class="n"', ' class="sr"'
    head = "".join(
        f'<th scope="col"{numeric if i else ""}>{escape(h)}</th>' for i, h in enumerate(heads)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<th scope="row">{escape(str(c))}</th>'
            if i == 0
            else f'<td class="n">{escape(str(c))}</td>'
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(heads)}" class="empty">none</td></tr>'
    return (
        f"<table><caption{'' if shown else hidden}>{escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _chart(caption: str, svg: str, table: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}{table}</figure>"


def _breakdown(caption: str, data: dict[str, int], head: str) -> str:
    rows: list[tuple[object, ...]] = list(data.items())
    return _chart(caption, charts.bars(caption, data), _table(caption, (head, "people"), rows))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _figures(
    p: Participation, q: Questions, f: FloorFigures, zone: tzinfo, peak: str = "Peak online"
) -> str:
    items = [
        (peak, str(p.peak_online), _when(p.peak_at_ms, zone)),
        ("Unique participants", str(p.unique), ""),
        ("In the room", str(p.by_mode.get("venue", 0)), ""),
        ("Remote", str(p.by_mode.get("remote", 0)), ""),
        ("Questions asked", str(q.asked), f"{q.approved} approved, {q.answered} answered"),
        ("Interventions", str(f.interventions), _plural(f.requests, "request")),
        ("Speaking time", _duration(f.speaking_seconds), ""),
    ]
    cells = "".join(
        f"<li>{escape(name)}<b>{escape(value)}</b>"
        + (f'<span class="meta">{escape(note)}</span>' if note else "")
        + "</li>"
        for name, value, note in items
    )
    return f'<ul class="figures">{cells}</ul>'


def _body(
    p: Participation,
    q: Questions,
    f: FloorFigures,
    series: tuple[Point, ...],
    zone: tzinfo,
    level: int,
    peak: str = "Peak online",
) -> str:
    h = f"h{level}"
    parts = [_figures(p, q, f, zone, peak)]
    parts.append(f"<{h}>Participants</{h}>")
    parts.append('<div class="charts">')
    parts.append(_breakdown("By mode", p.by_mode, "mode"))
    parts.append(_breakdown("By stakeholder group", p.by_group, "group"))
    parts.append(_breakdown("By country", p.by_country, "country"))
    parts.append(_breakdown("By language listened", p.by_language, "channel"))
    parts.append(_breakdown("By role", p.by_role, "role"))
    parts.append("</div>")
    if series:
        parts.append(f"<{h}>Online over time</{h}>")
        parts.append(
            _chart(
                "People online",
                charts.line("People online over time", series, zone=zone),
                "",
            )
        )
    parts.append(f"<{h}>Questions</{h}>")
    outcomes = {
        "asked": q.asked,
        "approved": q.approved,
        "answered": q.answered,
        "rejected": q.rejected,
        "pending": q.pending,
        "merged": q.merged,
    }
    parts.append('<div class="charts">')
    parts.append(
        _chart(
            "Questions by outcome",
            charts.bars("Questions by outcome", outcomes),
            _table("Questions", ("outcome", "questions"), [*outcomes.items(), ("votes", q.votes)]),
        )
    )
    parts.append(
        _chart(
            "Questions by stakeholder group",
            charts.bars("Questions by stakeholder group", q.by_group),
            _table("Questions by stakeholder group", ("group", "asked"), list(q.by_group.items())),
        )
    )
    parts.append("</div>")
    parts.append(f"<{h}>Floor</{h}>")
    speaking = {g: v.speaking_seconds for g, v in f.by_group.items()}
    rows: list[tuple[object, ...]] = [
        (g, v.requests, v.interventions, _duration(v.speaking_seconds))
        for g, v in f.by_group.items()
    ]
    rows.append(("all groups", f.requests, f.interventions, _duration(f.speaking_seconds)))
    parts.append(
        _chart(
            "Speaking time by stakeholder group (seconds)",
            charts.bars("Speaking time by stakeholder group", speaking, unit=" s"),
            _table(
                "Floor by stakeholder group",
                ("group", "requests", "interventions", "speaking time"),
                rows,
            ),
        )
    )
    return "".join(parts)


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{content}</body></html>\n"
    )


def _session_heading(report: SessionReport, zone: tzinfo) -> str:
    s = report.session
    start = s.start.astimezone(zone).strftime("%d %b %Y %H:%M")
    end = s.end.astimezone(zone).strftime("%H:%M %Z")
    return f"{s.room} · {start}–{end} · {report.state}"


def session_html(
    report: SessionReport, *, event_title: str, now_ms: int, zone: tzinfo = UTC
) -> str:
    """A session's report as a printable HTML page (times shown in ``zone``)."""
    s = report.session
    content = (
        f"<header><h1>{escape(s.title)}</h1>"
        f'<p class="meta">Participation report · {escape(event_title)}</p>'
        f'<p class="meta">{escape(_session_heading(report, zone))}</p>'
        f'<p class="meta">Generated {escape(_when(now_ms, zone))}</p></header>'
        f"<main>{_body(report.participation, report.questions, report.floor, report.series, zone, 2)}"
        "</main>"
    )
    return _page(f"Participation report — {s.title}", content)


def event_html(report: EventReport, *, zone: tzinfo = UTC) -> str:
    """The event's report as a printable HTML page: totals, a table of sessions, then each session."""
    t = report.totals
    overview: list[tuple[object, ...]] = [
        (
            r.session.title,
            r.participation.peak_online,
            r.participation.unique,
            r.participation.by_mode.get("venue", 0),
            r.participation.by_mode.get("remote", 0),
            r.questions.asked,
            r.questions.answered,
            r.floor.interventions,
            _duration(r.floor.speaking_seconds),
        )
        for r in report.sessions
    ]
    heads = ("session", "peak", "unique", "venue", "remote", "asked", "answered", "interventions",
             "speaking time")  # fmt: skip
    sessions = "".join(
        f'<section class="session"><h2>{escape(r.session.title)}</h2>'
        f'<p class="meta">{escape(_session_heading(r, zone))}</p>'
        f"{_body(r.participation, r.questions, r.floor, r.series, zone, 3)}</section>"
        for r in report.sessions
    )
    peak = f"Highest session peak ({t.peak_session})" if t.peak_session else "Highest session peak"
    content = (
        f"<header><h1>{escape(report.title)}</h1>"
        f'<p class="meta">Participation report · {_plural(t.sessions, "session")} · people '
        "counted once across sessions</p>"
        f'<p class="meta">Generated {escape(_when(report.generated_at_ms, zone))}</p></header>'
        f"<main><section><h2>The event</h2>"
        f"{_body(t.participation, t.questions, t.floor, (), zone, 3, peak)}"
        f"<h3>Sessions</h3>{_table('Sessions', heads, overview, shown=True)}</section>"
        f"{sessions}</main>"
    )
    return _page(f"Participation report — {report.title}", content)


# ---- by format --------------------------------------------------------------------------------------


def session_text(
    report: SessionReport,
    fmt: str,
    *,
    event_id: str,
    event_title: str,
    now_ms: int,
    zone: tzinfo = UTC,
) -> str:
    """A session's report in ``fmt`` (json, csv or html).

    Raises:
        UnknownFormat: any other format.
    """
    check_format(fmt)
    if fmt == "json":
        return session_json(report, event_id=event_id, event_title=event_title, now_ms=now_ms)
    if fmt == "csv":
        return session_csv(report)
    return session_html(report, event_title=event_title, now_ms=now_ms, zone=zone)


def event_text(report: EventReport, fmt: str, *, zone: tzinfo = UTC) -> str:
    """The event's report in ``fmt`` (json, csv or html).

    Raises:
        UnknownFormat: any other format.
    """
    check_format(fmt)
    if fmt == "json":
        return event_json(report)
    if fmt == "csv":
        return event_csv(report)
    return event_html(report, zone=zone)


def check_format(fmt: str) -> str:
    """The format's media type.

    Raises:
        UnknownFormat: not json, csv or html.
    """
    if fmt not in FORMATS:
        raise UnknownFormat(f"format must be one of {', '.join(FORMATS)}")
    return MEDIA_TYPES[fmt]
