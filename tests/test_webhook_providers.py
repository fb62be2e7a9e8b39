"""Email-provider webhooks: verification (signatures, windows, rotation) and parsing of documented payloads.

Pure unit tests: requests are built and signed by ``tests.fakes.email_providers`` from the fixtures in
``tests/fixtures/webhooks``; nothing touches the database.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from multidict import CIMultiDict

from lma_bot.webhooks.providers import EMAIL_PROVIDERS, get_provider, mailgun, postmark, sendgrid
from lma_bot.webhooks.types import EmailEvent, Verified, WebhookAuthError, WebhookPayloadError
from tests.fakes.email_providers import (
    SENDGRID_SIGNATURE,
    SENDGRID_TIMESTAMP,
    fixture_names,
    json_body,
    load_fixture,
    mailgun_body,
    mailgun_document,
    mailgun_signature,
    postmark_headers,
    sendgrid_key,
    sendgrid_request,
    sign_sendgrid,
)

NOW = 1_700_000_000
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def only(events: list[EmailEvent]) -> EmailEvent:
    assert len(events) == 1
    return events[0]


# --- the registry --------------------------------------------------------------------------------------


def test_get_provider_finds_each_module_and_refuses_others() -> None:
    assert get_provider("sendgrid") is sendgrid
    assert get_provider("mailgun") is mailgun
    assert get_provider("postmark") is postmark
    assert EMAIL_PROVIDERS == ("sendgrid", "mailgun", "postmark")
    with pytest.raises(KeyError, match="unknown email provider 'n8n'"):
        get_provider("n8n")


# --- SendGrid: verification ----------------------------------------------------------------------------

SG_KEY = sendgrid_key()
SG_SECRETS = {"verification_key": SG_KEY.verification_key}


def sg_signed(timestamp: int = NOW, name: str = "batch__all_types") -> tuple[bytes, dict[str, str]]:
    return sendgrid_request(load_fixture("sendgrid", name), SG_KEY.private_key, timestamp)


def test_sendgrid_good_signature_verifies() -> None:
    body, headers = sg_signed()
    assert sendgrid.verify(CIMultiDict(headers), body, SG_SECRETS, NOW) == Verified(nonce=None)


def test_sendgrid_header_names_are_case_insensitive() -> None:
    body, headers = sg_signed()
    lowered = CIMultiDict({name.lower(): value for name, value in headers.items()})
    assert sendgrid.verify(lowered, body, SG_SECRETS, NOW) == Verified()


def test_sendgrid_refuses_a_signature_by_another_key() -> None:
    body, headers = sg_signed()
    other = {"verification_key": sendgrid_key().verification_key}
    with pytest.raises(WebhookAuthError, match="does not match"):
        sendgrid.verify(headers, body, other, NOW)


def test_sendgrid_refuses_a_changed_body() -> None:
    body, headers = sg_signed()
    changed = body.replace(b'"event":"delivered"', b'"event":"bounce"')
    assert changed != body
    with pytest.raises(WebhookAuthError, match="does not match"):
        sendgrid.verify(headers, changed, SG_SECRETS, NOW)


def test_sendgrid_timestamp_is_part_of_the_signed_message() -> None:
    body, headers = sg_signed()
    headers[SENDGRID_TIMESTAMP] = str(NOW + 1)
    with pytest.raises(WebhookAuthError, match="does not match"):
        sendgrid.verify(headers, body, SG_SECRETS, NOW)


@pytest.mark.parametrize(("offset", "accepted"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_sendgrid_timestamp_window_both_ways(offset: int, accepted: bool) -> None:
    """``offset`` is the request's timestamp minus our clock: negative is stale, positive is future."""
    body, headers = sg_signed(NOW + offset)
    if accepted:
        assert sendgrid.verify(headers, body, SG_SECRETS, NOW) == Verified()
    else:
        with pytest.raises(WebhookAuthError, match="5-minute window"):
            sendgrid.verify(headers, body, SG_SECRETS, NOW)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("%%% not base64 %%%", "not base64"),
        ("", "missing"),
        (base64.b64encode(b"definitely not DER").decode(), "does not match"),
        (base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode(), "does not match"),  # DER, r=s=1
    ],
)
def test_sendgrid_refuses_a_garbage_signature(signature: str, message: str) -> None:
    body, headers = sg_signed()
    headers[SENDGRID_SIGNATURE] = signature
    with pytest.raises(WebhookAuthError, match=message):
        sendgrid.verify(headers, body, SG_SECRETS, NOW)


@pytest.mark.parametrize("dropped", [SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP])
def test_sendgrid_refuses_a_missing_header(dropped: str) -> None:
    body, headers = sg_signed()
    del headers[dropped]
    with pytest.raises(WebhookAuthError, match="missing"):
        sendgrid.verify(headers, body, SG_SECRETS, NOW)


ARABIC_INDIC_NOW = "\u0661\u0667" + "\u0660" * 8  # "1700000000" in Arabic-Indic digits: str.isdigit() is true


@pytest.mark.parametrize("timestamp", ["17e8", "now", "-1700000000", "1700000000.5", ARABIC_INDIC_NOW])
def test_sendgrid_refuses_a_non_numeric_timestamp(timestamp: str) -> None:
    body, headers = sg_signed()
    headers = sign_sendgrid(body, SG_KEY.private_key, timestamp)
    with pytest.raises(WebhookAuthError, match="not a number"):
        sendgrid.verify(headers, body, SG_SECRETS, NOW)


