"""``lma-bot workflows add|list`` in-process against the test database: bad input is one line, exit 2,
nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from tests.support import new_org
from tests.test_cli import cli_env, run_cli  # noqa: F401 (fixture)
from tests.webhook_env import KEYS, new_integration

URL = "http://127.0.0.1:5678/webhook/lead-flow"


async def _count(owner: AsyncEngine) -> int:
    async with owner.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM workflows"))).scalar_one())


@pytest.fixture
async def org(cli_env: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> int:  # noqa: F811
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", KEYS)
    org_id = await new_org(db)
    await new_integration(db, org_id, "n8n", allow_private_targets="true")
    return org_id


async def test_add_and_list(org: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await run_cli(
        capsys, "workflows", "add", "--org", str(org), "--name", "Qualified to CRM", "--trigger",
        "status_changed", "--url", URL, "--conditions", '{"statuses": ["qualified"]}', "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    created = json.loads(out)
    assert created["trigger"] == "status_changed"
    assert created["conditions"] == {"statuses": ["qualified"]}
    assert created["n8n_workflow_id"] == "lead-flow"
    code, out, err = await run_cli(capsys, "workflows", "list", "--org", str(org), "--json")
    assert (code, err) == (0, "")
    [listed] = json.loads(out)
    assert (listed["id"], listed["name"], listed["is_active"]) == (created["id"], "Qualified to CRM", True)
    assert listed["url_host"] == "127.0.0.1:5678"
    code, out, err = await run_cli(capsys, "workflows", "list", "--org", str(org))
    assert code == 0
    assert "Qualified to CRM\tstatus_changed\tactive" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--trigger", "lead_updated", "--url", URL], "unknown trigger 'lead_updated'"),
        (["--trigger", "lead_created", "--url", "ftp://x/y"], "scheme 'ftp'"),
        (["--trigger", "lead_created", "--url", URL, "--conditions", "{nope"], "--conditions is not JSON"),
        (["--trigger", "lead_created", "--url", URL, "--conditions", "[1]"], "must be a JSON object"),
        (
            ["--trigger", "lead_created", "--url", URL, "--conditions", '{"statuses": "won"}'],
            "trigger_conditions.statuses: 'won' is not of type 'array'",
        ),
        (["--trigger", "score_threshold", "--url", URL], "needs one"),
        (["--trigger", "lead_created", "--url", "http://169.254.169.254/latest"], "link-local address"),
    ],
)
async def test_bad_input_is_one_line_exit_2_nothing_written(
    org: int, capsys: pytest.CaptureFixture[str], owner_engine: AsyncEngine, argv: list[str], message: str
) -> None:
    code, out, err = await run_cli(capsys, "workflows", "add", "--org", str(org), "--name", "x", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err
    assert await _count(owner_engine) == 0


async def test_loopback_refused_without_self_hosted_and_no_integration(
    cli_env: Path,  # noqa: F811
    db: Database,
    capsys: pytest.CaptureFixture[str],
    owner_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", KEYS)
    org_id = await new_org(db)
    args = [
        "workflows",
        "add",
        "--org",
        str(org_id),
        "--name",
        "x",
        "--trigger",
        "lead_created",
        "--url",
        URL,
    ]
    code, _, err = await run_cli(capsys, *args)
    assert code == 2
    assert "no n8n integration" in err
    await new_integration(db, org_id, "n8n")
    code, _, err = await run_cli(capsys, *args)
    assert code == 2
    assert "127.0.0.1 is a loopback address" in err
    assert await _count(owner_engine) == 0


async def test_tenancy_list_shows_only_that_org(
    org: int, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    other = await new_org(db)
    await run_cli(
        capsys,
        "workflows",
        "add",
        "--org",
        str(org),
        "--name",
        "A",
        "--trigger",
        "lead_created",
        "--url",
        URL,
    )
    code, out, _ = await run_cli(capsys, "workflows", "list", "--org", str(other), "--json")
    assert (code, json.loads(out)) == (0, [])
