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
    "list": "/lead list [mine|unassigned|status:<status>|tag:<tag>]",
    "find": "/lead find <text>",
    "status": "/lead status <id|email> <status> [reason...]",
    "note": "/lead note <id|email> [--private] <text, @mention teammates>",
    "remind": "/lead remind <id|email> <when> [message]  |  /lead remind list  |  /lead remind cancel <number>",
    "workflows": "/lead workflows [run <workflow id> <id|email>]",
    "admin": "/lead admin integrations",
}
#: Who sees a usage line in `/lead help` (the listener checks the role again).
ROLE_USAGE: dict[str, dict[str, str]] = {
    "rep": {"workflows": "/lead workflows"},
    "manager": {},
}
ADMIN_ONLY = ("admin",)
#: Subcommands of the contract that later slices provide; answered honestly until they exist.
LATER = ("assign", "score", "rules")

MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
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
class Later:
    subcommand: str


Command = (
    Help
    | Create
    | Show
    | ListLeads
    | Status
    | Note
    | Remind
    | RemindList
    | RemindCancel
    | Workflows
    | RunWorkflow
    | AdminIntegrations
    | Later
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
    if sub in LATER:
        return Later(sub)
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
    if sub == "workflows":
        return _workflows(rest)
    if sub == "admin":
        if rest.lower() != "integrations":
            raise UsageError("the admin view is `integrations`" if rest else "say which admin view", "admin")
        return AdminIntegrations()
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
    if word in ("mine", "unassigned", "all"):
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
