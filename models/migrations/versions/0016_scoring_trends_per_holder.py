"""scoring_trends per owner and per agent: the rollups of 0012 for the leads each USER owns
(`lead.owner_id`) and each agent is assigned (`lead.agent_id`), so a USER's or AGENT's read sums
rollups too instead of its leads' whole score history

A USER's or AGENT's scoring trends read every scoring of their leads (the demo user owns 49k
leads on the large bench): 0.7-1.5 s cold, growing with every rescoring. Per holder (`holder`
'owner' or 'agent', `holder_id` the user's or agent's id) this revision keeps:
- `score_trend_holder`: 0012's cells per unit and bucket, without the segment (a holder's
  trends only need bucket totals);
- `score_trend_holder_segment`: per UTC day and segment (one row per dimension, SOURCE or
  PROPERTY_TYPE, and value), the rescorings and their change sum. A period's insights sum its
  days (periods start at a day boundary in every unit); one row per dimension value rather than
  per (source, property type) pair halves what a batch chunk upserts (8k rows, not 16k);
- `score_trend_holder_top`: each day's TOP biggest rises of the holder's leads.
A lead's whole history counts for its current owner and agent, as the history read did.

0012's statement trigger keeps them in the same statements: its range read of `lead` also
gives owner_id and agent_id; the appends add per-holder sums (one pass, grouping sets over
owner and agent), rises and prunes; the slow path signs the same contributions per holder, and
a holder's day where a back-dated lead held a place is recomputed from the holder's leads'
scorings that day (`score_trend_holder_recompute`: the leads by ix_lead_owner / ix_lead_agent,
each one's day by ix_lead_score_lead). It also fixes a double count in 0012's appends: a lead
with two new rows, one older than its newest old row, had the newer row counted both as an
append and in the slow path (now: only leads with one new row append).

Reassignment: a row trigger on `lead` UPDATE OF owner_id, agent_id, source, property_type (when
one changed; batch scoring's UPDATE of `score` does not fire it) moves the lead's contributions,
from its whole history, out of the old holders' cells (and segments) into the new ones'; the old
holders' days where the lead held a top place are recomputed without it and its rises join the
new holders' tops. A segment change moves its `score_trend` cells too (0012 kept them under the
segment the lead had when scored).

Measured on the large bench (Acme: 700k leads, 1.4M score rows, two scorings a lead; a shared
2-core box, load average ~1, runs +-25 %), with the brief's 50k-row append rolled back
(`INSERT INTO lead_score ... SELECT DISTINCT ON (lead_id) ... lead_id BETWEEN 200001 AND
250000`, `VACUUM`ed first), four runs each:
- whole INSERT: 0.50-0.65 s with no trigger, 1.32-2.04 s (median 1.56) with 0012's function,
  1.65-2.12 s (median 2.07) with this one;
- the trigger's append statement alone (auto_explain): 0.36-0.53 s before, 0.72-0.99 s after:
  +~0.3 s a chunk, ~6 us a row (1M-row batch scoring: ~+6 s of trigger time over the two
  writers). Of it (EXPLAIN ANALYZE) the per-holder segments ~2/3 (grouping 50k rows four
  ways, sorting and upserting 8k rows), the per-holder cells ~1/3 (1,800 upserts); the
  duplicate check 5 ms. The next step if that is too much: fewer segment upserts (append-only
  deltas compacted later, or one row per holder-day);
- USER / AGENT `scoringTrends` (D90, DAY; `bench/analytics.py --runs 20 --role user|agent`)
  cold p50 / p95: 660 / 1008 and 541 / 588 ms before, 13 / 17 and 11 / 12 ms after;
- a reassignment: ~15 ms to move a lead's cells; each old holder's day where it held a top
  place ~20 us per lead of the holder (0.1-0.2 s for a 6k-lead owner, ~1 s for the 49k-lead
  demo user or the 33k-lead biggest agent, when all of them were scored that day);
- the upgrade (rebuilding every workspace's rollups from 2M score rows): 70-80 s.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 18:00:00
"""

from __future__ import annotations

from alembic import op

from models.migrations.revisions import load_revision

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


R12 = load_revision("0012_scoring_trends.py")
MIN_IMPROVEMENT = R12.MIN_IMPROVEMENT
TOP = R12.TOP


def _swap(text: str, old: str, new: str) -> str:
    """`text` with its one `old` replaced (0012's statements are fixed: fail loudly if not)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


# the holders of lead `l` (each lead has at most one owner and one agent): one row each
_HOLDERS = """
    CROSS JOIN LATERAL (VALUES ('owner', {l}.owner_id), ('agent', {l}.agent_id))
        AS h(holder, holder_id)
"""
_SEGMENT = "l.source, coalesce(l.property_type, 'UNSPECIFIED') AS property_type"

_HOLDER_COLUMNS = (
    "workspace_id, unit, bucket, holder, holder_id, leads, score_sum, excellent, good, moderate, "
    "low, rescorings, change_sum"
)
_ADD_HOLDER = """
    ON CONFLICT (workspace_id, holder, holder_id, unit, bucket) DO UPDATE SET
        leads = t.leads + EXCLUDED.leads, score_sum = t.score_sum + EXCLUDED.score_sum,
        excellent = t.excellent + EXCLUDED.excellent, good = t.good + EXCLUDED.good,
        moderate = t.moderate + EXCLUDED.moderate, low = t.low + EXCLUDED.low,
        rescorings = t.rescorings + EXCLUDED.rescorings,
        change_sum = t.change_sum + EXCLUDED.change_sum
