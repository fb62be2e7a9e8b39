"""`/lead list` and `/lead find` at scale, under row-level security, through the service layer.

Builds (or, with ``--keep``, reuses) a database of 1,000,000 leads in 100 organizations, one of them holding
half of them, then measures every list filter and `find` kind on the big organization and on a typical small
one: ``database.uow(org_id)`` + ``lma_bot.leads.service.list_leads(...)`` as the runtime role ``lma_app``,
one request at a time on one pooled connection (so one plan cache sees every kind, as in production). Every
page is checked against the same page computed directly on ``leads`` as the owner, and the statements the
service ran are shown with ``EXPLAIN (ANALYZE, BUFFERS) EXECUTE`` under both a custom and a generic plan.

    .venv/bin/python bench/lead_queries.py --keep       # full run (build ~1-2 min the first time), RESULTS.md
    .venv/bin/python bench/lead_queries.py --quick      # 60,000 leads, fewer repetitions, a throwaway database
    .venv/bin/python bench/lead_queries.py --drop       # drop the databases --keep left behind
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from lma_bot.config import DEFAULT_APP_ROLE
from lma_bot.db import Database
from lma_bot.dbadmin import migrate
from lma_bot.leads import repository, service
from lma_bot.leads.schemas import Cursor, LeadPage, LeadQuery, ListFilter

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NAME = "lead_queries"
TARGET_MS = 20.0
PAGE = service.PAGE_SIZE

# --- data -------------------------------------------------------------------------------------------

FIRST_NAMES = [
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "christopher",
    "lisa",
    "daniel",
    "nancy",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "donald",
    "ashley",
    "steven",
    "kimberly",
    "paul",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenneth",
    "carol",
    "kevin",
    "amanda",
    "brian",
    "dorothy",
    "george",
    "melissa",
    "timothy",
    "deborah",
    "ronald",
    "stephanie",
    "edward",
    "rebecca",
    "jason",
    "sharon",
    "jeffrey",
    "laura",
    "ryan",
    "cynthia",
    "jacob",
    "kathleen",
    "gary",
    "amy",
    "nicholas",
    "angela",
    "eric",
    "shirley",
    "jonathan",
    "anna",
    "stephen",
    "brenda",
    "larry",
    "pamela",
    "justin",
    "emma",
]
LAST_NAMES = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
    "reyes",
    "stewart",
    "morris",
    "morales",
    "murphy",
    "cook",
    "rogers",
    "gutierrez",
    "ortiz",
    "morgan",
    "cooper",
    "peterson",
    "bailey",
    "reed",
    "kelly",
    "howard",
    "ramos",
    "kim",
    "cox",
    "ward",
    "richardson",
    "watson",
    "brooks",
    "chavez",
    "wood",
    "james",
    "bennett",
    "gray",
    "mendoza",
    "ruiz",
    "hughes",
    "price",
    "alvarez",
    "castillo",
    "sanders",
    "patel",
    "myers",
    "long",
    "ross",
    "foster",
    "jimenez",
    "powell",
    "jenkins",
    "perry",
    "russell",
    "sullivan",
    "bell",
    "coleman",
    "butler",
    "henderson",
    "barnes",
    "gonzales",
    "fisher",
    "vasquez",
    "simmons",
    "romero",
    "jordan",
    "patterson",
    "alexander",
    "hamilton",
    "graham",
    "reynolds",
    "griffin",
    "wallace",
    "west",
    "cole",
    "hayes",
    "bryant",
    "herrera",
    "gibson",
    "ellis",
    "tran",
    "medina",
    "aguilar",
]
RARE_LAST_NAMES = [
    "yablonski",
    "castellanos",
    "eisenhauer",
    "gwozdz",
    "bjornstad",
    "ekwueme",
    "lindqvist",
    "szczepanski",
    "vanterpool",
    "okonkwo",
    "abernathy",
    "quarshie",
    "delacroix",
    "fitzwilliam",
    "haugland",
    "ishikawa",
    "jaworski",
    "kowalczyk",
    "lachance",
    "mbeki",
    "nakagawa",
    "oyelaran",
    "pietrowski",
    "quintanilla",
    "rasmussen",
    "strzelecki",
    "thorvaldsen",
    "ulyanova",
    "villalobos",
    "wojcik",
    "xiong",
    "zeller",
]
_STEMS = [
    "blue",
    "red",
    "north",
    "south",
    "east",
    "west",
    "silver",
    "gold",
    "iron",
    "stone",
    "bright",
    "clear",
]
_ENDS = ["peak", "river", "field", "works", "labs", "soft", "logic", "wave", "point"]
COMPANIES = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "cyberdyne",
    "soylent",
]
COMPANIES += [s + e for s in _STEMS for e in _ENDS][: 103 - len(COMPANIES)]
MAIL_HOSTS = ["gmail", "outlook", "yahoo"]
COMMON_TAGS = [
    "inbound",
    "outbound",
    "webinar",
    "referral",
    "trade-show",
    "partner",
    "newsletter",
    "demo-request",
    "pricing",
    "enterprise",
    "smb",
    "mid-market",
    "emea",
    "amer",
    "apac",
    "q1",
    "q2",
    "q3",
    "q4",
    "upsell",
    "renewal",
    "churn-risk",
    "trial",
    "freemium",
    "ads",
    "seo",
    "content",
    "cold-call",
    "linkedin",
    "event",
]
RARE_TAGS = ["strategic-2024", "board-intro", "ceo-referral"]
# (status, cumulative share)
STATUSES = [
    ("new", 0.399),
    ("contacted", 0.620),
    ("qualified", 0.740),
    ("unqualified", 0.840),
    ("lost", 0.920),
    ("proposal", 0.970),
    ("won", 0.995),
    ("negotiation", 1.0),
]
START = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 10, 31, 23, 59, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Scale:
    leads: int
    orgs: int
    big_users: int = 200
    small_users: int = 20
    small_org: int = 4

    @property
    def label(self) -> str:
        return f"{self.leads}x{self.orgs}"


FULL = Scale(leads=1_000_000, orgs=100)
QUICK = Scale(leads=60_000, orgs=12)

LEADS_SQL = """
INSERT INTO leads (organization_id, email, first_name, last_name, company, source, status, score,
                   lead_temperature, assigned_to_id, tags, created_at, updated_at, deleted_at)