@pytest.mark.parametrize("separator", [",", "\n", " ,\r\n"])
def test_sendgrid_rotation_accepts_old_and_new_key_only(separator: str) -> None:
    old, new, third = sendgrid_key(), sendgrid_key(), sendgrid_key()
    secrets = {"verification_key": old.verification_key + separator + new.verification_key}
    events = load_fixture("sendgrid", "bounce__hard")
    for key in (old, new):
        body, headers = sendgrid_request(events, key.private_key, NOW)
        assert sendgrid.verify(headers, body, secrets, NOW) == Verified()
    body, headers = sendgrid_request(events, third.private_key, NOW)
    with pytest.raises(WebhookAuthError, match="does not match"):
        sendgrid.verify(headers, body, secrets, NOW)


def test_sendgrid_accepts_pem_keys_including_two_during_rotation() -> None:
    old, new = sendgrid_key(), sendgrid_key()
    secrets = {"verification_key": old.pem + "\n" + new.pem}
    for key in (old, new):
        body, headers = sendgrid_request([], key.private_key, NOW)
        assert sendgrid.verify(headers, body, secrets, NOW) == Verified()


def _public_key_text(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.mark.parametrize(
    "verification_key",
    [
        None,
        "",
        " , \n",
        "not-a-key",
        base64.b64encode(b"valid base64, not a key").decode(),
        _public_key_text(ec.generate_private_key(ec.SECP384R1()).public_key()),  # wrong curve
        _public_key_text(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()),
    ],
)
def test_sendgrid_unusable_verification_key_refuses_every_request(verification_key: str | None) -> None:
    body, headers = sg_signed()
    secrets = {} if verification_key is None else {"verification_key": verification_key}
    with pytest.raises(WebhookAuthError, match="no usable verification_key"):
        sendgrid.verify(headers, body, secrets, NOW)


def test_sendgrid_a_bad_key_next_to_a_good_one_is_skipped() -> None:
    body, headers = sg_signed()
    secrets = {"verification_key": "not-a-key," + SG_KEY.verification_key}
    assert sendgrid.verify(headers, body, secrets, NOW) == Verified()


# --- SendGrid: payloads --------------------------------------------------------------------------------

SMTP_ID = "14c5d75ce93.dfd.64b469@ismtpd-555"

# (sg_event_id, kind, bounce_type, message_id, reason, url) for batch__all_types, in order
SG_BATCH: list[tuple[str, str, str | None, str | None, str | None, str | None]] = [
    ("rbtnWrG1DVDGGGFHFyun0A==", "processed", None, "lma-msg-0001", None, None),
    ("qK1MxfAaE_ukyyNsjxTpkw==", "deferred", None, SMTP_ID, "400 try again later", None),
    ("hqFbp3HH9WxIM0R2-x2M1Q==", "delivered", None, SMTP_ID, None, None),
    ("FOTFFO0ecsBE-zxFXfs6WA==", "opened", None, "lma-msg-0001", None, None),
    ("kCAi1KttyQdEKHhdC-nuEA==", "clicked", None, "lma-msg-0001", None, "http://www.sendgrid.com/"),
    ("6g4ZI7SA-xmRDv57GoPIPw==", "bounced", "hard", SMTP_ID, "500 unknown recipient", None),
    (
        "ahSCB7xYcXFb-hEaawsPRw==",
        "bounced",
        "soft",
        SMTP_ID,
        "550 5.7.1 Service unavailable; client host blocked using Spamhaus",
        None,
    ),
    ("zmzJhfJgAfUSOW80yEbPyw==", "dropped", None, SMTP_ID, "Bounced Address", None),
    ("37nvH5QBz858KGVYCM4uOA==", "complained", None, None, None, None),
    ("zz_BjPgU_5pS-J8vlfB1sg==", "unsubscribed", None, None, None, None),
    ("ft9TJE9bG8dnEuBMBrs-Ag==", "unsubscribed", None, None, None, None),
    ("o6ZOZTAbgNJEd43S1oxIsg==", "unknown", None, None, None, None),
]


def test_sendgrid_batch_of_every_type_parses_to_our_kinds() -> None:
    document = load_fixture("sendgrid", "batch__all_types")
    events = sendgrid.parse(json_body(document), "application/json")
    got = [(e.provider_event_id, e.kind, e.bounce_type, e.message_id, e.reason, e.url) for e in events]
    assert got == SG_BATCH
    assert [e.raw_type for e in events] == [item["event"] for item in document]
    assert [e.occurred_at for e in events] == [utc(2017, 12, 15, 0, 59, 29 + i) for i in range(12)]
    assert {e.recipient for e in events} == {"example@test.com"}  # the first is "Example@Test.com"
    assert [e.payload for e in events] == document


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "bounce__hard",
            (
                "Ym91bmNlLTAtMTcwMDAwMDAwMA",
                "bounced",
                "hard",
                "lma-msg-0042",
                "lead.person@example.org",
                utc(2023, 11, 14, 22, 13, 20),
                "550 5.1.1 The email account that you tried to reach does not exist.",
                None,
            ),
        ),
        (
            "bounce__blocked",
            (
                "YmxvY2tlZC0wLTE3MDAwMDAxMDA",
                "bounced",
                "soft",
                "a1b2c3d4.e5f6@ismtpd0001p1lon1.sendgrid.net",
                "lead.person@example.org",
                utc(2023, 11, 14, 22, 15, 0),
                "550 5.7.1 Message rejected due to content restrictions",
                None,
            ),
        ),
        (
            "click__custom_args",
            (
                "Y2xpY2stMC0xNzAwMDAwMjAw",
                "clicked",
                None,
                "lma-msg-0042",
                "lead.person@example.org",
                utc(2023, 11, 14, 22, 16, 40),
                None,
                "https://example.com/pricing?utm_source=lma",
            ),
        ),
        (
            "unknown__future_type",
            (
                "ZnV0dXJlLTAtMTcwMDAwMDMwMA",
                "unknown",
                None,
                None,
                "lead.person@example.org",
                utc(2023, 11, 14, 22, 18, 20),
                None,
                None,
            ),
        ),
    ],
)
def test_sendgrid_fixture_parses(name: str, expected: tuple[Any, ...]) -> None:
    event = only(sendgrid.parse(json_body(load_fixture("sendgrid", name)), "application/json"))
    got = (
        event.provider_event_id,
        event.kind,
        event.bounce_type,
        event.message_id,
        event.recipient,
        event.occurred_at,
        event.reason,
        event.url,
    )
    assert got == expected


