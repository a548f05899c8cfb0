"""scoring_trends: score history per bucket and lead segment (`score_trend`) and each day's
biggest rises (`score_trend_top`), kept by a statement trigger on lead_score

Scoring trends read, per day / week / month bucket, each lead's latest score in the bucket and
each rescoring's change (its score minus the lead's score just before). On the large seed one
full rescoring is 700k history rows and the per-lead work over a period took 2 s, so
whole-workspace reads sum these rollups instead (models/scoring_trends/ has the rules).

One statement trigger (transition table `new_rows`) keeps both. Its common case, a scoring
newer than every earlier one of its lead and its lead's only row in the statement (batch jobs,
online scores), is set-based: each new row's previous scoring by one index probe
(ix_lead_score_lead), the leads' segments by one range read of `lead` when the rows are a run
of one workspace's leads (a batch chunk) or one probe each otherwise, then one aggregate and
one upsert per rollup per statement. Back-dated scorings, or several of one lead in one
statement, recompute those leads' buckets from their history and add their new rises to the
days' top; only a day where one of them holds a place with a rise a back-dated scoring may have
lowered is recomputed from all of that day's scorings (a scan: no index on scored_at).
Measured on the large bench, `python bench/ml_score.py` (1M rescorings, 50k-row COPY chunks,
two writers, a shared 2-core box): 19.0 s without the trigger, 27.7 s with it (its own time
10.3 s summed over the 20 statements), 31.2 s with this revision's first trigger (14.1 s).
Most of what is left is the previous-score probe (an index descent per row; `value` is in
ix_lead_score_lead since this revision, so no heap fetch once the pages are all-visible).
`lead_score` is append-only (nothing deletes from it but a workspace's deletion, which
cascades here): a manual delete needs `SELECT score_trend_rebuild(<workspace id>)`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 15:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

MIN_IMPROVEMENT = 10  # models.scoring_trends.MIN_IMPROVEMENT
TOP = 5  # models.scoring_trends.TOP_IMPROVERS
UNITS = "VALUES ('day'), ('week'), ('month')"

# every scoring of {rows} (lead_score rows) with its lead's scoring before and after it
_SCORINGS = """
    SELECT s.workspace_id, s.lead_id, s.id, s.value, s.scored_at,
           lag(s.value) OVER w AS prev, lag(s.scored_at) OVER w AS prev_at,
           lead(s.scored_at) OVER w AS next_at
    FROM ({rows}) s
    WINDOW w AS (PARTITION BY s.workspace_id, s.lead_id ORDER BY s.scored_at, s.id)
"""
# what each scoring adds to its bucket of each unit: `latest` when it is its lead's last of
# the bucket; `change` when the lead was scored before
_CONTRIBUTIONS = f"""
    SELECT c.workspace_id, u.unit, date_trunc(u.unit, c.scored_at, 'UTC') AS bucket,
           c.lead_id, c.value,
           c.next_at IS NULL
               OR date_trunc(u.unit, c.next_at, 'UTC') <> date_trunc(u.unit, c.scored_at, 'UTC')
               AS latest,
           c.value - c.prev AS change
    FROM ({{scorings}}) c CROSS JOIN ({UNITS}) AS u(unit)
"""

_TREND_COLUMNS = (
    "workspace_id, unit, bucket, source, property_type, leads, score_sum, excellent, good, "
    "moderate, low, rescorings, change_sum"
)
_ADD_TREND = """
    ON CONFLICT (workspace_id, unit, bucket, source, property_type) DO UPDATE SET
        leads = t.leads + EXCLUDED.leads, score_sum = t.score_sum + EXCLUDED.score_sum,
        excellent = t.excellent + EXCLUDED.excellent, good = t.good + EXCLUDED.good,
        moderate = t.moderate + EXCLUDED.moderate, low = t.low + EXCLUDED.low,
        rescorings = t.rescorings + EXCLUDED.rescorings,
        change_sum = t.change_sum + EXCLUDED.change_sum
