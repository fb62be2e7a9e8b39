"""The `/lead` grammar: text in, a typed command out, or a :class:`UsageError` carrying the usage line."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from lma_bot.leads.schemas import LeadQuery, ListFilter

USAGE: dict[str, str] = {
    "help": "/lead help",
    "create": "/lead create <email> [name...] [company=X] [source=X] [tags=a,b]   (no arguments: a form)",
    "show": "/lead show <id|email>",
    "list": "/lead list [mine|unassigned|hot|status:<status>|tag:<tag>]",
    "find": "/lead find <text>",
    "status": "/lead status <id|email> <status> [reason...]",
    "note": "/lead note <id|email> [--private] <text, @mention teammates>",
    "remind": "/lead remind <id|email> <when> [message]  |  /lead remind list  |  /lead remind cancel <number>",
    "assign": "/lead assign <id|email> <@user> [reason]  |  /lead assign cancel <request number>",
    "score": "/lead score <id|email> [adjust +N|-N|=N <reason> | lock | unlock]",
    "rules": "/lead rules [add | edit <number> | enable <number> | disable <number>]",
    "workflows": "/lead workflows [run <workflow id> <id|email>]",
    "admin": (
        "/lead admin [integrations | approvals-channel <#channel|off> | assignment none|round_robin|least_busy"
        " | capacity <n|off> [@user] | away <@user> on|off | expiry <hours>]"
    ),
}
#: Who sees a usage line in `/lead help` (the listener checks the role again).
ROLE_USAGE: dict[str, dict[str, str]] = {
    "rep": {
        "score": "/lead score <id|email>",
        "rules": "/lead rules",
        "workflows": "/lead workflows",
        "assign": "/lead assign <id|email> <@user> [reason]  (a manager approves)  |  /lead assign cancel <request number>",
    },
    "manager": {"rules": "/lead rules"},
}
ADMIN_ONLY = ("admin",)

MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
ONE_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
CHANNEL = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
STRATEGIES = ("none", "round_robin", "least_busy")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_CREATE_KEYS = ("company", "source", "tags")


class UsageError(Exception):
    def __init__(self, problem: str, subcommand: str | None) -> None:
        self.problem = problem
        self.subcommand = subcommand
        super().__init__(problem)

    @property
    def usage(self) -> str:
        if self.subcommand in USAGE:
            return f"Usage: `{USAGE[self.subcommand]}`"
        return "Usage:\n" + "\n".join(f"`{line}`" for line in USAGE.values())


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Create:
    email: str | None = None  # None: open the form
    name: str | None = None
    company: str | None = None
    source: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Show:
    ref: str


@dataclass(frozen=True)
class ListLeads:
    query: LeadQuery


@dataclass(frozen=True)
class Status:
    ref: str
    status: str
    reason: str | None


@dataclass(frozen=True)
class Note:
    ref: str
    text: str
    private: bool
    mentions: list[str]


@dataclass(frozen=True)
class Workflows:
    pass


@dataclass(frozen=True)
class RunWorkflow:
    workflow_id: int
    ref: str


@dataclass(frozen=True)
class AdminIntegrations:
    pass


@dataclass(frozen=True)
class Remind:
    ref: str
    words: list[str]  # `<when> [message]`, read in the user's timezone by the listener


@dataclass(frozen=True)
class RemindList:
    pass


@dataclass(frozen=True)
class RemindCancel:
    reminder_id: int


@dataclass(frozen=True)
class Assign:
    ref: str
    slack_user_id: str
    reason: str | None


@dataclass(frozen=True)
class AssignCancel:
    assignment_id: int


@dataclass(frozen=True)
class AdminSettings:
    pass


@dataclass(frozen=True)
class AdminApprovalsChannel:
    channel_id: str | None  # None: off (managers get DMs)


@dataclass(frozen=True)
class AdminStrategy:
    strategy: str


@dataclass(frozen=True)
class AdminCapacity:
    capacity: int | None  # None: no limit
    slack_user_id: str | None  # None: the organization's default


@dataclass(frozen=True)
class AdminAway:
    slack_user_id: str
    away: bool


@dataclass(frozen=True)
class AdminExpiry:
    hours: int


AdminCommand = (
    AdminIntegrations
    | AdminSettings
    | AdminApprovalsChannel
    | AdminStrategy
    | AdminCapacity
    | AdminAway
    | AdminExpiry
)


@dataclass(frozen=True)
class Score:
    ref: str


@dataclass(frozen=True)
class ScoreAdjust:
    ref: str
    amount: str  # +N, -N or =N
    reason: str


@dataclass(frozen=True)
class ScoreLock:
    ref: str
    lock: bool


@dataclass(frozen=True)
class Rules:
    pass


@dataclass(frozen=True)
class RuleForm:
    rule_id: int | None  # None: a new rule


@dataclass(frozen=True)
class RuleActive:
    rule_id: int
    active: bool


Command = (
    Help
    | Create
    | Show
    | ListLeads
    | Status
    | Note
    | Remind
    | Score
    | ScoreAdjust
    | ScoreLock
    | Rules
    | RuleForm
    | RuleActive
    | RemindList
    | RemindCancel
    | Workflows
    | RunWorkflow
    | Assign
    | AssignCancel
    | AdminIntegrations
    | AdminSettings
    | AdminApprovalsChannel
    | AdminStrategy
    | AdminCapacity
    | AdminAway
    | AdminExpiry
)


def usage_lines(role: str) -> list[str]:
    """The usage lines a member with ``role`` may use, for `/lead help`."""
    lines = []
    for sub, line in USAGE.items():
        if sub in ADMIN_ONLY and role != "admin":
            continue
        lines.append(ROLE_USAGE.get(role, {}).get(sub, line))
    return lines


def parse(text: str) -> Command:
    text = (text or "").strip()
    if not text:
        return Help()
    head, _, rest = text.partition(" ")
    sub = head.lower()
    rest = rest.strip()
    if sub == "help":
        return Help()
    if sub == "create":
        return _create(rest)
    if sub == "show":
        return Show(_one_ref(rest, "show"))
    if sub == "list":
        return ListLeads(_list_query(rest))
    if sub == "find":
        if not rest:
            raise UsageError("tell me what to look for", "find")
        return ListLeads(LeadQuery(text=rest))
    if sub == "status":
        return _status(rest)
    if sub == "note":
        return _note(rest)
    if sub == "remind":
        return _remind(rest)
    if sub == "score":
        return _score(rest)
    if sub == "rules":
        return _rules(rest)
    if sub == "workflows":
        return _workflows(rest)
    if sub == "assign":
        return _assign(rest)
    if sub == "admin":
        return _admin(rest)
    raise UsageError(f"I don't know `{head}`", None)


def _split(rest: str, sub: str) -> list[str]:
    try:
        return shlex.split(rest.translate(_QUOTES))
    except ValueError:
        raise UsageError("a quote is not closed", sub) from None


def _one_ref(rest: str, sub: str) -> str:
    words = rest.split()
    if len(words) != 1:
        raise UsageError("give exactly one lead: its number or email", sub)
    return words[0]


def _create(rest: str) -> Create:
    if not rest:
        return Create()
    words = _split(rest, "create")
    email, *others = words
    if "@" not in email or "=" in email:
        raise UsageError(f"start with the lead's email; `{email}` is not one", "create")
    options: dict[str, str] = {}
    name: list[str] = []
    for word in others:
        key, eq, value = word.partition("=")
        if eq:
            if key.lower() not in _CREATE_KEYS:
                raise UsageError(f"unknown option `{key}=`; options are company=, source=, tags=", "create")
            options[key.lower()] = value
        elif options:
            raise UsageError("put the name before the options", "create")
        else:
            name.append(word)
    tags = [t for t in options.get("tags", "").split(",") if t.strip()]
    return Create(
        email=email,
        name=" ".join(name) or None,
        company=options.get("company") or None,
        source=options.get("source") or None,
        tags=tags,
    )


def _list_query(rest: str) -> LeadQuery:
    if not rest:
        return LeadQuery()
    if len(rest.split()) != 1:
        raise UsageError("give one filter", "list")
    word = rest.lower()
    if word in ("mine", "unassigned", "all", "hot"):
        return LeadQuery(filter=ListFilter(word))
    kind, sep, value = word.partition(":")
    if sep and kind in ("status", "tag") and value:
        return LeadQuery(filter=ListFilter(kind), value=value)
    raise UsageError(f"unknown filter `{rest}`", "list")


def _status(rest: str) -> Status:
    words = rest.split(maxsplit=2)
    if len(words) < 2:
        raise UsageError("give the lead and the new status", "status")
    return Status(ref=words[0], status=words[1].lower(), reason=words[2].strip() if len(words) == 3 else None)


def _note(rest: str) -> Note:
    ref, _, text = rest.partition(" ")
    text = text.strip()
    private = False
    if text.startswith("--private"):
        private = True
        text = text.removeprefix("--private").strip()
    elif ref == "--private":
        raise UsageError("the lead comes first, then --private", "note")
    if not ref or not text:
        raise UsageError("give the lead and the note text", "note")
    return Note(ref=ref, text=text, private=private, mentions=MENTION.findall(text))


def _remind(rest: str) -> Remind | RemindList | RemindCancel:
    words = rest.split()
    if not words:
        raise UsageError("give the lead and when, e.g. `/lead remind 42 tomorrow 9am call back`", "remind")
    if words[0].lower() == "list" and len(words) == 1:
        return RemindList()
    if words[0].lower() == "cancel":
        number = words[1].removeprefix("#") if len(words) == 2 else ""
        if not number.isdigit() or int(number) <= 0 or len(number) > 18:
            raise UsageError("give the number of the reminder to cancel (see `/lead remind list`)", "remind")
        return RemindCancel(int(number))
    if len(words) == 1:
        raise UsageError("say when, e.g. `in 2h`, `tomorrow 9am`, `fri 14:00`", "remind")
    return Remind(ref=words[0], words=words[1:])


_AMOUNT = re.compile(r"^([+-]\d{1,6}|=-?\d{1,7})$")


def _score(rest: str) -> Score | ScoreAdjust | ScoreLock:
    words = rest.split(maxsplit=3)
    if not words:
        raise UsageError("give the lead", "score")
    ref = words[0]
    if len(words) == 1:
        return Score(ref)
    action = words[1].lower()
    if action in ("lock", "unlock") and len(words) == 2:
        return ScoreLock(ref, lock=action == "lock")
    if action == "adjust":
        if len(words) < 3 or not _AMOUNT.match(words[2]):
            raise UsageError("say how much: `+10`, `-5` or `=50`, then why", "score")
        if len(words) < 4:
            raise UsageError("a manual adjustment needs a reason", "score")
        return ScoreAdjust(ref, amount=words[2], reason=words[3].strip())
    raise UsageError(f"unknown score action `{words[1]}`", "score")


def _rules(rest: str) -> Rules | RuleForm | RuleActive:
    words = rest.split()
    if not words:
        return Rules()
    action = words[0].lower()
    if action == "add" and len(words) == 1:
        return RuleForm(None)
    if action in ("edit", "enable", "disable"):
        number = words[1].removeprefix("#") if len(words) == 2 else ""
        if not number.isdigit() or int(number) <= 0 or len(number) > 9:
            raise UsageError("give the rule's number (see `/lead rules`)", "rules")
        if action == "edit":
            return RuleForm(int(number))
        return RuleActive(int(number), active=action == "enable")
    raise UsageError(f"unknown rules action `{words[0]}`", "rules")


def _workflows(rest: str) -> Workflows | RunWorkflow:
    words = rest.split()
    if not words:
        return Workflows()
    if words[0].lower() != "run":
        raise UsageError(f"unknown workflows action `{words[0]}`", "workflows")
    if len(words) != 3:
        raise UsageError("give the workflow's number and one lead", "workflows")
    number = words[1].removeprefix("#")
    if not number.isdigit() or int(number) <= 0 or len(number) > 9:
        raise UsageError(f"`{words[1]}` is not a workflow number (see `/lead workflows`)", "workflows")
    return RunWorkflow(workflow_id=int(number), ref=words[2])


def _assign(rest: str) -> Assign | AssignCancel:
    words = rest.split(maxsplit=2)
    if words and words[0].lower() == "cancel":
        number = words[1].removeprefix("#") if len(words) == 2 else ""
        if not number.isdigit() or int(number) <= 0 or len(number) > 18:
            raise UsageError("give the number of the request to cancel", "assign")
        return AssignCancel(int(number))
    if len(words) < 2:
        raise UsageError("give the lead and the new owner as an @mention", "assign")
    mention = ONE_MENTION.match(words[1])
    if mention is None:
        raise UsageError(f"`{words[1]}` is not a teammate; @mention them", "assign")
    reason = words[2].strip() if len(words) == 3 else None
    return Assign(ref=words[0], slack_user_id=mention.group(1), reason=reason or None)


def _on_off(word: str) -> bool:
    if word.lower() in ("on", "yes", "true"):
        return True
    if word.lower() in ("off", "no", "false"):
        return False
    raise UsageError(f"say `on` or `off`, not `{word}`", "admin")


def _admin(rest: str) -> AdminCommand:
    words = rest.split()
    if not words:
        return AdminSettings()
    what, args = words[0].lower(), words[1:]
    if what == "integrations" and not args:
        return AdminIntegrations()
    if what in ("settings", "assignments") and not args:
        return AdminSettings()
    if what == "approvals-channel" and len(args) == 1:
        if args[0].lower() in ("off", "none"):
            return AdminApprovalsChannel(None)
        channel = CHANNEL.match(args[0])
        if channel is None:
            raise UsageError(f"`{args[0]}` is not a channel; pick one with #", "admin")
        return AdminApprovalsChannel(channel.group(1))
    if what == "assignment" and len(args) == 1:
        strategy = args[0].lower().replace("-", "_")
        if strategy not in STRATEGIES:
            raise UsageError(f"the strategy is one of {', '.join(STRATEGIES)}", "admin")
        return AdminStrategy(strategy)
    if what == "capacity" and len(args) in (1, 2):
        value = args[0].lower()
        if value in ("off", "none"):
            capacity = None
        elif value.isdigit() and 0 < int(value) <= 100_000:
            capacity = int(value)
        else:
            raise UsageError(f"`{args[0]}` is not a capacity; give a number of open leads or `off`", "admin")
        user = None
        if len(args) == 2:
            mention = ONE_MENTION.match(args[1])
            if mention is None:
                raise UsageError(f"`{args[1]}` is not a teammate; @mention them", "admin")
            user = mention.group(1)
        return AdminCapacity(capacity, user)
    if what == "away" and len(args) == 2:
        mention = ONE_MENTION.match(args[0])
        if mention is None:
            raise UsageError(f"`{args[0]}` is not a teammate; @mention them", "admin")
        return AdminAway(mention.group(1), _on_off(args[1]))
    if what == "expiry" and len(args) == 1:
        hours = args[0].lower().removesuffix("h")
        if not hours.isdigit() or not 1 <= int(hours) <= 720:
            raise UsageError("the expiry is a number of hours from 1 to 720", "admin")
        return AdminExpiry(int(hours))
    known = ("integrations", "approvals-channel", "assignment", "capacity", "away", "expiry")
    if what in known:
        raise UsageError(f"`{what}` needs different arguments", "admin")
    raise UsageError(f"unknown admin setting `{words[0]}`", "admin")
