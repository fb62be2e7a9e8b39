"""`lma-bot rescore --org ID` and the decay job."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from handlers.jobs import JOBS, JobContext
from handlers.jobs.scoring import decay
from lma_bot.config import load_settings
from lma_bot.db import Database
from lma_bot.redis import RedisClient, RedisKeys
from lma_bot.scoring.publish import read_score
from tests.support import new_org
from tests.test_cli import cli_env, run_cli  # noqa: F401 (fixture)
from tests.test_scoring import _check_invariant, _lead, _rule


async def test_rescore_cli_summary_and_bad_input(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    db: Database,
) -> None:
    org = await new_org(db)
    leads = [
        await _lead(db, org, email=f"l{i}@acme.test", source="web" if i % 2 else "ads") for i in range(5)
    ]
    await _rule(db, org, {"field": "source", "op": "eq", "value": "web"}, points=12)
    code, out, err = await run_cli(capsys, "rescore", "--org", str(org), "--json")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["leads"] == 5
    assert summary["changed"] == 2
    assert summary["history_rows"] == 2
    assert (await _check_invariant(db, org)) == {lead: 12 if i % 2 else 0 for i, lead in enumerate(leads)}
    code, out, err = await run_cli(capsys, "rescore", "--org", str(org))
    assert code == 0
    assert "0 scores changed" in out
    code, out, err = await run_cli(capsys, "rescore", "--org", "999999")
    assert (code, out) == (2, "")
    assert err == "lma-bot: error: no organization 999999\n"
    with pytest.raises(SystemExit) as exited:
        await run_cli(capsys, "rescore", "--org", "abc")
    assert exited.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


async def test_decay_job_runs_from_the_scheduler(db: Database, redis: tuple[RedisClient, RedisKeys]) -> None:
    assert "scoring.decay" in {job.name for job in JOBS}
    client, keys = redis
    org = await new_org(db)
    async with db.uow(org) as session:
        await session.execute(
            text("UPDATE organizations SET settings = :s"),
            {"s": json.dumps({"scoring": {"decay_points": 4, "decay_every_days": 1, "decay_floor": 0}})},
        )
    await _rule(db, org, {"field": "source", "op": "eq", "value": "web"}, points=10)
    lead = await _lead(db, org, email="a@acme.test", source="web")
    ctx = JobContext(settings=load_settings(), database=db, redis=client, keys=keys)
    assert await decay(ctx, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2, hours=1)) == 1
    assert (await _check_invariant(db, org))[lead] == 2
    stored = await read_score(client, keys, lead)
    assert stored is not None
    assert stored["score"] == 2
