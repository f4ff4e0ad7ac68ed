"""The media relay's pure rules: SDP and candidate checks, blocked addresses, TURN credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from config.settings import SettingsError, load_settings
from signaling.errors import CandidateInvalid, SdpInvalid
from signaling.media import (
    MAX_CANDIDATE_BYTES,
    CheckedSdp,
    blocked_address,
    check_sdp,
    parse_candidate,
    relayable_candidate,
)
from signaling.turn import IceConfig, ice_servers, turn_credentials, valid_ice_url

HOST = "candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host"
LOOPBACK = "candidate:2 1 udp 2130706431 127.0.0.1 50001 typ host"


def offer(*extra: str, end: str = "\r\n") -> str:
    lines = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=rtpmap:96 VP8/90000",
        *extra,
    ]
    return end.join(lines) + end


# ---- candidates ----------------------------------------------------------------------------------


def test_a_host_candidate_parses_into_its_parts() -> None:
    parsed = parse_candidate(HOST + " generation 0 ufrag abcd network-id 1")
    assert (parsed.foundation, parsed.component, parsed.transport) == ("1", 1, "udp")
    assert (parsed.priority, parsed.address, parsed.port, parsed.kind) == (
        2130706431,
        "192.0.2.10",
        50000,
        "host",
    )
    assert parsed.extensions == (("generation", "0"), ("ufrag", "abcd"), ("network-id", "1"))


@pytest.mark.parametrize(
    "text",
    [
        HOST,
        "candidate:842163049 1 UDP 1677729535 203.0.113.7 61000 typ srflx raddr 10.0.0.2 rport 50000",
        "candidate:3 1 tcp 1518280447 2001:db8::7 9 typ host tcptype active",
        "candidate:4 2 udp 41885439 198.51.100.1 3478 typ relay raddr 0.0.0.0 rport 0",
        "candidate:5 1 udp 2122262783 1f3c9a2e-4b6d-4c8e-9f10-2a3b4c5d6e7f.local 54400 typ host",
        "candidate:a+b/c 256 udp 0 192.0.2.1 65535 typ prflx",
    ],
)
def test_well_formed_candidates_of_every_type_and_address_form_are_accepted(text: str) -> None:
    assert relayable_candidate(text) is True


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1 1 udp 1 192.0.2.1 5000 typ host", "starts with 'candidate:'"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 host", "typ <type>"),
        ("candidate:1 0 udp 1 192.0.2.1 5000 typ host", "component"),
        ("candidate:1 257 udp 1 192.0.2.1 5000 typ host", "component"),
        ("candidate:1 1 sctp 1 192.0.2.1 5000 typ host", "transport"),
        ("candidate:1 1 udp 4294967296 192.0.2.1 5000 typ host", "priority"),
        ("candidate:1 1 udp -1 192.0.2.1 5000 typ host", "priority"),
        ("candidate:1 1 udp 1 example.com 5000 typ host", "address"),
        ("candidate:1 1 udp 1 192.0.2.300 5000 typ host", "address"),
        ("candidate:1 1 udp 1 192.0.2.1 0 typ host", "port"),
        ("candidate:1 1 udp 1 192.0.2.1 65536 typ host", "port"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 typ local", "type"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 typ host generation", "pairs"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 typ host bad!name 1", "name/value pair"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 typ host raddr nowhere", "raddr"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 typ host rport 70000", "rport"),
        ("candidate:bad! 1 udp 1 192.0.2.1 5000 typ host", "foundation"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\na=evil", "line breaks"),
        ("candidate:1 1 udp 1 192.0.2.1 5000 typ host x\x00y 1", "control"),
        ("candidate:1  1 udp 1 192.0.2.1 5000 typ host", "component"),
        (HOST + " x " + "y" * MAX_CANDIDATE_BYTES, "at most 512 bytes"),
    ],
)
def test_malformed_candidates_are_refused_saying_which_part_is_wrong(text: str, why: str) -> None:
    with pytest.raises(CandidateInvalid) as refused:
        relayable_candidate(text)
    assert why in refused.value.message


def test_the_end_of_candidates_is_the_empty_string_and_always_relayed() -> None:
    assert relayable_candidate("") is True


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "0.0.0.0",
        "169.254.10.20",
        "169.254.169.254",
        "100.100.100.200",
        "::1",
        "::",
        "fe80::1",
        "febf::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_loopback_any_link_local_and_metadata_addresses_are_blocked(address: str) -> None:
    assert blocked_address(address) is True
    text = f"candidate:1 1 udp 1 {address} 5000 typ host"
    assert relayable_candidate(text) is False
    assert relayable_candidate(text, allow_private=True) is True


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "192.168.1.20",
        "172.16.0.1",
        "100.100.100.201",
        "2001:db8::1",
        "fd00::1",
        "x.local",
    ],
)
def test_lan_public_and_mdns_addresses_are_not_blocked(address: str) -> None:
    assert blocked_address(address) is False


# ---- session descriptions ------------------------------------------------------------------------


def test_an_offer_passes_unchanged_with_crlf_or_lf_line_ends() -> None:
    for end in ("\r\n", "\n"):
        sdp = offer("a=" + HOST, end=end)
        assert check_sdp(sdp, offer=True) == CheckedSdp(sdp, 0)


def test_candidate_lines_on_blocked_addresses_are_removed_from_the_sdp_unless_allowed() -> None:
    sdp = offer("a=" + LOOPBACK, "a=" + HOST, "a=end-of-candidates")
    checked = check_sdp(sdp, offer=True)
    assert checked.dropped == 1
    assert "127.0.0.1 50001" not in checked.sdp
    assert checked.sdp == offer("a=" + HOST, "a=end-of-candidates")
    assert check_sdp(sdp, offer=True, allow_private=True) == CheckedSdp(sdp, 0)


def test_an_answer_needs_no_ice_credentials_or_fingerprint_but_an_offer_does() -> None:
    bare = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    assert check_sdp(bare, offer=False).sdp == bare
    for missing in ("a=ice-ufrag", "a=ice-pwd", "a=fingerprint"):
        sdp = "".join(line for line in offer().splitlines(True) if not line.startswith(missing))
        with pytest.raises(SdpInvalid) as refused:
            check_sdp(sdp, offer=True)
        assert missing in refused.value.message


@pytest.mark.parametrize(
    ("sdp", "why"),
    [
        (offer("a=x:" + "y" * 17_000), "at most 16384 bytes"),
        ("", "starts with 'v=0'"),
        ("o=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\ns=-\r\nm=video 9 RTP/AVP 0\r\n", "starts with 'v=0'"),
        ("v=1\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=video 9 RTP/AVP 0\r\n", "starts with 'v=0'"),
        ("v=0\r\ns=-\r\nm=video 9 RTP/AVP 0\r\n", "an 'o=' line"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video 9 RTP/AVP 0\r\n", "an 's=' line"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "1 to 8 media sections"),
        (offer(*["m=audio 9 RTP/AVP 0"] * 8), "1 to 8 media sections"),
        (offer("this is not sdp"), "'<letter>=<value>'"),
        (offer("A=upper"), "'<letter>=<value>'"),
        (offer(""), "'<letter>=<value>'"),
        (offer("a=x\ry"), "a CR only comes before LF"),
        (offer("a=nul\x00"), "no control characters"),
        (offer("a=tab\there"), "no control characters"),
        (offer("a=sep\u2028x"), "no control characters"),
        (offer("a=candidate:1 1 udp 1 nowhere 5000 typ host"), "address"),
    ],
)
def test_malformed_sdp_is_refused_saying_what_is_wrong(sdp: str, why: str) -> None:
    with pytest.raises(SdpInvalid) as refused:
        check_sdp(sdp, offer=True)
    assert why in refused.value.message


def test_the_size_limit_is_the_setting_s() -> None:
    sdp = offer()
    with pytest.raises(SdpInvalid, match="at most 100 bytes"):
        check_sdp(sdp, offer=True, max_bytes=100)
    assert check_sdp(sdp, offer=True, max_bytes=len(sdp)).sdp == sdp


# ---- ICE servers and TURN credentials ------------------------------------------------------------


def test_turn_credentials_are_the_coturn_rest_form_checked_against_an_independent_hmac() -> None:
    username, credential = turn_credentials("s3cret", "amina", now=1_700_000_000.7, ttl=600)
    assert username == "1700000600:amina"
    expected = hmac.new(b"s3cret", b"1700000600:amina", hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected


def test_stun_urls_carry_no_credentials_and_turn_urls_carry_the_person_s_own() -> None:
    config = IceConfig(
        urls=("stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp",
              "turns:turn.example.org:5349"),
        secret="s3cret",
        ttl=300,
    )  # fmt: skip
    answer = ice_servers(config, "amina", now=1000.0)
    assert answer["ttl"] == 300
    stun, turn = answer["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.org:3478"]}
    assert turn["urls"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:5349",
    ]
    assert turn["username"] == "1300:amina"
    assert turn["credential"] == turn_credentials("s3cret", "amina", 1000.0, 300)[1]


def test_without_a_secret_turn_urls_are_left_out_and_nothing_configured_gives_no_servers() -> None:
    config = IceConfig(urls=("stun:a.example:3478", "turn:b.example:3478"))
    assert ice_servers(config, "amina", 0.0)["ice_servers"] == [{"urls": ["stun:a.example:3478"]}]
    assert ice_servers(IceConfig(), "amina", 0.0) == {"ice_servers": [], "ttl": 600}


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("stun:stun.example.org", True),
        ("turn:198.51.100.1:3478?transport=tcp", True),
        ("turns:turn.example.org:5349", True),
        ("http://example.org", False),
        ("stun:", False),
        ("turn:user@host", False),
        ("stun:host/path", False),
        ("stun:ho st", False),
    ],
)
def test_ice_server_urls_are_stun_turn_or_turns(url: str, valid: bool) -> None:
    assert valid_ice_url(url) is valid


def test_media_settings_are_read_from_the_environment_and_checked() -> None:
    settings = load_settings(
        {
            "PODIUM_ICE_SERVERS": "stun:a.example:3478, turn:b.example:3478",
            "PODIUM_TURN_SECRET": "s3cret",
            "PODIUM_TURN_TTL": "900",
            "PODIUM_ALLOW_PRIVATE_CANDIDATES": "true",
            "PODIUM_MAX_SDP_BYTES": "20000",
        }
    )
    assert settings.ice_servers == ("stun:a.example:3478", "turn:b.example:3478")
    assert (settings.turn_secret, settings.turn_ttl) == ("s3cret", 900)
    assert (settings.allow_private_candidates, settings.max_sdp_bytes) == (True, 20000)
    for env, value in (
        ("PODIUM_ICE_SERVERS", "http://nope"),
        ("PODIUM_TURN_TTL", "5"),
        ("PODIUM_MAX_SDP_BYTES", "100"),
    ):
        with pytest.raises(SettingsError):
            load_settings({env: value})
