"""Pure Block Kit builders: view models in, Slack blocks (dicts) out. No database, no Slack calls."""