SELECT org, lower(fn || '.' || ln || g || '@' || host || '.com'), initcap(fn), initcap(ln),
       CASE WHEN r_co < 0.9 THEN initcap(co) END, 'bench', st, sc,
       CASE WHEN sc >= 70 THEN 'hot' WHEN sc >= 40 THEN 'warm' ELSE 'cold' END,
       CASE WHEN r_as < 0.6 THEN u.first_id + floor(r_us * u.n)::int END,
       (CASE WHEN r_rare < 0.0001 THEN ARRAY[$rare[1]]
             WHEN r_rare < 0.00015 THEN ARRAY[$rare[2]]
             WHEN r_rare < 0.0002 THEN ARRAY[$rare[3]] ELSE ARRAY[]::text[] END
        || CASE WHEN r_t1 < 0.9 THEN ARRAY[$tags[1 + t1]] ELSE ARRAY[]::text[] END
        || CASE WHEN r_t2 < 0.2 THEN ARRAY[$tags[1 + (t1 + 1 + t2) % 30]] ELSE ARRAY[]::text[] END
       )::varchar[],
       created, created, CASE WHEN r_del < 0.01 THEN created + interval '1 day' END
FROM (
    SELECT g,
           CASE WHEN g % 2 = 0 THEN 1 ELSE 2 + ((g - 1) / 2) % ($orgs - 1) END AS org,
           $start::timestamptz + (g - 1) * ($span::interval / $n) AS created,
           $first[1 + floor($nfirst * random() ^ 2)::int] AS fn,
           CASE WHEN random() < 0.003 THEN $rarelast[1 + floor($nrarelast * random())::int]
                ELSE $last[1 + floor($nlast * random() ^ 2)::int] END AS ln,
           $companies[1 + floor($ncompanies * random() ^ 2)::int] AS co,
           random() AS r_co, random() AS r_as, random() AS r_us, random() AS r_rare,
           random() AS r_t1, floor(30 * random() ^ 2)::int AS t1, random() AS r_t2,
           floor(29 * random())::int AS t2, random() AS r_del,
           floor(101 * random() ^ 1.5)::int AS sc, random() AS r_st, random() AS r_host
    FROM generate_series(1, $n) AS g
) AS r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r_host < 0.7 THEN co ELSE $hosts[1 + floor(3 * r_host)::int] END AS host,
           $status AS st
) AS h
JOIN bench_user_ranges AS u ON u.organization_id = r.org
ORDER BY g
"""


def _array(values: list[str]) -> str:
    return "(ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[])"


def leads_sql(scale: Scale) -> str:
    status = "CASE " + " ".join(f"WHEN r_st < {cum} THEN '{name}'" for name, cum in STATUSES[:-1])
    status += f" ELSE '{STATUSES[-1][0]}' END"
    replacements = {
        "$status": status,
        "$rarelast": _array(RARE_LAST_NAMES),
        "$nrarelast": str(len(RARE_LAST_NAMES)),
        "$rare": _array(RARE_TAGS),
        "$tags": _array(COMMON_TAGS),
        "$first": _array(FIRST_NAMES),
        "$nfirst": str(len(FIRST_NAMES)),
        "$last": _array(LAST_NAMES),
        "$nlast": str(len(LAST_NAMES)),
        "$companies": _array(COMPANIES),
        "$ncompanies": str(len(COMPANIES)),
        "$hosts": _array(MAIL_HOSTS),
        "$orgs": str(scale.orgs),
        "$start": f"'{START.isoformat()}'",
        "$span": f"'{int((END - START).total_seconds())} seconds'",
        "$n": str(scale.leads),
    }
    sql = LEADS_SQL
    for key in sorted(replacements, key=len, reverse=True):
        sql = sql.replace(key, replacements[key])
    return sql


def _migration(name: str) -> Any:
    path = next((ROOT / "migrations" / "versions").glob(f"{name}*.py"))
    spec = importlib.util.spec_from_file_location(f"bench_migration_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lookup_backfill() -> tuple[str, ...]:
    """The set-based backfill of the lookup tables: the newest migration that defines one wins."""
    found: tuple[str, ...] = ()
    for path in sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py")):
        if "lookup" in path.name or "search" in path.name:
            module = _migration(path.name.split("_")[0])
            found = tuple(getattr(module, "BACKFILL", found))
    return found


# --- build -------------------------------------------------------------------------------------------


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Build:
    seconds: dict[str, float] = field(default_factory=dict)
    reused: bool = False


@contextmanager
def _step(build: Build, name: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"  {name} ...", flush=True)
    yield
    build.seconds[name] = time.perf_counter() - started
    print(f"  {name}: {build.seconds[name]:.1f} s", flush=True)


TABLES = ("leads", "lead_search_terms", "lead_tags")

_CONSTRAINTS_SQL = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
FROM pg_constraint c WHERE c.conrelid = ANY($1::regclass[]) AND c.contype IN ('p', 'u', 'f')
  AND NOT (c.conrelid = 'leads'::regclass AND c.contype = 'p')
ORDER BY c.contype = 'f', c.conname
"""
_INDEXES_SQL = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i WHERE i.indrelid = ANY($1::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""


async def build_database(owner_url: str, scale: Scale) -> Build:
    """Organizations, users and leads, loaded with INSERT ... SELECT as the owner: the ``leads_lookup_sync``
    trigger disabled and the lookup tables filled afterwards by the migrations' set-based backfill, secondary
    indexes and keys dropped before and built after the load, then VACUUM ANALYZE."""
    build = Build()
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        with _step(build, "organizations and users"):
            await conn.execute(
                "INSERT INTO organizations (name) SELECT 'Bench org ' || o FROM generate_series(1, $1) o "
                "ORDER BY o",
                scale.orgs,
            )
            await conn.execute(
                "INSERT INTO users (organization_id, email, name, role, slack_user_id) "
                "SELECT o, 'user' || u || '@org' || o || '.test', 'User ' || o || '-' || u, "
                "CASE WHEN u = 1 THEN 'manager' ELSE 'rep' END, 'U' || o || 'X' || u "
                "FROM generate_series(1, $1) o, generate_series(1, CASE WHEN o = 1 THEN $2::int ELSE $3::int END) u "
                "ORDER BY o, u",
                scale.orgs,
                scale.big_users,
                scale.small_users,
            )
            await conn.execute(
                "CREATE TABLE bench_user_ranges AS SELECT organization_id, min(id) AS first_id, "
                "count(*)::int AS n FROM users GROUP BY organization_id"
            )
            gaps = await conn.fetchval(
                "SELECT count(*) FROM bench_user_ranges WHERE n <> "
                "(SELECT count(*) FROM users u WHERE u.organization_id = bench_user_ranges.organization_id "
                " AND u.id BETWEEN first_id AND first_id + n - 1)"
            )
            assert gaps == 0, "user ids are not contiguous per organization"
        constraints = await conn.fetch(_CONSTRAINTS_SQL, list(TABLES))
        indexes = await conn.fetch(_INDEXES_SQL, list(TABLES))
        for table, name, _, _contype in reversed(constraints):  # foreign keys first
            await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            await conn.execute(f"DROP INDEX {name}")
        await conn.execute("ALTER TABLE leads DISABLE TRIGGER leads_lookup_sync")
        with _step(build, f"{scale.leads:,} leads (INSERT ... SELECT, trigger disabled)"):
            await conn.execute("SELECT setseed(0.42)")
            await conn.execute(leads_sql(scale))
        await conn.execute("ALTER TABLE leads ENABLE TRIGGER leads_lookup_sync")
        await conn.execute("DROP TABLE bench_user_ranges")
        with _step(build, "lookup tables (the migrations' BACKFILL)"):
            for statement in lookup_backfill():
                await conn.execute(statement)
        with _step(build, f"{len(constraints) + len(indexes)} indexes and keys"):
            for table, name, definition, _ in constraints:
                await conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            for _, definition in indexes:
                await conn.execute(definition)
        with _step(build, "VACUUM ANALYZE"):
            await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return build


# --- databases kept between runs ---------------------------------------------------------------------


def kept_name(scale: Scale) -> str:
    return "lma_bench_lead_queries" + ("_quick" if scale == QUICK else "")


def signature(scale: Scale) -> dict[str, Any]:
    """What a kept database must have been built with to be reused (newer migrations are applied to it)."""
    return {"scale": scale.label, "leads_sql": leads_sql(scale)}


async def _admin(server_url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(_dsn(server_url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def kept_build(server_url: str, name: str, scale: Scale) -> Build | None:
    comment = await _admin(
        server_url,
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        name,
    )
    if not comment:
        return None
    stored = json.loads(comment)
    if stored.get("signature") != signature(scale):
        return None
    return Build(seconds=stored["seconds"], reused=True)


async def prepare_database(server_url: str, scale: Scale, *, keep: bool) -> tuple[common.Bench, Build]:
    if keep:
        name = kept_name(scale)
        owner_url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        app = make_url(owner_url).set(username=DEFAULT_APP_ROLE, password=None)
        bench = common.Bench(
            server_url=server_url,
            owner_url=owner_url,
            app_url=app.render_as_string(hide_password=False),
            baseline_dsn=app.set(drivername="postgresql").render_as_string(hide_password=False),
            db_name=name,
        )
        build = await kept_build(server_url, name, scale)
        if build is not None:
            print(f"reusing database {name} (built with the same data); migrating it to head")
            await migrate(bench.owner_url, DEFAULT_APP_ROLE)
            return bench, build
        await common.drop_database(server_url, name)
        await _admin(server_url, f'CREATE DATABASE "{name}"')
    else:
        bench = await common.create_database(server_url, prefix="lma_bench_lq")
    print(f"building {scale.leads:,} leads in {bench.db_name}")
    started = time.perf_counter()
    try:
        await migrate(bench.owner_url, DEFAULT_APP_ROLE)
        migrated = time.perf_counter() - started
        build = await build_database(bench.owner_url, scale)
    except BaseException:
        await common.drop_database(server_url, bench.db_name)  # a half-built database is never reused
        raise
    build.seconds = {"migrate": migrated, **build.seconds}
    if keep:
        payload = json.dumps({"signature": signature(scale), "seconds": build.seconds})
        await _admin(
            server_url,
            f"COMMENT ON DATABASE \"{bench.db_name}\" IS '{payload.replace(chr(39), chr(39) * 2)}'",
        )
    return bench, build


# --- what is measured --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    label: str
    query: LeadQuery
    viewer: int = 0


@dataclass
class Kind:
    name: str
    variants: dict[str, list[Variant]]  # "big"/"small" -> variants
    page2: bool = False
    extra: bool = False  # not one of issue 4's kinds: shown, but outside the verdict
    latencies: dict[str, list[float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    statements: set[str] = field(default_factory=set)
    spent: dict[str, float] = field(default_factory=dict)


def _find(*texts: str) -> list[Variant]:
    return [Variant(t, LeadQuery(text=t)) for t in texts]


async def pick_kinds(owner_url: str, big: int, small: int) -> list[Kind]:
    conn = await asyncpg.connect(_dsn(owner_url))
    try:

        async def users(org: int) -> list[int]:
            rows = await conn.fetch(
                "SELECT id FROM users WHERE organization_id = $1 ORDER BY id LIMIT 10", org
            )
            return [r["id"] for r in rows]

        async def existing(org: int, words: list[str], n: int) -> list[str]:
            found = [
                w
                for w in words
                if await conn.fetchval(
                    "SELECT count(*) FROM leads WHERE organization_id = $1 AND deleted_at IS NULL "
                    "AND search_vector @@ to_tsquery('simple', $2)",
                    org,
                    " & ".join(x + ":*" for x in w.split()),
                )
            ]
            return found[:n] or words[:1]

        pairs = [f"{f} {ln}" for f in FIRST_NAMES[:40:3] for ln in LAST_NAMES[:60:7]]
        big_users, small_users = await users(big), await users(small)
        rare_big = await existing(big, RARE_LAST_NAMES, 5)
        rare_small = await existing(small, RARE_LAST_NAMES, 5)
        two_small = await existing(small, pairs, 5)
    finally:
        await conn.close()

    def both(
        variants: list[Variant], small_variants: list[Variant] | None = None
    ) -> dict[str, list[Variant]]:
        return {"big": variants, "small": small_variants if small_variants is not None else variants}

    common_words = _find("acme", "globex", "james", "mary", "smith")
    two_big = _find("christopher jones", "george lee", "mark ellis", "linda coleman", "kathleen reed")
    tags_common = [Variant(t, LeadQuery(filter=ListFilter.TAG, value=t)) for t in ("inbound", "outbound")]
    return [
        Kind("list all", both([Variant("-", LeadQuery())])),
        Kind(
            "list mine",
            {
                "big": [Variant(f"user {u}", LeadQuery(filter=ListFilter.MINE), u) for u in big_users],
                "small": [Variant(f"user {u}", LeadQuery(filter=ListFilter.MINE), u) for u in small_users],
            },
        ),
        Kind("list unassigned", both([Variant("-", LeadQuery(filter=ListFilter.UNASSIGNED))])),
        Kind(
            "list status:<common>", both([Variant("new", LeadQuery(filter=ListFilter.STATUS, value="new"))])
        ),
        Kind(
            "list status:<rare>",
            both([Variant("negotiation", LeadQuery(filter=ListFilter.STATUS, value="negotiation"))]),
        ),
        Kind("list tag:<common>", both(tags_common)),
        Kind(
            "list tag:<rare>",
            both([Variant(t, LeadQuery(filter=ListFilter.TAG, value=t)) for t in RARE_TAGS]),
        ),
        Kind("find <common word>", both(common_words)),
        Kind("find <rare word>", {"big": _find(*rare_big), "small": _find(*rare_small)}),
        Kind("find <short prefix>", both(_find("ac", "ma", "jo", "wil", "ste"))),
        Kind("find <two words>", {"big": two_big, "small": _find(*two_small)}),
        Kind("find <no match>", both(_find("zqxjv"))),
        Kind("list all, page 2", both([Variant("-", LeadQuery())]), page2=True),
        Kind(
            "list status:<common>, page 2",
            both([Variant("new", LeadQuery(filter=ListFilter.STATUS, value="new"))]),
            page2=True,
        ),
        Kind("list tag:<common>, page 2", both(tags_common), page2=True),
        Kind("find <common word>, page 2", both(common_words), page2=True),
        Kind("find <short prefix>, page 2", both(_find("ac", "ma", "jo", "wil", "ste")), page2=True),
        Kind("find <two words>, page 2", {"big": two_big, "small": _find(*two_small)}, page2=True),
        Kind("find <two common words, rare together>", both(_find("acme globex", "smith jones")), extra=True),
    ]


class Recorder:
    """The statements (and parameters) the service sends, while ``on``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.on = False
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if self.on:
            self.seen.append((statement, tuple(parameters or ())))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
        self.seen = []
        self.on = True
        try:
            yield self.seen
        finally:
            self.on = False


async def request(
    db: Database, org: int, variant: Variant, after: Cursor | None = None, limit: int = PAGE
) -> LeadPage:
    async with db.uow(org) as session:
        return await service.list_leads(
            session, org_id=org, viewer_id=variant.viewer, query=variant.query, after=after, limit=limit
        )


# --- measuring ---------------------------------------------------------------------------------------


async def measure(
    db: Database, recorder: Recorder, kinds: list[Kind], orgs: dict[str, int], reps: int, budget_s: float
) -> dict[tuple[str, str, str], Cursor | None]:
    """Round-robin over kinds and organizations, ``reps`` times after 2 warm-up rounds; page 2 starts after
    the last row of each variant's own first page."""
    cursors: dict[tuple[str, str, str], Cursor | None] = {}
    for kind in kinds:
        if kind.page2:
            for side, org in orgs.items():
                for v in kind.variants[side]:
                    cursors[(kind.name, side, v.label)] = (await request(db, org, v)).last
    for rep in range(-2, reps):
        for kind in kinds:
            for side, org in orgs.items():
                times = kind.latencies.setdefault(side, [])
                if rep >= 0 and len(times) >= 5 and kind.spent.get(side, 0.0) > budget_s:
                    continue
                variants = kind.variants[side]
                variant = variants[(rep + 2) % len(variants)]
                after = cursors.get((kind.name, side, variant.label)) if kind.page2 else None
                with recorder.recording() as seen:
                    started = time.perf_counter()
                    result = await request(db, org, variant, after)
                    elapsed = time.perf_counter() - started
                kind.statements.update(s for s, _ in seen if "set_config" not in s)
                if rep >= 0:
                    times.append(elapsed)
                    kind.spent[side] = kind.spent.get(side, 0.0) + elapsed
                    kind.rows[side] = max(kind.rows.get(side, 0), len(result.items))
        print(f"  round {rep + 1}/{reps}", end="\r", flush=True)
    print()
    return cursors


def expected_sql(variant: Variant, org: int, after: Cursor | None) -> tuple[str, list[Any]]:
    q = variant.query
    where = ["organization_id = $1", "deleted_at IS NULL"]
    args: list[Any] = [org]
    if q.text is not None:
        args.append(" & ".join(w + ":*" for w in dict.fromkeys(repository.search_terms(q.text))))
        where.append(f"search_vector @@ to_tsquery('simple', ${len(args)})")
    elif q.filter is ListFilter.MINE:
        args.append(variant.viewer)
        where.append(f"assigned_to_id = ${len(args)}")
    elif q.filter is ListFilter.UNASSIGNED:
        where.append("assigned_to_id IS NULL")
    elif q.filter is ListFilter.STATUS:
        args.append(q.value)
        where.append(f"status = ${len(args)}")
    elif q.filter is ListFilter.TAG:
        args.append([q.value])
        where.append(f"tags @> ${len(args)}::varchar[]")
    if after is not None:
        args += [after.created_at, after.id]
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    sql = (
        f"SELECT id FROM leads WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT {PAGE + 1}"
    )
    return sql, args


async def check_rows(
    db: Database, owner_url: str, kinds: list[Kind], orgs: dict[str, int], cursors: dict[Any, Cursor | None]
) -> tuple[int, int, list[str]]:
    """Every variant's page (ids, order, has_next) equals the same page computed directly as the owner."""
    checked = ok = 0
    problems: list[str] = []
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        for kind in kinds:
            for side, org in orgs.items():
                for v in kind.variants[side]:
                    after = cursors.get((kind.name, side, v.label)) if kind.page2 else None
                    got = await request(db, org, v, after)
                    sql, args = expected_sql(v, org, after)
                    want = [r["id"] for r in await conn.fetch(sql, *args)]
                    checked += 1
                    if [i.id for i in got.items] == want[:PAGE] and got.has_next == (len(want) > PAGE):
                        ok += 1
                    else:
                        problems.append(
                            f"{kind.name} / {side} / {v.label}: got {[i.id for i in got.items]}, want {want}"
                        )
    finally:
        await conn.close()
    return checked, ok, problems


# --- plans -------------------------------------------------------------------------------------------


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class Plan:
    mode: str
    text: str
    summary: str
    warnings: list[str]
    ms: float


def _walk(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    out.append(node)
    for child in node.get("Plans", []):
        _walk(child, out)


def summarize(plan_json: dict[str, Any]) -> tuple[str, list[str], float]:
    nodes: list[dict[str, Any]] = []
    _walk(plan_json["Plan"], nodes)
    scans: list[str] = []
    read = removed = probed = 0
    sorted_rows = 0
    warnings: list[str] = []
    for i, node in enumerate(nodes):
        relation = node.get("Relation Name")
        if relation and relation != "users":
            scan = node["Node Type"]
            label = (
                f"{scan} using {node['Index Name']} on {relation}"
                if "Index Name" in node
                else f"{scan} on {relation}"
            )
            if label not in scans:
                scans.append(label)
            loops = node.get("Actual Loops", 1)
            gone = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
            read += (node.get("Actual Rows", 0) + gone) * loops
            if node.get("Index Name") == "pk_lead_search_terms":
                probed += gone * loops  # a lead's own entries, checked against the word: by design
            else:
                removed += gone * loops
            if scan == "Seq Scan":
                warnings.append(f"Seq Scan on {relation}")
        if node["Node Type"] == "Sort":
            below = nodes[i + 1] if i + 1 < len(nodes) else {}
            sorted_rows += below.get("Actual Rows", 0) * below.get("Actual Loops", 1)
    if removed >= 1000:
        warnings.append(f"{removed:,} rows removed by filter")
    if sorted_rows >= 1000:
        warnings.append(f"Sort of {sorted_rows:,} rows")
    top = plan_json["Plan"]
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    ms = plan_json["Execution Time"]
    parts = [" → ".join(f"`{s}`" for s in scans), f"{read:,} rows read"]
    if removed:
        parts.append(f"{removed:,} removed by filter")
    if probed:
        parts.append(f"{probed:,} probed entries not the word")
    if sorted_rows:
        parts.append(f"sort of {sorted_rows:,}")
    parts += [f"{buffers:,} buffers", f"{ms:.1f} ms"]
    return "; ".join(parts), warnings, ms


def statement_mode(sql: str) -> str:
    """Which step of `find` (see ``lma_bot.leads.repository.page_rows``) a statement is."""
    if "AS counts" in sql:
        return "word counts"
    if "AS walk" in sql:
        return "walk"
    if "AS matched" in sql:
        return "intersect" if "AS w0" in sql else "drive"
    if "lead_search_terms" in sql and "count(*)" in sql:
        return "word counts"
    return "page"


async def explain(
    db: Database, org: int, statement: str, params: tuple[Any, ...], mode: str
) -> tuple[str, dict[str, Any]]:
    """``PREPARE`` the statement as asyncpg sent it, then ``EXPLAIN (ANALYZE, BUFFERS) EXECUTE`` it with
    ``plan_cache_mode`` forced, as ``lma_app`` inside a unit of work."""
    args = ", ".join(_literal(p) for p in params)
    execute = f"EXECUTE bench_plan({args})" if params else "EXECUTE bench_plan"
    async with db.uow(org) as session:
        await session.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
        await session.execute(text(f"PREPARE bench_plan AS {statement}"))
        try:
            rows = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}"))
            as_json = rows.scalar_one()
            rows = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {execute}"))
            as_text = "\n".join(str(r[0]) for r in rows)
        finally:
            await session.execute(text("DEALLOCATE bench_plan"))
    data = as_json if isinstance(as_json, list) else json.loads(as_json)
    return as_text, data[0]


async def plans_for(
    db: Database, recorder: Recorder, org: int, variant: Variant, after: Cursor | None
) -> dict[str, list[Plan]]:
    """Run the request once recording what the service sent, then explain each statement both ways."""
    with recorder.recording() as seen:
        await request(db, org, variant, after)
    statements = [(s, p) for s, p in seen if "set_config" not in s]
    out: dict[str, list[Plan]] = {}
    for mode in ("force_custom_plan", "force_generic_plan"):
        for statement, params in statements:
            as_text, as_json = await explain(db, org, statement, params, mode)
            summary, warnings, ms = summarize(as_json)
            out.setdefault(mode, []).append(Plan(statement_mode(statement), as_text, summary, warnings, ms))
    return out


# --- report ------------------------------------------------------------------------------------------


async def describe_data(owner_url: str, big: int, small: int) -> str:
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        r = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT organization_id) AS orgs, "
            "avg((assigned_to_id IS NOT NULL)::int) AS assigned, avg((deleted_at IS NOT NULL)::int) AS deleted, "
            "avg(cardinality(tags)) AS tags, min(created_at)::date AS first, max(created_at)::date AS last, "
            "count(*) FILTER (WHERE organization_id = $1) AS big, count(*) FILTER (WHERE organization_id = $2) AS small "
            "FROM leads",
            big,
            small,
        )
        users = await conn.fetchval("SELECT count(*) FROM users")
        big_users = await conn.fetchval("SELECT count(*) FROM users WHERE organization_id = $1", big)
        small_users = await conn.fetchval("SELECT count(*) FROM users WHERE organization_id = $1", small)
        sizes = {
            t: await conn.fetchrow(
                f"SELECT (SELECT count(*) FROM {t}) AS n, pg_size_pretty(pg_total_relation_size('{t}')) AS size"
            )
            for t in TABLES
        }
        statuses = await conn.fetch(
            "SELECT status, avg(1.0) * count(*) / sum(count(*)) OVER () AS share FROM leads GROUP BY status "
            "ORDER BY 2 DESC"
        )
    finally:
        await conn.close()
    status_text = ", ".join(f"{s['status']} {100 * s['share']:.1f}%" for s in statuses)
    return (
        f"{r['n']:,} leads in {r['orgs']} organizations; big org {big}: {r['big']:,} leads, {big_users} users; "
        f"typical small org {small}: {r['small']:,} leads, {small_users} users ({users:,} users in all). "
        f"{100 * r['assigned']:.0f}% assigned, {100 * r['deleted']:.1f}% soft-deleted, {r['tags']:.2f} tags per "
        f"lead ({len(COMMON_TAGS)} common tags, skewed, + {len(RARE_TAGS)} rare ones), created {r['first']} to "
        f"{r['last']} (heap in created_at order, organizations interleaved). Names/companies from word lists "
        f"with skew ({len(FIRST_NAMES)} first names, {len(LAST_NAMES)} last names + {len(RARE_LAST_NAMES)} rare "
        f"ones on 0.3% of leads, {len(COMPANIES)} companies on 90%; email `first.lastN@company-or-mail-host.com`, "
        f"unique per org). Statuses: {status_text}. Sizes with indexes: "
        + ", ".join(f"{t} {sizes[t]['n']:,} rows ({sizes[t]['size']})" for t in TABLES)
        + "."
    )


def _p(times: list[float], pct: int) -> float:
    if len(times) < 2:
        return times[0] * 1000 if times else float("nan")
    return common.percentile_ms(times, pct)


def _plan_cell(plans: list[Plan]) -> str:
    cells = []
    for plan in plans:
        cell = f"{plan.mode}: {plan.summary}"
        if plan.warnings:
            cell += " — **⚠ " + ", ".join(plan.warnings) + "**"
        cells.append(cell)
    return "<br>".join(cells)


def render(
    *,
    command: str,
    machine: str,
    data: str,
    build: Build,
    scale: Scale,
    reps: int,
    budget: float,
    loads: tuple[float, float],
    kinds: list[Kind],
    plans: dict[tuple[str, str], dict[str, list[Plan]]],
    cache: dict[str, tuple[int, int]],
    checked: tuple[int, int, list[str]],
    modes: dict[tuple[str, str], str],
) -> str:
    rows = []
    misses: list[str] = []
    extra_misses: list[str] = []
    total = passed = 0
    for kind in kinds:
        for side in ("big", "small"):
            times = kind.latencies[side]
            p50, p95, worst = _p(times, 50), _p(times, 95), max(times) * 1000
            ok = p95 <= TARGET_MS
            if not kind.extra:
                total += 1
                passed += ok
                if not ok:
                    misses.append(f"{kind.name} on the {side} org ({p95:.1f} ms)")
            elif not ok:
                extra_misses.append(f"{kind.name} on the {side} org ({p95:.1f} ms)")
            labels = [v.label for v in kind.variants[side]]
            variants = "-" if labels == ["-"] else ", ".join(f"`{label}`" for label in labels)
            g, c = cache.get(kind.name, (0, 0))
            pl = plans.get((kind.name, side), {})
            rows.append(
                f"| {kind.name} | {variants} | {side} | {kind.rows.get(side, 0)} | {len(times)} | {p50:.2f} | "
                f"{p95:.2f} | {worst:.2f} | {'pass' if ok else '**MISS**'} | {modes.get((kind.name, side), '-')} | "
                f"{g}/{c} | {_plan_cell(pl.get('force_custom_plan', []))} | "
                f"{_plan_cell(pl.get('force_generic_plan', []))} |"
            )
    verdict = f"**Verdict: {passed} of {total} pass p95 <= {TARGET_MS:.0f} ms"
    verdict += f"; misses: {'; '.join(misses)}.**" if misses else ".**"
    extras = [k.name for k in kinds if k.extra]
    if extras:
        verdict += (
            f" Not counted (an extra kind, beyond the issue's list, showing a limit): {', '.join(extras)}"
            + (f": over the target: {'; '.join(extra_misses)}." if extra_misses else ": within the target.")
        )
    n_checked, n_ok, problems = checked
    build_text = ", ".join(f"{k} {v:.1f} s" for k, v in build.seconds.items())
    build_line = f"{sum(build.seconds.values()):.1f} s ({build_text})"
    if build.reused:
        build_line += (
            " — database kept from an earlier run with the same data (`--keep`), then migrated to head"
        )
    out = [
        "## lead_queries: `/lead list` and `/lead find` at scale, under row-level security",
        "",
        f"- Command: `{command}`",
        f"- Date (UTC): {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}",
        f"- Machine: {machine}",
        f"- Data: {data}",
        f"- Build: {build_line}. INSERT ... SELECT as the owner with the `leads_lookup_sync` trigger disabled, "
        "then the lookup tables filled by the migrations' set-based `BACKFILL`; secondary indexes and the lookup "
        "tables' keys dropped before and rebuilt after the load; VACUUM ANALYZE.",
        "- Method: each request is `async with database.uow(org_id)` + `lma_bot.leads.service.list_leads(...)` "
        "as `lma_app` (pool pre-ping, `BEGIN`, set tenant, the statements below, `COMMIT`), one at a time on one "
        "pooled connection. The kinds run round-robin, the big organization's and the small one's interleaved "
        f"(one plan cache sees them all, as in production), after 2 warm-up rounds; {reps} repetitions per kind "
        f"and organization, cycling through the variants shown; a kind that has spent {budget:.0f} s stops after "
        "at least 5 (column n). Page 2 passes `after=` the last cursor of each variant's own first page. "
        f"Load average (1 min) before / after measuring: {loads[0]:.2f} / {loads[1]:.2f}.",
        f"- `find` strategy (`lma_bot/leads/repository.py`): one index-only statement counts each word's lookup "
        f"entries up to {repository.FIND_SELECTIVE:,} (`word counts`); if the rarest word has fewer, its "
        "entries **drive** (all its leads fetched and sorted, each other word one probe of `pk_lead_search_terms` "
        "per candidate); otherwise the page **walk**s the newest leads past the cursor on "
        "`idx_leads_org_created_at`, each word one probe of `pk_lead_search_terms` per lead, stopping at the page: "
        f"first at most {repository.FIND_FIRST_WINDOW:,} leads, then (if they held some matches but not a page) "
        f"{repository.FIND_WINDOW:,}; if a window held no match at all, or the long one not a page, an "
        "**intersect** statement hash-joins the words' entries (a FULL JOIN of index-only range scans), with every "
        "value written into its SQL so it is always planned for them. Column *find path*: the statements the "
        "slowest variant ran.",
        f"- Rows checked: {n_ok} of {n_checked} variant pages (ids, order and has-next) equal the same page "
        "computed directly on `leads` as the owner (`search_vector @@ to_tsquery('simple', 'w:* & ...')`, "
        "`tags @> ARRAY[t]`, `(created_at, id) < cursor`, ...).",
        "- Plans: every statement the service sent for the kind's slowest variant (by median), `PREPARE`d as "
        "asyncpg sent it and run with `EXPLAIN (ANALYZE, BUFFERS) EXECUTE` as `lma_app` inside a unit of work, "
        "once with `plan_cache_mode = force_custom_plan` and once with `force_generic_plan` (what a cached "
        "statement runs once PostgreSQL has switched it to its generic plan). Plan cache g/c: generic/custom "
        "executions of the kind's statements on the measuring connection (`pg_prepared_statements`, both "
        "organizations; statements shared between kinds count for each). Summary: the scans in plan order (the "
        "users join left out), rows read from `leads` and the lookup tables (returned + removed by filter, times "
        "loops; *probed entries not the word*: a lead's own entries read by a `pk_lead_search_terms` probe that "
        "were another word), rows sorted, buffers, server time. ⚠ marks a Seq Scan, a Sort of or rows removed by "
        "filter (other than by probes) of >= 1,000 rows.",
        "",
        verdict,
        "",
        "| query | variants | org | rows | n | p50 ms | p95 ms | max ms | p95 <= 20 ms | find path | plan cache g/c "
        "| custom plan | generic plan |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|---|---|---|",
        *rows,
    ]
    if problems:
        out += ["", "Row mismatches:", "", *(f"- {p}" for p in problems)]
    out += ["", "<details><summary>Plans on the big organization</summary>", ""]
    for kind in kinds:
        big_plans = plans.get((kind.name, "big"))
        if not big_plans:
            continue
        out += [f"**{kind.name}**", "", "```"]
        for mode, plan_list in big_plans.items():
            for plan in plan_list:
                out += [f"-- {plan.mode}, {mode}", plan.text, ""]
        out[-1:] = ["```", ""]
    out += ["</details>"]
    return "\n".join(out)


# --- main --------------------------------------------------------------------------------------------


async def plan_cache(db: Database, kinds: list[Kind]) -> dict[str, tuple[int, int]]:
    async with db.uow(1) as session:
        rows = (
            await session.execute(
                text("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            )
        ).all()
    out: dict[str, tuple[int, int]] = {}
    for kind in kinds:
        g = sum(int(r[1]) for r in rows if r[0] in kind.statements)
        c = sum(int(r[2]) for r in rows if r[0] in kind.statements)
        out[kind.name] = (g, c)
    return out


async def main(args: argparse.Namespace, argv: list[str]) -> int:
    server_url = common.server_url_from(args.server_url)
    scale = QUICK if args.quick else FULL
    if args.drop:
        for name in (kept_name(FULL), kept_name(QUICK)):
            await common.drop_database(server_url, name)
            print(f"dropped {name} (if it existed)")
        return 0
    reps = args.reps or (20 if args.quick else 100)
    budget = 10.0
    bench, build = await prepare_database(server_url, scale, keep=args.keep)
    if args.build_only:
        print(f"built {bench.db_name}" + ("" if args.keep else " (dropped: --build-only is for --keep)"))
        if not args.keep:
            await common.drop_database(server_url, bench.db_name)
        return 0
    big, small = 1, scale.small_org
    orgs = {"big": big, "small": small}
    owner = create_async_engine(bench.owner_url, poolclass=NullPool)
    db = Database.from_url(bench.app_url, pool_size=1, application_name="lma-bot bench")
    recorder = Recorder(db.engine)
    try:
        machine = common.machine_info(await common.server_info(owner))
        async with owner.connect() as conn:
            settings = [
                f"{name}={(await conn.execute(text(f'SHOW {name}'))).scalar_one()}"
                for name in ("shared_buffers", "work_mem", "jit", "random_page_cost", "plan_cache_mode")
            ]
        machine += "; " + ", ".join(settings)
        data = await describe_data(bench.owner_url, big, small)
        print(data)
        kinds = await pick_kinds(bench.owner_url, big, small)
        if args.only:
            kinds = [k for k in kinds if args.only in k.name]
        load_before = common.load_average()[0]
        print(f"measuring ({reps} repetitions, load {load_before:.2f})")
        cursors = await measure(db, recorder, kinds, orgs, reps, budget)
        load_after = common.load_average()[0]
        cache = await plan_cache(db, kinds)
        checked = await check_rows(db, bench.owner_url, kinds, orgs, cursors)
        plans: dict[tuple[str, str], dict[str, list[Plan]]] = {}
        modes: dict[tuple[str, str], str] = {}
        for kind in kinds:
            for side, org in orgs.items():
                slowest = max(
                    kind.variants[side],
                    key=lambda v: (
                        statistics.median(
                            kind.latencies[side][i]
                            for i in range(len(kind.latencies[side]))
                            if kind.variants[side][(i) % len(kind.variants[side])] == v
                        )
                        if len(kind.latencies[side]) >= len(kind.variants[side])
                        else 0.0
                    ),
                )
                after = cursors.get((kind.name, side, slowest.label)) if kind.page2 else None
                plans_for_kind = await plans_for(db, recorder, org, slowest, after)
                plans[(kind.name, side)] = plans_for_kind
                used = [p.mode for p in plans_for_kind.get("force_custom_plan", [])]
                modes[(kind.name, side)] = " + ".join(used) if kind.variants[side][0].query.text else "-"
    finally:
        await db.dispose()
        await owner.dispose()
        if not args.keep:
            await common.drop_database(server_url, bench.db_name)
            print(f"dropped {bench.db_name}")
    print()
    print(f"{'query':<32} {'org':<6} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  path")
    for kind in kinds:
        for side in orgs:
            times = kind.latencies[side]
            print(
                f"{kind.name:<32} {side:<6} {len(times):>4} {_p(times, 50):8.2f} {_p(times, 95):8.2f} "
                f"{max(times) * 1000:8.2f}  {modes.get((kind.name, side), '')}"
            )
    n_checked, n_ok, problems = checked
    print(f"rows checked: {n_ok} of {n_checked} pages equal the direct query")
    for problem in problems:
        print("  MISMATCH", problem)
    if not args.no_write:
        section = render(
            command=common.command_line("bench/lead_queries.py", argv),
            machine=machine,
            data=data,
            build=build,
            scale=scale,
            reps=reps,
            budget=budget,
            loads=(load_before, load_after),
            kinds=kinds,
            plans=plans,
            cache=cache,
            checked=checked,
            modes=modes,
        )
        common.write_results(NAME, section)
        print(f"wrote the {NAME} section of {RESULTS}")
    return 0 if not problems else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="60,000 leads in 12 organizations, 20 repetitions"
    )
    parser.add_argument("--keep", action="store_true", help="keep the built database and reuse it next time")
    parser.add_argument("--build-only", action="store_true", help="with --keep: build (or check) and exit")
    parser.add_argument("--drop", action="store_true", help="drop the databases --keep left, then exit")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per kind and organization")
    parser.add_argument("--only", default=None, help="only the kinds whose name contains this (development)")
    parser.add_argument("--no-write", action="store_true", help="don't touch RESULTS.md")
    parser.add_argument("--server-url", default=None, help="a server URL whose user may create databases")
    return parser.parse_args(argv[1:])


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(sys.argv), sys.argv)))