def test_sendgrid_every_fixture_is_covered() -> None:
    assert fixture_names("sendgrid") == [
        "batch__all_types",
        "bounce__blocked",
        "bounce__hard",
        "click__custom_args",
        "unknown__future_type",
    ]


def _events_with(index: int, **changes: Any) -> bytes:
    events = copy.deepcopy(load_fixture("sendgrid", "batch__all_types"))
    for field, value in changes.items():
        if value is None:
            events[index].pop(field)
        else:
            events[index][field] = value
    return json_body(events)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b'{"event": "delivered"}', "body must be a JSON array of events"),
        (b"[1]", r"events\[0\]: expected an object"),
        (_events_with(3, sg_event_id=None), r"^events\[3\]: sg_event_id missing$"),
        (_events_with(5, sg_event_id=""), r"^events\[5\]: sg_event_id missing$"),
        (_events_with(1, event=None), r"^events\[1\]: event missing or not a string$"),
        (_events_with(4, event=12), r"^events\[4\]: event missing or not a string$"),
        (_events_with(0, timestamp="yesterday"), r"events\[0\]\.timestamp: not a Unix timestamp"),
        (_events_with(2, timestamp=None), r"events\[2\]\.timestamp: missing"),
        (_events_with(2, timestamp=True), r"events\[2\]\.timestamp: missing or not a Unix timestamp"),
    ],
)
def test_sendgrid_malformed_body_is_a_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message):
        sendgrid.parse(body, "application/json")


def test_sendgrid_empty_batch_is_no_events() -> None:
    assert sendgrid.parse(b"[]", "application/json") == []


def test_sendgrid_thousand_event_batch_verifies_and_parses_quickly() -> None:
    template = load_fixture("sendgrid", "batch__all_types")
    events = [dict(template[i % len(template)], sg_event_id=f"evt-{i:04d}") for i in range(1000)]
    body, headers = sendgrid_request(events, SG_KEY.private_key, NOW)
    started = time.perf_counter()
    verified = sendgrid.verify(headers, body, SG_SECRETS, NOW)
    parsed = sendgrid.parse(body, "application/json")
    elapsed = time.perf_counter() - started
    assert verified == Verified()
    assert [e.provider_event_id for e in parsed] == [f"evt-{i:04d}" for i in range(1000)]
    assert sum(e.kind == "bounced" for e in parsed) == 166  # indices 5 and 6 of each cycle of 12
    assert elapsed < 1.0, f"1,000 events took {elapsed:.2f} s"


# --- Mailgun: verification -----------------------------------------------------------------------------

MG_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
MG_SECRETS = {"signing_key": MG_KEY}
MG_TOKEN = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"


def mg_body(timestamp: int = NOW, token: str = MG_TOKEN, key: str = MG_KEY) -> bytes:
    return mailgun_body(load_fixture("mailgun", "delivered__ok"), key, timestamp, token)


def test_mailgun_good_signature_verifies_and_returns_the_token_as_nonce() -> None:
    assert mailgun.verify(CIMultiDict(), mg_body(), MG_SECRETS, NOW) == Verified(nonce=MG_TOKEN)


def test_mailgun_each_request_has_its_own_nonce() -> None:
    event = load_fixture("mailgun", "delivered__ok")
    first = mailgun.verify({}, mailgun_body(event, MG_KEY, NOW), MG_SECRETS, NOW)
    second = mailgun.verify({}, mailgun_body(event, MG_KEY, NOW), MG_SECRETS, NOW)
    assert first.nonce is not None
    assert len(first.nonce) == 50
    assert first.nonce != second.nonce


def test_mailgun_refuses_another_signing_key() -> None:
    with pytest.raises(WebhookAuthError, match="does not match"):
        mailgun.verify({}, mg_body(key="key-someone-else"), MG_SECRETS, NOW)


