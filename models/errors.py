"""Domain errors with their GraphQL codes: raised at any layer, mapped once (resolvers/)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class NotFound(DomainError):
    code = "NOT_FOUND"


class BadUserInput(DomainError):
    """Invalid arguments; `details.fields` maps each bad field to what is wrong with it."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, fields: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message, **({"fields": fields} if fields else {}), **details)


class RateLimited(DomainError):
    code = "RATE_LIMITED"


class DashboardNotFound(DomainError):
    code = "DASHBOARD_NOT_FOUND"


class ExportLimitExceeded(DomainError):
    code = "EXPORT_LIMIT_EXCEEDED"


class ModelNotFound(DomainError):
    code = "MODEL_NOT_FOUND"


class ModelTrainingFailed(DomainError):
    code = "MODEL_TRAINING_FAILED"


class PredictionTimeout(DomainError):
    code = "PREDICTION_TIMEOUT"


class JobNotFound(DomainError):
    code = "JOB_NOT_FOUND"


class Validator:
    """Collects every bad field of one input, so a client sees all problems at once."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def check(self, ok: bool, field: str, problem: str) -> None:
        if not ok and field not in self.fields:
            self.fields[field] = problem

    def raise_if_any(self, message: str = "Invalid input") -> None:
        if self.fields:
            raise BadUserInput(message, fields=self.fields)
