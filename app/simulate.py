"""The demo simulator: a realistic trickle of activity (new leads, stage changes, calls, AI
runs, payments) written through the mutations' code paths, so live metrics visibly move."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.pubsub import ChangeEvent, PubSub
from models import billing, interactions, leads
from models.agents import Agent, AgentKind, AgentStatus, list_agents
from models.db import Database
from models.errors import DomainError
from models.interactions import Direction, Outcome
from models.leads import LeadStage
from models.scope import Scope
from models.seed import vocab
from models.workspaces import Role, workspace_admins

log = logging.getLogger(__name__)
T = TypeVar("T")

# the demo workspace gets most of the activity: it is the one people log in to first
WORKSPACE_WEIGHTS = {"acme": 4.0}
# (action, relative frequency)
ACTIONS: list[tuple[str, float]] = [
    ("new_lead", 3),
    ("advance_lead", 4),
    ("start_call", 3),
    ("ai_run", 2),
    ("payment", 1),
]
NEXT_STAGE = {
    LeadStage.NEW: LeadStage.CONTACTED,
    LeadStage.CONTACTED: LeadStage.QUALIFIED,
    LeadStage.QUALIFIED: LeadStage.SHOWING,
    LeadStage.SHOWING: LeadStage.OFFER,
    LeadStage.OFFER: LeadStage.WON,
}
# chance that a lead drops out instead of moving on, by the stage it is in
LOSS = {
    LeadStage.NEW: 0.10,
    LeadStage.CONTACTED: 0.15,
    LeadStage.QUALIFIED: 0.15,
    LeadStage.SHOWING: 0.20,
    LeadStage.OFFER: 0.35,
}
CALL_OUTCOMES: list[tuple[Outcome, float]] = [
    (Outcome.NO_ANSWER, 0.25),
    (Outcome.INTERESTED, 0.35),
    (Outcome.CALLBACK_REQUESTED, 0.15),
    (Outcome.NOT_INTERESTED, 0.12),
    (Outcome.CONVERTED, 0.05),
    (Outcome.RESOLVED, 0.08),
]
TOP_UPS = [1_000, 2_500, 5_000]  # cents, as in the seed data
AGENTS_TTL = 60.0  # seconds an on-duty roster is reused before it is read again
ON_DUTY = {AgentStatus.ACTIVE, AgentStatus.LEARNING}


@dataclass(slots=True)
class _Tenant:
    scope: Scope
    slug: str
    weight: float
    agents: list[Agent] = field(default_factory=list)
    agents_read_at: float = -math.inf


@dataclass(frozen=True, slots=True)
class _Call:
    tenant: _Tenant
    interaction_id: int
    ends_at: float
    ai: bool


@dataclass(frozen=True, slots=True)
class _Change:
    kind: str
    id: int
    started: _Call | None = None  # a call to end later
    ended: bool = False  # the row is a call that has ended


def _weighted(rng: random.Random, choices: Sequence[tuple[T, float]]) -> T:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


class Simulator:
    """One action per Poisson arrival (`rate` per second on average), each in a transaction of
    its own through the models' write functions, acting as the workspace's ADMIN; after the
    commit it publishes the change event, as the resolvers do. Calls it starts it also ends:
    after about `call_seconds`, and all of them when it stops, so none is left ACTIVE."""

    def __init__(
        self,
        db: Database,
        pubsub: PubSub,
        *,
        rate: float = 2.0,
        seed: int | None = None,
        call_seconds: float = 45.0,
    ) -> None:
        if not rate > 0 or not call_seconds > 0:
            raise ValueError("rate and call_seconds must be positive")
        self.db = db
        self.pubsub = pubsub
        self.rate = rate
        self.call_seconds = call_seconds
        self.rng = random.Random(seed)
        self.tenants: list[_Tenant] = []
        self.calls: dict[int, _Call] = {}  # started here and not yet ended
        self.done: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.failed = 0

    async def run(self, duration: float | None = None) -> None:
        """Until cancelled, or for `duration` seconds; ends its calls either way."""
        loop = asyncio.get_running_loop()
        deadline = math.inf if duration is None else loop.time() + duration
        try:
            due = loop.time()
            backoff = 1.0
            while loop.time() < deadline:
                try:
                    if not self.tenants:
                        self.tenants = await self._tenants()
                        if not self.tenants:
                            log.warning("simulator: no workspace has an ADMIN: nothing to do")
                            return
                        slugs = ", ".join(t.slug for t in self.tenants)
                        log.info("simulator: %.3g actions/s in %s", self.rate, slugs)
                    await self.step()
                    backoff = 1.0
                except Exception:
                    # the database went away, a bug: keep the server up, try again later
                    self.failed += 1
                    log.exception("simulator: action failed; retrying in %.0f s", backoff)
                    await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
                    backoff = min(backoff * 2, 30.0)
                # a Poisson process; after a stall it resumes instead of bursting to catch up
                due = max(due + self.rng.expovariate(self.rate), loop.time() - 1.0)
                await asyncio.sleep(max(0.0, min(due, deadline) - loop.time()))
        finally:
            await self.hang_up()
            log.info("simulator: done %s, refused %s", dict(self.done), dict(self.refused))

    async def step(self) -> None:
        """One action: end a call that is due, or else something new in a random workspace."""
        now = asyncio.get_running_loop().time()
        due = [c for c in self.calls.values() if c.ends_at <= now]
        if due:
            call = min(due, key=lambda c: c.ends_at)
            await self._act("end_call", call.tenant, partial(self._end_call, call=call))
            return
        tenant = _weighted(self.rng, [(t, t.weight) for t in self.tenants])
        name = _weighted(self.rng, ACTIONS)
        action: Callable[[AsyncSession, _Tenant], Awaitable[_Change | None]] = getattr(
            self, f"_{name}"
        )
        await self._act(name, tenant, lambda s: action(s, tenant))

    async def hang_up(self) -> None:
        """End every call this simulator started, so none stays ACTIVE after it stops."""
        if not self.calls:
            return
        try:
            async with asyncio.timeout(10):
                for call in list(self.calls.values()):
                    await self._act("end_call", call.tenant, partial(self._end_call, call=call))
        except Exception:
            log.exception("simulator: could not end %d calls", len(self.calls))

    async def _act(
        self,
        name: str,
        tenant: _Tenant,
        write: Callable[[AsyncSession], Awaitable[_Change | None]],
    ) -> None:
        """One write in a transaction of its own, then its change event; shielded, because a
        cancel landing on the COMMIT could leave a call that the server did store untracked,
        ACTIVE for ever."""
        action = asyncio.ensure_future(self._write(name, tenant, write))
        try:
            await asyncio.shield(action)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(action, timeout=10)
            raise

    async def _write(
        self,
        name: str,
        tenant: _Tenant,
        write: Callable[[AsyncSession], Awaitable[_Change | None]],
    ) -> None:
        try:
            async with self.db.transaction() as session:
                change = await write(session)
        except DomainError as exc:
            # the same refusals a client would get (a lead moved meanwhile, an agent paused)
            self.refused[name] += 1
            log.info("simulator: %s refused in %s: %s %s", name, tenant.slug, exc, exc.details)
            return
        if change is None:
            return
        # booked only once committed: a call whose COMMIT failed is still going on
        if change.started is not None:
            self.calls[change.id] = change.started
        if change.ended:
            self.calls.pop(change.id, None)
        self.done[name] += 1
        await self.pubsub.publish(
            ChangeEvent(tenant.scope.workspace_id, change.kind, [str(change.id)])
        )

    # ---- the world ---------------------------------------------------------------------------

    async def _tenants(self) -> list[_Tenant]:
        async with self.db.session() as session:
            admins = await workspace_admins(session)
        return [
            _Tenant(
                Scope(workspace.id, user_id, Role.ADMIN),
                workspace.slug,
                WORKSPACE_WEIGHTS.get(workspace.slug, 1.0),
            )
            for workspace, user_id in admins
            if workspace.id is not None
        ]

    async def _on_duty(self, session: AsyncSession, tenant: _Tenant) -> list[Agent]:
        now = asyncio.get_running_loop().time()
        if now - tenant.agents_read_at > AGENTS_TTL:
            agents = await list_agents(session, tenant.scope)
            tenant.agents = [a for a in agents if a.status in ON_DUTY]
            tenant.agents_read_at = now
        return tenant.agents

    async def _open_leads(self, session: AsyncSession, tenant: _Tenant) -> list[leads.Lead]:
        """The newest open leads: the ones a team is working on right now."""
        page = await leads.lead_page(
            session,
            tenant.scope,
            filter=leads.LeadFilter(stages=list(NEXT_STAGE)),
            sort=leads.LeadSort(),
            first=50,
            after=None,
        )
        return page.leads

    # ---- actions: each writes through a models function and names the row it changed ---------

    async def _new_lead(self, session: AsyncSession, tenant: _Tenant) -> _Change | None:
        rng = self.rng
        first, last = str(rng.choice(vocab.FIRST_NAMES)), str(rng.choice(vocab.LAST_NAMES))
        city, price, _, area, _ = rng.choices(vocab.CITIES, [c[2] for c in vocab.CITIES])[0]
        kind, _, _, kind_price = _weighted(rng, [(p, p[1]) for p in vocab.PROPERTY_TYPES])
        budget = vocab.NATIONAL_MEDIAN_BUDGET * price * kind_price * rng.lognormvariate(0, 0.35)
        agents = await self._on_duty(session, tenant)
        domain = str(rng.choice(vocab.EMAIL_DOMAINS))
        data = leads.LeadInput(
            name=f"{first} {last}",
            email=f"{first}.{last}{rng.randint(1, 999)}@{domain}".lower()
            if rng.random() < 0.85
            else None,
            phone=f"+1 {area} 555 {rng.randint(0, 9999):04d}" if rng.random() < 0.9 else None,
            source=leads.LeadSource(_weighted(rng, [(s, p) for s, p, _ in vocab.SOURCES])),
            budget=int(round(budget, -4)),
            timeline=_optional(
                leads.Timeline, _weighted(rng, [(t, p) for t, p, _ in vocab.TIMELINES])
            ),
            property_type=_optional(leads.PropertyType, kind),
            location=city,
            agent_id=rng.choice(agents).id if agents and rng.random() < 0.75 else None,
        )
        lead = await leads.create_lead(session, tenant.scope, data)
        assert lead.id is not None  # flushed
        return _Change("lead", lead.id)

    async def _advance_lead(self, session: AsyncSession, tenant: _Tenant) -> _Change | None:
        candidates = await self._open_leads(session, tenant)
        if not candidates:
            return None
        lead = self.rng.choice(candidates)
        assert lead.id is not None
        stage = LeadStage(lead.stage)
        lost = self.rng.random() < LOSS[stage]
        event = await leads.record_lead_event(
            session,
            tenant.scope,
            leads.LeadEventInput(
                lead_id=lead.id,
                type=leads.LeadEventType.STAGE_CHANGE,
                from_stage=stage,
                to_stage=LeadStage.LOST if lost else NEXT_STAGE[stage],
                note=str(self.rng.choice(vocab.LOST_REASONS)) if lost else None,
            ),
        )
        return _Change("lead", event.lead_id)

    async def _start_call(self, session: AsyncSession, tenant: _Tenant) -> _Change | None:
        agents = await self._on_duty(session, tenant)
        direction = Direction.OUTBOUND if self.rng.random() < 0.75 else Direction.INBOUND
        candidates = [
            lead
            for lead in await self._open_leads(session, tenant)
            if direction is Direction.INBOUND or not lead.do_not_call
        ]
        if not agents or not candidates:
            return None
        lead = self.rng.choice(candidates)
        assert lead.id is not None
        # the lead's own agent when on duty, else whoever is free
        agent = next((a for a in agents if a.id == lead.agent_id), None) or self.rng.choice(agents)
        assert agent.id is not None
        call = await interactions.start_call(
            session,
            tenant.scope,
            lead_id=lead.id,
            agent_id=agent.id,
            direction=direction,
            topic=str(self.rng.choice(vocab.CALL_TOPICS)),
        )
        assert call.id is not None
        seconds = self.call_seconds * min(max(self.rng.lognormvariate(0, 0.6), 0.2), 5.0)
        ends_at = asyncio.get_running_loop().time() + seconds
        started = _Call(tenant, call.id, ends_at, ai=agent.kind == AgentKind.AI)
        return _Change("interaction", call.id, started=started)

    async def _end_call(self, session: AsyncSession, call: _Call) -> _Change | None:
        rng = self.rng
        if call.ai and rng.random() < 0.03:
            outcome, error = None, "Call dropped by carrier"
        else:
            outcome, error = _weighted(rng, CALL_OUTCOMES), None
        answered = outcome not in (None, Outcome.NO_ANSWER)
        try:
            ended = await interactions.end_call(
                session,
                call.tenant.scope,
                call.interaction_id,
                outcome=outcome,
                error=error,
                satisfaction=float(rng.choice([3, 4, 4, 5, 5]))
                if answered and rng.random() < 0.35
                else None,
            )
        except DomainError:
            # someone else ended it (or it is gone): nothing left for us to do
            self.calls.pop(call.interaction_id, None)
            raise
        assert ended.id is not None
        return _Change("interaction", ended.id, ended=True)

    async def _ai_run(self, session: AsyncSession, tenant: _Tenant) -> _Change | None:
        bots = [a for a in await self._on_duty(session, tenant) if a.kind == AgentKind.AI]
        if not bots:
            return None
        rng = self.rng
        agent = rng.choice(bots)
        assert agent.id is not None
        run = await interactions.record_ai_execution(
            session,
            tenant.scope,
            agent_id=agent.id,
            topic=str(rng.choice(vocab.AI_TOPICS)),
            duration_seconds=int(min(max(rng.lognormvariate(math.log(20), 0.8), 1), 600)),
            credits=int(min(max(round(rng.lognormvariate(math.log(8), 0.6)), 1), 60)),
            error=str(rng.choice(vocab.AI_ERRORS)) if rng.random() < 0.04 else None,
        )
        assert run.id is not None
        return _Change("interaction", run.id)

    async def _payment(self, session: AsyncSession, tenant: _Tenant) -> _Change | None:
        subscriptions = await billing.billable_subscriptions(session, tenant.scope)
        if not subscriptions:
            return None
        rng = self.rng
        subscription, plan = rng.choice(subscriptions)
        assert subscription.id is not None
        payment = await billing.record_payment(
            session,
            tenant.scope,
            subscription_id=subscription.id,
            # mostly credit top-ups, sometimes a renewal of the plan
            amount=plan.price if rng.random() < 0.3 else rng.choice(TOP_UPS),
            status=_weighted(
                rng,
                [
                    (billing.PaymentStatus.SUCCEEDED, 0.95),
                    (billing.PaymentStatus.FAILED, 0.03),
                    (billing.PaymentStatus.PENDING, 0.02),
                ],
            ),
        )
        assert payment.id is not None
        return _Change("payment", payment.id)


E = TypeVar("E")


def _optional(enum: Callable[[str], E], value: str | None) -> E | None:
    return None if value is None else enum(value)


async def run_simulator(
    db: Database, pubsub: PubSub, rate: float, *, seed: int | None = None
) -> None:
    """For the server's lifespan: simulate until cancelled (then end the calls it started)."""
    await Simulator(db, pubsub, rate=rate, seed=seed).run()
