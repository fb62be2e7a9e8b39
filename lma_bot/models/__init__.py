"""ORM tables, one module per aggregate. Importing this package registers every table on ``Base.metadata``."""

from lma_bot.models.activity import ActivityLog
from lma_bot.models.assignment import AssignmentRotation, LeadAssignment
from lma_bot.models.base import Base
from lma_bot.models.campaign import Campaign, CampaignLead
from lma_bot.models.communication import Communication
from lma_bot.models.integration import Integration
from lma_bot.models.lead import Lead, LeadSearchTerm, LeadTag
from lma_bot.models.note import LeadNote
from lma_bot.models.organization import Organization
from lma_bot.models.reminder import Reminder
from lma_bot.models.scoring import LeadEvent, LeadScoreHistory, LeadScoringRule
from lma_bot.models.slack import SlackInstallation
from lma_bot.models.user import User
from lma_bot.models.webhook import WebhookEvent
from lma_bot.models.workflow import Workflow, WorkflowExecution

_ORG_TABLES = [
    t for t in Base.metadata.sorted_tables if "organization_id" in t.c and t.name != "organizations"
]
#: Tables whose rows belong to one organization: RLS enabled and forced, key ``(organization_id, id)``.
TENANT_TABLES: tuple[str, ...] = tuple(
    t.name for t in _ORG_TABLES if [c.name for c in t.primary_key.columns] == ["organization_id", "id"]
)
#: Index tables kept by triggers (a row per word or tag of a lead): RLS enabled and forced like tenant
#: tables, keyed ``(organization_id, lead_id, ...)``.
LOOKUP_TABLES: tuple[str, ...] = tuple(t.name for t in _ORG_TABLES if t.name not in TENANT_TABLES)

__all__ = [
    "LOOKUP_TABLES",
    "TENANT_TABLES",
    "ActivityLog",
    "AssignmentRotation",
    "Base",
    "Campaign",
    "CampaignLead",
    "Communication",
    "Integration",
    "Lead",
    "LeadAssignment",
    "LeadEvent",
    "LeadNote",
    "LeadScoreHistory",
    "LeadScoringRule",
    "LeadSearchTerm",
    "LeadTag",
    "Organization",
    "Reminder",
    "SlackInstallation",
    "User",
    "WebhookEvent",
    "Workflow",
    "WorkflowExecution",
]
