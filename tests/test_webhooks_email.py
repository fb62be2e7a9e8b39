"""Email provider callbacks over real HTTP: SendGrid (ECDSA), Mailgun (HMAC + one-time token), Postmark (basic
auth), built from the providers' documented payloads; batches, duplicates, replays, and the delivery state
machine with out-of-order events."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import Communication
from lma_bot.webhooks.email_events import next_delivery_status
from tests.conftest import ScratchDatabase, Servers
from tests.fakes import email_providers as ep
from tests.support import new_org
from tests.webhook_env import Gateway, gateway, new_integration


@pytest.fixture
async def gw(test_database: ScratchDatabase, servers: Servers, db: Database) -> Any:
    async with gateway(test_database.owner_url, servers.redis_url) as g:
        yield g


async def _lead_with_email(db: Database, org: int, email: str, message_id: str) -> tuple[int, int]:
    async with db.uow(org) as session:
        lead = await create_lead(session, org_id=org, data=LeadCreate(email=email, first_name="Lee"))
        comm = Communication(
            organization_id=org,
            lead_id=lead.id,
            communication_type="email",
            direction="outbound",
            subject="Hello",
            status="completed",
            message_id=message_id,
            delivery_status="sent",
        )
        session.add(comm)
        await session.flush()
        return lead.id, comm.id


async def _state(db: Database, org: int, lead: int, comm: int) -> tuple[Any, ...]:
    async with db.uow(org) as session:
        row = (
            await session.execute(
                text(
                    "SELECT c.delivery_status, c.status, l.email_status, l.do_not_contact FROM communications c "
                    "JOIN leads l ON l.organization_id = c.organization_id AND l.id = c.lead_id WHERE c.id = :c"
                ),
                {"c": comm},
            )
        ).one()
        return tuple(row)


async def _count(owner: AsyncEngine, org: int, where: str = "true") -> int:
    async with owner.connect() as conn:
        result = await conn.execute(
            text(f"SELECT count(*) FROM webhook_events WHERE organization_id = :o AND {where}"), {"o": org}
        )
        return int(result.scalar_one())


def _sendgrid_event(
    kind: str, n: int, message_id: str, email: str = "lee@acme.com", **extra: Any
) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1_700_000_000 + n,
        "event": kind,
        "sg_event_id": f"sg-{message_id}-{kind}-{n}",
        "sg_message_id": f"{message_id}.filter",
        "lma_message_id": message_id,
        **extra,
    }


def test_delivery_status_only_moves_forward_and_terminal_states_stay() -> None:
    assert next_delivery_status("sent", "opened") == "opened"  # an open implies delivered
    assert next_delivery_status("opened", "delivered") is None  # a late delivered
    assert next_delivery_status("bounced", "delivered") is None
    assert next_delivery_status("complained", "bounced") is None
    assert next_delivery_status("clicked", "complained") == "complained"
    assert next_delivery_status("queued", "dropped") == "failed"
    assert next_delivery_status("delivered", "deferred") is None
    assert next_delivery_status(None, "processed") == "sent"


async def test_sendgrid_signed_batch_out_of_order_events(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    key = ep.sendgrid_key()
    hook = await new_integration(db, org, "sendgrid", verification_key=key.verification_key)
    lead_a, comm_a = await _lead_with_email(db, org, "ann@acme.com", "m-a")
    lead_b, comm_b = await _lead_with_email(db, org, "bob@acme.com", "m-b")
    events = [
        _sendgrid_event("open", 1, "m-a", "ann@acme.com"),  # before its delivered
        _sendgrid_event("delivered", 2, "m-a", "ann@acme.com"),
        _sendgrid_event("bounce", 1, "m-b", "bob@acme.com", type="bounce", reason="550 no such user"),
        _sendgrid_event("delivered", 2, "m-b", "bob@acme.com"),  # after the bounce
        _sendgrid_event("unsubscribe", 3, "m-a", "ann@acme.com"),
    ]
    body, headers = ep.sendgrid_request(events, key.private_key, int(time.time()))
    status, answer = await gw.post(hook, body, headers)
    assert status == 200, answer
    assert (answer["accepted"], answer["processed"], answer["failed"]) == (5, 5, 0)
    assert await _state(db, org, lead_a, comm_a) == ("opened", "completed", "unknown", True)
    assert await _state(db, org, lead_b, comm_b) == ("bounced", "failed", "invalid", False)
    async with db.uow(org) as session:
        kinds = (
            await session.execute(
                text(
                    "SELECT activity_type, count(*) FROM activity_logs WHERE activity_type LIKE 'email.%' GROUP BY 1"
                )
            )
        ).all()
    assert dict(kinds) == {
        "email.opened": 1,
        "email.delivered": 2,
        "email.bounced": 1,
        "email.unsubscribed": 1,
    }


async def test_sendgrid_authentication_and_rotation(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    old, new, stranger = ep.sendgrid_key(), ep.sendgrid_key(), ep.sendgrid_key()
    hook = await new_integration(
        db, org, "sendgrid", verification_key=f"{new.verification_key},{old.verification_key}"
    )
    events = ep.load_fixture("sendgrid", "bounce__hard")
    now = int(time.time())
    for signer in (old, new):
        body, headers = ep.sendgrid_request(events, signer.private_key, now)
        assert (await gw.post(hook, body, headers))[0] == 200
    bad: list[dict[str, str]] = [
        ep.sendgrid_request(events, stranger.private_key, now)[1],
        ep.sendgrid_request(events, new.private_key, now - 600)[1],
        {**ep.sendgrid_request(events, new.private_key, now)[1], ep.SENDGRID_SIGNATURE: "not-base64!"},
        {"Content-Type": "application/json"},
    ]
    body = ep.json_body(events)
    for headers in bad:
        assert (await gw.post(hook, body, headers))[0] == 401
    garbage = b"this is not json"
    assert (await gw.post(hook, garbage, ep.sign_sendgrid(garbage, new.private_key, now)))[0] == 400
    assert await _count(owner_engine, org) == 1


async def test_sendgrid_batch_of_1000_with_duplicates_is_stored_once_each(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    key = ep.sendgrid_key()
    hook = await new_integration(db, org, "sendgrid", verification_key=key.verification_key)
    unique = [_sendgrid_event("open", i, f"m{i % 50}", f"lead{i % 50}@acme.com") for i in range(800)]
    batch = unique + [copy.deepcopy(unique[i]) for i in range(0, 800, 4)]
    assert len(batch) == 1000
    body, headers = ep.sendgrid_request(batch, key.private_key, int(time.time()))
    first, again = await asyncio.gather(gw.post(hook, body, headers), gw.post(hook, body, headers))
    assert first[0] == again[0] == 200
    assert sorted((first[1]["accepted"], again[1]["accepted"])) == [0, 800]
    assert await _count(owner_engine, org) == 800
    unknown = ep.load_fixture("sendgrid", "unknown__future_type")
    body, headers = ep.sendgrid_request(unknown, key.private_key, int(time.time()))
    status, answer = await gw.post(hook, body, headers)
    assert (status, answer["ignored"]) == (200, 1)
    assert (
        await _count(owner_engine, org, "status = 'ignored'") == 801
    )  # opens of unknown messages, and the type


async def test_mailgun_token_is_single_use_and_retries_are_duplicates(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    hook = await new_integration(db, org, "mailgun", signing_key="mg-signing-key")
    lead, comm = await _lead_with_email(
        db, org, "alice@example.com", "20130503192659.13651.20287@sandboxed.mailgun.org"
    )
    failed = ep.load_fixture("mailgun", "failed__permanent")
    now = int(time.time())
    body, headers = ep.mailgun_request(failed, "mg-signing-key", now, token="t" * 50)
    status, answer = await gw.post(hook, body, headers)
    assert (status, answer["processed"]) == (200, 1)
    assert await _state(db, org, lead, comm) == ("bounced", "failed", "invalid", False)
    assert (await gw.post(hook, body, headers))[1]["status"] == "duplicate"  # Mailgun retrying the same post
    delivered = ep.load_fixture("mailgun", "delivered__ok")
    replayed, headers = ep.mailgun_request(delivered, "mg-signing-key", now, token="t" * 50)
    assert (await gw.post(hook, replayed, headers))[0] == 401  # a captured signature on another event
    stale, headers = ep.mailgun_request(delivered, "mg-signing-key", now - 301)
    assert (await gw.post(hook, stale, headers))[0] == 401
    wrong, headers = ep.mailgun_request(delivered, "another-key", now)
    assert (await gw.post(hook, wrong, headers))[0] == 401
    assert await _count(owner_engine, org) == 1


async def test_postmark_basic_auth_and_unknown_record_types(
    gw: Gateway, db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    hook = await new_integration(db, org, "postmark")
    user, password = hook.generated_secrets["basic_username"], hook.generated_secrets["basic_password"]
    opened = ep.load_fixture("postmark", "open__first")
    body, headers = ep.postmark_request(opened, user, password)
    assert (await gw.post(hook, body, headers))[0] == 200
    assert (await gw.post(hook, body, ep.postmark_headers(user, password + "x")))[0] == 401
    assert (await gw.post(hook, body, {"Content-Type": "application/json"}))[0] == 401
    future = ep.load_fixture("postmark", "unknown__future_record")
    body, headers = ep.postmark_request(future, user, password)
    status, answer = await gw.post(hook, body, headers)
    assert (status, answer["ignored"]) == (200, 1)
    assert await _count(owner_engine, org) == 2