"""
# signed contributions `c` (sign, workspace_id, unit, bucket, lead_id, value, latest, change)
# -> rollup rows, with the lead's segment
_TREND_OF = """
    SELECT c.workspace_id, c.unit, c.bucket, l.source, coalesce(l.property_type, 'UNSPECIFIED'),
           sum(c.sign * c.latest::int), sum(c.sign * c.latest::int * c.value),
           sum(c.sign * (c.latest AND c.value >= 80)::int),
           sum(c.sign * (c.latest AND c.value >= 60 AND c.value < 80)::int),
           sum(c.sign * (c.latest AND c.value >= 40 AND c.value < 60)::int),
           sum(c.sign * (c.latest AND c.value < 40)::int),
           sum(c.sign * (c.change IS NOT NULL)::int), coalesce(sum(c.sign * c.change), 0)
    FROM ({contributions}) c
    JOIN lead l ON l.workspace_id = c.workspace_id AND l.id = c.lead_id
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
"""

_TOP_COLUMNS = "workspace_id, day, lead_id, change, value, before, scored_at, before_at"
# the TOP biggest rises of the days of `days` (workspace_id, day), each lead once (its biggest)
_PRUNE_TOP = f"""
    DELETE FROM score_trend_top t USING (
        SELECT workspace_id, day, lead_id,
               row_number() OVER (PARTITION BY workspace_id, day
                                  ORDER BY change DESC, lead_id) AS rank
        FROM score_trend_top
        WHERE (workspace_id, day) IN ({{days}})
    ) r
    WHERE r.rank > {TOP} AND t.workspace_id = r.workspace_id AND t.day = r.day
      AND t.lead_id = r.lead_id
"""
_ADD_TOP = """
    ON CONFLICT (workspace_id, day, lead_id) DO UPDATE SET
        change = EXCLUDED.change, value = EXCLUDED.value, before = EXCLUDED.before,
        scored_at = EXCLUDED.scored_at, before_at = EXCLUDED.before_at
    WHERE EXCLUDED.change > t.change
       OR (EXCLUDED.change = t.change AND EXCLUDED.scored_at > t.scored_at)
"""
# a day's rises from all of its scorings (each with its lead's scoring before it)
_DAY_RISES = f"""
    SELECT DISTINCT ON (d.workspace_id, d.day, s.lead_id)
           d.workspace_id, d.day, s.lead_id, s.value - p.value AS change, s.value,
           p.value AS before, s.scored_at, p.scored_at AS before_at
    FROM ({{days}}) AS d(workspace_id, day)
    JOIN lead_score s ON s.workspace_id = d.workspace_id AND s.scored_at >= d.day
                     AND s.scored_at < d.day + interval '1 day'
    CROSS JOIN LATERAL (
        SELECT p.value, p.scored_at FROM lead_score p
        WHERE p.workspace_id = s.workspace_id AND p.lead_id = s.lead_id
          AND (p.scored_at < s.scored_at OR (p.scored_at = s.scored_at AND p.id < s.id))
        ORDER BY p.scored_at DESC, p.id DESC LIMIT 1
    ) p
    WHERE s.value - p.value >= {MIN_IMPROVEMENT}
    ORDER BY d.workspace_id, d.day, s.lead_id, s.value - p.value DESC, s.scored_at DESC
"""

# the slow path's leads (`slow`: ids of new rows), from their first new scoring on
_AFFECTED = """
    WITH a AS (
        SELECT workspace_id, lead_id, min(scored_at) AS first_at FROM new_rows
        WHERE id = ANY(slow) GROUP BY 1, 2
    ),
    hist AS MATERIALIZED (
        SELECT s.workspace_id, s.lead_id, s.id, s.value, s.scored_at,
               s.id IN (SELECT id FROM new_rows) AS is_new
        FROM lead_score s JOIN a ON s.workspace_id = a.workspace_id AND s.lead_id = a.lead_id
    )
"""
_AFFECTED_CONTRIBUTIONS = """
    SELECT c.* FROM ({contributions}) c
    JOIN a ON a.workspace_id = c.workspace_id AND a.lead_id = c.lead_id
    WHERE c.bucket >= date_trunc(c.unit, a.first_at, 'UTC')