"""
_SEGMENT_COLUMNS = "workspace_id, holder, holder_id, day, dimension, value, rescorings, change_sum"
_ADD_SEGMENT = """
    ON CONFLICT (workspace_id, holder, holder_id, day, dimension, value) DO UPDATE SET
        rescorings = t.rescorings + EXCLUDED.rescorings,
        change_sum = t.change_sum + EXCLUDED.change_sum
"""
_HOLDER_TOP_COLUMNS = (
    "workspace_id, holder, holder_id, day, lead_id, change, value, before, scored_at, before_at"
)
_ADD_HOLDER_TOP = """
    ON CONFLICT (workspace_id, holder, holder_id, day, lead_id) DO UPDATE SET
        change = EXCLUDED.change, value = EXCLUDED.value, before = EXCLUDED.before,
        scored_at = EXCLUDED.scored_at, before_at = EXCLUDED.before_at
    WHERE EXCLUDED.change > t.change
       OR (EXCLUDED.change = t.change AND EXCLUDED.scored_at > t.scored_at)
"""
# what signed contributions `c` (sign, value, latest, change) add to a cell
_SIGNED_SUMS = """
           sum(c.sign * c.latest::int), sum(c.sign * c.latest::int * c.value),
           sum(c.sign * (c.latest AND c.value >= 80)::int),
           sum(c.sign * (c.latest AND c.value >= 60 AND c.value < 80)::int),
           sum(c.sign * (c.latest AND c.value >= 40 AND c.value < 60)::int),
           sum(c.sign * (c.latest AND c.value < 40)::int),
           sum(c.sign * (c.change IS NOT NULL)::int), coalesce(sum(c.sign * c.change), 0)
"""
# signed contributions `c` with their holder (holder, holder_id, source, property_type) ->
# the holder rollups' rows
_HELD_CELLS = f"""
    SELECT c.workspace_id, c.unit, c.bucket, c.holder, c.holder_id, {_SIGNED_SUMS}
    FROM held c
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
"""
_HELD_SEGMENTS = """
    SELECT c.workspace_id, c.holder, c.holder_id, c.bucket, s.dimension, s.value,
           sum(c.sign), sum(c.sign * c.change)
    FROM held c
    CROSS JOIN LATERAL (VALUES ('SOURCE', c.source), ('PROPERTY_TYPE', c.property_type))
        AS s(dimension, value)
    WHERE c.unit = 'day' AND c.change IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
"""

# ---- the holder tops' upkeep: SQL functions the triggers call ----------------------------------

_DAYS = "unnest(ws, holders, ids, days) AS d(workspace_id, holder, holder_id, day)"
# the days (of holders) given new rises keep their TOP biggest
_PRUNE = f"""
CREATE FUNCTION score_trend_holder_prune(ws int[], holders text[], ids bigint[],
                                         days timestamptz[])
RETURNS void LANGUAGE sql AS $$
    DELETE FROM score_trend_holder_top t USING (
        SELECT x.workspace_id, x.holder, x.holder_id, x.day, x.lead_id,
               row_number() OVER (PARTITION BY x.workspace_id, x.holder, x.holder_id, x.day
                                  ORDER BY x.change DESC, x.lead_id) AS rank
        FROM (SELECT DISTINCT * FROM {_DAYS}) d
        JOIN score_trend_holder_top x
          ON x.workspace_id = d.workspace_id AND x.holder = d.holder
         AND x.holder_id = d.holder_id AND x.day = d.day
    ) r
    WHERE r.rank > {TOP} AND t.workspace_id = r.workspace_id AND t.holder = r.holder
      AND t.holder_id = r.holder_id AND t.day = r.day AND t.lead_id = r.lead_id
$$
"""
# the days (of holders) whose top may have lost a place: from the holder's leads' scorings that
# day (their leads by ix_lead_owner / ix_lead_agent, each lead's day by ix_lead_score_lead)
_RECOMPUTE = f"""
CREATE FUNCTION score_trend_holder_recompute(ws int[], holders text[], ids bigint[],
                                             days timestamptz[])
