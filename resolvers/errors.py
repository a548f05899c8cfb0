"""The one place errors become GraphQL: domain errors get their code, the rest are masked."""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError

from models.errors import DomainError

log = logging.getLogger("dashgraph.errors")

_SUBSCRIPTION_AS_QUERY = "Cannot return null for non-nullable field Subscription."
_SUBSCRIPTION_HELP = (
    "Subscriptions need a WebSocket (graphql-transport-ws or graphql-ws), or an HTTP request "
    "with `Accept: text/event-stream` or `Accept: multipart/mixed;subscriptionSpec=1.0`"
)
_VARIABLE = re.compile(r"^Variable '\$(\w+)'")
_ARGUMENT = re.compile(r"[Aa]rgument '(\w+)'")
_FIELD_OF_INPUT = re.compile(r"at (\.[\w.\[\]]+)")


def classify(error: GraphQLError) -> tuple[str, str, dict[str, Any]]:
    """(code, public message, details) for any error graphql-core or a resolver produced."""
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code, original.message, original.details
    if original is not None and str(original).startswith(_SUBSCRIPTION_AS_QUERY):
        # a subscription POSTed as a plain request runs its resolver like a query's
        return "BAD_USER_INPUT", _SUBSCRIPTION_HELP, {}
    if original is not None and not isinstance(original, GraphQLError):
        return "INTERNAL", "Internal server error", {}
    message = error.message
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED", message, {}
    if (m := _VARIABLE.match(message)) is not None:
        # bad variable values (unknown enum, wrong type, missing field) are the client's input
        inner = _FIELD_OF_INPUT.search(message)
        path = m.group(1) + (inner.group(1) if inner else "")
        return "BAD_USER_INPUT", message, {"fields": {path: message}}
    if "enum" in message.lower() and ("cannot represent" in message or "does not exist" in message):
        m = _ARGUMENT.search(message)
        return "BAD_USER_INPUT", message, {"fields": {m.group(1) if m else "value": message}}
    return "GRAPHQL_VALIDATION_FAILED", message, {}


def rewrite(error: GraphQLError) -> None:
    """Give `error` its `extensions.code` (and `details`) in place; mask unexpected errors.

    In place, because strawberry hands the same objects to every transport (HTTP, WebSocket)
    after `Schema.process_errors`, which calls this for parse, validation and execution errors.
    """
    if error.extensions and "code" in error.extensions:
        return  # already done (validation errors are cached and come back)
    code, message, details = classify(error)
    if code == "INTERNAL":
        log.error("unexpected error at %s", error.path, exc_info=error.original_error)
    error.message = message
    error.extensions = {"code": code, **({"details": details} if details else {})}
    if code == "INTERNAL":
        error.original_error = None