@pytest.mark.parametrize("field", ["token", "timestamp"])
def test_mailgun_refuses_a_changed_token_or_timestamp(field: str) -> None:
    document = mailgun_document(load_fixture("mailgun", "delivered__ok"), MG_KEY, NOW, MG_TOKEN)
    document["signature"][field] = {"token": "b" * 50, "timestamp": str(NOW - 1)}[field]
    with pytest.raises(WebhookAuthError, match="does not match"):
        mailgun.verify({}, json_body(document), MG_SECRETS, NOW)


@pytest.mark.parametrize(("offset", "accepted"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_mailgun_timestamp_window_both_ways(offset: int, accepted: bool) -> None:
    body = mg_body(NOW + offset)
    if accepted:
        assert mailgun.verify({}, body, MG_SECRETS, NOW) == Verified(nonce=MG_TOKEN)
    else:
        with pytest.raises(WebhookAuthError, match="5-minute window"):
            mailgun.verify({}, body, MG_SECRETS, NOW)


@pytest.mark.parametrize(
    "signature", ["", "zz", "é" * 64, "0" * 64, mailgun_signature(MG_KEY, NOW, MG_TOKEN)[:-1]]
)
def test_mailgun_refuses_a_garbage_signature(signature: str) -> None:
    document = mailgun_document(load_fixture("mailgun", "delivered__ok"), MG_KEY, NOW, MG_TOKEN)
    document["signature"]["signature"] = signature
    with pytest.raises(WebhookAuthError, match="signature"):
        mailgun.verify({}, json_body(document), MG_SECRETS, NOW)


def test_mailgun_signature_hex_case_does_not_matter() -> None:
    document = mailgun_document(load_fixture("mailgun", "delivered__ok"), MG_KEY, NOW, MG_TOKEN)
    document["signature"]["signature"] = document["signature"]["signature"].upper()
    assert mailgun.verify({}, json_body(document), MG_SECRETS, NOW) == Verified(nonce=MG_TOKEN)


def test_mailgun_accepts_an_integer_timestamp() -> None:
    document = mailgun_document(load_fixture("mailgun", "delivered__ok"), MG_KEY, NOW, MG_TOKEN)
    document["signature"]["timestamp"] = NOW
    assert mailgun.verify({}, json_body(document), MG_SECRETS, NOW) == Verified(nonce=MG_TOKEN)


def _signed_without(*path: str) -> bytes:
    document = mailgun_document(load_fixture("mailgun", "delivered__ok"), MG_KEY, NOW, MG_TOKEN)
    target = document
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return json_body(document)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"token=abc&timestamp=1&signature=00", "body is not JSON"),
        (b"\xff", "body is not JSON"),
        (b"[]", "signature.timestamp missing"),
        (json_body({"event-data": load_fixture("mailgun", "delivered__ok")}), "signature.timestamp missing"),
        (json_body({"signature": "abc", "event-data": {}}), "signature.timestamp missing"),
        (_signed_without("signature", "timestamp"), "signature.timestamp missing"),
        (_signed_without("signature", "token"), "signature.token missing"),
        (_signed_without("signature", "signature"), "signature.signature missing"),
        (json_body({"signature": {"timestamp": "soon", "token": "t", "signature": "s"}}), "not a number"),
        (json_body({"signature": {"timestamp": NOW + 0.5, "token": "t", "signature": "s"}}), "not a number"),
    ],
)
def test_mailgun_body_without_a_signature_block_is_an_auth_error(body: bytes, message: str) -> None:
    with pytest.raises(WebhookAuthError, match=message):
        mailgun.verify({}, body, MG_SECRETS, NOW)


@pytest.mark.parametrize("secrets", [{}, {"signing_key": ""}, {"signing_key": " ,\n"}])
def test_mailgun_without_a_signing_key_refuses(secrets: dict[str, str]) -> None:
    with pytest.raises(WebhookAuthError, match="no signing_key"):
        mailgun.verify({}, mg_body(), secrets, NOW)


@pytest.mark.parametrize("separator", [",", "\n"])
def test_mailgun_rotation_accepts_old_and_new_key_only(separator: str) -> None:
    secrets = {"signing_key": f"key-old{separator}key-new"}
    for key in ("key-old", "key-new"):
        assert mailgun.verify({}, mg_body(key=key), secrets, NOW) == Verified(nonce=MG_TOKEN)
    with pytest.raises(WebhookAuthError, match="does not match"):
        mailgun.verify({}, mg_body(key="key-third"), secrets, NOW)


# --- Mailgun: payloads ---------------------------------------------------------------------------------

MG_HEADER_ID = "20130503182626.18666.16540@sandboxed.mailgun.org"
MG_FAILED_ID = "20130503192659.13651.20287@sandboxed.mailgun.org"