RETURNS void LANGUAGE sql AS $$
    DELETE FROM score_trend_holder_top t USING {_DAYS}
    WHERE t.workspace_id = d.workspace_id AND t.holder = d.holder AND t.holder_id = d.holder_id
      AND t.day = d.day;
    INSERT INTO score_trend_holder_top ({_HOLDER_TOP_COLUMNS})
    SELECT workspace_id, holder, holder_id, day, lead_id, change, value, before, scored_at,
           before_at
    FROM (
        SELECT b.*, row_number() OVER (PARTITION BY b.workspace_id, b.holder, b.holder_id, b.day
                                       ORDER BY b.change DESC, b.lead_id) AS rank
        FROM (
            SELECT DISTINCT ON (d.workspace_id, d.holder, d.holder_id, d.day, s.lead_id)
                   d.workspace_id, d.holder, d.holder_id, d.day, s.lead_id,
                   s.value - p.value AS change, s.value, p.value AS before, s.scored_at,
                   p.scored_at AS before_at
            FROM (
                SELECT d.*, l.id AS lead_id FROM (SELECT DISTINCT * FROM {_DAYS}) d
                JOIN lead l ON l.workspace_id = d.workspace_id AND l.owner_id = d.holder_id
                WHERE d.holder = 'owner'
                UNION ALL
                SELECT d.*, l.id FROM (SELECT DISTINCT * FROM {_DAYS}) d
                JOIN lead l ON l.workspace_id = d.workspace_id AND l.agent_id = d.holder_id
                WHERE d.holder = 'agent'
            ) d
            JOIN lead_score s ON s.workspace_id = d.workspace_id AND s.lead_id = d.lead_id
                             AND s.scored_at >= d.day AND s.scored_at < d.day + interval '1 day'
            CROSS JOIN LATERAL (
                SELECT p.value, p.scored_at FROM lead_score p
                WHERE p.workspace_id = s.workspace_id AND p.lead_id = s.lead_id
                  AND (p.scored_at < s.scored_at OR (p.scored_at = s.scored_at AND p.id < s.id))
                ORDER BY p.scored_at DESC, p.id DESC LIMIT 1
            ) p
            WHERE s.value - p.value >= {MIN_IMPROVEMENT}
            ORDER BY d.workspace_id, d.holder, d.holder_id, d.day, s.lead_id,
                     s.value - p.value DESC, s.scored_at DESC
        ) b
    ) ranked
    WHERE rank <= {TOP}
