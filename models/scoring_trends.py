"""Lead scoring trends (seed 000 "Get Lead Scoring Trends") from the score history `lead_score`,
and the rollups that keep whole-workspace reads fast (migration 0012).

Rules (README "Scoring trends"), for a period P (D7, D30, D90) and a bucket unit U (DAY, WEEK,
MONTH; UTC, weeks start on Monday):
- the buckets run from the one holding `now - P` to the one holding now; a bucket is listed
  when at least one of the viewer's leads was scored in it.
- a lead's score in a bucket is its LATEST scoring there; averageScore is the mean of those
  over the leads scored in the bucket; highValueCount and scoreDistribution count them (bands:
  excellent >= 80 (= high value, the workspace's rule), good 60-79, moderate 40-59, low < 40).
- a rescoring is a scoring of a lead scored before; its change = its score - the lead's score
  just before it (however long before). A lead's first scoring ever has none.
- topImprovers: per bucket, each lead's biggest rise of at least MIN_IMPROVEMENT points at one
  rescoring, the TOP_IMPROVERS biggest (ties: lower lead id); `reason` lists what the data shows
  changed between those two scorings: the lead's stage changes and activity (lead_event) in
  between, and a change of model version.
- averageImprovement: the mean change of the period's rescorings (0 when none); overallTrend
  IMPROVING at >= IMPROVING points, DECLINING at <= DECLINING, else STABLE.
- segments (the lead's source, and its property type; UNSPECIFIED when none): the same mean
  over the segment's rescorings, counted with at least MIN_SEGMENT_SAMPLE of them. Best: the
  highest mean above 0; concerning: a mean at or below CONCERNING_DROP, worst first, with a
  recommendation from RECOMMENDATIONS (the first rule matching the segment).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from models.db import TZ, Database, utcnow
from models.errors import BadUserInput, NotFound
from models.leads import Lead
from models.periods import PERIODS, check_period, rate
from models.scope import Scope

TREND_PERIODS = ("D7", "D30", "D90")
UNITS = {"DAY": "day", "WEEK": "week", "MONTH": "month"}
MAX_LEAD_IDS = 1000
HIGH_VALUE_SCORE = 80  # the workspace's high-value rule (sales performance, lead insights)
BANDS = (("excellent", 80), ("good", 60), ("moderate", 40), ("low", 0))
MIN_IMPROVEMENT = 10  # points; smaller rises are noise between two scorings
TOP_IMPROVERS = 5
IMPROVING = 1.0  # mean change per rescoring, points, at or above which the trend is IMPROVING
DECLINING = -1.0
MIN_SEGMENT_SAMPLE = 20
CONCERNING_DROP = -2.0
UNSPECIFIED = "UNSPECIFIED"
HISTORY_PARTS = 2  # concurrent statements of a scoped (USER / AGENT) read
# the rollup's additive numbers
_CELL_COLUMNS = (
    "leads",
    "score_sum",
    "excellent",
    "good",
    "moderate",
    "low",
    "rescorings",
    "change_sum",
)


class ScoreTrend(SQLModel, table=True):
    """Per workspace, bucket unit (day / week / month), UTC bucket and lead segment: the leads
    scored in the bucket (each by its latest scoring there), their score sum and bands, and
    the bucket's rescorings with the sum of their changes. Kept by a statement trigger on
    `lead_score` (migration 0012); whole-workspace reads sum it."""

    __tablename__ = "score_trend"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    unit: str = Field(primary_key=True, max_length=8)
    bucket: datetime = Field(primary_key=True, sa_type=TZ)
    source: str = Field(primary_key=True, max_length=24)
    property_type: str = Field(primary_key=True, max_length=24)
    leads: int
    score_sum: int = Field(sa_type=sa.BigInteger)
    excellent: int
    good: int
    moderate: int
    low: int
    rescorings: int
    change_sum: int = Field(sa_type=sa.BigInteger)


class ScoreTrendTop(SQLModel, table=True):
    """Each UTC day's TOP_IMPROVERS biggest rises (of at least MIN_IMPROVEMENT points), each
    lead once with its biggest; a week's or month's are the best of its days'. Kept with
    `score_trend` (migration 0012)."""

    __tablename__ = "score_trend_top"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    day: datetime = Field(primary_key=True, sa_type=TZ)
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    change: int = Field(sa_type=sa.SmallInteger)
    value: int = Field(sa_type=sa.SmallInteger)
    before: int = Field(sa_type=sa.SmallInteger)
    scored_at: datetime = Field(sa_type=TZ)
    before_at: datetime = Field(sa_type=TZ)


# ---- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Improver:
    lead_id: int
    name: str
    score: int
    previous_score: int
    score_increase: int
    scored_at: datetime
    previous_scored_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class TrendBucket:
    period_start: datetime
    leads_scored: int
    average_score: float
    high_value_count: int
    excellent: int
    good: int
    moderate: int
    low: int
    rescorings: int
    average_change: float
    top_improvers: list[Improver]


@dataclass(frozen=True, slots=True)
class Segment:
    dimension: str  # SOURCE or PROPERTY_TYPE
    value: str
    average_improvement: float
    sample_size: int


@dataclass(frozen=True, slots=True)
class ConcerningTrend:
    segment: Segment
    issue: str
    recommendation: str


@dataclass(frozen=True, slots=True)
class TrendInsights:
    overall_trend: str  # IMPROVING / STABLE / DECLINING
    average_improvement: float
    rescorings: int
    best_performing_segment: Segment | None
    segments: list[Segment]
    concerning_trends: list[ConcerningTrend]


@dataclass(frozen=True, slots=True)
class ScoringTrends:
    period: str
    group_by: str
    window_start: datetime
    window_end: datetime
    trends: list[TrendBucket]
    insights: TrendInsights


# ---- per scoring and per bucket (the same rules as the rollup's trigger, migration 0012) ---------

# every scoring of {rows} (lead_score rows with the lead's source and property_type) in its
# bucket of :unit, with its lead's scoring before it and the bucket of the one after it
SCORINGS = """
    SELECT s.source, s.property_type, s.lead_id, s.value, s.scored_at, s.bucket,
           lag(s.value) OVER w AS prev, lag(s.scored_at) OVER w AS prev_at,
           lead(s.bucket) OVER w AS next_bucket
    FROM (SELECT r.*, date_trunc(:unit, r.scored_at, 'UTC') AS bucket FROM ({rows}) r) s
    WINDOW w AS (PARTITION BY s.lead_id ORDER BY s.scored_at, s.id)
