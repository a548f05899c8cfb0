"""The one tenant-scoping helper: every tenant read filters through a `Scope`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from models.workspaces import Role


@dataclass(frozen=True, slots=True)
class Scope:
    """What the viewer may see: one workspace, and inside it what their role allows."""

    workspace_id: int
    user_id: int
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def where(self, table: Any) -> Any:
        """`workspace_id = :ws` for any tenant-owned table."""
        return table.workspace_id == self.workspace_id

    def own_agent_ids(self) -> Any:
        """Subquery of the agents this viewer is: the human agent rows linked to the user."""
        from models.agents import Agent

        return sa.select(col(Agent.id)).where(
            col(Agent.workspace_id) == self.workspace_id, col(Agent.user_id) == self.user_id
        )

    def leads(self, lead: Any) -> Any:
        """Role rule for leads: ADMIN all, USER the ones they own, AGENT the ones assigned."""
        clause = lead.workspace_id == self.workspace_id
        if self.role is Role.USER:
            clause = sa.and_(clause, lead.owner_id == self.user_id)
        elif self.role is Role.AGENT:
            clause = sa.and_(clause, lead.agent_id.in_(self.own_agent_ids()))
        return clause

    def agents(self, agent: Any) -> Any:
        """Role rule for agents: ADMIN all, USER the agents they own, AGENT themselves."""
        clause = agent.workspace_id == self.workspace_id
        if self.role is Role.USER:
            clause = sa.and_(clause, agent.owner_id == self.user_id)
        elif self.role is Role.AGENT:
            clause = sa.and_(clause, agent.user_id == self.user_id)
        return clause