$$
"""

# ---- the lead_score trigger: 0012's, plus the same sums per holder ------------------------------

# 0012's per-segment groups of the fast path's rows, per owner and per agent instead (one pass:
# grouping sets; a row per holder and a sort cost twice the time)
_HOLDER = "(CASE WHEN grouping(f.owner_id) = 0 THEN 'owner' ELSE 'agent' END) COLLATE \"C\""
_HELD_GROUPS = _swap(
    _swap(
        R12._FRESH_GROUPS,
        "f.source, f.property_type,",
        f"{_HOLDER} AS holder, coalesce(f.owner_id, f.agent_id) AS holder_id,",
    ),
    "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9",
    "GROUP BY 1, 2, 3, 4, 7, 8, 9, GROUPING SETS ((f.owner_id), (f.agent_id))"
    " HAVING coalesce(f.owner_id, f.agent_id) IS NOT NULL",
)
_HELD_TREND = _swap(
    _swap(R12._FRESH_TREND, R12._FRESH_GROUPS, _HELD_GROUPS),
    "g.source,\n           g.property_type,",
    "g.holder, g.holder_id,",
)

# 0012's appends (see its _FUNCTION), the leads' owner and agent read with their segment, and
# the same sums, rises and (after the statement) prunes per holder
_APPEND = f"""
    WITH repeated AS MATERIALIZED (
        SELECT workspace_id, lead_id FROM new_rows GROUP BY 1, 2 HAVING count(*) > 1
    ),
    probed AS MATERIALIZED (
        SELECT r.workspace_id, r.lead_id, r.id, r.value, r.scored_at, p.value AS pv,
               p.scored_at AS pat, l.source, l.property_type, l.owner_id, l.agent_id,
               (p.id IS NULL OR ((p.scored_at, p.id) < (r.scored_at, r.id) AND p.id < first_id))
               -- (`repeats`: some lead has several new rows; a hash of them only then)
               AND NOT (repeats AND EXISTS (SELECT 1 FROM repeated d
                                            WHERE d.workspace_id = r.workspace_id
                                              AND d.lead_id = r.lead_id))
                   AS fast
        FROM new_rows r
        {{leads}}
        LEFT JOIN LATERAL (
            SELECT s.value, s.scored_at, s.id FROM lead_score s
            WHERE s.workspace_id = r.workspace_id AND s.lead_id = r.lead_id AND s.id <> r.id
            ORDER BY s.scored_at DESC, s.id DESC LIMIT 1
        ) p ON true
    ),
    fresh AS NOT MATERIALIZED (SELECT * FROM probed WHERE fast),
    times AS MATERIALIZED (
        SELECT workspace_id, scored_at, date_trunc('day', scored_at, 'UTC') AS day,
               date_trunc('week', scored_at, 'UTC') AS week,
               date_trunc('month', scored_at, 'UTC') AS month
        FROM (SELECT DISTINCT workspace_id, scored_at FROM probed) d
    ),
    trend AS (
        INSERT INTO score_trend AS t ({R12._TREND_COLUMNS})
        {R12._FRESH_TREND}
        {R12._ADD_TREND}
    ),
    risen AS (
        INSERT INTO score_trend_top AS t ({R12._TOP_COLUMNS})
        SELECT workspace_id, day, lead_id, change, value, before, scored_at, before_at
        FROM (
            SELECT f.workspace_id, t.day, f.lead_id, f.value - f.pv AS change, f.value,
                   f.pv AS before, f.scored_at, f.pat AS before_at,
                   row_number() OVER (PARTITION BY f.workspace_id, t.day
                                      ORDER BY f.value - f.pv DESC, f.lead_id) AS rank
            FROM fresh f JOIN times t ON t.workspace_id = f.workspace_id
                                     AND t.scored_at = f.scored_at
            WHERE f.value - f.pv >= {MIN_IMPROVEMENT}
        ) c
        WHERE rank <= {TOP}
        {R12._ADD_TOP}
        RETURNING t.workspace_id, t.day
    ),
    holder_trend AS (
        INSERT INTO score_trend_holder AS t ({_HOLDER_COLUMNS})
        {_HELD_TREND}
        {_ADD_HOLDER}
    ),
    holder_segment AS (
        INSERT INTO score_trend_holder_segment AS t ({_SEGMENT_COLUMNS})
        SELECT f.workspace_id, {_HOLDER}, coalesce(f.owner_id, f.agent_id), t.day,
               (CASE WHEN grouping(f.source) = 0 THEN 'SOURCE' ELSE 'PROPERTY_TYPE' END)
                   COLLATE "C",
               coalesce(f.source, f.property_type) COLLATE "C", count(*), sum(f.value - f.pv)
        FROM fresh f JOIN times t ON t.workspace_id = f.workspace_id AND t.scored_at = f.scored_at
        WHERE f.pv IS NOT NULL
        GROUP BY f.workspace_id, t.day,
                 GROUPING SETS ((f.owner_id, f.source), (f.owner_id, f.property_type),
                                (f.agent_id, f.source), (f.agent_id, f.property_type))
        HAVING coalesce(f.owner_id, f.agent_id) IS NOT NULL
        ORDER BY 1, 2, 3, 4, 5, 6
        {_ADD_SEGMENT}
    ),
    holder_risen AS (
        INSERT INTO score_trend_holder_top AS t ({_HOLDER_TOP_COLUMNS})
        SELECT workspace_id, holder, holder_id, day, lead_id, change, value, before, scored_at,
               before_at
        FROM (
            SELECT f.workspace_id, f.holder, f.holder_id, t.day, f.lead_id,
                   f.value - f.pv AS change, f.value, f.pv AS before, f.scored_at,
                   f.pat AS before_at,
                   row_number() OVER (PARTITION BY f.workspace_id, f.holder, f.holder_id, t.day
                                      ORDER BY f.value - f.pv DESC, f.lead_id) AS rank
            FROM (
                SELECT f.*, h.holder, h.holder_id FROM fresh f
                {_HOLDERS.format(l="f")}
                WHERE h.holder_id IS NOT NULL AND f.value - f.pv >= {MIN_IMPROVEMENT}
            ) f
            JOIN times t ON t.workspace_id = f.workspace_id AND t.scored_at = f.scored_at
        ) c
        WHERE rank <= {TOP}
        {_ADD_HOLDER_TOP}
        RETURNING t.workspace_id, t.holder, t.holder_id, t.day
    ),
    holder_days AS (SELECT DISTINCT * FROM holder_risen)
    SELECT (SELECT array_agg(id) FROM probed WHERE NOT fast),
           (SELECT array_agg(DISTINCT workspace_id) FROM risen),
           (SELECT array_agg(DISTINCT day) FROM risen),
           (SELECT array_agg(workspace_id) FROM holder_days),
           (SELECT array_agg(holder) FROM holder_days),
           (SELECT array_agg(holder_id) FROM holder_days),
           (SELECT array_agg(day) FROM holder_days)
    INTO slow, top_workspaces, top_days, holder_workspaces, holder_kinds, holder_ids, holder_days
"""
_LEAD_COLUMNS = f"{_SEGMENT}, l.owner_id, l.agent_id"
_RUN_OF_LEADS = f"""
        JOIN (SELECT l.id, {_LEAD_COLUMNS} FROM lead l
              WHERE l.workspace_id = run_workspace AND l.id BETWEEN first_lead AND last_lead
        ) l ON l.id = r.lead_id
"""
_SOME_LEADS = f"""
        JOIN LATERAL (
            SELECT {_LEAD_COLUMNS} FROM lead l
            WHERE l.workspace_id = r.workspace_id AND l.id = r.lead_id
        ) l ON true
"""

# the slow path's signed contributions (0012's) with their leads' holders and segments
_SLOW_HELD = f"""
    signed AS MATERIALIZED (
        SELECT 1 AS sign, n.* FROM ({R12._NEW}) n
        UNION ALL SELECT -1, o.* FROM ({R12._OLD}) o
    ),
    held AS MATERIALIZED (
        SELECT c.*, {_SEGMENT}, h.holder, h.holder_id
        FROM signed c JOIN lead l ON l.workspace_id = c.workspace_id AND l.id = c.lead_id
        {_HOLDERS.format(l="l")}
        WHERE h.holder_id IS NOT NULL
    ),
    holder_trend AS (
        INSERT INTO score_trend_holder AS t ({_HOLDER_COLUMNS})
        {_HELD_CELLS}
        {_ADD_HOLDER}
    ),
    holder_segment AS (
        INSERT INTO score_trend_holder_segment AS t ({_SEGMENT_COLUMNS})
        {_HELD_SEGMENTS}
        {_ADD_SEGMENT}
    )
