"""Outbound email: queued in PostgreSQL (``communications``), drained from Redis (``outbound_emails``) to
SMTP by the scheduler. See docs/email.md."""
