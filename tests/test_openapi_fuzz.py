"""Schemathesis against docs/openapi.yaml on a running node: no 5xx, no schema violation.

Every operation of the document is sent requests Schemathesis builds from it — valid ones, and
ones that break the document on purpose — on a real node and a real store, authenticated with a
real token of the role the route is for (operators on operator routes, production on WHIP,
participants elsewhere; a request Schemathesis sends without credentials on purpose goes without).
Half the requests name sessions and channels of the programme, so they get past "not found"; half
the WHIP/WHEP bodies are real (offers, and trickle fragments PATCHed to the sessions of a live
publisher and listener), whole or with lines dropped, repeated, swapped or turned to junk (an
offer that is accepted is ended with a DELETE at once).

Every response must be what the document says: no server error, a documented status, the
documented content type, headers and body (text bodies too: CSV, HTML and SDP against their
patterns); the node refuses what the document says is invalid and what lacks a required header;
and routes that take a token refuse requests without one.

The budget is fixed for ``make test``: ``PODIUM_HYPOTHESIS_EXAMPLES`` requests per operation (25
by default, about 15 s). A longer run (1000: about 6 minutes, past pytest's 180 s timeout)::

    PODIUM_HYPOTHESIS_EXAMPLES=1000 .venv/bin/python -m pytest -q --timeout=0 tests/test_openapi_fuzz.py
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import hypothesis
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import APIOperation, AuthContext, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.appkeys import STREAMING
from signaling.identity import Role
from tests.conftest import ORIGIN, app_of, operator_headers, token
from tests.contract_helpers import openapi
from tests.streaming_helpers import Client, listen, offer_sdp, publish

DOCUMENT: Final = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
EXAMPLES: Final = int(os.environ.get("PODIUM_HYPOTHESIS_EXAMPLES", "25"))
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    missing_required_header,
    ignored_auth,
]
# Path parameters the programme knows (tests/conftest.py make_programme), drawn half the time.
KNOWN: Final[dict[str, tuple[str, ...]]] = {
    "session": ("plenary", "open-forum", "workshop"),
    "channel": ("floor", "fr", "ar", "en"),
}
OPERATOR_ROUTES: Final = frozenset(
    {
        "setSessionState",
        "exportQuestions",
        "sessionReport",
        "eventReport",
        "operatorOverview",
        "onlineSeries",
        "listStreams",
        "releaseChannel",
        "listRecordings",
        "downloadRecording",
    }
)
PRODUCTION_ROUTES: Final = frozenset({"whipPublish", "whipTrickle", "whipStop", "setExternalUrl"})
POSITIVE: Final = GenerationMode.POSITIVE
PATH, HEADER, BODY = ParameterLocation.PATH, ParameterLocation.HEADER, ParameterLocation.BODY
Operation = APIOperation[Any, Any, Any, Any]
Request = Case[Any]

# Schemathesis draws some negative cases with the `random` module inside its strategies, which
# Hypothesis deprecates: that costs the replay of those draws, it is not a finding about podium.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

# SDP offers and trickle-ICE fragments are text: sent as drawn, under their own media type.
for _media_type in ("application/sdp", "application/trickle-ice-sdpfrag"):
    schemathesis.serializer.alias(_media_type, "text/plain")


@schemathesis.deserializer("text/plain", "text/csv", "text/html", "application/sdp")
def as_text(_: schemathesis.DeserializationContext, response: schemathesis.Response) -> str:
    """Text bodies are checked as the strings the document describes (CSV, HTML, SDP patterns)."""
    return response.text


def role_for(operation_id: str) -> Role:
    """The role whose token a route is for: operators', production's (WHIP) or a participant's."""
    if operation_id in OPERATOR_ROUTES:
        return Role.OPERATOR
    if operation_id in PRODUCTION_ROUTES:
        return Role.PRODUCTION
    return Role.PARTICIPANT


def takes_a_token(operation: Operation) -> bool:
    """Whether the document says the route takes a join token."""
    security = operation.definition.raw.get("security", ())
    return any("bearerJWT" in requirement for requirement in security)


@dataclass(frozen=True)
class Ground:
    """What the fuzzing stands on: a token per role, real bodies to mutate and live resources.

    Attributes:
        tokens: The token of each role, the same for every request of the run.
        bodies: Real bodies per operation id (offers, trickle fragments), sent whole or mutated.
        live: Per operation id, the path (``/whip/{session}/{channel}/{resource}``) and ETag of a
            WHIP/WHEP session that is up, so PATCHes reach its ICE agent, not only "not found".
    """

    tokens: dict[Role, str]
    bodies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    live: dict[str, tuple[str, str]] = field(default_factory=dict)


