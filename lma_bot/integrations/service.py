"""Integrations: n8n and the email providers, each with an unguessable webhook key and encrypted secrets, and
an organization's own outbound SMTP server.

The webhook key is shown once, at creation, inside the webhook URL; only its SHA-256 is stored, and the gateway
finds the integration by that hash. Secrets (shared secrets, signing keys, basic-auth and SMTP passwords, an SMTP
URL with its password) are stored only as one Fernet token (``integrations.encrypted_secrets``, a JSON object)
and never logged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.crypto import SecretBox
from lma_bot.email.smtp import SmtpTarget
from lma_bot.errors import InvalidInput, NotFound
from lma_bot.jsonschemas import validate_document
from lma_bot.models import Integration


@dataclass(frozen=True)
class ProviderSpec:
    integration_type: str
    route: str | None  # the webhook path segment(s) before the key; None: nothing calls us (outbound only)
    required: tuple[str, ...] = ()  # secrets the admin must supply with --set
    generated: tuple[str, ...] = ()  # secrets we generate
    display: str = ""


PROVIDERS: dict[str, ProviderSpec] = {
    "n8n": ProviderSpec("automation", "n8n", generated=("webhook_secret",), display="n8n"),
    "sendgrid": ProviderSpec(
        "email_provider", "email/sendgrid", required=("verification_key",), display="SendGrid"
    ),
    "mailgun": ProviderSpec("email_provider", "email/mailgun", required=("signing_key",), display="Mailgun"),
    "postmark": ProviderSpec(
        "email_provider",
        "email/postmark",
        generated=("basic_username", "basic_password"),
        display="Postmark",
    ),
    # Outbound mail through the organization's own server (see ``lma_bot.email.outbox.organization_smtp``):
    # ``--set url=smtp://user:pass@host:587?from=sales@acme.com``, or host/port/username/password/security/from.
    "smtp": ProviderSpec("email_provider", None, display="SMTP"),
}

#: ``--set`` keys that are secrets: encrypted, never echoed back except when generated.
SECRET_KEYS = frozenset(
    {
        "webhook_secret",
        "verification_key",
        "signing_key",
        "basic_username",
        "basic_password",
        "api_key",
        "password",
        "smtp_url",
    }
)
SMTP_SECURITY = ("auto", "starttls", "tls")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def webhook_url(public_url: str, provider: str, key: str) -> str:
    return f"{public_url.rstrip('/')}/webhooks/{PROVIDERS[provider].route}/{key}"


@dataclass(frozen=True)
class CreatedIntegration:
    id: int
    organization_id: int
    provider: str
    webhook_url: str | None  # None for an outbound-only integration (smtp)
    generated_secrets: dict[str, str]


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """``["K=V", ...]`` from ``--set``; a malformed pair is an :class:`InvalidInput` naming it."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"--set {pair!r}: expected KEY=VALUE", field="set")
        result[key] = value
    return result


def _generate(name: str) -> str:
    if name == "basic_username":
        return "lma-" + secrets.token_hex(6)
    return secrets.token_urlsafe(32)


async def add_integration(
    session: AsyncSession,
    *,
    org_id: int,
    provider: str,
    settings: dict[str, str],
    box: SecretBox,
    public_url: str,
    actor_id: int | None = None,
) -> CreatedIntegration:
    spec = PROVIDERS.get(provider)
    if spec is None:
        raise InvalidInput(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}", field="provider")
    if provider == "smtp":
        settings = _smtp_settings(settings)
    secret_values = {k: v for k, v in settings.items() if k in SECRET_KEYS}
    configuration: dict[str, Any] = {k: v for k, v in settings.items() if k not in SECRET_KEYS}
    display_name = configuration.pop("display_name", None) or spec.display
    for name in spec.required:
        if not secret_values.get(name, "").strip():
            raise InvalidInput(f"{provider} needs --set {name}=... (from the provider's console)", field=name)
    generated = {name: _generate(name) for name in spec.generated if not secret_values.get(name)}
    secret_values |= generated
    if "allow_private_targets" in configuration:
        configuration["allow_private_targets"] = _boolean(configuration["allow_private_targets"])
    validate_document("integrations.configuration", configuration)
    key = secrets.token_urlsafe(32) if spec.route is not None else None
    integration = Integration(
        organization_id=org_id,
        integration_type=spec.integration_type,
        provider_name=provider,
        display_name=display_name,
        configuration=configuration,
        encrypted_secrets=box.encrypt_json(secret_values),
        webhook_key_hash=key_hash(key) if key is not None else None,
        status="active",
        created_by=actor_id,
    )
    session.add(integration)
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        activity_type="integration.created",
        entity_type="integration",
        entity_id=integration.id,
        after={"provider": provider, "configuration": configuration, "secrets": sorted(secret_values)},
    )
    return CreatedIntegration(
        id=integration.id,
        organization_id=org_id,
        provider=provider,
        webhook_url=webhook_url(public_url, provider, key) if key is not None else None,
        generated_secrets=generated,
    )


def _smtp_settings(settings: dict[str, str]) -> dict[str, str]:
    """An SMTP integration's ``--set`` pairs checked: either ``url`` (kept whole, encrypted, as ``smtp_url``)
    or ``host`` with optional ``port``, ``username``, ``password``, ``security`` and ``from``."""
    settings = dict(settings)
    url = settings.pop("url", None)
    if url is not None:
        try:
            SmtpTarget.from_url(url)
        except ValueError as exc:
            raise InvalidInput(f"url: {exc}", field="url") from None
        settings["smtp_url"] = url.strip()
        return settings
    if not settings.get("host", "").strip():
        raise InvalidInput(
            "smtp needs --set url=smtp://user:pass@host:587 (or --set host=... with port, username, password)",
            field="host",
        )
    port = settings.get("port")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise InvalidInput(f"port: expected a number from 1 to 65535, got {port!r}", field="port")
    security = settings.get("security", "auto").strip().lower()
    if security not in SMTP_SECURITY:
        raise InvalidInput(
            f"security: expected one of {', '.join(SMTP_SECURITY)}, got {security!r}", field="security"
        )
    settings["security"] = security
    return settings


def _boolean(value: object) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(
        f"allow_private_targets: expected true or false, got {value!r}", field="allow_private_targets"
    )


async def get_integration(session: AsyncSession, *, org_id: int, integration_id: int) -> Integration:
    row = await session.get(Integration, (org_id, integration_id))
    if row is None:
        raise NotFound(f"integration {integration_id} not found")
    return row


def integration_secrets(integration: Integration, box: SecretBox) -> dict[str, str]:
    if not integration.encrypted_secrets:
        return {}
    return {str(k): str(v) for k, v in box.decrypt_json(integration.encrypted_secrets).items()}


async def list_integrations(session: AsyncSession, *, org_id: int) -> list[Integration]:
    rows = await session.scalars(
        select(Integration).where(Integration.organization_id == org_id).order_by(Integration.id)
    )
    return list(rows)