"""
_NEW = _AFFECTED_CONTRIBUTIONS.format(
    contributions=_CONTRIBUTIONS.format(scorings=_SCORINGS.format(rows="SELECT * FROM hist"))
)
_OLD = _AFFECTED_CONTRIBUTIONS.format(
    contributions=_CONTRIBUTIONS.format(
        scorings=_SCORINGS.format(rows="SELECT * FROM hist WHERE NOT is_new")
    )
)
# days whose rises the slow path's leads may have changed: those of their scorings since
_AFFECTED_DAYS = """
    SELECT DISTINCT h.workspace_id, date_trunc('day', h.scored_at, 'UTC') AS day
    FROM hist h JOIN a ON a.workspace_id = h.workspace_id AND a.lead_id = h.lead_id
    WHERE h.scored_at >= a.first_at
"""

# after _AFFECTED: the slow path's leads' rises since their first new scoring (each lead's
# biggest of a day) added to the days' top, except on `stale` days, where one of the leads
# holds a place with a rise since then; `touched`: every day of those rises
_SLOW_RISES = f"""
    scorings AS ({_SCORINGS.format(rows="SELECT * FROM hist")}),
    rises AS (
        SELECT DISTINCT ON (c.workspace_id, date_trunc('day', c.scored_at, 'UTC'), c.lead_id)
               c.workspace_id, date_trunc('day', c.scored_at, 'UTC') AS day, c.lead_id,
               c.value - c.prev AS change, c.value, c.prev AS before, c.scored_at,
               c.prev_at AS before_at
        FROM scorings c JOIN a ON a.workspace_id = c.workspace_id AND a.lead_id = c.lead_id
        WHERE c.scored_at >= a.first_at AND c.value - c.prev >= {MIN_IMPROVEMENT}
        ORDER BY c.workspace_id, date_trunc('day', c.scored_at, 'UTC'), c.lead_id,
                 c.value - c.prev DESC, c.scored_at DESC
    ),
    touched AS ({_AFFECTED_DAYS}),
    stale AS (
        SELECT DISTINCT t.workspace_id, t.day FROM score_trend_top t
        JOIN a ON a.workspace_id = t.workspace_id AND a.lead_id = t.lead_id
        WHERE t.scored_at >= a.first_at
    ),
    added AS (
        INSERT INTO score_trend_top AS t ({_TOP_COLUMNS})
        SELECT r.* FROM rises r
        WHERE NOT EXISTS (SELECT 1 FROM stale s
                          WHERE s.workspace_id = r.workspace_id AND s.day = r.day)
        {_ADD_TOP}
    )
