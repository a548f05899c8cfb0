"""JWT issue/verify (HS256) and password login; the viewer's roles come from the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt

from app.settings import Settings
from models.db import Database, utcnow
from models.errors import Unauthenticated
from models.workspaces import User, hash_password, user_by_email, verify_password


@cache
def _dummy_hash() -> str:
    # verifying against a real hash when the email is unknown keeps response times from
    # telling an attacker which emails exist
    return hash_password("not-anyone's-password")


def issue_token(settings: Settings, user_id: int, *, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": issued,
        "exp": issued + timedelta(seconds=settings.jwt_ttl_seconds),
        "iss": "dashgraph",
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def user_id_from_token(settings: Settings, token: str) -> int:
    return int(verified_claims(settings, token)["sub"])


def token_expires_at(settings: Settings, token: str) -> datetime:
    return datetime.fromtimestamp(verified_claims(settings, token)["exp"], UTC)


def verified_claims(settings: Settings, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            issuer="dashgraph",
            options={"require": ["sub", "exp", "iat"]},
        )
        int(claims["sub"])
        return claims
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("Token has expired") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise Unauthenticated("Invalid token") from exc


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be `Bearer <token>`")
    return token.strip()


async def login(db: Database, settings: Settings, email: str, password: str) -> tuple[str, User]:
    async with db.transaction() as session:
        user = await user_by_email(session, email)
        known = user is not None and user.is_active
        # argon2 costs ~50 ms of CPU on purpose: keep it off the event loop
        ok = await asyncio.to_thread(
            verify_password, user.password_hash if user and known else _dummy_hash(), password
        )
        if not (known and ok) or user is None:
            raise Unauthenticated("Wrong email or password")
        user.last_login_at = utcnow()
    assert user.id is not None
    return issue_token(settings, user.id), user
