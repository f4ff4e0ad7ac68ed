"""The ``podium`` command: serve a node, mint tokens, check and import programmes."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from config.app import create_app, jwt_secret
from config.appkeys import PROGRAMME, SIGNALING
from config.observability import configure_logging
from config.settings import Settings, SettingsError, load_settings
from signaling.identity import ALL_SESSIONS, LANG, SUBJECT, Identity, Role, TokenKeys, mint
from signaling.routes import create_join_code, store_join_code
from signaling.store import SessionStore

T = TypeVar("T")

# The page each role's link opens (under /s/<session>); the rest open the participant page.
PAGES: dict[Role, str] = {
    Role.MODERATOR: "/moderate",
    Role.DISPLAY: "/display",
    Role.PRODUCTION: "/desk",
    Role.INTERPRETER: "/booth",
}

# The operator's page is the event's dashboard, not a session's: ``/operator``.
OPERATOR_PAGE = "/operator"

# (label, role, mode, page under /s/<session>): pages that do not exist yet fall back to the
# participant page, which shows the person's role.
DEMO_ROLES: tuple[tuple[str, Role, str, str], ...] = (
    ("participant (remote)", Role.PARTICIPANT, "remote", ""),
    ("participant (in the room)", Role.PARTICIPANT, "venue", ""),
    ("speaker", Role.SPEAKER, "remote", ""),
    ("moderator", Role.MODERATOR, "venue", "/moderate"),
    ("room display", Role.DISPLAY, "venue", "/display"),
    ("production desk", Role.PRODUCTION, "venue", "/desk"),
    ("interpreter (fr)", Role.INTERPRETER, "venue", "/booth"),
    ("operator", Role.OPERATOR, "remote", ""),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``podium`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except (SettingsError, UsageError) as exc:
        print(f"podium: {exc}", file=sys.stderr)
        return 2


class UsageError(Exception):
    """A command-line value podium refuses (the message says which and why)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podium", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run a podium node")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--redis-url", help="use this Redis; omitted: start an embedded store")
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--programme", type=Path)
    serve.add_argument("--demo", action="store_true", default=None, help="run the demo event now")
    serve.set_defaults(run=_serve)

    token = sub.add_parser("token", help="mint a join token")
    _identity_arguments(token)
    token.set_defaults(run=_token)

    link = sub.add_parser(
        "link", help="make a join link (a code in the store, traded for a token by the page)"
    )
    _identity_arguments(link)
    link.add_argument(
        "--valid", type=float, default=1.0, help="days the link can be used (default 1)"
    )
    link.add_argument("--redis-url")
    link.add_argument("--data-dir", type=Path)
    link.set_defaults(run=_link)

    qa = sub.add_parser("qa", help="the question queue")
    qsub = qa.add_subparsers(required=True, metavar="ACTION")
    export = qsub.add_parser("export", help="a session's questions and audit trail")
    export.add_argument("session")
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument("--table", choices=["questions", "audit"], default="questions")
    export.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    export.add_argument("--redis-url")
    export.add_argument("--data-dir", type=Path)
    export.set_defaults(run=_qa_export)

    report = sub.add_parser("report", help="the participation report of a session or the event")
    which = report.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", help="one session's report")
    which.add_argument("--event", action="store_true", help="the whole event's report")
    report.add_argument("--format", choices=["json", "csv", "html"], default="json")
    report.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    report.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    report.add_argument("--redis-url")
    report.add_argument("--data-dir", type=Path)
    report.set_defaults(run=_report)

    programme = sub.add_parser("programme", help="check or import a programme")
    psub = programme.add_subparsers(required=True, metavar="ACTION")
    check = psub.add_parser("check", help="validate a programme TOML file")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_programme_check)
    imp = psub.add_parser("import", help="convert a pretalx/frab schedule JSON export to TOML")
    imp.add_argument("schedule", type=Path)
    imp.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    imp.set_defaults(run=_programme_import)
    return parser


def _identity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument(
        "--session", action="append", required=True, help="a session id (repeat), or '*'"
    )
    parser.add_argument("--name", required=True)
    parser.add_argument("--mode", choices=["venue", "remote"], default="remote")
    parser.add_argument("--group", default="")
    parser.add_argument("--country", default="")
    parser.add_argument("--lang", default="", help="an interpreter's channel (language code)")
    parser.add_argument("--sub", help="the person's stable id (default: a new uuid)")
    parser.add_argument("--ttl", type=int, default=8 * 3600, help="token seconds (default 8 h)")