"""
# after 0012's _SLOW_RISES: its rises per holder, added to the holders' days except `stale`
# ones, where one of the leads holds a place with a rise since its first new scoring
_SLOW_HOLDER_RISES = f"""
    holders AS (
        SELECT a.workspace_id, a.lead_id, a.first_at, h.holder, h.holder_id
        FROM a JOIN lead l ON l.workspace_id = a.workspace_id AND l.id = a.lead_id
        {_HOLDERS.format(l="l")}
        WHERE h.holder_id IS NOT NULL
    ),
    holder_touched AS (
        SELECT DISTINCT o.workspace_id, o.holder, o.holder_id,
               date_trunc('day', s.scored_at, 'UTC') AS day
        FROM holders o JOIN hist s ON s.workspace_id = o.workspace_id AND s.lead_id = o.lead_id
        WHERE s.scored_at >= o.first_at
    ),
    holder_stale AS (
        SELECT DISTINCT t.workspace_id, t.holder, t.holder_id, t.day
        FROM holders o JOIN score_trend_holder_top t
          ON t.workspace_id = o.workspace_id AND t.holder = o.holder
         AND t.holder_id = o.holder_id AND t.day >= date_trunc('day', o.first_at, 'UTC')
         AND t.lead_id = o.lead_id
        WHERE t.scored_at >= o.first_at
    ),
    holder_added AS (
        INSERT INTO score_trend_holder_top AS t ({_HOLDER_TOP_COLUMNS})
        SELECT o.workspace_id, o.holder, o.holder_id, r.day, r.lead_id, r.change, r.value,
               r.before, r.scored_at, r.before_at
        FROM rises r JOIN holders o ON o.workspace_id = r.workspace_id AND o.lead_id = r.lead_id
        WHERE NOT EXISTS (SELECT 1 FROM holder_stale s
                          WHERE s.workspace_id = o.workspace_id AND s.holder = o.holder
                            AND s.holder_id = o.holder_id AND s.day = r.day)
        {_ADD_HOLDER_TOP}
    )
"""

_TOP_DAYS = "SELECT w, d FROM unnest(top_workspaces) w, unnest(top_days) d"
_FUNCTION = f"""
CREATE OR REPLACE FUNCTION score_trend_apply() RETURNS trigger LANGUAGE plpgsql
SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    rows bigint;
    first_id bigint;
    run_workspace int;
    first_lead bigint;
    last_lead bigint;
    repeats boolean;
    slow bigint[];
    top_workspaces int[];
    top_days timestamptz[];
    touched_workspaces int[];
    touched_days timestamptz[];
    stale_workspaces int[];
    stale_days timestamptz[];
    holder_workspaces int[];
    holder_kinds text[];
    holder_ids bigint[];
    holder_days timestamptz[];
    stale_holder_workspaces int[];
    stale_kinds text[];
    stale_ids bigint[];
    stale_holder_days timestamptz[];
    sort_was text := current_setting('enable_sort');
BEGIN
    SELECT count(*), min(id), min(lead_id), max(lead_id),
           CASE WHEN min(workspace_id) = max(workspace_id) THEN min(workspace_id) END,
           min(workspace_id) <> max(workspace_id) OR count(DISTINCT lead_id) < count(*)
    INTO rows, first_id, first_lead, last_lead, run_workspace, repeats
    FROM new_rows;
    -- appends (0012): a new row that is its lead's newest scoring and the lead's only new row
    -- (0012 missed another new row of the lead older than the lead's newest old one: that row
    -- went down the slow path and the newer one both ways, counted twice)
    PERFORM set_config('enable_sort', 'off', true);
    IF run_workspace IS NOT NULL AND last_lead - first_lead < 4 * rows THEN
        {_APPEND.format(leads=_RUN_OF_LEADS)};
    ELSE
        {_APPEND.format(leads=_SOME_LEADS)};
    END IF;
    PERFORM set_config('enable_sort', sort_was, true);

    -- the days given new rises keep their TOP biggest
    IF top_days IS NOT NULL THEN
        {R12._PRUNE_TOP.format(days=_TOP_DAYS)};
    END IF;
    IF holder_days IS NOT NULL THEN
        PERFORM score_trend_holder_prune(holder_workspaces, holder_kinds, holder_ids, holder_days);
    END IF;
    IF slow IS NULL THEN
        RETURN NULL;
    END IF;
    -- back-dated scorings, or several of one lead at once (0012): the leads' buckets from their
    -- first new scoring on, as they are now minus as they were without the new rows, in the
    -- workspace's cells and their holders'
    {R12._AFFECTED},
    {_SLOW_HELD}
    INSERT INTO score_trend AS t ({R12._TREND_COLUMNS})
    {R12._TREND_OF.format(contributions="SELECT * FROM signed")}
    {R12._ADD_TREND};

    -- and the biggest rises of the days they touch (0012), the workspace's and their holders'
    {R12._AFFECTED},
    {R12._SLOW_RISES},
    {_SLOW_HOLDER_RISES}
    SELECT (SELECT array_agg(workspace_id ORDER BY workspace_id, day) FROM touched),
           (SELECT array_agg(day ORDER BY workspace_id, day) FROM touched),
           (SELECT array_agg(workspace_id ORDER BY workspace_id, day) FROM stale),
           (SELECT array_agg(day ORDER BY workspace_id, day) FROM stale),
           (SELECT array_agg(workspace_id) FROM holder_touched),
           (SELECT array_agg(holder) FROM holder_touched),
           (SELECT array_agg(holder_id) FROM holder_touched),
           (SELECT array_agg(day) FROM holder_touched),
           (SELECT array_agg(workspace_id) FROM holder_stale),
           (SELECT array_agg(holder) FROM holder_stale),
           (SELECT array_agg(holder_id) FROM holder_stale),
           (SELECT array_agg(day) FROM holder_stale)
    INTO touched_workspaces, touched_days, stale_workspaces, stale_days,
         holder_workspaces, holder_kinds, holder_ids, holder_days,
         stale_holder_workspaces, stale_kinds, stale_ids, stale_holder_days;
    IF stale_days IS NOT NULL THEN
        DELETE FROM score_trend_top t
        USING unnest(stale_workspaces, stale_days) AS d(workspace_id, day)
        WHERE t.workspace_id = d.workspace_id AND t.day = d.day;
        INSERT INTO score_trend_top AS t ({R12._TOP_COLUMNS})
        {R12._DAY_RISES.format(days="SELECT * FROM unnest(stale_workspaces, stale_days)")};
    END IF;
    IF touched_days IS NOT NULL THEN
        {R12._PRUNE_TOP.format(days="SELECT * FROM unnest(touched_workspaces, touched_days)")};
    END IF;
    IF stale_holder_days IS NOT NULL THEN
        PERFORM score_trend_holder_recompute(stale_holder_workspaces, stale_kinds, stale_ids,
                                             stale_holder_days);
    END IF;
    IF holder_days IS NOT NULL THEN
        PERFORM score_trend_holder_prune(holder_workspaces, holder_kinds, holder_ids, holder_days);
    END IF;
    RETURN NULL;