"""

# the fast path's rows summed per scoring time, segment and whether the lead's previous scoring
# is in the same bucket (batch jobs date all their rows alike: a few groups per statement)
_FRESH_GROUPS = """
    SELECT f.workspace_id, t.day, t.week, t.month, f.source, f.property_type,
           coalesce(f.pat >= t.day, false) AS same_day,
           coalesce(f.pat >= t.week, false) AS same_week,
           coalesce(f.pat >= t.month, false) AS same_month,
           count(*) AS n, sum(f.value) AS value_sum,
           count(*) FILTER (WHERE f.value >= 80) AS excellent,
           count(*) FILTER (WHERE f.value >= 60 AND f.value < 80) AS good,
           count(*) FILTER (WHERE f.value >= 40 AND f.value < 60) AS moderate,
           count(*) FILTER (WHERE f.value < 40) AS low,
           count(f.pv) AS rescorings, coalesce(sum(f.value - f.pv), 0) AS change_sum,
           coalesce(sum(f.pv), 0) AS pv_sum,
           count(*) FILTER (WHERE f.pv >= 80) AS pv_excellent,
           count(*) FILTER (WHERE f.pv >= 60 AND f.pv < 80) AS pv_good,
           count(*) FILTER (WHERE f.pv >= 40 AND f.pv < 60) AS pv_moderate,
           count(*) FILTER (WHERE f.pv < 40) AS pv_low
    FROM fresh f JOIN times t ON t.workspace_id = f.workspace_id AND t.scored_at = f.scored_at
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""
# per unit: new rows count in their bucket; a previous scoring in the same bucket leaves it
# (the previous scoring is older: it is in the bucket when at or after the bucket's start)
_FRESH_TREND = f"""
    SELECT g.workspace_id, g.unit, g.bucket, g.source,
           g.property_type,
           sum(CASE WHEN g.same THEN 0 ELSE g.n END),
           sum(g.value_sum - CASE WHEN g.same THEN g.pv_sum ELSE 0 END),
           sum(g.excellent - CASE WHEN g.same THEN g.pv_excellent ELSE 0 END),
           sum(g.good - CASE WHEN g.same THEN g.pv_good ELSE 0 END),
           sum(g.moderate - CASE WHEN g.same THEN g.pv_moderate ELSE 0 END),
           sum(g.low - CASE WHEN g.same THEN g.pv_low ELSE 0 END),
           sum(g.rescorings), sum(g.change_sum)
    FROM (
        SELECT f.*, u.unit,
               CASE u.unit WHEN 'day' THEN f.day WHEN 'week' THEN f.week ELSE f.month END
                   AS bucket,
               CASE u.unit WHEN 'day' THEN f.same_day WHEN 'week' THEN f.same_week
                           ELSE f.same_month END AS same
        FROM ({_FRESH_GROUPS}) f CROSS JOIN ({UNITS}) AS u(unit)
    ) g
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
"""

# the appends of a statement (see _FUNCTION), {leads}: how each new row `r` finds its lead `l`
_APPEND = f"""
    WITH probed AS MATERIALIZED (
        SELECT r.workspace_id, r.lead_id, r.id, r.value, r.scored_at, p.value AS pv,
               p.scored_at AS pat, l.source, l.property_type,
               p.id IS NULL OR ((p.scored_at, p.id) < (r.scored_at, r.id) AND p.id < first_id)
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
    -- the buckets of each scoring time (a batch job dates all its rows alike)
    times AS MATERIALIZED (
        SELECT workspace_id, scored_at, date_trunc('day', scored_at, 'UTC') AS day,
               date_trunc('week', scored_at, 'UTC') AS week,
               date_trunc('month', scored_at, 'UTC') AS month
        FROM (SELECT DISTINCT workspace_id, scored_at FROM probed) d
    ),
    trend AS (
        INSERT INTO score_trend AS t ({_TREND_COLUMNS})
        {_FRESH_TREND}
        {_ADD_TREND}
    ),
    risen AS (
        INSERT INTO score_trend_top AS t ({_TOP_COLUMNS})
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
        {_ADD_TOP}
        RETURNING t.workspace_id, t.day
    )
    SELECT (SELECT array_agg(id) FROM probed WHERE NOT fast),
           (SELECT array_agg(DISTINCT workspace_id) FROM risen),
           (SELECT array_agg(DISTINCT day) FROM risen)
    INTO slow, top_workspaces, top_days
"""
_SEGMENT = "l.source, coalesce(l.property_type, 'UNSPECIFIED') AS property_type"
# a run of one workspace's leads (a batch job's chunk): their lead rows in one range read
_RUN_OF_LEADS = f"""
        JOIN (SELECT l.id, {_SEGMENT} FROM lead l
              WHERE l.workspace_id = run_workspace AND l.id BETWEEN first_lead AND last_lead
        ) l ON l.id = r.lead_id
"""
# scattered leads (online scores, a few rows): one index probe each
_SOME_LEADS = f"""
        JOIN LATERAL (
            SELECT {_SEGMENT} FROM lead l
            WHERE l.workspace_id = r.workspace_id AND l.id = r.lead_id
        ) l ON true
"""