def _identity_of(args: argparse.Namespace) -> Identity:
    """The identity a token or a link stands for, refused here if a node would refuse its token."""
    if args.sub is not None and not SUBJECT.fullmatch(args.sub):
        raise UsageError("--sub is 1–128 of A–Z a–z 0–9 . _ : @ -")
    if not args.name.strip() or len(args.name) > 100:
        raise UsageError("--name is 1–100 characters")
    if args.lang and not LANG.fullmatch(args.lang):
        raise UsageError("--lang is a language code of 2–3 lowercase letters")
    if args.ttl <= 0:
        raise UsageError("--ttl is a positive number of seconds")
    return Identity(
        sub=args.sub or str(uuid.uuid4()),
        name=args.name,
        role=Role(args.role),
        sessions=tuple(args.session),
        mode=args.mode,
        group=args.group,
        country=args.country.upper(),
        lang=args.lang,
    )


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(
        overrides={
            "host": args.host,
            "port": args.port,
            "redis_url": args.redis_url,
            "data_dir": args.data_dir,
            "programme": args.programme,
            "demo": args.demo,
        }
    )
    configure_logging(settings.log_level, as_json=settings.log_json)
    app = create_app(settings)
    if settings.demo:
        app.on_startup.append(_print_demo_links)
    app.on_startup.append(_freeze_startup_heap)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.drain_seconds,
        print=None,
        access_log=None,
        handle_signals=True,
    )
    return 0


async def _freeze_startup_heap(app: web.Application) -> None:
    """Moves everything alive after startup out of the garbage collector's sight.

    The modules, the programme and the app (~95 MiB) live as long as the process; a full collection
    would walk them all again during every join wave. Measured in a 1,000-join phase: 176 ms of
    collections before, ~40 ms after (docs/performance.md).
    """
    gc.collect()
    gc.freeze()


async def _print_demo_links(app: web.Application) -> None:
    # Runs after the store and signaling contexts: join codes need the store.
    await asyncio.sleep(0)
    from config.appkeys import SETTINGS

    settings: Settings = app[SETTINGS]
    service = app[SIGNALING]
    programme = app[PROGRAMME]
    session = programme.sessions[0]
    lines = [f"podium demo: {programme.event.title}", f"  {settings.base_url}/", ""]
    lines.append(f"Join links for '{session.title}' (live now):")
    for label, role, mode, page in DEMO_ROLES:
        identity = Identity(
            sub=f"demo-{role.value}-{mode}",
            name=f"Demo {label}",
            role=role,
            sessions=(ALL_SESSIONS,) if role is Role.OPERATOR else (session.id,),
            mode=mode,  # type: ignore[arg-type]
            group="civil-society" if role is Role.PARTICIPANT else "",
            country="CH",
            lang="fr" if role is Role.INTERPRETER else "",
        )
        code = await create_join_code(service, identity, ttl=8 * 3600, code_ttl=7 * 86400)
        path = OPERATOR_PAGE if role is Role.OPERATOR else f"/s/{session.id}{page}"
        lines.append(f"  {label:<28} {settings.base_url}{path}#code={code}")
    print("\n".join(lines), flush=True)


def _token(args: argparse.Namespace) -> int:
    settings = load_settings()
    keys = TokenKeys(jwt_secret(settings), settings.jwt_issuer, settings.jwt_audience)
    print(mint(keys, _identity_of(args), now=int(time.time()), ttl=args.ttl))
    return 0


def _link(args: argparse.Namespace) -> int:
    from config.programme import load_programme

    settings = load_settings(overrides={"redis_url": args.redis_url, "data_dir": args.data_dir})
    identity = _identity_of(args)
    programme = load_programme(settings.programme)
    named = [s for s in identity.sessions if s != ALL_SESSIONS]
    unknown = [s for s in named if not programme.session(s)]
    if unknown:
        raise UsageError(f"no session {unknown[0]!r} in {settings.programme}")
    if not named and identity.role is not Role.OPERATOR:
        raise UsageError("name a session (not only '*'): the link opens its page")
    if not 0 < args.valid <= 366:
        raise UsageError("--valid is 0–366 days")

    async def make(store: SessionStore) -> str:
        return await store_join_code(
            store, identity, ttl=args.ttl, code_ttl=int(args.valid * 86400)
        )

    code = asyncio.run(_with_store(settings, make))
    if identity.role is Role.OPERATOR:  # every session the token names, on the dashboard
        print(f"{settings.base_url}{OPERATOR_PAGE}#code={code}")
        return 0
    print(f"{settings.base_url}/s/{named[0]}{PAGES.get(identity.role, '')}#code={code}")
    return 0