END
$$
"""

# ---- reassignment: a lead's whole history moves with it ---------------------------------------

# the lead's (NEW.id) contributions to every bucket, signed: -1 as it was (OLD), +1 as it is
_MOVED = f"""
    WITH scorings AS MATERIALIZED (
        {
    R12._SCORINGS.format(
        rows="SELECT workspace_id, lead_id, id, value, scored_at FROM lead_score"
        " WHERE workspace_id = NEW.workspace_id AND lead_id = NEW.id"
    )
}
    ),
    sides (sign, source, property_type, owner_id, agent_id) AS (
        VALUES (-1, OLD.source::text, coalesce(OLD.property_type, 'UNSPECIFIED')::text,
                OLD.owner_id, OLD.agent_id),
               (1, NEW.source::text, coalesce(NEW.property_type, 'UNSPECIFIED')::text,
                NEW.owner_id, NEW.agent_id)
    ),
    signed AS MATERIALIZED (
        SELECT s.sign, s.source, s.property_type, s.owner_id, s.agent_id, c.*
        FROM ({R12._CONTRIBUTIONS.format(scorings="SELECT * FROM scorings")}) c CROSS JOIN sides s
    ),
    held AS (
        SELECT c.*, h.holder, h.holder_id FROM signed c
        {_HOLDERS.format(l="c")}
        WHERE h.holder_id IS NOT NULL
          AND (segment_moved
               OR (h.holder = 'owner' AND owner_moved) OR (h.holder = 'agent' AND agent_moved))
    ),
    workspace_trend AS (
        INSERT INTO score_trend AS t ({R12._TREND_COLUMNS})
        SELECT c.workspace_id, c.unit, c.bucket, c.source, c.property_type, {_SIGNED_SUMS}
        FROM signed c WHERE segment_moved
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        {R12._ADD_TREND}
    ),
    holder_trend AS (
        INSERT INTO score_trend_holder AS t ({_HOLDER_COLUMNS})
        SELECT c.workspace_id, c.unit, c.bucket, c.holder, c.holder_id, {_SIGNED_SUMS}
        FROM held c
        WHERE (c.holder = 'owner' AND owner_moved) OR (c.holder = 'agent' AND agent_moved)
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        {_ADD_HOLDER}
    )
    INSERT INTO score_trend_holder_segment AS t ({_SEGMENT_COLUMNS})
    {_HELD_SEGMENTS}
    {_ADD_SEGMENT}
