"""The pure streaming rules: channels and who may publish, offers and fragments, health figures."""

from __future__ import annotations

import pytest

from signaling.identity import Identity, Role
from streaming import sdp
from streaming.channels import (
    FLOOR,
    ChannelRecord,
    Kind,
    State,
    channel_of,
    channel_view,
    channels_of,
    check_publisher,
    check_takeover,
    external_url,
)
from streaming.errors import (
    ChannelBusy,
    ChannelForbidden,
    IceRestartUnsupported,
    InvalidBody,
    MalformedSdp,
    NotAcceptable,
    UnknownChannel,
)
from streaming.health import HealthTracker, Sample
from streaming.routes import ice_links

LANGS = ("en", "fr", "ar")


def who(role: Role, sub: str = "p", lang: str = "") -> Identity:
    return Identity(sub=sub, name="P", role=role, sessions=("plenary",), lang=lang)


def offer(*sections: tuple[str, str], fingerprint: bool = True) -> bytes:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    if fingerprint:
        lines.append("a=fingerprint:sha-256 AB:CD")
    for i, (kind, direction) in enumerate(sections):
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", f"a=mid:{i}"]
        lines += ["a=ice-ufrag:abcd", "a=ice-pwd:" + "p" * 22, f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_a_session_has_the_floor_and_one_audio_channel_per_language() -> None:
    channels = channels_of(LANGS)
    assert [c.id for c in channels] == [FLOOR, "en", "fr", "ar"]
    assert [c.max_video for c in channels] == [1, 0, 0, 0]
    assert channels[0].language is None
    assert channels[2].language == "fr"
    assert channel_of(LANGS, "fr").kind is Kind.LANGUAGE
    with pytest.raises(UnknownChannel):
        channel_of(LANGS, "de")


def test_production_publishes_the_floor_and_an_interpreter_only_their_language() -> None:
    floor, fr = channel_of(LANGS, FLOOR), channel_of(LANGS, "fr")
    check_publisher(who(Role.PRODUCTION), floor, takeover=False)
    check_publisher(who(Role.INTERPRETER, lang="fr"), fr, takeover=False)
    check_publisher(who(Role.OPERATOR), fr, takeover=True)
    refused = [
        (who(Role.PRODUCTION), fr, False),
        (who(Role.INTERPRETER, lang="ar"), fr, False),
        (who(Role.INTERPRETER), fr, False),
        (who(Role.INTERPRETER, lang="fr"), floor, False),
        (who(Role.PARTICIPANT), floor, False),
        (who(Role.MODERATOR), fr, False),
        (who(Role.PRODUCTION), floor, True),
    ]
    for identity, spec, takeover in refused:
        with pytest.raises(ChannelForbidden):
            check_publisher(identity, spec, takeover=takeover)


def test_a_second_publisher_is_busy_unless_it_is_the_same_person_or_a_forced_takeover() -> None:
    assert check_takeover(None, who(Role.PRODUCTION), takeover=False) is False
    assert check_takeover("p", who(Role.PRODUCTION, sub="p"), takeover=False) is True
    assert check_takeover("p", who(Role.OPERATOR, sub="o"), takeover=True) is True
    with pytest.raises(ChannelBusy):
        check_takeover("p", who(Role.PRODUCTION, sub="q"), takeover=False)


def test_external_urls_are_http_without_credentials_and_null_clears_them() -> None:
    assert external_url({"url": "https://tv.example.org/a.m3u8?x=1"}) == (
        "https://tv.example.org/a.m3u8?x=1"
    )
    assert external_url({"url": None}) == ""
    for body in (
        {"url": "ftp://x.example"},
        {"url": "https://user:pw@x.example/"},
        {"url": "https://x.example/a b"},
        {"url": 5},
        {"link": "https://x.example"},
        {"url": "https://x.example/" + "a" * 2100},
    ):
        with pytest.raises(InvalidBody):
            external_url(body)


def test_a_live_record_whose_node_stopped_renewing_reads_offline() -> None:
    record = ChannelRecord().went_live("node-1", 1000, 15_000)
    spec = channel_of(LANGS, "fr")
    assert channel_view("plenary", spec, record, 2000)["state"] == "live"
    lost = channel_view("plenary", spec, record, 20_000)
    assert (lost["state"], lost["reason"]) == ("offline", "node_lost")
    off = record.went_offline("deleted", 3000)
    assert (off.state, off.reason, off.node) == (State.OFFLINE, "deleted", "")
    assert ChannelRecord.from_json(off.to_json()) == off
    view = channel_view("plenary", spec, off, 4000)
    assert view == {
        "id": "fr",
        "kind": "language",
        "language": "fr",
        "state": "offline",
        "since": 3000,
        "reason": "deleted",
        "video": False,
        "external_url": None,
        "whep": "/whep/plenary/fr",
    }


def test_a_well_formed_offer_is_read_and_checked_against_the_channel() -> None:
    floor, fr = channel_of(LANGS, FLOOR), channel_of(LANGS, "fr")
    parsed = sdp.parse_offer(offer(("audio", "sendonly"), ("video", "sendonly")))
    assert (parsed.count("audio"), parsed.count("video"), parsed.ice_ufrag) == (1, 1, "abcd")
    sdp.check_media(parsed, floor, publish=True)
    sdp.check_media(sdp.parse_offer(offer(("audio", "recvonly"))), fr, publish=False)
    sdp.check_media(sdp.parse_offer(offer(("audio", "sendrecv"))), fr, publish=True)


@pytest.mark.parametrize(
    ("sections", "channel", "publish"),
    [
        ((("audio", "sendonly"), ("video", "sendonly"), ("video", "sendonly"), ("video", "sendonly")), FLOOR, True),
        ((("audio", "sendonly"), ("video", "sendonly")), "fr", True),
        ((("audio", "sendonly"), ("audio", "sendonly")), "fr", True),
        ((("application", "sendrecv"),), FLOOR, True),
        ((("audio", "recvonly"),), "fr", True),
        ((("audio", "sendonly"),), "fr", False),
        ((("audio", "inactive"),), "fr", True),
    ],
)  # fmt: skip
def test_offers_the_channel_cannot_carry_are_not_acceptable(
    sections: tuple[tuple[str, str], ...], channel: str, publish: bool
) -> None:
    with pytest.raises(NotAcceptable):
        sdp.check_media(
            sdp.parse_offer(offer(*sections)), channel_of(LANGS, channel), publish=publish
        )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"hello",
        b"v=1\r\no=x\r\ns=-\r\n",
        b"v=0\r\ns=-\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",
        b"v=0\r\no=x\r\ns=-\r\nm=audio nine RTP 0\r\n",
        b"\xff\xfe",
        b"v=0\r\no=x\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n\x01=bad\r\n",
        b"v=0\r\n" + b"a=x\r\n" * 8000,
    ],
)
def test_malformed_offers_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedSdp):
        sdp.parse_offer(body)


