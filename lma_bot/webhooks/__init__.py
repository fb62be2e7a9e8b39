"""Webhook gateway: verified, durable, idempotent ingest of n8n and email-provider callbacks."""
