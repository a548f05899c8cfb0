"""Subscriptions: live metrics, ML insights and job progress, served through the live hub."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, Self

import strawberry

from app.live import SharedSnapshot
from app.pubsub import ChangeEvent
from ml import insights, lead_insights
from models import activity, jobs, leads, live, sales_performance
from models import lead_insights as lead_insights_rules
from models.activity import ActivityType
from models.db import utcnow
from models.errors import BadUserInput, Forbidden, NotFound
from resolvers.context import Info
from resolvers.enums import Period
from resolvers.ids import parse_id
from resolvers.jobs import Job
from resolvers.lead_insights import (
    LeadInsightFilter,
    LeadInsights,
    LeadInsightSort,
    lead_insights_report,
)
from resolvers.leads import Lead
from resolvers.ml_insights import (
    InsightCategory,
    MlInsights,
    insights_report,
    report_fingerprint,
)
from resolvers.sales_performance import (
    Performance,
    check_performance_period,
    performance_fingerprint,
    performance_report,
)


@strawberry.type(description="Live workspace numbers; a new snapshot whenever one changes")
class LiveMetrics(SharedSnapshot):
    total_leads: int
    new_leads_today: int
    active_calls: int
    calls_today: int
    conversion_rate: float = strawberry.field(description="Won leads / all leads")
    average_score: float | None
    revenue_today: float
    credits_consumed_today: int
    generated_at: datetime

    @classmethod
    def from_model(cls, metrics: live.LiveMetrics) -> Self:
        return cls(
            total_leads=metrics.total_leads,
            new_leads_today=metrics.new_leads_today,
            active_calls=metrics.active_calls,
            calls_today=metrics.calls_today,
            conversion_rate=metrics.conversion_rate,
            average_score=metrics.average_score,
            revenue_today=metrics.revenue_today,
            credits_consumed_today=metrics.credits_consumed_today,
            generated_at=utcnow(),
        )


def _metrics_fingerprint(value: LiveMetrics) -> object:
    """What makes two snapshots equal: every number, not the time it was computed."""
    return (
        value.total_leads,
        value.new_leads_today,
        value.active_calls,
        value.calls_today,
        value.conversion_rate,
        value.average_score,
        value.revenue_today,
        value.credits_consumed_today,
    )


strawberry.enum(ActivityType, description="Kinds of the activity feed")

MAX_FEED = 50


@strawberry.type(description="One thing that happened in the workspace")
class Activity:
    type: ActivityType
    at: datetime
    subject_id: strawberry.ID = strawberry.field(description="The user, lead, call... it is about")
    title: str
    amount: float | None = strawberry.field(description="Money involved, in dollars")


@strawberry.type
class ActivityFeed:
    items: list[Activity]
    generated_at: datetime


def _not_jobs(event: ChangeEvent) -> bool:
    return event.kind != "job"


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Live metrics of a workspace (first snapshot at once)")
    async def live_metrics(
        self, info: Info, workspace_id: strawberry.ID | None = None
    ) -> AsyncGenerator[LiveMetrics, None]:
        context = info.context
        scope = await context.scope(workspace_id)

        async def compute() -> LiveMetrics:
            async with context.db.session() as session:
                return LiveMetrics.from_model(await live.live_metrics(session, scope.workspace_id))

        # one snapshot object per recompute for the whole group (generatedAt: when it was
        # computed), executed once per operation (SharedSnapshot): with thousands of
        # subscribers the per-subscriber work is only sending it
        hub = context.services.hub
        async for metrics in hub.subscribe(
            scope.workspace_id, "liveMetrics", compute, _not_jobs, _metrics_fingerprint
        ):
            yield metrics

    @strawberry.subscription(description="Newest activity of the workspace (ADMIN), as it happens")
    async def events(
        self,
        info: Info,
        types: list[ActivityType] | None = None,
        limit: int = 20,
        workspace_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[ActivityFeed, None]:
        context = info.context
        scope = await context.scope(workspace_id)
        if not scope.is_admin:
            raise Forbidden("The workspace activity feed is for admins")
        if not 1 <= limit <= MAX_FEED:
            raise BadUserInput(f"`limit` must be 1..{MAX_FEED}", fields={"limit": "1..50"})
        chosen = sorted(set(types or ActivityType))

        async def compute() -> list[activity.Activity]:
            async with context.db.session() as session:
                return await activity.recent_activity(session, scope.workspace_id, chosen, limit)

        hub = context.services.hub
        key = ("events", tuple(chosen), limit)
        async for items in hub.subscribe(scope.workspace_id, key, compute, _not_jobs):
            context.reset_loaders()
            yield ActivityFeed(
                items=[
                    Activity(
                        type=a.type,
                        at=a.at,
                        subject_id=strawberry.ID(str(a.subject_id)),
                        title=a.title,
                        amount=a.amount_cents / 100 if a.amount_cents is not None else None,
                    )
                    for a in items
                ],
                generated_at=utcnow(),
            )

    @strawberry.subscription(
        description="A lead with its latest score: now, then whenever it is rescored or changes"
    )
    async def lead_score_changed(
        self, info: Info, lead_id: strawberry.ID, workspace_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Lead, None]:
        context = info.context
        scope = await context.scope(workspace_id)
        lead_key = parse_id(lead_id, "leadId")

        async def compute() -> tuple[leads.Lead, leads.LeadScore | None]:
            async with context.db.session() as session:
                found = await leads.leads_by_ids(session, scope, [lead_key])
                if not found:
                    raise NotFound("Lead not found", leadId=str(lead_key))
                scores = await leads.latest_scores_by_lead(session, scope.workspace_id, [lead_key])
            return found[0], scores.get(lead_key)

        def wants(event: ChangeEvent) -> bool:
            if event.kind == "lead_score" and not event.ids:
                return True  # "many leads rescored": recompute, the snapshot tells if it changed
            return event.kind in ("lead", "lead_score") and str(lead_key) in event.ids

        def snapshot(value: tuple[leads.Lead, leads.LeadScore | None]) -> Any:
            lead, score = value
            return (lead.stage, lead.updated_at, score.id if score else None)

        hub = context.services.hub
        key = ("leadScore", lead_key, scope)
        async for row, _ in hub.subscribe(scope.workspace_id, key, compute, wants, snapshot):
            context.reset_loaders()
            yield Lead.from_row(row, scope)

    @strawberry.subscription(
        description="`Workspace.mlInsights` now, then again whenever leads, scores or models "
        "change it (recomputed at most once per tick)"
    )
    async def ml_insights_updated(
        self,
        info: Info,
        workspace_id: strawberry.ID | None = None,
        category: InsightCategory | None = None,
        limit: int = 20,
        period: Period = Period.D30,
    ) -> AsyncGenerator[MlInsights, None]:
        context = info.context
        scope = await context.scope(workspace_id)
        insights.check_limit(limit)
        insights.check_timeframe(period.value)

        async def compute() -> insights.InsightReport:
            return await insights_report(context, scope, category, limit, period)

        def wants(event: ChangeEvent) -> bool:
            return event.kind in ("lead", "lead_score", "ml_model")

        # the scope is part of the key: a USER's insights cover only their own leads
        hub = context.services.hub
        key = ("mlInsights", category, limit, period, scope)
        async for report in hub.subscribe(
            scope.workspace_id, key, compute, wants, report_fingerprint
        ):
            context.reset_loaders()
            yield MlInsights.from_report(report)

    @strawberry.subscription(
        description="`Workspace.performance(period)` now, then again whenever leads, scores "
        "or the alert thresholds change it (recomputed at most once per tick)"
    )
    async def performance_updated(
        self, info: Info, workspace_id: strawberry.ID | None = None, period: Period = Period.H24
    ) -> AsyncGenerator[Performance, None]:
        context = info.context
        scope = await context.scope(workspace_id)
        check_performance_period(period)

        async def compute() -> sales_performance.Performance:
            return await performance_report(context, scope, period)

        def wants(event: ChangeEvent) -> bool:
            return event.kind in ("lead", "lead_score", "performance_config")

        # the scope is part of the key: a USER's numbers cover only their own leads
        hub = context.services.hub
        key = ("performance", period, scope)
        async for report in hub.subscribe(
            scope.workspace_id, key, compute, wants, performance_fingerprint
        ):
            context.reset_loaders()
            yield Performance.from_model(report)

    @strawberry.subscription(
        description="`Workspace.leadInsights` now, then again whenever leads, their events or "
        "scores, or models change it (recomputed at most once per tick; an unchanged result "
        "is not sent again)"
    )
    async def lead_insights_updated(
        self,
        info: Info,
        workspace_id: strawberry.ID | None = None,
        period: Period = Period.H24,
        filter: list[LeadInsightFilter] | None = None,
        limit: int = 50,
        sort: LeadInsightSort = LeadInsightSort.SCORE,
    ) -> AsyncGenerator[LeadInsights, None]:
        context = info.context
        scope = await context.scope(workspace_id)
        lead_insights_rules.check_limit(limit)
        chosen = list(dict.fromkeys(filter or ()))

        async def compute() -> lead_insights.LeadInsightsReport:
            return await lead_insights_report(context, scope, period, chosen, limit, sort)

        def wants(event: ChangeEvent) -> bool:
            return event.kind in ("lead", "lead_event", "lead_score", "ml_model")

        def fingerprint(report: lead_insights.LeadInsightsReport) -> object:
            return report.fingerprint()

        # the scope is part of the key: a USER's insights cover only their own leads
        hub = context.services.hub
        key = ("leadInsights", period, tuple(chosen), limit, sort, scope)
        async for report in hub.subscribe(scope.workspace_id, key, compute, wants, fingerprint):
            context.reset_loaders()
            yield LeadInsights.from_report(report, scope)

    @strawberry.subscription(description="A job's status and progress until it ends")
    async def job_progress(
        self, info: Info, id: strawberry.ID, workspace_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Job, None]:
        context = info.context
        scope = await context.scope(workspace_id)
        job_id = parse_id(id, "id")

        async def compute() -> Job:
            async with context.db.session() as session:
                return Job.from_row(await jobs.get_job(session, scope, job_id))

        def wants(event: ChangeEvent) -> bool:
            return event.kind == "job" and str(job_id) in event.ids

        # the scope is part of the key: who may see the job decides what the group computes
        hub = context.services.hub
        async for job in hub.subscribe(scope.workspace_id, ("job", job_id, scope), compute, wants):
            context.reset_loaders()
            yield job
            if job.status in jobs.FINISHED:
                return