def test_an_offer_without_a_fingerprint_is_malformed() -> None:
    with pytest.raises(MalformedSdp):
        sdp.parse_offer(offer(("audio", "sendonly"), fingerprint=False))


CANDIDATE = "a=candidate:842163049 1 udp 1677729535 192.0.2.7 54321 typ srflx raddr 0.0.0.0 rport 0"


def test_a_fragment_yields_its_candidates_by_media_section_and_its_credentials() -> None:
    body = "\r\n".join(
        ["a=ice-ufrag:abcd", "a=ice-pwd:pw", "m=audio 9 RTP/AVP 0", "a=mid:0", CANDIDATE,
         "m=video 9 RTP/AVP 0", "a=mid:1", CANDIDATE, "a=end-of-candidates", ""]
    ).encode()  # fmt: skip
    fragment = sdp.parse_fragment(body)
    assert fragment.ice_ufrag == "abcd"
    assert [(mid, index) for mid, index, _ in fragment.candidates] == [("0", 0), ("1", 1)]
    assert fragment.end
    sdp.check_no_restart(fragment, "abcd", "pw", restart_asked=False)
    with pytest.raises(IceRestartUnsupported):
        sdp.check_no_restart(fragment, "efgh", "pw", restart_asked=False)
    with pytest.raises(IceRestartUnsupported):
        sdp.check_no_restart(fragment, "abcd", "pw", restart_asked=True)