"""

# the rollup's numbers of scorings `c` (bucket, segment, value, latest, change)
_CELLS_OF = """
    SELECT c.bucket, c.source, c.property_type,
           count(*) FILTER (WHERE c.latest) AS leads,
           coalesce(sum(c.value) FILTER (WHERE c.latest), 0) AS score_sum,
           count(*) FILTER (WHERE c.latest AND c.value >= 80) AS excellent,
           count(*) FILTER (WHERE c.latest AND c.value >= 60 AND c.value < 80) AS good,
           count(*) FILTER (WHERE c.latest AND c.value >= 40 AND c.value < 60) AS moderate,
           count(*) FILTER (WHERE c.latest AND c.value < 40) AS low,
           count(c.change) AS rescorings, coalesce(sum(c.change), 0) AS change_sum
    FROM c
    GROUP BY 1, 2, 3
"""


def trunc(at: datetime, unit: str) -> datetime:
    """Start of the UTC day / week (Monday) / month holding `at`."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def window_start(now: datetime, period: str, unit: str) -> datetime:
    """Start of the bucket holding `now - period`."""
    return trunc(now - PERIODS[period], unit)


def next_bucket(bucket: datetime, unit: str) -> datetime:
    if unit == "day":
        return bucket + timedelta(days=1)
    if unit == "week":
        return bucket + timedelta(days=7)
    return (bucket + timedelta(days=32)).replace(day=1)


@dataclass(slots=True)
class _Cell:
    """Additive numbers of one bucket (or segment)."""

    leads: int = 0
    score_sum: int = 0
    excellent: int = 0
    good: int = 0
    moderate: int = 0
    low: int = 0
    rescorings: int = 0
    change_sum: int = 0

    def add(self, row: dict[str, Any]) -> None:
        for name in _CELL_COLUMNS:
            setattr(self, name, getattr(self, name) + int(row[name]))


@dataclass(frozen=True, slots=True)
class _Rise:
    bucket: datetime
    lead_id: int
    change: int
    value: int
    before: int
    scored_at: datetime
    before_at: datetime


