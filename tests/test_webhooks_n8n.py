"""``POST /webhooks/n8n/{key}`` over real HTTP: authentication, status codes, durability and idempotency,
execution updates and lead actions, replay, and a Postgres outage (503, then stored once)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import Workflow, WorkflowExecution
from lma_bot.webhooks import n8n
from lma_bot.webhooks.replay import replay_event
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.tcp_proxy import TcpProxy
from tests.support import new_org
from tests.webhook_env import Gateway, gateway, new_integration

SECRET_HEADER = n8n.SECRET_HEADER


def _body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


async def _lead(db: Database, org: int, email: str = "ann@acme.com", **fields: Any) -> int:
    async with db.uow(org) as session:
        lead = await create_lead(session, org_id=org, data=LeadCreate(email=email, **fields))
        return lead.id


async def _events(owner: AsyncEngine, org: int) -> list[tuple[Any, ...]]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT provider_event_id, status, error, attempts FROM webhook_events "
                "WHERE organization_id = :o ORDER BY id"
            ),
            {"o": org},
        )
        return [tuple(r) for r in rows]


@pytest.fixture
async def gw(test_database: ScratchDatabase, servers: Servers, db: Database) -> Any:
    async with gateway(test_database.owner_url, servers.redis_url) as g:
        yield g


def _status_update(lead_id: int, **changes: Any) -> dict[str, Any]:
    return {"version": 1, "type": "update_lead", "lead": {"id": lead_id}, "changes": changes}


async def test_header_auth_updates_the_lead_once_stored(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    secret = hook.generated_secrets["webhook_secret"]
    body = _body(_status_update(lead, company="Acme GmbH", tags=["Enriched"], custom_fields={"size": 40}))
    status, answer = await gw.post(hook, body, {SECRET_HEADER: secret})
    assert status == 200, answer
    assert (answer["accepted"], answer["processed"]) == (1, 1)
    async with db.uow(org) as session:
        row = (
            await session.execute(
                text("SELECT company, tags, custom_fields FROM leads WHERE id = :l"), {"l": lead}
            )
        ).one()
    assert tuple(row) == ("Acme GmbH", ["enriched"], {"size": 40})
    events = await _events(owner_engine, org)
    assert [e[1] for e in events] == ["processed"]


async def test_authentication_failures_are_401_and_store_nothing(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org, other = await new_org(db), await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    foreign = await new_integration(db, other, "n8n")
    secret = hook.generated_secrets["webhook_secret"]
    body = _body(_status_update(lead, company="Evil"))
    now = int(time.time())
    cases = {
        "no credentials": {},
        "wrong secret": {SECRET_HEADER: secret + "x"},
        "another tenant's secret": {SECRET_HEADER: foreign.generated_secrets["webhook_secret"]},
        "stale timestamp": {
            "X-LMA-Timestamp": str(now - 301),
            "X-LMA-Signature": n8n.sign(secret, now - 301, body),
        },
        "future timestamp": {
            "X-LMA-Timestamp": str(now + 301),
            "X-LMA-Signature": n8n.sign(secret, now + 301, body),
        },
        "abc timestamp": {"X-LMA-Timestamp": "abc", "X-LMA-Signature": n8n.sign(secret, now, body)},
        "garbage signature": {"X-LMA-Timestamp": str(now), "X-LMA-Signature": "v1=zzz, nonsense"},
        "signature of another body": {
            "X-LMA-Timestamp": str(now),
            "X-LMA-Signature": n8n.sign(secret, now, b"{}"),
        },
    }
    for name, headers in cases.items():
        status, answer = await gw.post(hook, body, headers)
        assert status == 401, name
        assert answer == {"error": "authentication failed"}, name
    assert await _events(owner_engine, org) == []
    async with db.uow(org) as session:
        company = (
            await session.execute(text("SELECT company FROM leads WHERE id = :l"), {"l": lead})
        ).scalar()
    assert company is None


async def test_hmac_signatures_and_rotation(gw: Gateway, db: Database) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n", webhook_secret="new-secret,old-secret")
    now = int(time.time())
    for i, secret in enumerate(("new-secret", "old-secret")):
        body = _body({**_status_update(lead, job_title=f"CTO {i}"), "event_id": f"e{i}"})
        headers = {"X-LMA-Timestamp": str(now), "X-LMA-Signature": n8n.sign(secret, now, body)}
        assert (await gw.post(hook, body, headers))[0] == 200, secret
    # The sender rotating: two signatures, one by a secret we no longer know.
    body = _body({**_status_update(lead, job_title="CEO"), "event_id": "e3"})
    both = f"{n8n.sign('retired', now, body)},{n8n.sign('new-secret', now, body)}"
    assert (await gw.post(hook, body, {"X-LMA-Timestamp": str(now), "X-LMA-Signature": both}))[0] == 200
    third = n8n.sign("retired", now, body)
    assert (await gw.post(hook, body, {"X-LMA-Timestamp": str(now), "X-LMA-Signature": third}))[0] == 401


async def test_unknown_key_and_wrong_route_are_404(gw: Gateway, db: Database) -> None:
    org = await new_org(db)
    hook = await new_integration(db, org, "n8n")
    secret = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    assert (await gw.post("/webhooks/n8n/not-a-key", b"{}", secret))[0] == 404
    key = hook.webhook_url.rsplit("/", 1)[1]
    assert (await gw.post(f"/webhooks/email/sendgrid/{key}", b"[]", secret))[0] == 404
    assert (await gw.post(f"/webhooks/email/sparkpost/{key}", b"[]", secret))[0] == 404


async def test_bodies_over_one_mib_are_413_with_or_without_content_length(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    big = b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert (await gw.post(hook, big, headers))[0] == 413

    async def chunks() -> Any:
        for i in range(0, len(big), 256 * 1024):
            yield big[i : i + 256 * 1024]

    async with gw.http.post(gw.url(hook), data=chunks(), headers=headers) as response:
        assert response.status == 413
        assert "Content-Length" not in response.request_info.headers
    assert await _events(owner_engine, org) == []


async def test_malformed_after_authentication_is_400_with_the_reason(gw: Gateway, db: Database) -> None:
    org = await new_org(db)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    cases = {
        b"{not json": "body is not JSON",
        b"[1, 2]": "body must be a JSON object",
        _body({"type": "explode"}): "type: expected one of execution, update_lead",
        _body({"type": "update_lead", "lead": {"id": 1}, "changes": {}}): "changes: changes is empty",
        _body({"type": "set_status", "lead": {}, "status": "won"}): "lead: give the lead's id or its email",
        _body({"type": "create_lead", "lead": {"email": "nope"}}): "lead.email:",
        _body({"type": "execution", "execution": {"id": "9", "status": "done"}}): "execution.status:",
        _body({"type": "add_note", "lead": {"id": 1}, "note": {"content": "x"}, "extra": 1}): "extra:",
        # what jsonb cannot hold is refused here, never left to fail the commit shared with other requests
        b'{"type": "score_event", "lead": {"id": 1}, "event": {"name": "x", "properties": {"v": NaN}}}': (
            "body is not JSON: NaN is not a JSON number"
        ),
        b'{"type": "score_event", "lead": {"id": 1}, "event": {"name": "x", "properties": {"v": "a\\u0000"}}}': (
            "body holds a NUL character"
        ),
    }
    for body, message in cases.items():
        status, answer = await gw.post(hook, body, headers)
        assert status == 400, body
        assert answer["error"].startswith(message), (body, answer)


async def test_duplicates_concurrent_and_retried_are_stored_once(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    note = _body(
        {"type": "add_note", "lead": {"email": "ANN@acme.com"}, "note": {"content": "Opened pricing"}}
    )
    answers = await asyncio.gather(*(gw.post(hook, note, headers) for _ in range(5)))
    assert [s for s, _ in answers] == [200] * 5
    assert sorted(a["accepted"] for _, a in answers) == [0, 0, 0, 0, 1]
    # n8n retrying one callback three times within 2 s
    retried = _body(
        {"type": "score_event", "event_id": "n8n-42", "lead": {"id": lead}, "event": {"name": "demo_booked"}}
    )
    for _ in range(3):
        status, answer = await gw.post(hook, retried, headers)
        assert status == 200
        await asyncio.sleep(0.3)
    assert answer["status"] == "duplicate"
    assert len(await _events(owner_engine, org)) == 2
    async with db.uow(org) as session:
        notes = (await session.execute(text("SELECT count(*) FROM lead_notes"))).scalar()
        scored = (
            await session.execute(
                text("SELECT count(*) FROM activity_logs WHERE activity_type = 'event.demo_booked'")
            )
        ).scalar()
    assert (notes, scored) == (1, 1)


async def test_execution_updates_are_monotonic(gw: Gateway, db: Database, owner_engine: AsyncEngine) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    async with db.uow(org) as session:
        workflow = Workflow(organization_id=org, n8n_workflow_id="wf-1", name="Nurture")
        session.add(workflow)
        await session.flush()
        execution = WorkflowExecution(organization_id=org, workflow_id=workflow.id, lead_id=lead)
        session.add(execution)
        await session.flush()
        ours = execution.id

    async def update(status: str, **extra: Any) -> dict[str, Any]:
        info = {"id": "n8n-77", "status": status, "workflow_execution_id": ours, **extra}
        code, answer = await gw.post(hook, _body({"type": "execution", "execution": info}), headers)
        assert code == 200
        return answer

    assert (await update("running"))["processed"] == 1
    assert (await update("success", data={"emails_sent": 2}))["processed"] == 1
    late = await update("waiting")  # arrives after success: stored, changes nothing
    assert (late["accepted"], late["ignored"]) == (1, 1)
    assert (await update("running"))["status"] == "duplicate"  # same execution id + status as the first
    assert (await update("success"))["status"] == "duplicate"
    async with db.uow(org) as session:
        row = await session.get(WorkflowExecution, (org, ours))
        assert row is not None
        assert (row.status, row.n8n_execution_id, row.output_data) == (
            "success",
            "n8n-77",
            {"emails_sent": 2},
        )
        assert row.finished_at is not None
    # An execution n8n started on its own, named by workflow: recorded against that workflow.
    info = {
        "id": "n8n-78",
        "status": "error",
        "workflow_id": "wf-1",
        "error": "SMTP down",
        "lead": {"id": lead},
    }
    code, answer = await gw.post(hook, _body({"type": "execution", "execution": info}), headers)
    assert (code, answer["processed"]) == (200, 1)


async def test_failed_processing_is_stored_answered_and_replayable(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    body = _body({"type": "set_status", "lead": {"email": "later@acme.com"}, "status": "contacted"})
    status, answer = await gw.post(hook, body, headers)
    assert status == 200
    assert answer["failed"] == 1
    assert answer["errors"][0]["error"] == "no lead with the email later@acme.com"
    event_id = answer["event_ids"][0]
    assert [e[1:] for e in await _events(owner_engine, org)] == [
        ("failed", "no lead with the email later@acme.com", 1)
    ]
    lead = await _lead(db, org, email="later@acme.com")
    result = await replay_event(db, event_id)
    assert (result.processed, result.failed) == (1, 0)
    assert [e[1:] for e in await _events(owner_engine, org)] == [("processed", None, 2)]
    async with db.uow(org) as session:
        assert (
            await session.execute(text("SELECT status FROM leads WHERE id = :l"), {"l": lead})
        ).scalar() == "contacted"
    again = await replay_event(db, event_id)
    assert again.duplicates == 1


async def test_postgres_outage_is_503_and_the_retry_is_stored_once(
    test_database: ScratchDatabase, servers: Servers, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    url = make_url(test_database.owner_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    body = _body(
        {"type": "score_event", "event_id": "outage-1", "lead": {"id": lead}, "event": {"name": "visit"}}
    )
    try:
        async with gateway(via_proxy, servers.redis_url) as gw:
            assert (await gw.post(hook, _body({**json.loads(body), "event_id": "warm"}), headers))[0] == 200
            await proxy.stop()
            status, answer = await gw.post(hook, body, headers)
            assert status == 503, answer
            assert answer == {"error": "storage unavailable, retry later"}
            await proxy.start()
            for _ in range(2):
                assert (await gw.post(hook, body, headers))[0] == 200
    finally:
        await proxy.stop()
    assert [e[0] for e in await _events(owner_engine, org)] == ["warm", "outage-1"]


def test_the_published_json_schema_is_current() -> None:
    from pathlib import Path

    published = Path(__file__).resolve().parents[1] / "docs" / "n8n-callback-v1.schema.json"
    assert json.loads(published.read_text()) == n8n.json_schema(), (
        "regenerate: python -m lma_bot.webhooks.n8n"
    )