@pytest.mark.parametrize(
    "body",
    [
        b"a=mid:0\r\n",
        b"a=candidate:nonsense\r\n",
        b"a=candidate:1 1 udp 2130706431 localhost 5000 typ host\r\n",
        b"x=1\r\n" + CANDIDATE.encode(),
        b"m=audio\r\n" + CANDIDATE.encode(),
        ("\r\n".join([CANDIDATE] * 65)).encode(),
    ],
)
def test_malformed_fragments_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedSdp):
        sdp.parse_fragment(body)


def test_health_turns_two_samples_into_a_rate_and_notices_when_media_stop() -> None:
    tracker = HealthTracker(started=0.0)
    first = tracker.update(Sample(1.0, 10_000, 100, 2, 0.004))
    assert (first.bitrate, first.lost_since_last, first.media_age) == (0.0, 2, 0.0)
    second = tracker.update(Sample(2.0, 60_000, 150, 5, 0.006, 0.030))
    assert second.bitrate == 400_000
    assert second.lost_since_last == 3
    assert second.view() == {
        "inbound_bitrate_bps": 400_000,
        "packets_lost": 5,
        "jitter_ms": 6.0,
        "round_trip_ms": 30.0,
        "media_age_s": 0.0,
    }
    stalled = tracker.update(Sample(5.0, 60_000, 150, 5, 0.006))
    assert stalled.media_age == 3.0
    assert tracker.stalled(5.0, 2.5)
    tracker.media_seen(5.5)
    assert not tracker.stalled(6.0, 2.5)


def test_ice_servers_become_link_headers_with_credentials_for_turn() -> None:
    assert ice_links({"urls": ["stun:stun.example.org:3478"]}) == [
        '<stun:stun.example.org:3478>; rel="ice-server"'
    ]
    turn = {"urls": "turn:t.example.org?transport=udp", "username": "9:amina", "credential": "c="}
    assert ice_links(turn) == [
        '<turn:t.example.org?transport=udp>; rel="ice-server"; username="9:amina"; '
        'credential="c="; credential-type="password"'
    ]


def test_candidates_on_blocked_addresses_are_dropped_from_an_offer() -> None:
    body = offer(("audio", "sendonly")).replace(
        b"a=sendonly\r\n",
        b"a=sendonly\r\n"
        b"a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
        b"a=candidate:2 1 udp 2130706431 169.254.169.254 5000 typ host\r\n"
        b"a=candidate:3 1 udp 2130706431 192.0.2.10 5000 typ host\r\n",
    )
    kept = sdp.drop_candidates(body, allow_private=False)
    assert b"127.0.0.1 5000" not in kept
    assert b"169.254.169.254 5000" not in kept
    assert b"192.0.2.10 5000" in kept
    assert sdp.parse_offer(kept).ice_ufrag == "abcd"
    assert sdp.drop_candidates(body, allow_private=True) == body


@pytest.mark.parametrize("host", ["localhost", "metadata.google.internal", "podium.test"])
def test_a_candidate_naming_a_host_the_node_would_resolve_is_refused_in_an_offer_and_a_patch(
    host: str,
) -> None:
    line = f"candidate:1 1 udp 2130706431 {host} 5000 typ host"
    body = offer(("audio", "sendonly")).replace(
        b"a=sendonly\r\n", b"a=sendonly\r\na=" + line.encode() + b"\r\n"
    )
    for allow_private in (False, True):
        with pytest.raises(MalformedSdp):
            sdp.drop_candidates(body, allow_private=allow_private)
        with pytest.raises(MalformedSdp):
            sdp.keep_candidate(line, allow_private=allow_private)
    with pytest.raises(MalformedSdp):
        sdp.parse_fragment(b"a=mid:0\r\na=" + line.encode() + b"\r\n")


def test_an_mdns_candidate_is_kept_and_a_loopback_one_only_when_private_ones_are_allowed() -> None:
    mdns = "candidate:1 1 udp 2130706431 2f1c9c3e-1b0a-4a57-9a53-0a8f0e2c2d11.local 5000 typ host"
    loopback = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
    assert sdp.keep_candidate(mdns, allow_private=False) is True
    assert sdp.keep_candidate(CANDIDATE[2:], allow_private=False) is True
    assert sdp.keep_candidate(loopback, allow_private=False) is False
    assert sdp.keep_candidate(loopback, allow_private=True) is True