@dataclass(slots=True)
class _Found:
    # bucket, source, property_type and the _CELL_COLUMNS
    cells: list[dict[str, Any]] = field(default_factory=list)
    rises: list[_Rise] = field(default_factory=list)  # the top ones of each bucket


def best_rises(rises: list[_Rise]) -> list[_Rise]:
    """Per bucket, each lead's biggest rise (ties: the later), then the TOP_IMPROVERS biggest
    (ties: lower lead id)."""
    best: dict[tuple[datetime, int], _Rise] = {}
    for r in rises:
        key = (r.bucket, r.lead_id)
        found = best.get(key)
        if found is None or (r.change, r.scored_at) > (found.change, found.scored_at):
            best[key] = r
    per_bucket: dict[datetime, list[_Rise]] = defaultdict(list)
    for r in best.values():
        per_bucket[r.bucket].append(r)
    return [
        r
        for bucket in sorted(per_bucket)
        for r in sorted(per_bucket[bucket], key=lambda r: (-r.change, r.lead_id))[:TOP_IMPROVERS]
    ]


async def _from_rollup(
    db: Database, workspace_id: int, unit: str, start: datetime, stop: datetime
) -> _Found:
    """Whole workspace, no lead filter: the rollups (two statements at once)."""
    sums = ", ".join(f"sum({c}) AS {c}" for c in _CELL_COLUMNS)
    cells_sql = sa.text(
        f"""
        SELECT bucket, source, property_type, {sums}
        FROM score_trend
        WHERE workspace_id = :ws AND unit = :unit AND bucket >= :start AND bucket < :stop
        GROUP BY 1, 2, 3
        """
    )
    top_sql = sa.text(
        """
        SELECT day, lead_id, change, value, before, scored_at, before_at FROM score_trend_top
        WHERE workspace_id = :ws AND day >= :start AND day < :stop
        """
    )
    params = {"ws": workspace_id, "unit": unit, "start": start, "stop": stop}

    async def read(statement: Any) -> list[Any]:
        async with db.session() as session:
            return list((await session.execute(statement, params)).all())

    cells, top = await asyncio.gather(read(cells_sql), read(top_sql))
    rises = [_Rise(trunc(r.day, unit), *r[1:]) for r in top]
    return _Found([dict(r._mapping) for r in cells], best_rises(rises))


async def _from_history(
    session: AsyncSession,
    scope: Scope,
    unit: str,
    start: datetime,
    stop: datetime,
    lead_ids: Sequence[int] | None,
    part: int = 0,
    parts: int = 1,
) -> _Found:
    """Some leads only (a USER's or AGENT's, or `leadIds`): their score history itself; the
    leads with `id % parts == part` (parts run concurrently, their numbers add up)."""
    visible = sa.select(
        col(Lead.id),
        col(Lead.source),
        sa.func.coalesce(col(Lead.property_type), UNSPECIFIED).label("property_type"),
    ).where(scope.leads(Lead))
    if lead_ids is not None:
        visible = visible.where(col(Lead.id).in_(list(lead_ids)))
    if parts > 1:
        visible = visible.where(col(Lead.id) % parts == part)
    # ids and the scope's numbers only: literal binds are safe and keep the text one statement
    leads = visible.compile(compile_kwargs={"literal_binds": True})
    # each visible lead's history through the lead index (a few rows a lead), not a scan of
    # the workspace's whole history
    rows = f"""
        SELECT v.source, v.property_type, s.lead_id, s.id, s.value, s.scored_at
        FROM ({leads}) v
        CROSS JOIN LATERAL (
            SELECT s.lead_id, s.id, s.value, s.scored_at FROM lead_score s
            WHERE s.workspace_id = :ws AND s.lead_id = v.id
            OFFSET 0
        ) s
    """
    statement = sa.text(
        f"""
        WITH sc AS MATERIALIZED ({SCORINGS.format(rows=rows)}),
        c AS (
            SELECT bucket, source, property_type, value,
                   next_bucket IS DISTINCT FROM bucket AS latest, value - prev AS change
            FROM sc WHERE scored_at >= :start AND scored_at < :stop
        ),
        cells AS ({_CELLS_OF}),
        rises AS (
            SELECT bucket, lead_id, value - prev AS change, value, prev AS before, scored_at,
                   prev_at AS before_at
            FROM sc
            WHERE scored_at >= :start AND scored_at < :stop AND value - prev >= :min_improvement
        )
        SELECT 'cell' AS kind, to_jsonb(cells) AS row FROM cells
        UNION ALL
        SELECT 'rise', to_jsonb(rises) FROM rises
        """
    )
    params = {
        "ws": scope.workspace_id,
        "unit": unit,
        "start": start,
        "stop": stop,
        "min_improvement": MIN_IMPROVEMENT,
    }
    found = _Found()
    rises: list[_Rise] = []
    # sorts and hashes of a few hundred thousand scorings stay in memory; no JIT for one run
    await session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
    await session.execute(sa.text("SET LOCAL jit = off"))
    for kind, row in (await session.execute(statement, params)).all():
        row["bucket"] = datetime.fromisoformat(row["bucket"])
        if kind == "cell":
            found.cells.append(row)
        else:
            for key in ("scored_at", "before_at"):
                row[key] = datetime.fromisoformat(row[key])
            rises.append(_Rise(**row))
    found.rises = best_rises(rises)
    return found


