"""Assembles the Schema from the per-domain Query/Mutation classes, with its guards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import strawberry
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, get_operation_ast
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from resolvers.context import Context
from resolvers.errors import rewrite
from resolvers.jobs import JobMutations, JobQueries
from resolvers.leads import LeadMutations, LeadQueries
from resolvers.ml_analytics import MlAnalyticsQueries
from resolvers.ml_explain import MlExplainQueries
from resolvers.ml_models import MlMutations, MlQueries
from resolvers.ml_registry import MlRegistryMutations, MlRegistryQueries
from resolvers.realtime import RealtimeQueries
from resolvers.sales_performance import PerformanceMutations
from resolvers.subscriptions import Subscription
from resolvers.workspaces import WorkspaceMutations, WorkspaceQueries


class FreshLoaders(SchemaExtension):
    """Each operation starts with empty loaders, also on a long-lived WebSocket context."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            context.reset_loaders()
        yield


# root query fields that are individual scoring (seed 003: 500 requests a minute, against
# 200 for analytics): one lead's score or explanation, conversion predictions
SCORING_FIELDS = frozenset({"lead", "predictConversion", "__typename"})


def bucket_of(operation: OperationDefinitionNode | None, operation_type: str) -> str:
    """The rate-limit bucket of an operation: its type (query, mutation), except a query that
    selects only SCORING_FIELDS at its root (fragments there count as other fields)."""
    if operation_type == "query" and operation is not None:
        roots = operation.selection_set.selections
        if all(isinstance(f, FieldNode) and f.name.value in SCORING_FIELDS for f in roots):
            return "scoring"
    return operation_type


class RateLimit(SchemaExtension):
    """One hit per operation in the bucket of its type (query, mutation; `scoring` for a query
    of individual scoring, see `bucket_of`), per viewer."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context):
            document = execution.graphql_document
            operation = (
                None if document is None else get_operation_ast(document, execution.operation_name)
            )
            bucket = bucket_of(operation, execution.operation_type.value)
            await context.services.limits.hit(bucket, context.client_key())
        yield


Query = merge_types(
    "Query",
    (
        WorkspaceQueries,
        LeadQueries,
        MlQueries,
        MlRegistryQueries,
        MlAnalyticsQueries,
        MlExplainQueries,
        JobQueries,
        RealtimeQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        WorkspaceMutations,
        LeadMutations,
        MlMutations,
        MlRegistryMutations,
        JobMutations,
        PerformanceMutations,
    ),
)


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # every error of every transport passes here once: code it, log only the unexpected
        for error in errors:
            rewrite(error)


def build_schema(*, max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 3000) -> Schema:
    # The limits' validation rules are built once: a rule class made per request would make
    # every request miss the validation cache (its key holds the rules).
    limits = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            # factories: a fresh extension per request (the caches themselves are shared)
            FreshLoaders,
            RateLimit,
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            lambda: AddValidationRules(limits),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
        ],
    )


schema = build_schema()
