"""Assembles the Schema from the per-domain Query/Mutation classes, with its guards."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from resolvers.errors import rewrite
from resolvers.jobs import JobMutations, JobQueries
from resolvers.leads import LeadMutations, LeadQueries
from resolvers.workspaces import WorkspaceMutations, WorkspaceQueries

Query = merge_types("Query", (WorkspaceQueries, LeadQueries, JobQueries))
Mutation = merge_types("Mutation", (WorkspaceMutations, LeadMutations, JobMutations))


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # every error of every transport passes here once: code it, log only the unexpected
        for error in errors:
            rewrite(error)


def build_schema(*, max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 3000) -> Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            # factories: a fresh extension per request (the caches themselves are shared)
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
        ],
    )


schema = build_schema()