async def _history_in_parts(
    db: Database,
    scope: Scope,
    unit: str,
    start: datetime,
    stop: datetime,
    lead_ids: Sequence[int] | None,
) -> _Found:
    """A USER's or AGENT's leads can be tens of thousands: two halves at once (two cores)."""
    parts = 1 if lead_ids is not None else HISTORY_PARTS

    async def part(k: int) -> _Found:
        # a transaction of its own for SET LOCAL (reads are autocommit)
        async with db.transaction() as session:
            return await _from_history(session, scope, unit, start, stop, lead_ids, k, parts)

    found = _Found()
    rises: list[_Rise] = []
    for one in await asyncio.gather(*(part(k) for k in range(parts))):
        found.cells.extend(one.cells)
        rises.extend(one.rises)
    found.rises = best_rises(rises)
    return found


# ---- reasons ------------------------------------------------------------------------------------

# how an activity reads in a reason: event type -> (singular, plural)
ACTIVITY_WORDS: dict[str, tuple[str, str]] = {
    "EMAIL_OPENED": ("email opened", "emails opened"),
    "EMAIL_REPLIED": ("email reply", "email replies"),
    "EMAIL_SENT": ("email sent", "emails sent"),
    "CALL": ("call", "calls"),
    "MEETING": ("meeting", "meetings"),
    "SHOWING": ("showing", "showings"),
    "WEBSITE_VISIT": ("website visit", "website visits"),
    "NOTE": ("note", "notes"),
}

_REASONS = sa.text(
    """
    SELECT i.k, e.type, count(*) AS n,
           (array_agg(e.from_stage ORDER BY e.occurred_at, e.id)
                FILTER (WHERE e.type = 'STAGE_CHANGE'))[1] AS first_from,
           (array_agg(e.to_stage ORDER BY e.occurred_at DESC, e.id DESC)
                FILTER (WHERE e.type = 'STAGE_CHANGE'))[1] AS last_to
    FROM unnest(CAST(:ks AS int[]), CAST(:leads AS bigint[]), CAST(:froms AS timestamptz[]),
                CAST(:tos AS timestamptz[])) AS i(k, lead_id, from_at, to_at)
    JOIN lead_event e ON e.workspace_id = :ws AND e.lead_id = i.lead_id
                     AND e.occurred_at > i.from_at AND e.occurred_at <= i.to_at
    WHERE e.type <> 'CREATED'
    GROUP BY 1, 2
    """
)
_VERSIONS = sa.text(
    """
    SELECT i.k, l.name,
           (SELECT s.model_version FROM lead_score s
            WHERE s.workspace_id = :ws AND s.lead_id = i.lead_id AND s.scored_at <= i.to_at
            ORDER BY s.scored_at DESC, s.id DESC LIMIT 1) AS version,
           (SELECT s.model_version FROM lead_score s
            WHERE s.workspace_id = :ws AND s.lead_id = i.lead_id AND s.scored_at <= i.from_at
            ORDER BY s.scored_at DESC, s.id DESC LIMIT 1) AS before_version
    FROM unnest(CAST(:ks AS int[]), CAST(:leads AS bigint[]), CAST(:froms AS timestamptz[]),
                CAST(:tos AS timestamptz[])) AS i(k, lead_id, from_at, to_at)
    JOIN lead l ON l.workspace_id = :ws AND l.id = i.lead_id
    """
)


