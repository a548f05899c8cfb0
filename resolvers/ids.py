"""Parsing ids that clients send: bad ones are BAD_USER_INPUT naming the field."""

from __future__ import annotations

from models.errors import BadUserInput


def parse_id(value: str | int, field: str) -> int:
    try:
        parsed = int(value)
    except (TypeError, ValueError):
        raise BadUserInput(f"Malformed id in `{field}`", fields={field: "not an id"}) from None
    if not 0 < parsed < 2**63:
        raise BadUserInput(f"Malformed id in `{field}`", fields={field: "not an id"})
    return parsed