# fixture -> (provider_event_id, kind, bounce_type, message_id, recipient, occurred_at, reason, url)
MG_FIXTURES: dict[str, tuple[Any, ...]] = {
    "accepted__ok": (
        "jE0Q5rpgQ1W4Gnd2KpNfVw:1521472260",
        "processed",
        None,
        "lma-msg-0100",
        "alice@example.com",
        utc(2018, 3, 19, 15, 11, 0, 101001),
        None,
        None,
    ),
    "clicked__ok": (
        "Ase7i2zsRYeDXztHGENqRB:1521243360",
        "clicked",
        None,
        "lma-msg-0100",
        "alice@example.com",
        utc(2018, 3, 16, 23, 36, 0, 221912),
        None,
        "https://example.com/demo?ref=lma",
    ),
    "complained__ok": (
        "-Agny091SquKnsrW2NEKUA:1521233123",
        "complained",
        None,
        "20110215055645.25246.63817@sandboxed.mailgun.org",
        "alice@example.com",
        utc(2018, 3, 16, 20, 45, 23, 501324),
        None,
        None,
    ),
    "delivered__ok": (
        "CPgfbmQMTCKtHW6uIWtuVe:1521472262",
        "delivered",
        None,
        "lma-msg-0100",
        "alice@example.com",
        utc(2018, 3, 19, 15, 11, 2, 908181),
        None,
        None,
    ),
    "failed__permanent": (
        "G9Bn5sl1TC6nu79C8C0bwg:1521233195",
        "bounced",
        "hard",
        MG_FAILED_ID,
        "alice@example.com",
        utc(2018, 3, 16, 20, 46, 35, 375624),
        "5.1.1 The email account that you tried to reach does not exist.",
        None,
    ),
    "failed__suppressed": (
        "Sup5sl1TC6nu79C8C0bwgB:1521233295",
        "dropped",
        None,
        "lma-msg-0101",
        "alice@example.com",
        utc(2018, 3, 16, 20, 48, 15, 375624),
        "Not delivering to previously bounced address",
        None,
    ),
    "failed__temporary": (
        "Fs7-5t81S2ip-f4-n4SmgA:1521472262",
        "deferred",
        None,
        MG_FAILED_ID,
        "alice@example.com",
        utc(2018, 3, 19, 15, 11, 2, 908181),
        "4.2.2 The email account that you tried to reach is over quota.",
        None,
    ),
    "opened__ok": (
        "Ase7i2zsRYeDXztHGENqRA:1521243339",
        "opened",
        None,
        "lma-msg-0100",
        "alice@example.com",
        utc(2018, 3, 16, 23, 35, 39, 873676),
        None,
        None,
    ),
    "rejected__ok": (
        "RejQ5rpgQ1W4Gnd2KpNfVw:1521472261",
        "dropped",
        None,
        "20130503182626.18666.16541@sandboxed.mailgun.org",
        "alice@example.com",
        utc(2018, 3, 19, 15, 11, 1, 500000),
        "Sandbox subdomains are for test purposes only.",
        None,
    ),
    "unknown__list_member_uploaded": (
        "LmuQ5rpgQ1W4Gnd2KpNfVw:1521472299",
        "unknown",
        None,
        None,
        "carol@example.com",
        utc(2018, 3, 19, 15, 11, 39),
        None,
        None,
    ),
    "unsubscribed__ok": (
        "Ase7i2zsRYeDXztHGENqRC:1521243400",
        "unsubscribed",
        None,
        MG_HEADER_ID,
        "alice@example.com",
        utc(2018, 3, 16, 23, 36, 40, 105002),
        None,
        None,
    ),
}


def test_mailgun_every_fixture_is_covered() -> None:
    assert fixture_names("mailgun") == sorted(MG_FIXTURES)


@pytest.mark.parametrize("name", sorted(MG_FIXTURES))
def test_mailgun_fixture_parses(name: str) -> None:
    event_data = load_fixture("mailgun", name)
    body = mailgun_body(event_data, MG_KEY, NOW)
    event = only(mailgun.parse(body, "application/json"))
    got = (
        event.provider_event_id,
        event.kind,
        event.bounce_type,
        event.message_id,
        event.recipient,
        event.occurred_at,
        event.reason,
        event.url,
    )
    assert got == MG_FIXTURES[name]
    assert event.raw_type == event_data["event"]
    assert event.payload == event_data


@pytest.mark.parametrize(
    ("severity", "reason", "expected"),
    [
        ("permanent", "bounce", ("bounced", "hard")),
        ("permanent", "generic", ("bounced", "hard")),
        ("permanent", None, ("bounced", "hard")),
        ("permanent", "old", ("bounced", "soft")),
        ("permanent", "espblock", ("bounced", "soft")),
        ("permanent", "suppress-bounce", ("dropped", None)),
        ("permanent", "suppress-unsubscribe", ("dropped", None)),
        ("permanent", "suppress-complaint", ("dropped", None)),
        ("temporary", "generic", ("deferred", None)),
        ("temporary", "greylisted", ("deferred", None)),
    ],
)
def test_mailgun_failed_event_kind_follows_severity_and_reason(
    severity: str, reason: str | None, expected: tuple[str, str | None]
) -> None:
    data = dict(load_fixture("mailgun", "failed__permanent"), severity=severity)
    data.pop("reason")
    if reason is not None:
        data["reason"] = reason
    event = only(mailgun.parse(json_body({"event-data": data}), "application/json"))
    assert (event.kind, event.bounce_type) == expected


def test_mailgun_event_id_repeats_on_a_retry_but_not_a_day_later() -> None:
    data = load_fixture("mailgun", "opened__ok")
    first = only(mailgun.parse(mailgun_body(data, MG_KEY, NOW), None))
    retry = only(mailgun.parse(mailgun_body(data, MG_KEY, NOW + 60), None))  # new token and timestamp
    a_day_later = dict(data, timestamp=data["timestamp"] + 86_400)  # Mailgun ids are unique within a day
    later = only(mailgun.parse(json_body({"event-data": a_day_later}), None))
    assert retry.provider_event_id == first.provider_event_id
    assert later.provider_event_id != first.provider_event_id


