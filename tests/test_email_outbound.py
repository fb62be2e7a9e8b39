"""Outbound email through a real SMTP server (aiosmtpd on loopback), real PostgreSQL and real Redis:
Message-ID and headers, 4xx retried with backoff, 5xx failed at once, connection refused retried, AUTH with
the password kept out of the logs, a flushed Redis rebuilt, tenancy, do-not-contact refused."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import email
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.jobs.email import EmailDispatcher
from lma_bot.config import Settings
from lma_bot.crypto import SecretBox, generate_key
from lma_bot.db import Database
from lma_bot.email import outbox
from lma_bot.email.queue import EmailMember, OutboxQueue
from lma_bot.email.smtp import SmtpTarget
from lma_bot.errors import InvalidInput, NotFound
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import ActivityLog, Communication, Integration, Lead
from lma_bot.redis import RedisClient, RedisKeys
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user
from tests.conftest import ScratchDatabase, Servers
from tests.fakes import email_providers as ep
from tests.support import new_org
from tests.webhook_env import Gateway, gateway, new_integration

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "s3cr3t-Pa55word!"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: Message
    tls: bool = False


@dataclass
class Handler:
    """aiosmtpd handler: records messages; ``replies`` scripts the answers to DATA (or RCPT) in order."""

    received: list[Received] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            reply = self.rcpt_replies.pop(0) if self.rcpt_replies else None
        if reply is not None and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            reply = self.data_replies.pop(0) if self.data_replies else None
        if reply is not None:
            return reply
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        self.received.append(
            Received(
                envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.content), tls
            )
        )
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    def __init__(
        self,
        port: int,
        *,
        auth: dict[str, str] | None = None,
        auth_require_tls: bool = False,
        **tls: Any,  # ssl_context= (implicit TLS) or tls_context= (STARTTLS offered)
    ) -> None:
        self.port = port
        self.handler = Handler()
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {}
        if auth is not None:

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                if isinstance(data, LoginPassword):
                    login, password = data.login.decode(), data.password.decode()
                    if auth.get(login) == password:
                        self.logins.append(login)
                        return AuthResult(success=True)
                return AuthResult(success=False, handled=False)

            kwargs = {
                "authenticator": authenticator,
                "auth_required": True,
                "auth_require_tls": auth_require_tls,
            }
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port, **kwargs, **tls)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@dataclass
class Env:
    db: Database
    redis: RedisClient
    keys: RedisKeys
    servers: Servers
    org_id: int
    rep: int
    lead_id: int
    clock: Clock
    queue: OutboxQueue

    def settings(self, smtp_url: str | None, **extra: Any) -> Settings:
        return Settings(  # type: ignore[call-arg]
            _env_file=None,
            DATABASE_URL="postgresql+asyncpg://unused@127.0.0.1/unused",
            REDIS_URL=self.servers.redis_url,
            SMTP_URL=smtp_url,
            **extra,
        )

    def dispatcher(self, smtp_url: str | None, **kw: Any) -> EmailDispatcher:
        extra = kw.pop("settings_extra", {})
        return EmailDispatcher(
            settings=self.settings(smtp_url, **extra),
            database=self.db,
            redis=self.redis,
            keys=self.keys,
            clock=self.clock,
            backoff_base=kw.pop("backoff_base", 2.0),
            backoff_cap=kw.pop("backoff_cap", 60.0),
            **kw,
        )

    async def queue_email(
        self, *, org_id: int | None = None, lead_id: int | None = None, **kw: Any
    ) -> outbox.QueuedEmail:
        org = org_id or self.org_id
        async with self.db.uow(org) as session:
            queued = await outbox.queue_email(
                session,
                org_id=org,
                lead_id=lead_id or self.lead_id,
                user_id=kw.pop("user_id", self.rep if org == self.org_id else None),
                subject=kw.pop("subject", "Following up on our call"),
                body=kw.pop("body", "Hi Jo,\n\nthe proposal is attached in spirit.\n\nRita"),
                now=self.clock.now,
                **kw,
            )
        await outbox.push_queued(self.redis, self.keys, queued)
        return queued

    async def row(self, queued: outbox.QueuedEmail) -> Communication:
        async with self.db.uow(queued.organization_id) as session:
            return await outbox.get_email(
                session, org_id=queued.organization_id, communication_id=queued.communication_id
            )


@pytest.fixture
async def env(db: Database, redis: tuple[RedisClient, RedisKeys], servers: Servers) -> AsyncIterator[Env]:
    client, keys = redis
    org_id = await new_org(db, name="Acme")
    async with db.uow(org_id) as session:
        rep = await add_user(
            session,
            org_id=org_id,
            data=UserCreate(email="rita@acme.test", name="Rita Rep", role="rep"),  # type: ignore[arg-type]
        )
        lead = await create_lead(
            session,
            org_id=org_id,
            actor_id=rep.id,
            data=LeadCreate(email="jo@prospect.test", first_name="Jo"),
        )
        ids = (rep.id, lead.id)
    return Env(
        db=db,
        redis=client,
        keys=keys,
        servers=servers,
        org_id=org_id,
        rep=ids[0],
        lead_id=ids[1],
        clock=Clock(T0),
        queue=OutboxQueue(client, keys),
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(_free_port()) as server:
        yield server


def url(server: SmtpServer | int, *, user: str | None = None, query: str = "") -> str:
    port = server if isinstance(server, int) else server.port
    auth = f"{user}:{PASSWORD}@" if user else ""
    return f"smtp://{auth}127.0.0.1:{port}{query}"


async def test_an_email_is_sent_with_our_message_id_and_headers_and_marked_sent(
    env: Env, smtp: SmtpServer, owner_engine: AsyncEngine
) -> None:
    queued = await env.queue_email(subject="Next steps", body="Hello Jo, shall we meet on Friday?")
    assert queued.message_id.endswith("@acme.test")
    assert "<" not in queued.message_id  # stored bare, as the webhook gateway compares ids
    row = await env.row(queued)
    assert (row.status, row.delivery_status, row.message_id) == ("scheduled", "queued", queued.message_id)
    assert await env.queue.members() == [queued.member]

    assert await env.dispatcher(url(smtp)).tick() == 1

    [got] = smtp.received
    assert got.mail_from == "rita@acme.test"
    assert got.rcpt_tos == ["jo@prospect.test"]
    assert got.message["Message-ID"] == f"<{queued.message_id}>"
    assert json.loads(got.message["X-SMTPAPI"]) == {"unique_args": {"lma_message_id": queued.message_id}}
    assert json.loads(got.message["X-Mailgun-Variables"]) == {"lma_message_id": queued.message_id}
    assert got.message["X-PM-Metadata-lma_message_id"] == queued.message_id
    assert got.message["Subject"] == "Next steps"
    assert got.message["To"] == "jo@prospect.test"
    assert got.message["From"] == "Rita Rep <rita@acme.test>"
    assert got.message["Date"]
    assert "shall we meet on Friday?" in got.message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    row = await env.row(queued)
    assert (row.status, row.delivery_status) == ("completed", "sent")
    assert row.completed_at == T0
    assert row.metadata_["outbox"]["attempts"] == 1
    assert row.metadata_["outbox"]["sending_since"] is None
    assert await env.queue.sizes() == (0, 0)
    async with owner_engine.connect() as conn:
        kinds = (
            (
                await conn.execute(
                    select(ActivityLog.activity_type)
                    .where(
                        ActivityLog.organization_id == env.org_id, ActivityLog.entity_type == "communication"
                    )
                    .order_by(ActivityLog.id)
                )
            )
            .scalars()
            .all()
        )
    assert kinds == ["email.outbound.queued", "email.outbound.sent"]
    # nothing more to do: a second tick sends nothing
    assert await env.dispatcher(url(smtp)).tick() == 0
    assert len(smtp.received) == 1


async def test_a_shared_relay_sender_is_the_from_and_the_rep_is_reply_to(env: Env, smtp: SmtpServer) -> None:
    queued = await env.queue_email()
    await env.dispatcher(url(smtp, query="?from=sales%40acme.test")).tick()
    [got] = smtp.received
    assert got.mail_from == "sales@acme.test"
    assert got.message["From"] == "Rita Rep <sales@acme.test>"
    assert got.message["Reply-To"] == "Rita Rep <rita@acme.test>"
    assert (await env.row(queued)).delivery_status == "sent"


async def test_451_is_retried_with_backoff_and_sent_once(env: Env, smtp: SmtpServer) -> None:
    smtp.handler.data_replies = ["451 4.3.0 Try again later", "451 4.3.0 Still busy"]
    queued = await env.queue_email()
    sender = env.dispatcher(url(smtp), backoff_base=2.0)

    assert await sender.tick() == 1
    row = await env.row(queued)
    assert (row.status, row.delivery_status) == ("scheduled", "queued")
    assert row.metadata_["outbox"]["last_error"] == "message refused: 451 4.3.0 Try again later"
    assert row.scheduled_at == T0 + dt.timedelta(seconds=2)
    assert await sender.tick() == 0  # not before the backoff
    env.clock.advance(2)
    assert await sender.tick() == 1  # second attempt: 451 again, backoff doubles
    assert (await env.row(queued)).scheduled_at == env.clock.now + dt.timedelta(seconds=4)
    env.clock.advance(3)
    assert await sender.tick() == 0
    env.clock.advance(1)
    assert await sender.tick() == 1
    assert len(smtp.received) == 1
    row = await env.row(queued)
    assert (row.status, row.delivery_status) == ("completed", "sent")
    assert row.metadata_["outbox"]["attempts"] == 3
    assert row.metadata_["outbox"]["last_error"] is None


async def test_retries_stop_at_the_cap_and_the_email_fails(env: Env, smtp: SmtpServer) -> None:
    smtp.handler.data_replies = ["421 4.7.0 Too busy"] * outbox.MAX_ATTEMPTS
    queued = await env.queue_email()
    sender = env.dispatcher(url(smtp), backoff_base=1.0, backoff_cap=5.0)
    for _ in range(outbox.MAX_ATTEMPTS):
        assert await sender.tick() == 1
        env.clock.advance(5)  # the cap: every backoff is over
    row = await env.row(queued)
    assert (row.status, row.delivery_status) == ("failed", "failed")
    assert row.metadata_["outbox"]["failure_reason"].startswith(
        f"gave up after {outbox.MAX_ATTEMPTS} attempts"
    )
    assert await env.queue.sizes() == (0, 0)
    assert smtp.received == []


async def test_550_fails_at_once_with_the_reason(env: Env, smtp: SmtpServer) -> None:
    smtp.handler.rcpt_replies = ["550 5.1.1 <jo@prospect.test>: Recipient address rejected: no such user"]
    queued = await env.queue_email()
    sender = env.dispatcher(url(smtp))
    assert await sender.tick() == 1
    row = await env.row(queued)
    assert (row.status, row.delivery_status) == ("failed", "failed")
    assert row.metadata_["outbox"]["failure_reason"] == (
        "recipient refused: 550 5.1.1 <jo@prospect.test>: Recipient address rejected: no such user"
    )
    assert row.metadata_["outbox"]["attempts"] == 1
    env.clock.advance(3600)
    assert await sender.tick() == 0
    assert await env.queue.sizes() == (0, 0)
    assert smtp.received == []


async def test_554_on_data_is_permanent_too(env: Env, smtp: SmtpServer) -> None:
    smtp.handler.data_replies = ["554 5.7.1 Message rejected as spam"]
    queued = await env.queue_email()
    await env.dispatcher(url(smtp)).tick()
    row = await env.row(queued)
    assert row.delivery_status == "failed"
    assert row.metadata_["outbox"]["failure_reason"] == "message refused: 554 5.7.1 Message rejected as spam"


async def test_connection_refused_is_retried_until_the_server_answers(env: Env) -> None:
    port = _free_port()  # nothing listens here yet
    queued = await env.queue_email()
    sender = env.dispatcher(url(port), backoff_base=2.0)
    assert await sender.tick() == 1
    row = await env.row(queued)
    assert (row.status, row.delivery_status) == ("scheduled", "queued")
    assert "127.0.0.1:" in row.metadata_["outbox"]["last_error"]
    with SmtpServer(port) as server:
        env.clock.advance(2)
        assert await sender.tick() == 1
        assert [r.message["Message-ID"].strip("<>") for r in server.received] == [queued.message_id]
    row = await env.row(queued)
    assert (row.delivery_status, row.metadata_["outbox"]["attempts"]) == ("sent", 2)


async def test_auth_with_user_and_password_keeps_the_password_out_of_logs(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with SmtpServer(_free_port(), auth={"mailer": PASSWORD}) as server:
        queued = await env.queue_email()
        caplog.set_level(logging.DEBUG)
        await env.dispatcher(url(server, user="mailer")).tick()
        assert server.logins == ["mailer"]
        assert [r.message["Message-ID"].strip("<>") for r in server.received] == [queued.message_id]

        # a wrong password: transient (fixable on the server side), retried, and never in a log or a reason
        wrong = await env.queue_email(subject="second")
        bad_url = f"smtp://mailer:{PASSWORD}x@127.0.0.1:{server.port}"
        bad = env.dispatcher(bad_url)
        assert "x@" not in repr(bad.default_target)
        assert PASSWORD not in repr(bad.default_target)
        assert await bad.tick() == 1
        row = await env.row(wrong)
        assert row.delivery_status == "queued"
        reason = row.metadata_["outbox"]["last_error"]
        assert reason.startswith("authentication failed at smtp://mailer@127.0.0.1:")
        assert PASSWORD not in reason
    encoded = {
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0mailer\0{PASSWORD}".encode()).decode(),
    }
    # the test's own SMTP server ("mail.log") logs the AUTH lines it receives; everything else is ours
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]
    assert any(r.name == "handlers.jobs.email" for r in ours)
    for record in ours:
        line = record.getMessage()
        assert not any(secret in line for secret in encoded), line


async def test_a_flushed_redis_is_rebuilt_from_postgres(env: Env, smtp: SmtpServer) -> None:
    first = await env.queue_email(subject="one")
    second = await env.queue_email(subject="two")
    smtp.handler.data_replies = ["451 later"]
    sender = env.dispatcher(url(smtp), backoff_base=10.0, claim_limit=1)
    await sender.tick()  # the first gets a 451: queued again for +10 s
    async for key in env.redis.scan_iter(match=env.keys.pattern()):
        await env.redis.delete(key)
    assert await env.queue.sizes() == (0, 0)

    assert await sender.reconcile() == 2
    assert await sender.reconcile() == 0  # idempotent
    assert await sender.tick() == 1  # the second (due now); the first waits for its backoff
    env.clock.advance(10)
    assert await sender.tick() == 1
    assert sorted(r.message["Subject"] for r in smtp.received) == ["one", "two"]
    assert {(await env.row(q)).delivery_status for q in (first, second)} == {"sent"}


async def test_a_lost_push_is_repaired_by_reconcile(env: Env, smtp: SmtpServer) -> None:
    async with env.db.uow(env.org_id) as session:
        queued = await outbox.queue_email(
            session, org_id=env.org_id, lead_id=env.lead_id, user_id=env.rep, subject="s", body="b", now=T0
        )
    # the caller died before push_queued
    sender = env.dispatcher(url(smtp))
    assert await sender.tick() == 0
    assert await sender.reconcile() == 1
    assert await sender.tick() == 1
    assert [r.message["Message-ID"].strip("<>") for r in smtp.received] == [queued.message_id]


async def test_a_dead_sender_intent_is_resent_once_after_the_send_timeout(env: Env, smtp: SmtpServer) -> None:
    """The documented window: intent recorded, then the process died (before or after the server's 250).
    Another process does not touch it while the intent is fresh, then sends it with the same Message-ID."""
    queued = await env.queue_email()
    async with env.db.uow(env.org_id) as session:
        step = await outbox.begin_send(
            session, org_id=env.org_id, communication_id=queued.communication_id, now=T0
        )
    assert isinstance(step, outbox.Send)
    assert not step.recovering
    # a rebuilt queue holds it until the intent is stale
    async for k in env.redis.scan_iter(match=env.keys.pattern()):
        await env.redis.delete(k)
    assert await env.dispatcher(url(smtp)).reconcile() == 1
    score = await env.redis.zscore(env.queue.queue_key, str(queued.member))
    assert score == (T0 + outbox.SEND_TIMEOUT).timestamp()
    # the claim's lease is gone with the process; Redis hands the member out again
    await env.queue.retry_at(queued.member, T0)
    sender = env.dispatcher(url(smtp))
    assert await sender.tick() == 1  # intent is fresh: put back for later, nothing sent
    assert smtp.received == []
    env.clock.advance(outbox.SEND_TIMEOUT.total_seconds())
    assert await sender.tick() == 1
    assert [r.message["Message-ID"].strip("<>") for r in smtp.received] == [queued.message_id]
    row = await env.row(queued)
    assert (row.delivery_status, row.metadata_["outbox"]["recovered_intents"]) == ("sent", 1)
    # the first process's late finish is not ours any more and changes nothing
    async with env.db.uow(env.org_id) as session:
        assert not await outbox.finish_sent(
            session,
            org_id=env.org_id,
            communication_id=queued.communication_id,
            send_key=step.send_key,
            reply="250",
        )


async def test_a_provider_event_before_recovery_means_no_resend(env: Env, smtp: SmtpServer) -> None:
    queued = await env.queue_email()
    async with env.db.uow(env.org_id) as session:
        step = await outbox.begin_send(
            session, org_id=env.org_id, communication_id=queued.communication_id, now=T0
        )
        assert isinstance(step, outbox.Send)
    # the provider reported it delivered (the webhook gateway moved the row) before anyone recovered it
    async with env.db.uow(env.org_id) as session:
        row = await outbox.get_email(
            session, org_id=env.org_id, communication_id=queued.communication_id, lock=True
        )
        row.delivery_status, row.status = "delivered", "completed"
    env.clock.advance(outbox.SEND_TIMEOUT.total_seconds())
    await env.queue.retry_at(queued.member, env.clock.now)
    assert await env.dispatcher(url(smtp)).tick() == 1
    assert smtp.received == []
    assert await env.queue.sizes() == (0, 0)


async def test_two_dispatchers_send_each_email_once(env: Env, smtp: SmtpServer) -> None:
    queued = [await env.queue_email(subject=f"n{i}") for i in range(30)]
    a, b = env.dispatcher(url(smtp), claim_limit=7), env.dispatcher(url(smtp), claim_limit=7)
    for _ in range(10):
        await asyncio.gather(a.tick(), b.tick())
    ids = sorted(r.message["Message-ID"].strip("<>") for r in smtp.received)
    assert ids == sorted(q.message_id for q in queued)


async def test_tenancy_org_b_cannot_see_or_send_as_org_a(env: Env, smtp: SmtpServer, db: Database) -> None:
    queued = await env.queue_email()
    other = await new_org(db, name="Beta")
    async with db.uow(other) as session:
        # B's session sees none of A's communications, and cannot queue to A's lead
        assert (await session.execute(select(Communication))).scalars().all() == []
        assert await outbox.pending(session, org_id=other) == []
        assert await outbox.pending(session, org_id=env.org_id) == []
        with pytest.raises(NotFound):
            await outbox.get_email(session, org_id=env.org_id, communication_id=queued.communication_id)
        with pytest.raises(NotFound):
            await outbox.queue_email(
                session, org_id=other, lead_id=env.lead_id, user_id=None, subject="s", body="b"
            )
    # a forged queue member naming A's email under B's id sends nothing
    forged = EmailMember(other, queued.communication_id)
    await env.queue.push(forged, T0)
    sender = env.dispatcher(url(smtp), claim_limit=1)
    while await sender.tick():
        pass
    assert [r.message["Message-ID"].strip("<>") for r in smtp.received] == [queued.message_id]
    assert await env.queue.sizes() == (0, 0)


async def test_do_not_contact_and_invalid_addresses_are_refused(env: Env) -> None:
    async with env.db.uow(env.org_id) as session:
        lead = await session.get(Lead, (env.org_id, env.lead_id))
        assert lead is not None
        lead.do_not_contact = True
    with pytest.raises(outbox.EmailRefused, match="do-not-contact"):
        await env.queue_email()
    async with env.db.uow(env.org_id) as session:
        lead = await session.get(Lead, (env.org_id, env.lead_id))
        assert lead is not None
        lead.do_not_contact, lead.email_status = False, "invalid"
    with pytest.raises(outbox.EmailRefused, match="marked invalid"):
        await env.queue_email()
    async with env.db.uow(env.org_id) as session:
        assert (await session.execute(select(Communication))).scalars().all() == []
    assert await env.queue.sizes() == (0, 0)


async def test_bad_input_is_refused(env: Env) -> None:
    with pytest.raises(InvalidInput, match="one line"):
        await env.queue_email(subject="hi\r\nBcc: everyone@example.com")
    with pytest.raises(InvalidInput, match="body"):
        await env.queue_email(body="   ")
    with pytest.raises(InvalidInput, match="not a valid email"):
        await env.queue_email(to="not-an-address")


async def test_no_smtp_server_leaves_emails_queued(env: Env) -> None:
    queued = await env.queue_email()
    sender = env.dispatcher(None)
    assert await sender.tick() == 1
    row = await env.row(queued)
    assert (row.delivery_status, row.metadata_["outbox"]["attempts"]) == ("queued", 0)
    assert await env.queue.sizes() == (1, 0)


async def test_an_organizations_own_smtp_integration_is_used_with_its_encrypted_password(
    env: Env, owner_engine: AsyncEngine
) -> None:
    key = generate_key()
    box = SecretBox([key])
    with SmtpServer(_free_port(), auth={"acme": PASSWORD}) as server:
        async with env.db.uow(env.org_id) as session:
            session.add(
                Integration(
                    organization_id=env.org_id,
                    integration_type="email_provider",
                    provider_name="smtp",
                    display_name="Acme mail",
                    configuration={"host": "127.0.0.1", "port": server.port, "username": "acme"},
                    encrypted_secrets=box.encrypt_json({"password": PASSWORD}),
                )
            )
        queued = await env.queue_email()
        # SMTP_URL names a dead server: the organization's own one wins
        sender = env.dispatcher(url(_free_port()), settings_extra={"LMA_ENCRYPTION_KEYS": key})
        assert await sender.tick() == 1
        assert server.logins == ["acme"]
        assert [r.message["Message-ID"].strip("<>") for r in server.received] == [queued.message_id]
    async with owner_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT encrypted_secrets FROM integrations WHERE organization_id = :o"),
                {"o": env.org_id},
            )
        ).scalar_one()
    assert PASSWORD not in stored


def test_smtp_urls() -> None:
    t = SmtpTarget.from_url(
        "smtp://user%40acme.test:p%40ss@mail.acme.test:2525?from=sales@acme.test&timeout=5"
    )
    assert (t.hostname, t.port, t.username, t.password, t.sender, t.timeout) == (
        "mail.acme.test",
        2525,
        "user@acme.test",
        "p@ss",
        "sales@acme.test",
        5.0,
    )
    assert not t.implicit_tls
    assert t.starttls == "auto"
    assert "p@ss" not in repr(t)
    assert "p@ss" not in str(t)
    s = SmtpTarget.from_url("smtps://u:p@mail.acme.test")
    assert (s.port, s.implicit_tls) == (465, True)
    assert SmtpTarget.from_url("smtp://mail.acme.test").port == 587
    with pytest.raises(ValueError, match="starttls"):
        SmtpTarget.from_url("smtp://h?starttls=maybe")
    assert uuid.UUID(outbox.new_message_id("Acme.Test").split("@")[0])
    assert outbox.new_message_id(None).endswith("@lma-bot.invalid")
    assert outbox.message_id_header("abc@acme.test") == "<abc@acme.test>"


@pytest.fixture
async def gw(test_database: ScratchDatabase, servers: Servers, db: Database) -> AsyncIterator[Gateway]:
    async with gateway(test_database.owner_url, servers.redis_url) as g:
        yield g


async def test_provider_events_find_the_sent_email_by_its_message_id(
    env: Env, smtp: SmtpServer, gw: Gateway
) -> None:
    """A SendGrid event carrying only ``smtp-id`` (the Message-ID header as the provider saw it) moves the
    same communications row forward through the webhook gateway."""
    queued = await env.queue_email()
    await env.dispatcher(url(smtp)).tick()
    [got] = smtp.received
    key = ep.sendgrid_key()
    hook = await new_integration(env.db, env.org_id, "sendgrid", verification_key=key.verification_key)
    event = {
        "email": "jo@prospect.test",
        "timestamp": 1_900_000_000,
        "event": "delivered",
        "sg_event_id": "sg-delivered-1",
        "sg_message_id": "abc.filter",
        "smtp-id": got.message["Message-ID"],
    }
    body, headers = ep.sendgrid_request([event], key.private_key, int(time.time()))
    status, answer = await gw.post(hook, body, headers)
    assert status == 200, answer
    row = await env.row(queued)
    assert (row.status, row.delivery_status) == ("completed", "delivered")
    assert row.metadata_["outbox"]["attempts"] == 1  # the gateway's update kept our bookkeeping


def _self_signed(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a throwaway certificate of 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    return server, client


async def test_starttls_is_used_when_offered_and_auth_goes_over_it(env: Env, tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    with SmtpServer(
        _free_port(), auth={"mailer": PASSWORD}, auth_require_tls=True, tls_context=server_ctx
    ) as server:
        queued = await env.queue_email()
        sender = env.dispatcher(url(server, user="mailer"))
        assert sender.default_target is not None
        sender.default_target = dataclasses.replace(sender.default_target, tls_context=client_ctx)
        assert await sender.tick() == 1
        assert server.logins == ["mailer"]
        [got] = server.received
        assert got.tls
    assert (await env.row(queued)).delivery_status == "sent"


async def test_smtps_is_implicit_tls(env: Env, tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    with SmtpServer(_free_port(), ssl_context=server_ctx) as server:
        queued = await env.queue_email()
        sender = env.dispatcher(f"smtps://127.0.0.1:{server.port}")
        assert sender.default_target is not None
        sender.default_target = dataclasses.replace(sender.default_target, tls_context=client_ctx)
        assert await sender.tick() == 1
        [got] = server.received
        assert got.tls
    assert (await env.row(queued)).delivery_status == "sent"


async def test_an_untrusted_certificate_is_transient_not_a_clear_text_fallback(
    env: Env, tmp_path: Path
) -> None:
    server_ctx, _ = _self_signed(tmp_path)
    with SmtpServer(_free_port(), tls_context=server_ctx) as server:
        queued = await env.queue_email()
        assert await env.dispatcher(url(server)).tick() == 1  # the default trust store: verification fails
        assert server.received == []
    row = await env.row(queued)
    assert row.delivery_status == "queued"
    assert "CERTIFICATE_VERIFY_FAILED" in row.metadata_["outbox"]["last_error"]
