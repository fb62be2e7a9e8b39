"""n8n workflows: triggers, the outbox of executions, SSRF-checked signed dispatch."""