def test_mailgun_numeric_string_timestamp_parses() -> None:
    data = dict(load_fixture("mailgun", "delivered__ok"), timestamp="1521472262.908181")
    event = only(mailgun.parse(json_body({"event-data": data}), None))
    assert event.occurred_at == utc(2018, 3, 19, 15, 11, 2, 908181)


def _mg_without(field: str) -> bytes:
    data = dict(load_fixture("mailgun", "delivered__ok"))
    del data[field]
    return json_body({"event-data": data})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"nope", "body is not JSON"),
        (b"[]", "body must be a JSON object"),
        (json_body({"signature": {}}), "event-data missing or not an object"),
        (json_body({"event-data": ["delivered"]}), "event-data missing or not an object"),
        (_mg_without("id"), "^event-data.id missing$"),
        (_mg_without("event"), "^event-data.event missing or not a string$"),
        (_mg_without("timestamp"), "^event-data.timestamp: missing"),
        (json_body({"event-data": {"id": "x", "event": "opened", "timestamp": 1e300}}), "out of range"),
    ],
)
def test_mailgun_malformed_body_is_a_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message):
        mailgun.parse(body, "application/json")


# --- Postmark: verification ----------------------------------------------------------------------------

PM_USER, PM_PASSWORD = "lma-0a1b2c3d4e5f", "s3cr3t-Pa55:with-colon"
PM_SECRETS = {"basic_username": PM_USER, "basic_password": PM_PASSWORD}
PM_BODY = json_body(load_fixture("postmark", "delivery__ok"))


def test_postmark_good_credentials_verify() -> None:
    headers = CIMultiDict(postmark_headers(PM_USER, PM_PASSWORD))
    assert postmark.verify(headers, PM_BODY, PM_SECRETS, NOW) == Verified(nonce=None)


