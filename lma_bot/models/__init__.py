"""ORM tables, one module per aggregate. Importing this package registers every table on ``Base.metadata``."""

from lma_bot.models.activity import ActivityLog
from lma_bot.models.assignment import LeadAssignment
from lma_bot.models.base import Base
from lma_bot.models.campaign import Campaign, CampaignLead
from lma_bot.models.communication import Communication
from lma_bot.models.integration import Integration
from lma_bot.models.lead import Lead
from lma_bot.models.note import LeadNote
from lma_bot.models.organization import Organization
from lma_bot.models.scoring import LeadScoreHistory, LeadScoringRule
from lma_bot.models.slack import SlackInstallation
from lma_bot.models.user import User
from lma_bot.models.workflow import Workflow, WorkflowExecution

#: Tables whose rows belong to one organization: RLS enabled and forced, ``organization_id`` in the key.
TENANT_TABLES: tuple[str, ...] = tuple(
    t.name for t in Base.metadata.sorted_tables if "organization_id" in t.c and t.name != "organizations"
)

__all__ = [
    "TENANT_TABLES",
    "ActivityLog",
    "Base",
    "Campaign",
    "CampaignLead",
    "Communication",
    "Integration",
    "Lead",
    "LeadAssignment",
    "LeadNote",
    "LeadScoreHistory",
    "LeadScoringRule",
    "Organization",
    "SlackInstallation",
    "User",
    "Workflow",
    "WorkflowExecution",
]