def reason_text(
    activity: dict[str, int],
    stages: tuple[str | None, str | None] | None,
    version: str | None,
    before_version: str | None,
) -> str:
    """What the data shows changed between a lead's two scorings, most telling first."""
    parts: list[str] = []
    if stages is not None and stages[1] is not None:
        parts.append(f"stage {stages[0] or '?'} -> {stages[1]}")
    for kind, (one, many) in ACTIVITY_WORDS.items():
        n = activity.get(kind, 0)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    if version is not None and before_version is not None and version != before_version:
        parts.append(f"rescored by model {version} (was {before_version})")
    if not parts:
        return "No new activity since the previous scoring (time-based factors moved)"
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


async def _improvers(
    db: Database, workspace_id: int, candidates: list[_Rise]
) -> dict[datetime, list[Improver]]:
    """Names and reasons of the candidates (two statements at once), grouped by bucket."""
    if not candidates:
        return {}
    params = {
        "ws": workspace_id,
        "ks": list(range(len(candidates))),
        "leads": [c.lead_id for c in candidates],
        "froms": [c.before_at for c in candidates],
        "tos": [c.scored_at for c in candidates],
    }

    async def read(statement: Any) -> list[Any]:
        async with db.session() as session:
            return list((await session.execute(statement, params)).all())

    events, versions = await asyncio.gather(read(_REASONS), read(_VERSIONS))
    activity: dict[int, dict[str, int]] = defaultdict(dict)
    stages: dict[int, tuple[str | None, str | None]] = {}
    for k, kind, n, first_from, last_to in events:
        if kind == "STAGE_CHANGE":
            stages[k] = (first_from, last_to)
        else:
            activity[k][kind] = int(n)
    by_bucket: dict[datetime, list[Improver]] = defaultdict(list)
    for k, name, version, before_version in sorted(versions, key=lambda r: r[0]):
        c = candidates[k]
        by_bucket[c.bucket].append(
            Improver(
                lead_id=c.lead_id,
                name=name,
                score=c.value,
                previous_score=c.before,
                score_increase=c.change,
                scored_at=c.scored_at,
                previous_scored_at=c.before_at,
                reason=reason_text(activity[k], stages.get(k), version, before_version),
            )
        )
    for found in by_bucket.values():
        found.sort(key=lambda i: (-i.score_increase, i.lead_id))
    return by_bucket


# ---- insights -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A rule of the registry: applies to a segment (dimension, and value or any)."""

    dimension: str
    value: str | None
    text: str

    def matches(self, segment: Segment) -> bool:
        return self.dimension == segment.dimension and self.value in (None, segment.value)


# specific rules first; the first match wins
RECOMMENDATIONS: tuple[Recommendation, ...] = (
    Recommendation("SOURCE", "PAID_ADS", "Review ad targeting and landing pages for this channel"),
    Recommendation("SOURCE", "SOCIAL_MEDIA", "Qualify social leads faster with a short form"),
    Recommendation("SOURCE", "COLD_CALL", "Move cold-call leads to a nurture sequence"),
    Recommendation("SOURCE", "EMAIL_CAMPAIGN", "Refresh the campaign content and segmenting"),
    Recommendation("SOURCE", "PORTAL", "Respond to portal leads within the hour"),
    Recommendation("SOURCE", "REFERRAL", "Follow up referrals personally and quickly"),
    Recommendation("SOURCE", "WEBSITE", "Add a follow-up offer to website enquiries"),
    Recommendation("SOURCE", "OPEN_HOUSE", "Call open-house visitors within a day"),
    Recommendation("PROPERTY_TYPE", "COMMERCIAL", "Target with investment-focused content"),
    Recommendation("PROPERTY_TYPE", "MULTI_FAMILY", "Target with investment-focused content"),
    Recommendation("PROPERTY_TYPE", "LAND", "Share zoning and development information"),
    Recommendation("PROPERTY_TYPE", UNSPECIFIED, "Ask these leads what property they want"),
    Recommendation("SOURCE", None, "Review how this channel's leads are followed up"),
    Recommendation("PROPERTY_TYPE", None, "Send listings matched to these leads' budgets"),
)


def recommendation_for(segment: Segment) -> str:
    return next(r.text for r in RECOMMENDATIONS if r.matches(segment))


def overall_trend(average_improvement: float) -> str:
    if average_improvement >= IMPROVING:
        return "IMPROVING"
    if average_improvement <= DECLINING:
        return "DECLINING"
    return "STABLE"


