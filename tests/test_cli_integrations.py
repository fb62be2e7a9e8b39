"""``lma-bot integrations add``, ``keys rotate`` and ``webhooks replay`` in-process against the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.crypto import SecretBox
from lma_bot.db import Database
from lma_bot.email.outbox import organization_smtp
from lma_bot.integrations.service import key_hash
from tests.support import new_org
from tests.test_cli import cli_env, run_cli  # noqa: F401 (fixture)

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


async def _secrets(owner: AsyncEngine, org: int) -> list[str]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text("SELECT encrypted_secrets FROM integrations WHERE organization_id = :o ORDER BY id"),
            {"o": org},
        )
        return [str(r[0]) for r in rows]


async def test_integrations_add_prints_url_and_generated_secret_once(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    owner_engine: AsyncEngine,
) -> None:
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", OLD)
    monkeypatch.setenv("LMA_PUBLIC_URL", "https://bot.acme.test/")
    org = await new_org(db)
    code, out, err = await run_cli(
        capsys, "integrations", "add", "--org", str(org), "--provider", "n8n", "--json"
    )
    assert (code, err) == (0, "")
    created = json.loads(out)
    assert created["webhook_url"].startswith("https://bot.acme.test/webhooks/n8n/")
    key = created["webhook_url"].rsplit("/", 1)[1]
    secret = created["generated_secrets"]["webhook_secret"]
    assert len(key) >= 40
    assert len(secret) >= 40
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT webhook_key_hash, encrypted_secrets, provider_name FROM integrations WHERE id = :i"
                ),
                {"i": created["id"]},
            )
        ).one()
    assert row[0] == key_hash(key)
    assert secret not in row[1]
    assert key not in row[1]
    assert SecretBox([OLD]).decrypt_json(row[1]) == {"webhook_secret": secret}
    assert await db.resolve_webhook_key(key_hash(key)) == (org, created["id"])

    code, out, _ = await run_cli(
        capsys,
        "integrations",
        "add",
        "--org",
        str(org),
        "--provider",
        "mailgun",
        "--set",
        "signing_key=k-123",
    )
    assert code == 0
    assert "webhook URL: https://bot.acme.test/webhooks/email/mailgun/" in out
    assert "k-123" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--provider", "sendgrid"], "sendgrid needs --set verification_key=..."),
        (["--provider", "n8n", "--set", "oops"], "--set 'oops': expected KEY=VALUE"),
        (
            ["--provider", "n8n", "--set", "allow_private_targets=maybe"],
            "allow_private_targets: expected true",
        ),
        (["--provider", "smtp"], "smtp needs --set url=smtp://user:pass@host:587"),
        (["--provider", "smtp", "--set", "url=https://mail.acme.test"], "url: expected smtp://"),
        (
            ["--provider", "smtp", "--set", "host=mail.acme.test", "--set", "port=99999"],
            "port: expected a number",
        ),
        (
            ["--provider", "smtp", "--set", "host=mail.acme.test", "--set", "security=ssl"],
            "security: expected one of",
        ),
    ],
)
async def test_integrations_add_bad_input_is_one_line_exit_2(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    owner_engine: AsyncEngine,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", OLD)
    org = await new_org(db)
    code, out, err = await run_cli(capsys, "integrations", "add", "--org", str(org), *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err
    assert await _secrets(owner_engine, org) == []


async def test_keys_rotate_reencrypts_every_secret_under_the_newest_key(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    owner_engine: AsyncEngine,
) -> None:
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", OLD)
    orgs = [await new_org(db), await new_org(db)]
    for org in orgs:
        assert (await run_cli(capsys, "integrations", "add", "--org", str(org), "--provider", "postmark"))[
            0
        ] == 0
    async with owner_engine.begin() as conn:  # a deactivated organization is rotated too
        await conn.execute(text("UPDATE organizations SET is_active = false WHERE id = :o"), {"o": orgs[1]})
    before = [s for org in orgs for s in await _secrets(owner_engine, org)]
    plain = [SecretBox([OLD]).decrypt_json(s) for s in before]
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", f"{NEW},{OLD}")
    code, out, err = await run_cli(capsys, "keys", "rotate", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["integrations"] >= 2
    after = [s for org in orgs for s in await _secrets(owner_engine, org)]
    assert [SecretBox([NEW]).decrypt_json(s) for s in after] == plain  # the old key is no longer needed


async def test_webhooks_replay_unknown_event_is_exit_2(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = await run_cli(capsys, "webhooks", "replay", "999999")
    assert (code, out) == (2, "")
    assert err == "lma-bot: error: webhook event 999999 not found\n"


async def test_integrations_add_smtp_stores_the_password_encrypted_and_the_sender_reads_it(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    owner_engine: AsyncEngine,
) -> None:
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", OLD)
    org = await new_org(db)
    code, out, err = await run_cli(
        capsys,
        "integrations",
        "add",
        "--org",
        str(org),
        "--provider",
        "smtp",
        "--set",
        "url=smtp://acme:s3cret-pw@mail.acme.test:2525?from=sales@acme.test",
    )
    assert (code, err) == (0, "")
    assert "created smtp integration" in out
    assert "webhook URL" not in out  # outbound only: nothing calls us
    assert "s3cret-pw" not in out
    code, out, err = await run_cli(
        capsys,
        "integrations",
        "add",
        "--org",
        str(org),
        "--provider",
        "smtp",
        "--set",
        "host=relay.acme.test",
        "--set",
        "port=465",
        "--set",
        "security=TLS",
        "--set",
        "username=robot",
        "--set",
        "password=other-pw",
        "--json",
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["webhook_url"] is None
    stored = await _secrets(owner_engine, org)
    assert len(stored) == 2
    assert not any("s3cret-pw" in s or "other-pw" in s for s in stored)
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT configuration::text, webhook_key_hash FROM integrations "
                    "WHERE organization_id = :o ORDER BY id"
                ),
                {"o": org},
            )
        ).all()
    assert all("pw" not in str(r[0]) and r[1] is None for r in rows), rows
    # the newest active smtp integration is the one the outbound sender uses, password decrypted
    async with db.uow(org) as session:
        target = await organization_smtp(session, org_id=org, box=SecretBox([OLD]))
    assert target is not None
    assert (target.hostname, target.port, target.implicit_tls, target.username, target.password) == (
        "relay.acme.test",
        465,
        True,
        "robot",
        "other-pw",
    )
    async with db.uow(org) as session:
        await session.execute(
            text(
                "UPDATE integrations SET status = 'inactive' WHERE provider_name = 'smtp' AND webhook_key_hash IS NULL AND configuration ? 'host'"
            )
        )
        target = await organization_smtp(session, org_id=org, box=SecretBox([OLD]))
    assert target is not None
    assert (target.hostname, target.port, target.password, target.sender) == (
        "mail.acme.test",
        2525,
        "s3cret-pw",
        "sales@acme.test",
    )
