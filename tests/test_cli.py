"""The operator CLI, in-process (``main(argv)``) against the test database: happy paths with ``--json``, and
every bad input answered with one line on stderr, exit code 2, and nothing written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.entrypoints.cli import main
from tests.conftest import ScratchDatabase, Servers
from tests.support import new_org

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    test_database: ScratchDatabase,
    servers: Servers,
    db: Database,
) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(("LMA_", "SLACK_", "SMTP_")) or name in ("DATABASE_URL", "REDIS_URL", "PORT"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", test_database.owner_url)
    monkeypatch.setenv("REDIS_URL", servers.redis_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    return tmp_path


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def _count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_orgs_create_and_users_add_print_json(
    cli_env: Path, capsys: pytest.CaptureFixture[str], db: Database
) -> None:
    code, out, err = await run_cli(
        capsys, "orgs", "create", "--name", "Acme", "--slack-team-id", "T0ACME", "--json"
    )
    assert (code, err) == (0, "")
    org = json.loads(out)
    assert org["name"] == "Acme"
    assert org["slack_team_id"] == "T0ACME"
    assert await db.resolve_slack_team("T0ACME") == org["id"]

    code, out, err = await run_cli(
        capsys, "users", "add", "--org", str(org["id"]), "--email", "Ann@Example.COM", "--name", "Ann",
        "--role", "manager", "--slack-user-id", "U0ANN", "--timezone", "Europe/Berlin", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    user = json.loads(out)
    assert user | {"id": 0, "created_at": ""} == {
        "id": 0,
        "organization_id": org["id"],
        "email": "Ann@example.com",
        "name": "Ann",
        "role": "manager",
        "slack_user_id": "U0ANN",
        "timezone": "Europe/Berlin",
        "is_active": True,
        "created_at": "",
    }
    async with db.uow(org["id"]) as session:
        logged = (
            await session.execute(text("SELECT activity_type FROM activity_logs ORDER BY id"))
        ).scalars()
        assert list(logged) == ["organization.created", "user.added"]


async def test_human_output_without_json(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run_cli(capsys, "orgs", "create", "--name", "Globex")
    assert code == 0
    assert out.startswith("created organization ")
    assert "'Globex'" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["users", "add", "--org", "999999", "--email", "a@b.co", "--name", "A", "--role", "rep"],
            "lma-bot: error: organization 999999 not found",
        ),
        (
            ["users", "add", "--org", "{org}", "--email", "a@b.co", "--name", "A", "--role", "boss"],
            "lma-bot users add: error: argument --role: invalid choice: 'boss' (choose from 'admin', 'manager', 'rep')",
        ),
        (
            ["users", "add", "--org", "{org}", "--email", "a@b.co", "--name", "A", "--role", "rep",
             "--timezone", "Mars/Olympus"],
            "lma-bot: error: timezone: unknown time zone 'Mars/Olympus' (use an IANA name like Europe/Berlin)",
        ),
        (
            ["users", "add", "--org", "{org}", "--email", "not-an-email", "--name", "A", "--role", "rep"],
            "lma-bot: error: email: not a valid email address: 'not-an-email'",
        ),
        (
            ["users", "add", "--org", "{org}", "--email", "a@b.co", "--name", "A", "--role", "rep",
             "--slack-user-id", "nope"],
            "lma-bot: error: slack_user_id: not a Slack user id: 'nope' (looks like U0123ABCD)",
        ),
        (
            ["users", "add", "--org", "0", "--email", "a@b.co", "--name", "A", "--role", "rep"],
            "lma-bot users add: error: argument --org: expected a positive integer, got '0'",
        ),
        (
            ["orgs", "create", "--name", "   "],
            "lma-bot: error: name: String should have at least 1 character",
        ),
        (
            ["orgs", "create", "--name", "X", "--slack-team-id", "acme"],
            "lma-bot: error: slack_team_id: not a Slack team id: 'acme' (looks like T0123ABCD)",
        ),
        (["orgs"], "lma-bot orgs: error: the following arguments are required: ACTION"),
    ],
)  # fmt: skip
async def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    db: Database,
    owner_engine: AsyncEngine,
    argv: list[str],
    message: str,
) -> None:
    org = await new_org(db)
    before = await _count(
        owner_engine, "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM organizations)"
    )
    argv = [a.replace("{org}", str(org)) for a in argv]
    try:
        code, out, err = await run_cli(capsys, *argv)
    except SystemExit as exc:  # argparse exits from parse_args
        code, captured = int(exc.code or 0), capsys.readouterr()
        out, err = captured.out, captured.err
    assert code == 2
    assert out == ""
    assert err == message + "\n"
    after = await _count(
        owner_engine, "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM organizations)"
    )
    assert after == before


async def test_duplicates_are_refused(
    cli_env: Path, capsys: pytest.CaptureFixture[str], db: Database
) -> None:
    org = await new_org(db, slack_team_id="T0DUP")
    code, _, err = await run_cli(capsys, "orgs", "create", "--name", "Again", "--slack-team-id", "T0DUP")
    assert (code, err) == (2, "lma-bot: error: Slack team T0DUP is already set up as another organization\n")
    args = ["users", "add", "--org", str(org), "--email", "dup@example.com", "--name", "D", "--role", "rep"]
    assert (await run_cli(capsys, *args))[0] == 0
    code, _, err = await run_cli(capsys, *args[:4], "--email", "DUP@example.com", *args[6:])
    assert (code, err) == (
        2,
        f"lma-bot: error: a user with email DUP@example.com already exists in organization {org}\n",
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LMA_ENCRYPTION_KEYS", "not-a-key", "LMA_ENCRYPTION_KEYS: not a valid Fernet key"),
        (
            "LMA_ENCRYPTION_KEYS",
            "x5MAdXDCRh2EUumXV2w3n_qHlu8SxtAcFSivAOtuJcw=,bad",
            "LMA_ENCRYPTION_KEYS: not a valid Fernet key (key 2 of 2)",
        ),
        ("DATABASE_URL", "mysql://root@localhost/db", "DATABASE_URL: expected a postgresql:// URL, got scheme 'mysql'"),
        ("DATABASE_URL", "postgresql://localhost", "DATABASE_URL: the URL names no database (postgresql://user@host:5432/DBNAME)"),
        ("REDIS_URL", "http://localhost", "REDIS_URL: expected a redis://, rediss:// or unix:// URL, got scheme 'http'"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL: expected one of CRITICAL, ERROR, WARNING, INFO, DEBUG, got 'LOUD'"),
        ("PORT", "eighty", "PORT: Input should be a valid integer, unable to parse string as an integer"),
        ("SMTP_URL", "mail.example.com", "SMTP_URL: expected smtp://user:pass@host:587 or smtps://user:pass@host:465"),
        ("SLACK_API_URL", "slack", "SLACK_API_URL: expected an http(s):// URL, got 'slack'"),
    ],
)  # fmt: skip
async def test_bad_settings_name_the_variable(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = await run_cli(capsys, "orgs", "create", "--name", "Nope")
    assert (code, out, err) == (2, "", f"lma-bot: error: {message}\n")


async def test_settings_come_from_a_dotenv_file(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (cli_env / ".env").write_text("LMA_ENCRYPTION_KEYS=from-dotenv\n")
    code, _, err = await run_cli(capsys, "orgs", "create", "--name", "Nope")
    assert (code, err) == (2, "lma-bot: error: LMA_ENCRYPTION_KEYS: not a valid Fernet key\n")


async def test_serve_needs_encryption_keys_outside_the_embedded_default(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await run_cli(capsys, "serve")
    assert (code, err) == (2, "lma-bot: error: LMA_ENCRYPTION_KEYS: required but not set\n")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SLACK_SIGNING_SECRET": "s"},
            "SLACK_BOT_TOKEN: required (single workspace), or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth)",
        ),
        (
            {"SLACK_SIGNING_SECRET": "s", "SLACK_CLIENT_ID": "1.2"},
            "SLACK_CLIENT_SECRET: required with the other one for multi-workspace OAuth",
        ),
    ],
)
async def test_serve_refuses_half_configured_slack(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", "x5MAdXDCRh2EUumXV2w3n_qHlu8SxtAcFSivAOtuJcw=")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = await run_cli(capsys, "serve", "--port", "1")
    assert (code, err) == (2, f"lma-bot: error: {message}\n")


async def test_migrate_is_idempotent_and_reports_the_role(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await run_cli(capsys, "migrate", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"migrated": "head", "runtime_role": "lma_app", "role_created": False}


def test_installed_command_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMA_")}
    env["LMA_ENCRYPTION_KEYS"] = "garbage"
    result = subprocess.run(
        [sys.executable, "-m", "lma_bot.entrypoints.cli", "orgs", "create", "--name", "X"],
        cwd=tmp_path, env=env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "lma-bot: error: LMA_ENCRYPTION_KEYS: not a valid Fernet key\n"
    assert result.stdout == ""