"""
# the lead's rises (its biggest of each day), into the days' top of its new holders
_MOVED_RISES = f"""
    WITH rises AS (
        SELECT DISTINCT ON (date_trunc('day', c.scored_at, 'UTC'))
               c.workspace_id, date_trunc('day', c.scored_at, 'UTC') AS day, c.lead_id,
               c.value - c.prev AS change, c.value, c.prev AS before, c.scored_at,
               c.prev_at AS before_at
        FROM ({
    R12._SCORINGS.format(
        rows="SELECT workspace_id, lead_id, id, value, scored_at FROM lead_score"
        " WHERE workspace_id = NEW.workspace_id AND lead_id = NEW.id"
    )
}) c
        WHERE c.value - c.prev >= {MIN_IMPROVEMENT}
        ORDER BY date_trunc('day', c.scored_at, 'UTC'), c.value - c.prev DESC, c.scored_at DESC
    ),
    added AS (
        INSERT INTO score_trend_holder_top AS t ({_HOLDER_TOP_COLUMNS})
        SELECT r.workspace_id, h.holder, h.holder_id, r.day, r.lead_id, r.change, r.value,
               r.before, r.scored_at, r.before_at
        FROM rises r
        CROSS JOIN (VALUES ('owner', NEW.owner_id, owner_moved),
                           ('agent', NEW.agent_id, agent_moved)) AS h(holder, holder_id, moved)
        WHERE h.holder_id IS NOT NULL AND h.moved
        {_ADD_HOLDER_TOP}
        RETURNING t.workspace_id, t.holder, t.holder_id, t.day
    )
    SELECT array_agg(workspace_id), array_agg(holder), array_agg(holder_id), array_agg(day)
    INTO holder_workspaces, holder_kinds, holder_ids, holder_days
    FROM added
"""

_LEAD_MOVED = f"""
CREATE FUNCTION score_trend_lead_moved() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    owner_moved boolean := OLD.owner_id IS DISTINCT FROM NEW.owner_id;
    agent_moved boolean := OLD.agent_id IS DISTINCT FROM NEW.agent_id;
    segment_moved boolean := OLD.source IS DISTINCT FROM NEW.source
                             OR OLD.property_type IS DISTINCT FROM NEW.property_type;
    holder_workspaces int[];
    holder_kinds text[];
    holder_ids bigint[];
    holder_days timestamptz[];
BEGIN
    -- the cells: out of the old holders' (and segment's), into the new ones'
    {_MOVED};
    IF NOT (owner_moved OR agent_moved) THEN
        RETURN NULL;
    END IF;
    -- the old holders' days where the lead holds a place: recomputed without it
    SELECT array_agg(t.workspace_id), array_agg(t.holder), array_agg(t.holder_id),
           array_agg(t.day)
    INTO holder_workspaces, holder_kinds, holder_ids, holder_days
    FROM (VALUES ('owner', OLD.owner_id, owner_moved), ('agent', OLD.agent_id, agent_moved))
         AS h(holder, holder_id, moved)
    JOIN score_trend_holder_top t ON t.workspace_id = NEW.workspace_id AND t.holder = h.holder
                                 AND t.holder_id = h.holder_id
    WHERE h.moved AND t.lead_id = NEW.id;
    IF holder_days IS NOT NULL THEN
        PERFORM score_trend_holder_recompute(holder_workspaces, holder_kinds, holder_ids,
                                             holder_days);
    END IF;
    -- the new holders' days: the lead's rises join their top
    {_MOVED_RISES};
    IF holder_days IS NOT NULL THEN
        PERFORM score_trend_holder_prune(holder_workspaces, holder_kinds, holder_ids, holder_days);
    END IF;
    RETURN NULL;