class Tokens:
    """Schemathesis' auth provider: the role's token on the routes that take one (Schemathesis
    leaves it out of the requests that go without credentials on purpose)."""

    def __init__(self, tokens: dict[Role, str]) -> None:
        self.tokens = tokens

    def get(self, case: Request, context: AuthContext) -> str | None:
        if not takes_a_token(context.operation):
            return None
        return self.tokens[role_for(context.operation.definition.raw["operationId"])]

    def set(self, case: Request, data: str, context: AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@dataclass(frozen=True)
class Finding:
    """A response that broke a check."""

    operation: str
    report: str


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[str, ...]) -> str:
    """A real SDP body, or one with a few lines dropped, repeated, swapped or turned to junk."""
    lines = draw(st.sampled_from(seeds)).split("\r\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        change = draw(st.sampled_from(("drop", "repeat", "swap", "junk")))
        if change == "drop":
            del lines[at]
        elif change == "repeat":
            lines.insert(at, lines[at])
        elif change == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines[at] = lines[at][:2] + draw(st.text(max_size=40))
        if not lines:
            break
    return "\r\n".join(lines)


def broken_parts(case: Request) -> set[ParameterLocation]:
    """Where a negative case breaks the document (every part when it does not say; none for a
    valid case)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return set()
    data = meta.phase.data
    parts = {mutation.parameter_location for mutation in getattr(data, "mutations", ())}
    if (location := getattr(data, "parameter_location", None)) is not None:
        parts.add(location)
    return parts or set(ParameterLocation)


def requests_to(operation: Operation, ground: Ground) -> st.SearchStrategy[Request]:
    """Requests for one operation, valid and invalid: half of them on ids the programme knows,
    with the allowed ``Origin`` on ``/ws``, and with a real offer or trickle fragment on the SDP
    routes; three PATCHes in four to a live WHIP/WHEP session."""
    operation_id: str = operation.definition.raw["operationId"]

    @st.composite
    def build(draw: st.DrawFn) -> Request:
        # Two valid requests for one invalid: many invalid ones only leave the token out.
        mode = draw(st.sampled_from((POSITIVE, POSITIVE, GenerationMode.NEGATIVE)))
        case: Request = draw(operation.as_strategy(generation_mode=mode))
        # Only what a negative case leaves valid is replaced, so what it breaks stays broken.
        broken = broken_parts(case)
        if PATH not in broken and bool(case.path_parameters) and draw(st.booleans()):
            for name in case.path_parameters.keys() & KNOWN.keys():
                case.path_parameters[name] = draw(st.sampled_from(KNOWN[name]))
        live = ground.live.get(operation_id)
        if live and not broken & {PATH, HEADER} and draw(st.integers(0, 3)) > 0:
            path, etag = live
            _, _, session, channel, resource = path.split("/")
            case.path_parameters.update(session=session, channel=channel, resource=resource)
            if draw(st.booleans()):
                case.headers["If-Match"] = etag
        if HEADER not in broken and "Origin" in case.headers and draw(st.booleans()):
            case.headers["Origin"] = ORIGIN  # past the allow-list, to the upgrade's own checks
        if BODY not in broken and operation_id in ground.bodies and draw(st.booleans()):
            case.body = draw(mutated(ground.bodies[operation_id]))
        return case

    return build()


def operations(schema: Any) -> list[Operation]:
    """Every operation of the document; the PATCHes of live sessions first, before an offer of
    the same person replaces them."""
    found: list[Operation] = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda operation: operation.method != "patch")


def fuzz(base_url: str, ground: Ground) -> list[Finding]:
    """Sends every operation of the document its budget of requests.

    Args:
        base_url: The node's URL.
        ground: Tokens, real bodies and live sessions.

    Returns:
        The first response to break each check, per operation.
    """
    schema = schemathesis.openapi.from_path(DOCUMENT)
    # Refusing invalid data is any 4xx: a PATCH whose If-Match is wrong is refused with 412
    # before its body is read, as RFC 9110 has preconditions come first.
    schema.config.checks.negative_data_rejection.expected_statuses = ["4XX"]

    class RunTokens(Tokens):
        def __init__(self) -> None:
            super().__init__(ground.tokens)

    schema.auth(refresh_interval=None, retry_on=[])(RunTokens)
    findings: list[Finding] = []
    with requests.Session() as http:
        for operation in operations(schema):
            findings += fuzz_operation(operation, base_url, http, ground)
    return findings


def fuzz_operation(
    operation: Operation, base_url: str, http: requests.Session, ground: Ground
) -> list[Finding]:
    """One operation's budget of requests; the first response to break each check."""
    operation_id: str = operation.definition.raw["operationId"]
    findings: dict[str, Finding] = {}

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(requests_to(operation, ground))
    def send(case: Request) -> None:
        response = case.call(base_url=base_url, session=http)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.setdefault(failure.title, Finding(operation_id, str(group)))
        finally:
            end_what_was_opened(response, base_url, http)

    send()
    return list(findings.values())


def end_what_was_opened(
    response: schemathesis.Response, base_url: str, http: requests.Session
) -> None:
    """Ends a WHIP/WHEP session an offer happened to open, so no peer connection lingers."""
    location = response.headers.get("location")
    if response.status_code == 201 and location:
        auth = {"Authorization": str(response.request.headers["Authorization"])}
        ended = http.delete(base_url + location[0], headers=auth, timeout=10)
        assert ended.status_code == 200, (location, ended.status_code, ended.text)


async def floor_is_live(node: TestServer, wait: float = 15.0) -> None:
    """Waits until the node carries the plenary's floor live (listeners may play it)."""
    service = app_of(node)[STREAMING]
    async with asyncio.timeout(wait):
        while not ((live := service.channels.get(("plenary", "floor"))) and live.live):
            await asyncio.sleep(0.05)


def fragment(offer: str) -> str:
    """The trickle-ICE fragment (RFC 8840) of an offer's first section: its ICE credentials,
    its media line and mid, and its candidates."""
    lines = offer.split("\r\n")
    first = next(at for at, line in enumerate(lines) if line.startswith("m="))
    section = lines[first:]
    credentials = [line for line in section if line.startswith(("a=ice-ufrag:", "a=ice-pwd:"))]
    mid = next(line for line in section if line.startswith("a=mid:"))
    candidates = [line for line in section if line.startswith("a=candidate:")]
    return "\r\n".join([*credentials[:2], lines[first], mid, *candidates]) + "\r\n"


async def test_every_operation_of_the_document_answers_without_a_5xx_or_a_schema_violation(
    node: TestServer,
) -> None:
    tokens = {role: token(role, ("*",), name="Fuzz") for role in Role}
    async with aiohttp.ClientSession() as http:
        floor = "/whip/plenary/floor"
        publisher = await publish(http, node, floor, tokens[Role.PRODUCTION], video=False)
        listener: Client | None = None
        try:
            await floor_is_live(node)
            listener = await listen(
                http, node, "/whep/plenary/floor", tokens[Role.PARTICIPANT], video=False
            )
            ground = Ground(
                tokens,
                bodies={
                    "whipPublish": (
                        await offer_sdp(("audio", "video"), "sendonly"),
                        await offer_sdp(("audio",), "sendonly"),
                    ),
                    "whepPlay": (
                        await offer_sdp(("audio", "video"), "recvonly"),
                        await offer_sdp(("audio",), "recvonly"),
                    ),
                    "whipTrickle": (fragment(publisher.pc.localDescription.sdp),),
                    "whepTrickle": (fragment(listener.pc.localDescription.sdp),),
                },
                live={
                    "whipTrickle": (publisher.location, publisher.etag),
                    "whepTrickle": (listener.location, listener.etag),
                },
            )
            # Schemathesis is synchronous: it runs in a thread while this loop serves the node.
            findings = await asyncio.to_thread(fuzz, str(node.make_url("")).rstrip("/"), ground)
        finally:
            for client in (listener, publisher):
                if client is not None:
                    await client.close()
    assert not findings, "\n\n".join(f"{f.operation}:\n{f.report}" for f in findings)


async def test_an_empty_external_url_clears_it_as_null_does_and_the_document_says_so(
    node: TestServer,
) -> None:
    """Found by the fuzzing: the route clears the URL on ``{"url": ""}`` (on purpose), while the
    document allowed only a URL or ``null``; the document now says so."""
    route = "/api/v1/sessions/{session}/channels/{channel}/external"
    body = openapi().doc["paths"][route]["put"]["requestBody"]["content"]["application/json"]
    Draft202012Validator(body["schema"]).validate({"url": ""})
    url = node.make_url("/api/v1/sessions/plenary/channels/fr/external")
    async with aiohttp.ClientSession(headers=operator_headers()) as http:
        async with http.put(url, json={"url": "https://webtv.example.org/fr.m3u8"}) as put:
            assert (await put.json())["channel"]["external_url"] == (
                "https://webtv.example.org/fr.m3u8"
            )
        async with http.put(url, json={"url": ""}) as cleared:
            assert cleared.status == 200
            assert (await cleared.json())["channel"]["external_url"] is None
