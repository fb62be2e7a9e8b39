"""Lead assignments: reassignment requests and their decisions, automatic assignment of new leads, and the
organization's assignment settings."""