END
$$
"""
_LEAD_CHANGED = (
    "OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.agent_id IS DISTINCT FROM NEW.agent_id"
    " OR OLD.source IS DISTINCT FROM NEW.source"
    " OR OLD.property_type IS DISTINCT FROM NEW.property_type"
)

# ---- the rebuild: every rollup of a workspace from its whole history --------------------------

_REBUILD = f"""
CREATE OR REPLACE FUNCTION score_trend_rebuild(ws bigint) RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB' AS $$
BEGIN
    DELETE FROM score_trend WHERE workspace_id = ws;
    DELETE FROM score_trend_top WHERE workspace_id = ws;
    DELETE FROM score_trend_holder WHERE workspace_id = ws;
    DELETE FROM score_trend_holder_segment WHERE workspace_id = ws;
    DELETE FROM score_trend_holder_top WHERE workspace_id = ws;
    CREATE TEMP TABLE score_trend_scorings ON COMMIT DROP AS
    {
    R12._SCORINGS.format(
        rows="SELECT workspace_id, lead_id, id, value, scored_at FROM lead_score"
        " WHERE workspace_id = ws"
    )
};
    CREATE TEMP TABLE score_trend_leads ON COMMIT DROP AS
    SELECT l.id AS lead_id, {_SEGMENT}, h.holder, h.holder_id
    FROM lead l {_HOLDERS.format(l="l")}
    WHERE l.workspace_id = ws AND h.holder_id IS NOT NULL;
    CREATE TEMP TABLE score_trend_rises ON COMMIT DROP AS
    SELECT DISTINCT ON (workspace_id, date_trunc('day', scored_at, 'UTC'), lead_id)
           workspace_id, date_trunc('day', scored_at, 'UTC') AS day, lead_id,
           value - prev AS change, value, prev, scored_at, prev_at
    FROM score_trend_scorings
    WHERE value - prev >= {MIN_IMPROVEMENT}
    ORDER BY workspace_id, date_trunc('day', scored_at, 'UTC'), lead_id,
             value - prev DESC, scored_at DESC;
    ANALYZE score_trend_scorings, score_trend_leads, score_trend_rises;

    INSERT INTO score_trend AS t ({R12._TREND_COLUMNS})
    {
    R12._TREND_OF.format(
        contributions="SELECT 1 AS sign, x.* FROM ("
        + R12._CONTRIBUTIONS.format(scorings="SELECT * FROM score_trend_scorings")
        + ") x"
    )
};
    INSERT INTO score_trend_top ({R12._TOP_COLUMNS})
    SELECT workspace_id, day, lead_id, change, value, prev, scored_at, prev_at
    FROM (
        SELECT *, row_number() OVER (PARTITION BY workspace_id, day
                                     ORDER BY change DESC, lead_id) AS rank
        FROM score_trend_rises
    ) ranked
    WHERE rank <= {TOP};

    INSERT INTO score_trend_holder ({_HOLDER_COLUMNS})
    SELECT c.workspace_id, c.unit, c.bucket, o.holder, o.holder_id, {_SIGNED_SUMS}
    FROM (
        SELECT 1 AS sign, x.* FROM (
            {R12._CONTRIBUTIONS.format(scorings="SELECT * FROM score_trend_scorings")}
        ) x
    ) c
    JOIN score_trend_leads o ON o.lead_id = c.lead_id
    GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO score_trend_holder_segment ({_SEGMENT_COLUMNS})
    SELECT s.workspace_id, o.holder, o.holder_id, date_trunc('day', s.scored_at, 'UTC'),
           d.dimension, d.value, count(*), sum(s.value - s.prev)
    FROM score_trend_scorings s JOIN score_trend_leads o ON o.lead_id = s.lead_id
    CROSS JOIN LATERAL (VALUES ('SOURCE', o.source), ('PROPERTY_TYPE', o.property_type))
        AS d(dimension, value)
    WHERE s.prev IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO score_trend_holder_top ({_HOLDER_TOP_COLUMNS})
    SELECT workspace_id, holder, holder_id, day, lead_id, change, value, prev, scored_at,
           prev_at
    FROM (
        SELECT r.*, o.holder, o.holder_id,
               row_number() OVER (PARTITION BY r.workspace_id, o.holder, o.holder_id, r.day
                                  ORDER BY r.change DESC, r.lead_id) AS rank
        FROM score_trend_rises r JOIN score_trend_leads o ON o.lead_id = r.lead_id
    ) ranked
    WHERE rank <= {TOP};
    DROP TABLE score_trend_scorings, score_trend_leads, score_trend_rises;
END
$$
"""

_KEY = """
        workspace_id INTEGER NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
        holder VARCHAR(8) COLLATE "C" NOT NULL CHECK (holder IN ('owner', 'agent')),
        holder_id BIGINT NOT NULL,
"""
UPGRADE = [
    f"""
    CREATE TABLE score_trend_holder ({_KEY}
        unit VARCHAR(8) NOT NULL,
        bucket TIMESTAMP WITH TIME ZONE NOT NULL,
        leads INTEGER NOT NULL,
        score_sum BIGINT NOT NULL,
        excellent INTEGER NOT NULL,
        good INTEGER NOT NULL,
        moderate INTEGER NOT NULL,
        low INTEGER NOT NULL,
        rescorings INTEGER NOT NULL,
        change_sum BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, holder, holder_id, unit, bucket)
    ) WITH (fillfactor = 50)
    """,
    f"""
    CREATE TABLE score_trend_holder_segment ({_KEY}
        day TIMESTAMP WITH TIME ZONE NOT NULL,
        dimension VARCHAR(16) COLLATE "C" NOT NULL,
        value VARCHAR(24) COLLATE "C" NOT NULL,
        rescorings INTEGER NOT NULL,
        change_sum BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, holder, holder_id, day, dimension, value)
    ) WITH (fillfactor = 50)
    """,
    f"""
    CREATE TABLE score_trend_holder_top ({_KEY}
        day TIMESTAMP WITH TIME ZONE NOT NULL,
        lead_id BIGINT NOT NULL,
        change SMALLINT NOT NULL,
        value SMALLINT NOT NULL,
        before SMALLINT NOT NULL,
        scored_at TIMESTAMP WITH TIME ZONE NOT NULL,
        before_at TIMESTAMP WITH TIME ZONE NOT NULL,
        PRIMARY KEY (workspace_id, holder, holder_id, day, lead_id)
    )
    """,
    _PRUNE,
    _RECOMPUTE,
    _FUNCTION,
    _LEAD_MOVED,
    _REBUILD,
    "SELECT score_trend_rebuild(id) FROM workspace",
    "CREATE TRIGGER lead_score_trend_moved AFTER UPDATE OF owner_id, agent_id, source,"
    f" property_type ON lead FOR EACH ROW WHEN ({_LEAD_CHANGED})"
    " EXECUTE FUNCTION score_trend_lead_moved()",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER lead_score_trend_moved ON lead")
    op.execute("DROP FUNCTION score_trend_lead_moved()")
    op.execute(R12._FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(R12._REBUILD.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP FUNCTION score_trend_holder_recompute(int[], text[], bigint[], timestamptz[])")
    op.execute("DROP FUNCTION score_trend_holder_prune(int[], text[], bigint[], timestamptz[])")
    op.drop_table("score_trend_holder_top")
    op.drop_table("score_trend_holder_segment")
    op.drop_table("score_trend_holder")