def _qa_export(args: argparse.Namespace) -> int:
    settings = load_settings(overrides={"redis_url": args.redis_url, "data_dir": args.data_dir})
    text = asyncio.run(_export_text(settings, args.session, args.format, args.table))
    if text is None:
        print(f"podium: no session {args.session!r} in {settings.programme}", file=sys.stderr)
        return 1
    return _write_out(text, args.output)


async def _with_store(settings: Settings, work: Callable[[SessionStore], Awaitable[T]]) -> T:
    """Runs ``work`` on the node's store: its URL, or the embedded one (running or not)."""
    from config.embedded import EmbeddedStore
    from config.store import store_client

    embedded: EmbeddedStore | None = None
    url = settings.redis_url
    if not url:
        embedded = EmbeddedStore(settings.data_dir)
        url = embedded.url if embedded.socket.exists() else await embedded.start()
    client = store_client(settings, url)  # one server, or a Redis Cluster
    try:
        return await work(SessionStore(client, prefix=settings.key_prefix, history_size=1))
    finally:
        await client.aclose()
        if embedded is not None and embedded.process is not None:
            await embedded.stop()


async def _export_text(settings: Settings, session: str, fmt: str, table: str) -> str | None:
    from config.programme import load_programme
    from moderation.routes import export_data, to_csv
    from moderation.store import QuestionStore

    if load_programme(settings.programme).session(session) is None:
        return None

    async def read(store: SessionStore) -> dict[str, Any]:
        return await export_data(QuestionStore(store), session)

    data = await _with_store(settings, read)
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return to_csv(data, table)


def _report(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from config.programme import load_programme
    from reporting import render
    from reporting.report_store import ReportStore

    settings = load_settings(overrides={"redis_url": args.redis_url, "data_dir": args.data_dir})
    programme = load_programme(settings.programme)
    event, zone, now = programme.event, ZoneInfo(programme.event.timezone), time.time()
    session = None if args.event else programme.session(args.session)
    if not args.event and session is None:
        raise UsageError(f"no session {args.session!r} in {settings.programme}")

    def bar(done: int, total: int) -> None:
        filled = 30 * done // max(1, total)
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} sessions{end}")
        sys.stderr.flush()

    async def read(store: SessionStore) -> str:
        reports = ReportStore(store)
        if session is not None:
            report = await reports.session_report(session, now=now)
            return render.session_text(
                report, args.format, event_id=event.id, event_title=event.title,
                now_ms=int(now * 1000), zone=zone,
            )  # fmt: skip
        progress = None if args.quiet else bar
        whole = await reports.event_report(programme, now=now, progress=progress)
        return render.event_text(whole, args.format, zone=zone)

    return _write_out(asyncio.run(_with_store(settings, read)), args.output)


def _programme_check(args: argparse.Namespace) -> int:
    from config.programme import ProgrammeError, ProgrammeErrors, load_programme

    try:
        programme = load_programme(args.file)
    except (ProgrammeError, ProgrammeErrors) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    rooms = {s.room for s in programme.sessions}
    print(
        f"{args.file}: ok — {programme.event.title}: {len(programme.sessions)} sessions "
        f"in {len(rooms)} rooms"
    )
    return 0


def _programme_import(args: argparse.Namespace) -> int:
    from config.schedule_import import ScheduleImportError, import_schedule

    try:
        data = json.loads(args.schedule.read_text(encoding="utf-8"))
        text = import_schedule(data)
    except (OSError, ValueError, ScheduleImportError) as exc:
        print(f"podium: {args.schedule}: {exc}", file=sys.stderr)
        return 1
    return _write_out(text, args.output)


def _write_out(text: str, output: Path | None) -> int:
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
