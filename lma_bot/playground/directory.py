"""Who is in the playground: two Slack workspaces (the demo organization and a second one for the tenant
wall), their channels and their people. Ids are unique across both workspaces, so one Slack stand-in can
hold both without mixing their messages (a DM with ``U1REP1`` is ``D1REP1``, as the stand-in names DMs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    slack_id: str
    handle: str  # the @name the composer turns into a mention
    real_name: str
    email: str
    role: str  # admin, manager or rep
    timezone: str

    @property
    def dm_channel(self) -> str:
        return "D" + self.slack_id[1:]


@dataclass(frozen=True)
class Channel:
    id: str
    name: str


@dataclass(frozen=True)
class Workspace:
    team_id: str
    name: str
    domain: str
    channels: tuple[Channel, ...]
    people: tuple[Person, ...]

    @property
    def approvals(self) -> Channel:
        return next(c for c in self.channels if c.name == "approvals")

    def person(self, slack_id: str) -> Person | None:
        return next((p for p in self.people if p.slack_id == slack_id), None)

    def by_role(self, role: str) -> list[Person]:
        return [p for p in self.people if p.role == role]


ACME = Workspace(
    team_id="T0PLAYACME",
    name="Acme Sales",
    domain="acme-sales",
    channels=(Channel("C1GENERAL", "general"), Channel("C1APPROVALS", "approvals")),
    people=(
        Person("U1ADMIN", "ada", "Ada Admin", "ada@acme.test", "admin", "Europe/Berlin"),
        Person("U1MANAGER", "mia", "Mia Manager", "mia@acme.test", "manager", "America/New_York"),
        Person("U1REP1", "rob", "Rob Rep", "rob@acme.test", "rep", "America/Chicago"),
        Person("U1REP2", "rae", "Rae Rep", "rae@acme.test", "rep", "Asia/Tokyo"),
    ),
)
GLOBEX = Workspace(
    team_id="T0PLAYGLOBEX",
    name="Globex Corp",
    domain="globex",
    channels=(Channel("C2GENERAL", "general"), Channel("C2APPROVALS", "approvals")),
    people=(
        Person("U2ADMIN", "gus", "Gus Globex", "gus@globex.test", "admin", "Europe/London"),
        Person("U2REP", "gia", "Gia Globex", "gia@globex.test", "rep", "Australia/Sydney"),
    ),
)
WORKSPACES = (ACME, GLOBEX)


def workspace(team_id: str) -> Workspace | None:
    return next((w for w in WORKSPACES if w.team_id == team_id), None)


def workspace_of_channel(channel_id: str) -> Workspace | None:
    for space in WORKSPACES:
        if any(c.id == channel_id for c in space.channels):
            return space
        if any(p.dm_channel == channel_id for p in space.people):
            return space
    return None