def test_postmark_header_name_and_scheme_are_case_insensitive() -> None:
    value = postmark_headers(PM_USER, PM_PASSWORD)["Authorization"].replace("Basic", "basic")
    assert postmark.verify(CIMultiDict({"authorization": value}), PM_BODY, PM_SECRETS, NOW) == Verified()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (PM_USER, "wrong"),
        ("someone", PM_PASSWORD),
        (PM_USER, ""),
        ("", PM_PASSWORD),
        (PM_USER, PM_PASSWORD + "x"),
    ],
)
def test_postmark_refuses_wrong_credentials(username: str, password: str) -> None:
    with pytest.raises(WebhookAuthError, match="do not match"):
        postmark.verify(postmark_headers(username, password), PM_BODY, PM_SECRETS, NOW)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Authorization missing"),
        ("", "Authorization missing"),
        ("Bearer abc", "not HTTP Basic"),
        ("Basic", "not HTTP Basic"),
        ("Basic %%%", "not base64"),
        ("Basic " + base64.b64encode(b"no-colon-here").decode(), "no ':'"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "not base64 UTF-8"),
    ],
)
def test_postmark_refuses_a_missing_or_garbage_authorization(authorization: str | None, message: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with pytest.raises(WebhookAuthError, match=message):
        postmark.verify(headers, PM_BODY, PM_SECRETS, NOW)


@pytest.mark.parametrize(
    "secrets",
    [
        {},
        {"basic_username": PM_USER},
        {"basic_password": PM_PASSWORD},
        {"basic_username": "", "basic_password": ""},
    ],
)
def test_postmark_without_credentials_configured_refuses(secrets: dict[str, str]) -> None:
    with pytest.raises(WebhookAuthError, match="no basic_username / basic_password"):
        postmark.verify(postmark_headers(PM_USER, PM_PASSWORD), PM_BODY, secrets, NOW)


def test_postmark_rotation_accepts_old_and_new_password_only() -> None:
    secrets = {"basic_username": PM_USER, "basic_password": "old-password\nnew-password"}
    for password in ("old-password", "new-password"):
        assert postmark.verify(postmark_headers(PM_USER, password), PM_BODY, secrets, NOW) == Verified()
    with pytest.raises(WebhookAuthError, match="do not match"):
        postmark.verify(postmark_headers(PM_USER, "third-password"), PM_BODY, secrets, NOW)


# --- Postmark: payloads --------------------------------------------------------------------------------

PM_DELIVERED_AT = "2019-11-05T16:33:54.9070259Z"

# fixture -> (provider_event_id, kind, bounce_type, message_id, recipient, occurred_at, reason, url)
PM_FIXTURES: dict[str, tuple[Any, ...]] = {
    "bounce__hard": (
        f"Bounce:883953f4-6105-42a2-a16a-77a8eac79483:john@example.com:{PM_DELIVERED_AT}:4323372036854775807",
        "bounced",
        "hard",
        "lma-msg-0201",
        "john@example.com",
        utc(2019, 11, 5, 16, 33, 54, 907025),
        "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        None,
    ),
    "bounce__soft": (
        "Bounce:883953f4-6105-42a2-a16a-77a8eac79484:jane@example.com:2014-08-01T13:28:10.2735393-04:00"
        ":4323372036854775808",
        "bounced",
        "soft",
        "883953f4-6105-42a2-a16a-77a8eac79484",
        "jane@example.com",
        utc(2014, 8, 1, 17, 28, 10, 273539),
        "smtp;452 4.2.2 The email account that you tried to reach is over quota.",
        None,
    ),
    "bounce__transient": (
        "Bounce:883953f4-6105-42a2-a16a-77a8eac79485:jane@example.com:2019-11-05T17:00:00.0000000Z"
        ":4323372036854775809",
        "deferred",
        None,
        "883953f4-6105-42a2-a16a-77a8eac79485",
        "jane@example.com",
        utc(2019, 11, 5, 17, 0, 0),
        "The server could not temporarily deliver your message (ex: Message is delayed due to network troubles).",
        None,
    ),
    "click__ok": (
        "Click:00000000-0000-0000-0000-000000000004:john@example.com:2017-10-25T15:21:11.0000000Z",
        "clicked",
        None,
        "00000000-0000-0000-0000-000000000004",
        "john@example.com",
        utc(2017, 10, 25, 15, 21, 11),
        None,
        "https://example.com/pricing",
    ),
    "delivery__ok": (
        f"Delivery:00000000-0000-0000-0000-000000000001:john@example.com:{PM_DELIVERED_AT}",
        "delivered",
        None,
        "lma-msg-0200",
        "john@example.com",
        utc(2019, 11, 5, 16, 33, 54, 907025),
        None,
        None,
    ),
    "open__first": (
        f"Open:00000000-0000-0000-0000-000000000003:john@example.com:{PM_DELIVERED_AT}",
        "opened",
        None,
        "lma-msg-0203",
        "john@example.com",
        utc(2019, 11, 5, 16, 33, 54, 907025),
        None,
        None,
    ),
    "open__repeat": (
        "Open:00000000-0000-0000-0000-000000000003:john@example.com:2019-11-06T09:12:01.1000000Z",
        "opened",
        None,
        "lma-msg-0203",
        "john@example.com",
        utc(2019, 11, 6, 9, 12, 1, 100000),
        None,
        None,
    ),
    "spam_complaint__ok": (
        f"SpamComplaint:00000000-0000-0000-0000-000000000002:john@example.com:{PM_DELIVERED_AT}:42",
        "complained",
        None,
        "lma-msg-0202",
        "john@example.com",
        utc(2019, 11, 5, 16, 33, 54, 907025),
        None,
        None,
    ),
    "subscription_change__hard_bounce": (
        "SubscriptionChange:883953f4-6105-42a2-a16a-77a8eac79491:bounced-address@wildbit.com"
        ":2020-02-01T10:53:34.416071Z",
        "bounced",
        "hard",
        "883953f4-6105-42a2-a16a-77a8eac79491",
        "bounced-address@wildbit.com",
        utc(2020, 2, 1, 10, 53, 34, 416071),
        "HardBounce",
        None,
    ),
    "subscription_change__reactivated": (
        "SubscriptionChange:883953f4-6105-42a2-a16a-77a8eac79490:unsubscriber@example.com"
        ":2020-02-03T08:00:00.000000Z",
        "unknown",
        None,
        "883953f4-6105-42a2-a16a-77a8eac79490",
        "unsubscriber@example.com",
        utc(2020, 2, 3, 8, 0, 0),
        None,
        None,
    ),
    "subscription_change__unsubscribe": (
        "SubscriptionChange:883953f4-6105-42a2-a16a-77a8eac79490:unsubscriber@example.com"
        ":2020-02-01T10:53:34.416071Z",
        "unsubscribed",
        None,
        "lma-msg-0204",
        "unsubscriber@example.com",
        utc(2020, 2, 1, 10, 53, 34, 416071),
        None,
        None,
    ),
}


def test_postmark_every_fixture_is_covered() -> None:
    assert fixture_names("postmark") == sorted([*PM_FIXTURES, "unknown__future_record"])


@pytest.mark.parametrize("name", sorted(PM_FIXTURES))
def test_postmark_fixture_parses(name: str) -> None:
    document = load_fixture("postmark", name)
    event = only(postmark.parse(json_body(document), "application/json"))
    got = (
        event.provider_event_id,
        event.kind,
        event.bounce_type,
        event.message_id,
        event.recipient,
        event.occurred_at,
        event.reason,
        event.url,
    )
    assert got == PM_FIXTURES[name]
    assert event.raw_type == document["RecordType"]
    assert event.payload == document


def test_postmark_retry_dedupes_but_a_second_open_does_not() -> None:
    body = json_body(load_fixture("postmark", "open__first"))
    first, retry = only(postmark.parse(body, None)), only(postmark.parse(body, None))
    second_open = only(postmark.parse(json_body(load_fixture("postmark", "open__repeat")), None))
    assert retry.provider_event_id == first.provider_event_id
    assert second_open.provider_event_id != first.provider_event_id
    assert second_open.message_id == first.message_id


def test_postmark_same_message_to_two_recipients_is_two_events() -> None:
    delivery = load_fixture("postmark", "delivery__ok")
    to_john = only(postmark.parse(json_body(delivery), None))
    to_jane = only(postmark.parse(json_body(dict(delivery, Recipient="jane@example.com")), None))
    assert to_john.provider_event_id != to_jane.provider_event_id


def test_postmark_unknown_record_type_is_stored_as_unknown_with_a_stable_id() -> None:
    document = load_fixture("postmark", "unknown__future_record")
    event = only(postmark.parse(json_body(document), None))
    again = only(postmark.parse(json_body(document), None))
    other = only(postmark.parse(json_body(dict(document, Recipient="jane@example.com")), None))
    assert (event.kind, event.raw_type, event.recipient) == ("unknown", "Quarantine", "john@example.com")
    assert event.provider_event_id.startswith("sha256:")
    assert len(event.provider_event_id) == len("sha256:") + 64
    assert again.provider_event_id == event.provider_event_id
    assert other.provider_event_id != event.provider_event_id


def test_postmark_unknown_record_type_keeps_a_known_timestamp_field() -> None:
    document = dict(load_fixture("postmark", "unknown__future_record"), ReceivedAt="2024-01-02T03:04:05Z")
    event = only(postmark.parse(json_body(document), None))
    assert event.occurred_at == utc(2024, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("bounce_type", "expected"),
    [
        ("HardBounce", ("bounced", "hard")),
        ("BadEmailAddress", ("bounced", "hard")),
        ("SoftBounce", ("bounced", "soft")),
        ("Blocked", ("bounced", "soft")),
        ("DMARCPolicy", ("bounced", "soft")),
        ("SpamNotification", ("bounced", "soft")),
        ("VirusNotification", ("bounced", "soft")),
        ("Transient", ("deferred", None)),
        ("DnsError", ("deferred", None)),
        ("SpamComplaint", ("complained", None)),
        ("Unsubscribe", ("unsubscribed", None)),
        ("ManuallyDeactivated", ("dropped", None)),
        ("SMTPApiError", ("dropped", None)),
        ("TemplateRenderingFailed", ("dropped", None)),
        ("AutoResponder", ("unknown", None)),
        ("AddressChange", ("unknown", None)),
        ("ChallengeVerification", ("unknown", None)),
        ("Subscribe", ("unknown", None)),
        ("Unknown", ("unknown", None)),
        ("SomethingNew", ("unknown", None)),
    ],
)
def test_postmark_bounce_type_decides_the_kind(bounce_type: str, expected: tuple[str, str | None]) -> None:
    document = dict(load_fixture("postmark", "bounce__hard"), Type=bounce_type)
    event = only(postmark.parse(json_body(document), None))
    assert (event.kind, event.bounce_type) == expected


def _pm(name: str, **changes: Any) -> bytes:
    document = dict(load_fixture("postmark", name))
    for field, value in changes.items():
        if value is None:
            document.pop(field)
        else:
            document[field] = value
    return json_body(document)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<xml/>", "body is not JSON"),
        (json_body([load_fixture("postmark", "delivery__ok")]), "one event per request"),
        (_pm("delivery__ok", RecordType=None), "^RecordType missing or not a string$"),
        (_pm("delivery__ok", RecordType=7), "^RecordType missing or not a string$"),
        (_pm("bounce__hard", BouncedAt=None), "^BouncedAt: missing$"),
        (_pm("open__first", ReceivedAt="last tuesday"), "^ReceivedAt: not an ISO 8601 date-time"),
        (_pm("delivery__ok", MessageID=None, Recipient=None), "^MessageID missing$"),
    ],
)
def test_postmark_malformed_body_is_a_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message):
        postmark.parse(body, "application/json")


