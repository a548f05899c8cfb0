"""How much data each seed size makes: per-workspace head counts and lead volumes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkspaceSize:
    """One workspace's share: leads, members by role, and agents by kind."""

    leads: int
    users: int
    human_agents: int
    ai_agents: int
    extra_admins: int = 0


@dataclass(frozen=True, slots=True)
class SeedSize:
    name: str
    # in workspace order: Acme Realty, Globex, Initech
    workspaces: tuple[WorkspaceSize, WorkspaceSize, WorkspaceSize]
    # leads generated (and COPYed) per batch: bounds memory, overlaps generation with loading
    chunk_leads: int = 100_000

    @property
    def leads(self) -> int:
        return sum(w.leads for w in self.workspaces)


SIZES: dict[str, SeedSize] = {
    "tiny": SeedSize(
        "tiny",
        (
            WorkspaceSize(leads=2_000, users=30, human_agents=6, ai_agents=3),
            WorkspaceSize(leads=600, users=12, human_agents=3, ai_agents=2),
            WorkspaceSize(leads=400, users=8, human_agents=3, ai_agents=2),
        ),
    ),
    "small": SeedSize(
        "small",
        (
            WorkspaceSize(leads=14_000, users=120, human_agents=20, ai_agents=6, extra_admins=2),
            WorkspaceSize(leads=4_000, users=60, human_agents=10, ai_agents=4, extra_admins=1),
            WorkspaceSize(leads=2_000, users=40, human_agents=8, ai_agents=3),
        ),
    ),
    "medium": SeedSize(
        "medium",
        (
            WorkspaceSize(leads=140_000, users=400, human_agents=30, ai_agents=8, extra_admins=3),
            WorkspaceSize(leads=40_000, users=150, human_agents=15, ai_agents=5, extra_admins=2),
            WorkspaceSize(leads=20_000, users=80, human_agents=10, ai_agents=4, extra_admins=1),
        ),
    ),
    "large": SeedSize(
        "large",
        (
            WorkspaceSize(
                leads=700_000, users=1_200, human_agents=40, ai_agents=10, extra_admins=4
            ),
            WorkspaceSize(leads=200_000, users=400, human_agents=25, ai_agents=6, extra_admins=2),
            WorkspaceSize(leads=100_000, users=200, human_agents=15, ai_agents=5, extra_admins=1),
        ),
    ),
}
