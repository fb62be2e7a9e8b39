"""Where an outbound workflow POST may go: a guard against server-side request forgery.

A workflow URL is checked when it is saved and again on every send:

- the scheme is ``http`` or ``https``, with a host and no user info;
- every address the host resolves to is a public (global unicast) address. Refused: loopback, private
  (RFC 1918, unique-local ``fc00::/7``), shared (``100.64.0.0/10``), link-local (``169.254.0.0/16`` with cloud
  metadata endpoints, ``fe80::/10``), multicast, reserved, unspecified (``0.0.0.0``, ``::``), broadcast,
  and IPv6 forms embedding such an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
  6to4 ``2002::/16``);
- an organization that runs n8n on its own network may allow **self-hosted targets** (the organization
  setting ``allow_private_workflow_targets`` or the n8n integration's ``allow_private_targets``): then
  loopback, private, shared and unique-local addresses are allowed, and link-local, multicast, reserved,
  unspecified and broadcast addresses are still refused.

At send time the check lives in the HTTP client's resolver (:class:`GuardedResolver`): the client connects
to exactly the addresses that were checked, so a DNS answer that changes between check and connect (DNS
rebinding) cannot swap the target. Redirects are never followed (see :mod:`lma_bot.workflows.dispatch`).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from lma_bot.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED: Final = ipaddress.ip_network("100.64.0.0/10")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR: Final = ipaddress.ip_network("2002::/16")
_BROADCAST: Final = ipaddress.ip_address("255.255.255.255")
#: Classes a self-hosted n8n may live in (only when the organization allows it).
SELF_HOSTED_CLASSES: Final = frozenset({"loopback", "private", "shared"})


class TargetRefused(InvalidInput):
    """The URL may not be called: its scheme, or an address its host resolves to."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="url")


@dataclass(frozen=True)
class TargetPolicy:
    allow_self_hosted: bool = False


def address_class(address: IPAddress) -> str | None:
    """Why ``address`` is not a public target (``"loopback"``, ``"private"``, ...), or None if it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address in _SIX_TO_FOUR:
            embedded = address.sixtofour
        if embedded is not None:
            inner = address_class(embedded)
            return inner if inner is not None else None
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address == _BROADCAST:
        return "broadcast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared"
    if address.is_private:
        # is_private also covers documentation/benchmark ranges; those are reserved, not someone's n8n
        if isinstance(address, ipaddress.IPv6Address) and address not in ipaddress.ip_network("fc00::/7"):
            return "reserved"
        if isinstance(address, ipaddress.IPv4Address) and not any(
            address in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
        ):
            return "reserved"
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def check_address(address: IPAddress | str, policy: TargetPolicy, *, host: str | None = None) -> None:
    """Raise :class:`TargetRefused` unless ``policy`` lets a workflow POST go to ``address``."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    kind = address_class(ip)
    if kind is None:
        return
    if policy.allow_self_hosted and kind in SELF_HOSTED_CLASSES:
        return
    named = f"{host} resolves to {ip}" if host and host != str(ip) else str(ip)
    hint = "; allow a self-hosted n8n for this organization to use it" if kind in SELF_HOSTED_CLASSES else ""
    raise TargetRefused(f"refused target: {named} is a {kind} address{hint}")


@dataclass(frozen=True)
class ParsedTarget:
    url: str
    scheme: str
    host: str
    port: int
    literal: IPAddress | None  # the host, when it is an IP address


def parse_url(url: str) -> ParsedTarget:
    """Syntax checks only (no DNS): http(s), a host, no credentials, a sane length."""
    text = (url or "").strip()
    if not text:
        raise TargetRefused("the workflow URL is empty")
    if len(text) > 2000:
        raise TargetRefused("the workflow URL is longer than 2000 characters")
    try:
        parts: SplitResult = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused(f"refused target: scheme {scheme or '(none)'!r}; use http or https")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("the workflow URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the workflow URL must not carry credentials; n8n verifies our signature")
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        if host.isdigit() or host.replace(".", "").isdigit() or host.lower().startswith("0x"):
            # 2130706433, 127.1, 0x7f.1: numeric forms some resolvers read as IPv4 addresses
            raise TargetRefused(
                f"refused target: {host!r} is not a dotted-quad address or a hostname"
            ) from None
    return ParsedTarget(
        url=text, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), literal=literal
    )


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default and refuses the host if any of its addresses is not allowed; the
    connector then connects only to the addresses returned here (the checked ones)."""

    def __init__(self, policy: TargetPolicy, base: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._base = base or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            results = await self._base.resolve(host, port, family)
        except OSError as exc:
            raise TargetRefused(f"cannot resolve {host}: {exc}") from None
        if not results:
            raise TargetRefused(f"{host} has no address")
        for result in results:
            check_address(result["host"], self.policy, host=host)
        return results

    async def close(self) -> None:
        await self._base.close()


async def check_url(url: str, policy: TargetPolicy, resolver: AbstractResolver | None = None) -> ParsedTarget:
    """Full check (syntax and DNS) of a URL; used when a workflow is saved and before each send."""
    target = parse_url(url)
    if target.literal is not None:
        check_address(target.literal, policy)
        return target
    guard = GuardedResolver(policy, resolver)
    try:
        await guard.resolve(target.host, target.port, socket.AF_UNSPEC)
    finally:
        if resolver is None:
            await guard.close()
    return target