# --- every provider ------------------------------------------------------------------------------------


def _all_fixture_events() -> list[tuple[str, str, Any]]:
    cases: list[tuple[str, str, Any]] = []
    for provider in EMAIL_PROVIDERS:
        for name in fixture_names(provider):
            document = load_fixture(provider, name)
            events = document if provider == "sendgrid" else [document]
            cases.extend((provider, name, event) for event in events)
    return cases


def _body(provider: str, document: Any) -> bytes:
    if provider == "sendgrid":
        return json_body([document])
    if provider == "mailgun":
        return json_body({"event-data": document})
    return json_body(document)


@pytest.mark.parametrize(("provider", "name", "document"), _all_fixture_events())
def test_every_fixture_event_is_normalized(provider: str, name: str, document: Any) -> None:
    event = only(get_provider(provider).parse(_body(provider, document), "application/json"))
    assert event.occurred_at.utcoffset() == dt.timedelta(0)
    assert event.recipient is not None
    assert event.recipient == event.recipient.lower()
    assert event.payload == document
    assert 0 < len(event.provider_event_id) <= 255
    assert event.message_id is None or not event.message_id.startswith("<")
    assert json.loads(json.dumps(event.payload)) == document


@pytest.mark.parametrize("provider", [sendgrid, mailgun, postmark])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"NaN", "NaN is not a JSON number"),
        (b"-Infinity", "-Infinity is not a JSON number"),
        (b'"bounced\\u0000"', r"NUL character \(\\u0000\)"),
    ],
)
def test_what_jsonb_cannot_store_is_a_payload_error_for_every_provider(
    provider: Any, value: bytes, message: str
) -> None:
    """Refused with a 400 before the flush, instead of failing the commit shared with other deliveries."""
    body = b'[{"event": "delivered", "sg_event_id": "e1", "timestamp": 1700000000, "x": ' + value + b"}]"
    if provider is not sendgrid:
        body = b'{"RecordType": "Delivery", "event-data": {"event": "delivered"}, "x": ' + value + b"}"
    with pytest.raises(WebhookPayloadError, match=message):
        provider.parse(body, "application/json")