def _insights(cells: list[dict[str, Any]]) -> TrendInsights:
    total = _Cell()
    by_segment: dict[tuple[str, str], _Cell] = defaultdict(_Cell)
    for row in cells:
        total.add(row)
        by_segment[("SOURCE", row["source"])].add(row)
        by_segment[("PROPERTY_TYPE", row["property_type"])].add(row)
    average = rate(total.change_sum, total.rescorings)
    segments = sorted(
        (
            Segment(dim, value, rate(c.change_sum, c.rescorings), c.rescorings)
            for (dim, value), c in by_segment.items()
            if c.rescorings >= MIN_SEGMENT_SAMPLE
        ),
        key=lambda s: (-s.average_improvement, s.dimension, s.value),
    )
    best = next((s for s in segments if s.average_improvement > 0), None)
    concerning = [
        ConcerningTrend(
            segment=s,
            issue=f"Scores fell {-s.average_improvement:.1f} points on average per rescoring "
            f"({s.sample_size} rescorings; all leads: {average:+.1f})",
            recommendation=recommendation_for(s),
        )
        for s in reversed(segments)
        if s.average_improvement <= CONCERNING_DROP
    ]
    return TrendInsights(
        overall_trend=overall_trend(average),
        average_improvement=average,
        rescorings=total.rescorings,
        best_performing_segment=best,
        segments=segments,
        concerning_trends=concerning,
    )


# ---- the field ----------------------------------------------------------------------------------


def check_arguments(period: str, group_by: str, lead_ids: Sequence[object] | None) -> None:
    """BAD_USER_INPUT before anything is read or cached."""
    check_period(period, TREND_PERIODS)
    check_period(group_by, tuple(UNITS), "groupBy")
    if lead_ids is not None and len(lead_ids) > MAX_LEAD_IDS:
        raise BadUserInput(
            f"`leadIds` takes at most {MAX_LEAD_IDS} ids",
            fields={"leadIds": f"at most {MAX_LEAD_IDS} ids"},
        )


async def check_leads(session: AsyncSession, scope: Scope, lead_ids: Sequence[int]) -> None:
    """NOT_FOUND unless every id is a lead the viewer may see (another workspace's or another
    user's lead reads the same as a missing one)."""
    if not lead_ids:
        return
    query = sa.select(col(Lead.id)).where(scope.leads(Lead), col(Lead.id).in_(list(lead_ids)))
    seen = set((await session.execute(query)).scalars())
    missing = sorted(set(lead_ids) - seen)
    if missing:
        raise NotFound("Lead not found", leadIds=[str(i) for i in missing])


async def scoring_trends(
    db: Database,
    scope: Scope,
    *,
    period: str = "D30",
    group_by: str = "DAY",
    lead_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> ScoringTrends:
    check_arguments(period, group_by, lead_ids)
    unit = UNITS[group_by]
    end = now or utcnow()
    start = window_start(end, period, unit)
    stop = next_bucket(trunc(end, unit), unit)
    if lead_ids is not None:
        async with db.session() as session:
            await check_leads(session, scope, lead_ids)
    if scope.is_admin and lead_ids is None:
        found = await _from_rollup(db, scope.workspace_id, unit, start, stop)
    elif lead_ids is not None and not lead_ids:
        found = _Found()
    else:
        found = await _history_in_parts(db, scope, unit, start, stop, lead_ids)
    improvers = await _improvers(db, scope.workspace_id, found.rises)
    per_bucket: dict[datetime, _Cell] = defaultdict(_Cell)
    for row in found.cells:
        per_bucket[row["bucket"]].add(row)
    trends = [
        TrendBucket(
            period_start=bucket,
            leads_scored=c.leads,
            average_score=rate(c.score_sum, c.leads),
            high_value_count=c.excellent,
            excellent=c.excellent,
            good=c.good,
            moderate=c.moderate,
            low=c.low,
            rescorings=c.rescorings,
            average_change=rate(c.change_sum, c.rescorings),
            top_improvers=improvers.get(bucket, []),
        )
        for bucket, c in sorted(per_bucket.items())
        if c.leads > 0
    ]
    return ScoringTrends(
        period=period,
        group_by=group_by,
        window_start=start,
        window_end=end,
        trends=trends,
        insights=_insights(found.cells),
    )
