"""Group commit of webhook deliveries (``lma_bot.webhooks.batcher``) over real HTTP and a real database:
one transaction for many concurrent requests of several organizations, deferred processing, the sweeper for
rows left ``received``, duplicates and replayed nonces inside one batch, an outage answered 503 to every
waiter, and replay racing the worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.webhooks import GATEWAY
from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.webhooks import n8n
from lma_bot.webhooks.batcher import EventProcessor, IngestBatcher
from lma_bot.webhooks.replay import replay_event
from lma_bot.webhooks.service import (
    Delivery,
    Incoming,
    IngestResult,
    Outcome,
    load_events,
    process_many,
    store_many,
    store_many_driver,
)
from tests.conftest import ScratchDatabase, Servers
from tests.fakes import email_providers as ep
from tests.fakes.tcp_proxy import TcpProxy
from tests.support import new_org
from tests.webhook_env import Gateway, gateway, new_integration

SECRET_HEADER = n8n.SECRET_HEADER


def _score(lead: int, event_id: str, name: str = "visit") -> bytes:
    return json.dumps(
        {"type": "score_event", "event_id": event_id, "lead": {"id": lead}, "event": {"name": name}}
    ).encode()


async def _lead(db: Database, org: int, email: str = "ann@acme.com") -> int:
    async with db.uow(org) as session:
        return (await create_lead(session, org_id=org, data=LeadCreate(email=email))).id


async def _rows(owner: AsyncEngine, org: int) -> list[tuple[Any, ...]]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT provider_event_id, status, error, attempts FROM webhook_events "
                "WHERE organization_id = :o ORDER BY provider_event_id"
            ),
            {"o": org},
        )
        return [tuple(r) for r in rows]


async def _activity(owner: AsyncEngine, org: int, kind: str) -> int:
    async with owner.connect() as conn:
        result = await conn.execute(
            text("SELECT count(*) FROM activity_logs WHERE organization_id = :o AND activity_type = :t"),
            {"o": org, "t": kind},
        )
        return int(result.scalar_one())


def _batcher(gw: Gateway) -> IngestBatcher:
    return gw.server.app[GATEWAY].batcher


async def _metric(gw: Gateway, name: str) -> float:
    async with gw.http.get(gw.server.make_url("/metrics")) as response:
        body = await response.text()
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name))


@pytest.fixture
async def gw(test_database: ScratchDatabase, servers: Servers, db: Database) -> Any:
    async with gateway(test_database.owner_url, servers.redis_url) as g:
        yield g


async def test_concurrent_requests_of_two_organizations_share_commits_and_stay_apart(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    orgs = [await new_org(db), await new_org(db)]
    leads = [await _lead(db, org) for org in orgs]
    hooks = [await new_integration(db, org, "n8n") for org in orgs]
    before = await _metric(gw, "lma_webhook_flushes_total")
    posts = [
        gw.post(hook, _score(lead, f"e{i}"), {SECRET_HEADER: hook.generated_secrets["webhook_secret"]})
        for i in range(20)
        for hook, lead in zip(hooks, leads, strict=True)
    ]
    answers = await asyncio.gather(*posts)
    assert [status for status, _ in answers] == [200] * 40
    assert sum(answer["accepted"] for _, answer in answers) == 40
    flushes = await _metric(gw, "lma_webhook_flushes_total") - before
    assert 1 <= flushes < 40  # several requests per transaction
    await _batcher(gw).processor.drained()
    for org in orgs:
        rows = await _rows(owner_engine, org)
        assert sorted(r[0] for r in rows) == sorted(f"e{i}" for i in range(20))
        assert {r[1] for r in rows} == {"processed"}
        assert await _activity(owner_engine, org, "event.visit") == 20
    # each organization sees only its own events through RLS
    async with db.uow(orgs[0]) as session:
        seen = (await session.execute(text("SELECT DISTINCT organization_id FROM webhook_events"))).scalars()
        assert list(seen) == [orgs[0]]


async def test_deferred_processing_answers_received_then_processes_once(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    _batcher(gw).inline_limit = 0  # as when busy: store, commit, answer, then process
    failing = json.dumps(
        {"type": "set_status", "event_id": "bad", "lead": {"email": "nobody@acme.com"}, "status": "won"}
    ).encode()
    bodies = [_score(lead, f"d{i}") for i in range(10)] + [failing] + [_score(lead, "d0")] * 3
    answers = await asyncio.gather(*(gw.post(hook, body, headers) for body in bodies))
    assert [status for status, _ in answers] == [200] * 14
    assert sum(a["accepted"] for _, a in answers) == 11
    assert sum(a.get("received", 0) for _, a in answers) == 11
    assert sum(a["duplicates"] for _, a in answers) == 3
    await _batcher(gw).processor.drained()
    rows = {r[0]: r[1:] for r in await _rows(owner_engine, org)}
    assert len(rows) == 11
    assert rows["bad"] == ("failed", "no lead with the email nobody@acme.com", 1)
    assert {rows[f"d{i}"] for i in range(10)} == {("processed", None, 1)}
    assert await _activity(owner_engine, org, "event.visit") == 10  # the failure undid none of the others


async def test_rows_left_received_are_swept_once_by_concurrent_sweepers(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    events = [
        Incoming("score_event", f"s{i}", json.loads(_score(lead, f"s{i}", name="swept"))) for i in range(30)
    ]
    async with db.uow(org) as session:  # a process that committed, answered, and died before processing
        await store_many(session, org_id=org, deliveries=[Delivery(hook.id, "n8n", events)])
    sweepers = [EventProcessor(db, stale_after=dt.timedelta(0), chunk=7) for _ in range(3)]
    done = 0
    for _ in range(10):  # as three processes' sweepers, each pass; one losing a lock conflict leaves rows
        done += sum(await asyncio.gather(*(s.sweep() for s in sweepers)))
        if done == 30:
            break
    assert done == 30
    rows = await _rows(owner_engine, org)
    assert {r[1:] for r in rows} == {("processed", None, 1)}
    assert await _activity(owner_engine, org, "event.swept") == 30
    fresh = EventProcessor(db)  # default: only rows older than a minute
    assert await fresh.sweep() == 0


async def test_a_recent_received_row_is_left_to_its_own_worker(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    event = Incoming("score_event", "young", json.loads(_score(lead, "young")))
    async with db.uow(org) as session:
        await store_many(session, org_id=org, deliveries=[Delivery(hook.id, "n8n", [event])])
    assert await EventProcessor(db, stale_after=dt.timedelta(minutes=1)).sweep() == 0
    assert [r[1] for r in await _rows(owner_engine, org)] == ["received"]


async def test_replay_and_worker_race_on_a_received_event_process_it_once(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    event = Incoming("score_event", "raced", json.loads(_score(lead, "raced", name="raced")))
    async with db.uow(org) as session:
        stored = await store_many(session, org_id=org, deliveries=[Delivery(hook.id, "n8n", [event])])
    event_id = stored[0].new_ids[0]
    worker = EventProcessor(db)
    replayed, processed = await asyncio.gather(
        replay_event(db, event_id), worker.process(org, event_ids=[event_id])
    )
    assert replayed.processed + len(processed.event_ids) >= 1
    assert await _activity(owner_engine, org, "event.raced") == 1
    assert [r[1:] for r in await _rows(owner_engine, org)] == [("processed", None, 1)]


async def test_one_mailgun_token_on_two_events_in_one_batch_is_refused_once(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    hook = await new_integration(db, org, "mailgun", signing_key="mg-key")
    now = int(time.time())
    token = ep.mailgun_token()
    first, headers = ep.mailgun_request(ep.load_fixture("mailgun", "delivered__ok"), "mg-key", now, token)
    second, _ = ep.mailgun_request(ep.load_fixture("mailgun", "opened__ok"), "mg-key", now, token)
    answers = await asyncio.gather(
        gw.post(hook, first, headers), gw.post(hook, second, headers), gw.post(hook, first, headers)
    )
    # Whichever event claims the token first is stored; the other event is refused (both copies, if it is
    # the one posted twice), the same event again is a duplicate.
    first_ok = answers[0][0] == 200 or answers[2][0] == 200
    expected = [200, 200, 401] if first_ok else [200, 401, 401]
    assert sorted(status for status, _ in answers) == expected
    assert sum(answer.get("accepted", 0) for _, answer in answers) == 1
    assert len(await _rows(owner_engine, org)) == 1


@pytest.mark.parametrize("inline_limit", [8, 0], ids=["session", "driver"])
async def test_outage_answers_503_to_every_waiter_and_stores_nothing(
    test_database: ScratchDatabase,
    servers: Servers,
    db: Database,
    owner_engine: AsyncEngine,
    inline_limit: int,
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    url = make_url(test_database.owner_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        async with gateway(via_proxy, servers.redis_url) as g:
            _batcher(g).inline_limit = inline_limit  # 0: every flush deferred, on the asyncpg driver
            assert (await g.post(hook, _score(lead, "warm"), headers))[0] == 200
            await proxy.stop()
            bodies = [_score(lead, f"o{i}") for i in range(8)]
            async with asyncio.timeout(60):
                answers = await asyncio.gather(*(g.post(hook, body, headers) for body in bodies))
            assert [status for status, _ in answers] == [503] * 8
            await proxy.start()
            answers = await asyncio.gather(*(g.post(hook, body, headers) for body in bodies))
            assert [status for status, _ in answers] == [200] * 8
            await _batcher(g).processor.drained()
    finally:
        await proxy.stop()
    assert sorted(r[0] for r in await _rows(owner_engine, org)) == [
        "o0",
        "o1",
        "o2",
        "o3",
        "o4",
        "o5",
        "o6",
        "o7",
        "warm",
    ]
    assert await _activity(owner_engine, org, "event.visit") == 9


class _Deadlock(Exception):
    sqlstate = "40P01"


async def test_a_deadlocked_event_stays_received_and_is_retried(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    events = [Incoming("score_event", f"t{i}", json.loads(_score(lead, f"t{i}"))) for i in range(3)]
    async with db.uow(org) as session:
        stored = await store_many(session, org_id=org, deliveries=[Delivery(hook.id, "n8n", events)])
    ids = stored[0].new_ids

    async def flaky(session: Any, org_id: int, event: Any) -> Outcome:
        if event.id == ids[1]:
            raise DBAPIError("SELECT 1", None, _Deadlock("deadlock detected"))
        return Outcome("processed")

    result = IngestResult()
    async with db.uow(org) as session:
        loaded = await load_events(session, org_id=org, event_ids=ids)
        await process_many(session, org_id=org, events=loaded, processor_of=lambda _: flaky, result=result)
    assert (result.processed, result.failed, result.retry_ids) == (2, 0, [ids[1]])
    statuses = {r[0]: r[1] for r in await _rows(owner_engine, org)}
    assert statuses == {"t0": "processed", "t1": "received", "t2": "processed"}
    processed = await EventProcessor(db).process(
        org, event_ids=[ids[1]]
    )  # the retry, with the real processor
    assert processed.processed == 1
    assert {r[1] for r in await _rows(owner_engine, org)} == {"processed"}


async def test_a_flush_connection_killed_while_idle_is_replaced_and_the_delivery_stored_once(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    lead = await _lead(db, org)
    hook = await new_integration(db, org, "n8n")
    headers = {SECRET_HEADER: hook.generated_secrets["webhook_secret"]}
    _batcher(gw).inline_limit = 0  # deferred flushes: the batcher's own asyncpg connection
    assert (await gw.post(hook, _score(lead, "k1"), headers))[0] == 200
    async with owner_engine.connect() as conn:
        killed = (
            await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'lma-bot web ingest' AND datname = current_database()"
                )
            )
        ).scalar_one()
    assert killed >= 1
    status, answer = await gw.post(hook, _score(lead, "k2"), headers)
    assert (status, answer["accepted"]) == (200, 1)
    await _batcher(gw).processor.drained()
    assert [r[:2] for r in await _rows(owner_engine, org)] == [("k1", "processed"), ("k2", "processed")]


async def test_the_driver_statement_sets_its_tenant_for_itself_only(
    db: Database, owner_engine: AsyncEngine
) -> None:
    """One statement in autocommit: the row-level security check passes because the statement set its own
    tenant, and the setting ends with it (the next statement on the connection has no tenant)."""
    import asyncpg  # type: ignore[import-untyped]

    orgs = [await new_org(db), await new_org(db)]
    hooks = [await new_integration(db, org, "n8n") for org in orgs]
    conn = await asyncpg.connect(
        db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        for org, hook in zip(orgs, hooks, strict=True):
            events = [
                Incoming("score_event", f"t{org}-{i}", {"i": i}, raw=json.dumps({"i": i})) for i in range(3)
            ]
            [stored] = await store_many_driver(
                conn.fetch, org_id=org, deliveries=[Delivery(hook.id, "n8n", events)]
            )
            assert stored.result.accepted == 3
            assert await conn.fetchval("SELECT current_setting('app.current_organization_id', true)") in (
                None,
                "",
            )
            assert (
                await conn.fetchval("SELECT count(*) FROM webhook_events") == 0
            )  # no tenant: RLS shows nothing
        # a row for another organization than the statement's tenant is refused by RLS: none can be written
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.fetch(
                "WITH tenant AS (SELECT set_config('app.current_organization_id', $1::text, true)) "
                "INSERT INTO webhook_events (organization_id, integration_id, provider, event_type, "
                "provider_event_id, payload) SELECT $2, $3, 'n8n', 'x', 'y', '{}' FROM tenant",
                str(orgs[0]),
                orgs[1],
                hooks[1].id,
            )
    finally:
        await conn.close()
    for org in orgs:
        rows = await _rows(owner_engine, org)
        assert sorted(r[0] for r in rows) == [f"t{org}-{i}" for i in range(3)]