_FUNCTION = f"""
CREATE FUNCTION score_trend_apply() RETURNS trigger LANGUAGE plpgsql
SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    rows bigint;
    first_id bigint;
    run_workspace int;
    first_lead bigint;
    last_lead bigint;
    slow bigint[];
    top_workspaces int[];
    top_days timestamptz[];
    touched_workspaces int[];
    touched_days timestamptz[];
    stale_workspaces int[];
    stale_days timestamptz[];
    sort_was text := current_setting('enable_sort');
BEGIN
    SELECT count(*), min(id), min(lead_id), max(lead_id),
           CASE WHEN min(workspace_id) = max(workspace_id) THEN min(workspace_id) END
    INTO rows, first_id, first_lead, last_lead, run_workspace
    FROM new_rows;
    -- appends: a new row that is its lead's newest scoring and the lead's only new row. The
    -- lead's newest other scoring is then its previous one, a row of an earlier statement:
    -- its id is below every new id (identity order; a row of a concurrent writer that breaks
    -- it only sends the lead down the slow path, which is right for any row). The planner
    -- expects few rows where each probe finds one: it groups them by hashing, not sorting
    -- (planned once, with this setting)
    PERFORM set_config('enable_sort', 'off', true);
    IF run_workspace IS NOT NULL AND last_lead - first_lead < 4 * rows THEN
        {_APPEND.format(leads=_RUN_OF_LEADS)};
    ELSE
        {_APPEND.format(leads=_SOME_LEADS)};
    END IF;
    PERFORM set_config('enable_sort', sort_was, true);

    -- the days given new rises keep their TOP biggest
    IF top_days IS NOT NULL THEN
        {_PRUNE_TOP.format(days="SELECT w, d FROM unnest(top_workspaces) w, unnest(top_days) d")};
    END IF;
    IF slow IS NULL THEN
        RETURN NULL;
    END IF;
    -- back-dated scorings, or several of one lead at once: the leads' buckets from their first
    -- new scoring on, as they are now minus as they were without the new rows
    {_AFFECTED}
    INSERT INTO score_trend AS t ({_TREND_COLUMNS})
    {
    _TREND_OF.format(
        contributions=f"SELECT 1 AS sign, n.* FROM ({_NEW}) n"
        f" UNION ALL SELECT -1, o.* FROM ({_OLD}) o"
    )
}
    {_ADD_TREND};

    -- and the biggest rises of the days they touch. The stored rises of other leads hold; so do
    -- the leads' own before their first new scoring: their new and changed rises join the days'
    -- top (exact, as for appends) unless one of the leads holds a place there with a rise that
    -- may have changed (a back-dated scoring before it): those days are recomputed from all of
    -- their scorings (no index on scored_at: a scan)
    {_AFFECTED},
    {_SLOW_RISES}
    SELECT (SELECT array_agg(workspace_id ORDER BY workspace_id, day) FROM touched),
           (SELECT array_agg(day ORDER BY workspace_id, day) FROM touched),
           (SELECT array_agg(workspace_id ORDER BY workspace_id, day) FROM stale),
           (SELECT array_agg(day ORDER BY workspace_id, day) FROM stale)
    INTO touched_workspaces, touched_days, stale_workspaces, stale_days;
    IF stale_days IS NOT NULL THEN
        DELETE FROM score_trend_top t
        USING unnest(stale_workspaces, stale_days) AS d(workspace_id, day)
        WHERE t.workspace_id = d.workspace_id AND t.day = d.day;
        INSERT INTO score_trend_top AS t ({_TOP_COLUMNS})
        {_DAY_RISES.format(days="SELECT * FROM unnest(stale_workspaces, stale_days)")};
    END IF;
    IF touched_days IS NOT NULL THEN
        {_PRUNE_TOP.format(days="SELECT * FROM unnest(touched_workspaces, touched_days)")};
    END IF;
    RETURN NULL;
END
$$
"""

