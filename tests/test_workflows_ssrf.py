"""The SSRF guard: every refused address class (IPv4 and IPv6), schemes, numeric hosts, the resolver."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from lma_bot.errors import InvalidInput
from lma_bot.workflows.conditions import LeadFacts, Trigger, matches, validate_conditions
from lma_bot.workflows.ssrf import (
    GuardedResolver,
    TargetPolicy,
    TargetRefused,
    check_address,
    check_url,
    parse_url,
)

STRICT = TargetPolicy()
SELF_HOSTED = TargetPolicy(allow_self_hosted=True)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "shared"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.10", "reserved"),
        ("2001:db8::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::", "loopback"),
    ],
)
def test_refused_address_classes(address: str, kind: str) -> None:
    with pytest.raises(TargetRefused, match=f"is a {kind} address"):
        check_address(address, STRICT)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.0.0.5", "fd00::5", "::ffff:192.168.0.2", "100.64.1.1"]
)
def test_self_hosted_allows_loopback_and_private(address: str) -> None:
    check_address(address, SELF_HOSTED)


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fe80::1", "0.0.0.0", "224.0.0.1", "::ffff:169.254.169.254"],  # noqa: S104
)
def test_self_hosted_still_refuses_metadata_multicast_unspecified(address: str) -> None:
    with pytest.raises(TargetRefused):
        check_address(address, SELF_HOSTED)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    check_address(address, STRICT)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://n8n.acme.test/x", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://x/", "scheme 'gopher'"),
        ("n8n.acme.test/webhook", "scheme"),
        ("http:///nohost", "no host"),
        ("http://user:pw@n8n.acme.test/x", "credentials"),
        ("http://2130706433/x", "not a dotted-quad"),
        ("http://0x7f.1/x", "not a dotted-quad"),
        ("http://127.1/x", "not a dotted-quad"),
        ("", "empty"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(TargetRefused, match=message):
        parse_url(url)


class _Static(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_any_private_answer_refuses_the_host() -> None:
    with pytest.raises(TargetRefused, match=r"n8n\.acme\.test resolves to 10\.0\.0\.1"):
        await check_url("https://n8n.acme.test/webhook/x", STRICT, _Static("93.184.216.34", "10.0.0.1"))
    target = await check_url("https://n8n.acme.test/webhook/x", STRICT, _Static("93.184.216.34"))
    assert (target.host, target.port) == ("n8n.acme.test", 443)


async def test_guarded_resolver_returns_only_checked_addresses() -> None:
    resolver = GuardedResolver(STRICT, _Static("93.184.216.34"))
    assert [r["host"] for r in await resolver.resolve("n8n.acme.test", 443)] == ["93.184.216.34"]
    with pytest.raises(TargetRefused):
        await GuardedResolver(STRICT, _Static("127.0.0.1")).resolve("n8n.acme.test", 443)


def test_conditions_validate_with_clear_errors() -> None:
    with pytest.raises(
        InvalidInput, match=r"trigger_conditions\.statuses: 'qualified' is not of type 'array'"
    ):
        validate_conditions(Trigger.STATUS_CHANGED, {"statuses": "qualified"})
    with pytest.raises(InvalidInput, match="'colour' was unexpected"):
        validate_conditions(Trigger.LEAD_CREATED, {"colour": ["red"]})
    with pytest.raises(InvalidInput, match="score_threshold trigger needs one"):
        validate_conditions(Trigger.SCORE_THRESHOLD, {})
    with pytest.raises(InvalidInput, match="only for the status_changed trigger"):
        validate_conditions(Trigger.LEAD_CREATED, {"from_statuses": ["new"]})


def test_conditions_match() -> None:
    facts = LeadFacts(status="qualified", source="web", tags=["VIP", "q4"], score=85, previous_score=70)
    assert matches({}, facts)
    assert matches(
        {"statuses": ["qualified"], "sources": ["web"], "tags_any": ["vip"], "min_score": 80}, facts
    )
    assert not matches({"tags_all": ["vip", "emea"]}, facts)
    assert matches({"threshold": 80}, facts)
    assert not matches({"threshold": 60}, facts)  # already above before: no crossing
    assert not matches({"sources": ["referral"]}, facts)


def test_the_published_trigger_schema_is_current() -> None:
    import json
    from pathlib import Path

    from lma_bot.workflows.payloads import json_schema

    published = Path(__file__).resolve().parents[1] / "docs" / "n8n-trigger-v1.schema.json"
    assert json.loads(published.read_text()) == json_schema(), (
        "regenerate docs/n8n-trigger-v1.schema.json from lma_bot.workflows.payloads.json_schema()"
    )
