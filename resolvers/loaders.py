"""Every DataLoader: batch functions only, results in key order, built per request."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from aiodataloader import DataLoader

from ml import explain, registry
from ml.score_cache import OnlineScore
from ml.serving import score_leads
from models import agents, jobs, leads
from models.db import Database
from models.errors import BadUserInput, DomainError
from models.ml_models import ModelStatus
from models.scope import Scope

T = TypeVar("T")
K = TypeVar("K")
R = TypeVar("R")


def _in_key_order(keys: Iterable[Any], rows: Iterable[T], key: str = "id") -> list[T | None]:
    by_key = {getattr(row, key): row for row in rows}
    return [by_key.get(k) for k in keys]


class _Loader(DataLoader[K, R]):
    def __init__(self, db: Database, scope: Scope) -> None:
        super().__init__()
        self.db = db
        self.scope = scope


class AgentByIdLoader(_Loader[int, agents.Agent | None]):
    async def batch_load_fn(self, keys: list[int]) -> list[agents.Agent | None]:
        async with self.db.session() as session:
            rows = await agents.agents_by_ids(session, self.scope, list(keys))
        return _in_key_order(keys, rows)


class LeadByIdLoader(_Loader[int, leads.Lead | None]):
    async def batch_load_fn(self, keys: list[int]) -> list[leads.Lead | None]:
        async with self.db.session() as session:
            rows = await leads.leads_by_ids(session, self.scope, list(keys))
        return _in_key_order(keys, rows)


class EventsByLeadLoader(_Loader[tuple[int, int], list[leads.LeadEvent]]):
    """Keys are (lead_id, first): one statement per distinct `first` in the tick."""

    async def batch_load_fn(self, keys: list[tuple[int, int]]) -> list[list[leads.LeadEvent]]:
        by_first: dict[int, list[int]] = {}
        for lead_id, first in keys:
            by_first.setdefault(first, []).append(lead_id)
        found: dict[tuple[int, int], list[leads.LeadEvent]] = {}
        async with self.db.session() as session:
            for first, lead_ids in by_first.items():
                events = await leads.recent_events_by_lead(
                    session, self.scope.workspace_id, lead_ids, first
                )
                for lead_id in lead_ids:
                    found[(lead_id, first)] = events.get(lead_id, [])
        return [found[key] for key in keys]


class LatestScoreByLeadLoader(_Loader[int, leads.LeadScore | None]):
    async def batch_load_fn(self, keys: list[int]) -> list[leads.LeadScore | None]:
        async with self.db.session() as session:
            found = await leads.latest_scores_by_lead(session, self.scope.workspace_id, list(keys))
        return [found.get(k) for k in keys]


class OnlineScoreByLeadLoader(DataLoader[leads.Lead, OnlineScore | None]):
    """Keys are lead rows (their data keys the cache), cached per lead id: the page's leads
    are scored together, one feature build and one predict per serving version."""

    def __init__(self, db: Database, scope: Scope) -> None:
        super().__init__(get_cache_key=lambda lead: lead.id)
        self.db = db
        self.scope = scope

    async def batch_load_fn(self, keys: list[leads.Lead]) -> list[OnlineScore | None]:
        return await score_leads(self.db, self.scope.workspace_id, keys)


class OnlineScoreByModelLoader(DataLoader[tuple[leads.Lead, int], OnlineScore | None | Exception]):
    """Keys are (lead row, model id): a chosen version's scores, one `score_leads` per version
    of the tick (MODEL_NOT_FOUND for a version not of the workspace; a version still training
    has nothing to score with: BAD_USER_INPUT)."""

    def __init__(self, db: Database, scope: Scope) -> None:
        super().__init__(get_cache_key=lambda key: (key[0].id, key[1]))
        self.db = db
        self.scope = scope

    async def batch_load_fn(
        self, keys: list[tuple[leads.Lead, int]]
    ) -> list[OnlineScore | None | Exception]:
        by_model: dict[int, list[leads.Lead]] = {}
        for lead, model_id in keys:
            by_model.setdefault(model_id, []).append(lead)
        # an exception in place of a value: that key's load raises it
        found: dict[tuple[int | None, int], OnlineScore | None | Exception] = {}
        for model_id, rows in by_model.items():
            try:
                async with self.db.session() as session:
                    model = await registry.get_model(session, self.scope, model_id)
                if model.status == ModelStatus.TRAINING:
                    raise BadUserInput("Not trained yet", fields={"model": "still training"})
                scores: list[OnlineScore | None | Exception] = list(
                    await score_leads(self.db, self.scope.workspace_id, rows, model=model)
                )
            except DomainError as refused:
                scores = [refused] * len(rows)
            for lead, score in zip(rows, scores, strict=True):
                found[(lead.id, model_id)] = score
        return [found[(lead.id, model_id)] for lead, model_id in keys]


class JobByIdLoader(_Loader[int, jobs.Job | None]):
    async def batch_load_fn(self, keys: list[int]) -> list[jobs.Job | None]:
        async with self.db.session() as session:
            rows = await jobs.jobs_by_ids(session, self.scope, list(keys))
        return _in_key_order(keys, rows)


class ExplanationByLeadLoader(DataLoader[leads.Lead, explain.Explanation | None]):
    """Keys are lead rows, cached per lead id: SHAP explanations by each lead's serving
    version, one feature build and one SHAP call per version for all the leads of the tick."""

    def __init__(self, db: Database, scope: Scope) -> None:
        super().__init__(get_cache_key=lambda lead: lead.id)
        self.db = db
        self.scope = scope

    async def batch_load_fn(self, keys: list[leads.Lead]) -> list[explain.Explanation | None]:
        found = await explain.explain_leads(self.db, self.scope.workspace_id, keys)
        return [found.get(k.id) if k.id is not None else None for k in keys]


class Loaders:
    """The loaders of one workspace scope."""

    def __init__(self, db: Database, scope: Scope) -> None:
        self.scope = scope
        self.agent_by_id = AgentByIdLoader(db, scope)
        self.lead_by_id = LeadByIdLoader(db, scope)
        self.events_by_lead = EventsByLeadLoader(db, scope)
        self.latest_score_by_lead = LatestScoreByLeadLoader(db, scope)
        self.online_score_by_lead = OnlineScoreByLeadLoader(db, scope)
        self.online_score_by_model = OnlineScoreByModelLoader(db, scope)
        self.job_by_id = JobByIdLoader(db, scope)
        self.explanation_by_lead = ExplanationByLeadLoader(db, scope)