# a workspace's rollups from its whole history (the backfill; bench fixtures that load history
# with the trigger off)
_REBUILD = f"""
CREATE FUNCTION score_trend_rebuild(ws bigint) RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB' AS $$
BEGIN
    DELETE FROM score_trend WHERE workspace_id = ws;
    DELETE FROM score_trend_top WHERE workspace_id = ws;
    CREATE TEMP TABLE score_trend_scorings ON COMMIT DROP AS
    {
    _SCORINGS.format(
        rows="SELECT workspace_id, lead_id, id, value, scored_at FROM lead_score"
        " WHERE workspace_id = ws"
    )
};
    INSERT INTO score_trend AS t ({_TREND_COLUMNS})
    {
    _TREND_OF.format(
        contributions="SELECT 1 AS sign, x.* FROM ("
        + _CONTRIBUTIONS.format(scorings="SELECT * FROM score_trend_scorings")
        + ") x"
    )
};
    INSERT INTO score_trend_top ({_TOP_COLUMNS})
    SELECT workspace_id, day, lead_id, change, value, prev, scored_at, prev_at
    FROM (
        SELECT *, row_number() OVER (PARTITION BY workspace_id, day
                                     ORDER BY change DESC, lead_id) AS rank
        FROM (
            SELECT DISTINCT ON (workspace_id, date_trunc('day', scored_at, 'UTC'), lead_id)
                   workspace_id, date_trunc('day', scored_at, 'UTC') AS day, lead_id,
                   value - prev AS change, value, prev, scored_at, prev_at
            FROM score_trend_scorings
            WHERE value - prev >= {MIN_IMPROVEMENT}
            ORDER BY workspace_id, date_trunc('day', scored_at, 'UTC'), lead_id,
                     value - prev DESC, scored_at DESC
        ) best
    ) ranked
    WHERE rank <= {TOP};
    DROP TABLE score_trend_scorings;
END
$$
"""

# also run by hand on databases that had the empty placeholder of this revision applied
UPGRADE = [
    # the lead's history with its values in the index: the trigger's previous-score probe and a
    # USER's or AGENT's history read (their leads' every scoring) become index-only scans
    "DROP INDEX ix_lead_score_lead",
    """
    CREATE INDEX ix_lead_score_lead ON lead_score
        (workspace_id, lead_id, scored_at DESC, id DESC) INCLUDE (value)
    """,
    """
    CREATE TABLE score_trend (
        workspace_id INTEGER NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
        unit VARCHAR(8) NOT NULL,
        bucket TIMESTAMP WITH TIME ZONE NOT NULL,
        source VARCHAR(24) NOT NULL,
        property_type VARCHAR(24) NOT NULL,
        leads INTEGER NOT NULL,
        score_sum BIGINT NOT NULL,
        excellent INTEGER NOT NULL,
        good INTEGER NOT NULL,
        moderate INTEGER NOT NULL,
        low INTEGER NOT NULL,
        rescorings INTEGER NOT NULL,
        change_sum BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, unit, bucket, source, property_type)
    )
    """,
    """
    CREATE TABLE score_trend_top (
        workspace_id INTEGER NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
        day TIMESTAMP WITH TIME ZONE NOT NULL,
        lead_id BIGINT NOT NULL,
        change SMALLINT NOT NULL,
        value SMALLINT NOT NULL,
        before SMALLINT NOT NULL,
        scored_at TIMESTAMP WITH TIME ZONE NOT NULL,
        before_at TIMESTAMP WITH TIME ZONE NOT NULL,
        PRIMARY KEY (workspace_id, day, lead_id)
    )
    """,
    _FUNCTION,
    _REBUILD,
    "SELECT score_trend_rebuild(id) FROM workspace",
    "CREATE TRIGGER lead_score_trend_insert AFTER INSERT ON lead_score"
    " REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION score_trend_apply()",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER lead_score_trend_insert ON lead_score")
    op.execute("DROP FUNCTION score_trend_apply()")
    op.execute("DROP FUNCTION score_trend_rebuild(bigint)")
    op.drop_table("score_trend_top")
    op.drop_table("score_trend")
    op.execute("DROP INDEX ix_lead_score_lead")
    op.execute(
        "CREATE INDEX ix_lead_score_lead ON lead_score "
        "(workspace_id, lead_id, scored_at DESC, id DESC)"
    )
