"""Login, tokens, viewer, workspace selection and tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from app.auth import issue_token
from tests.client import LOGIN, Persona
from tests.conftest import settings_for

VIEWER = """
{ viewer { id email fullName memberships { role workspace { id name slug } } } }
"""
WORKSPACE = """
query W($id: ID) { workspace(id: $id) { id name viewerRole } }
"""
USERS = """
query U($id: ID) { workspace(id: $id) { users(first: 100) { email role } } }
"""


def test_login_returns_a_token_and_the_viewer(anonymous: Persona) -> None:
    data = anonymous.execute(LOGIN, email="admin@acme.example", password="demo")
    assert data["login"]["viewer"]["email"] == "admin@acme.example"
    claims = jwt.decode(data["login"]["token"], options={"verify_signature": False})
    assert claims["sub"] == data["login"]["viewer"]["id"]


def test_login_is_case_insensitive_on_email(anonymous: Persona) -> None:
    data = anonymous.execute(LOGIN, email=" Admin@ACME.example", password="demo")
    assert data["login"]["viewer"]["email"] == "admin@acme.example"


def test_wrong_password_and_unknown_email_look_the_same(anonymous: Persona) -> None:
    wrong = anonymous.error(LOGIN, email="admin@acme.example", password="nope")
    unknown = anonymous.error(LOGIN, email="nobody@acme.example", password="demo")
    assert wrong["extensions"]["code"] == unknown["extensions"]["code"] == "UNAUTHENTICATED"
    assert wrong["message"] == unknown["message"]


def test_viewer_lists_memberships(admin_client: Persona) -> None:
    viewer = admin_client.execute(VIEWER)["viewer"]
    assert viewer["email"] == "admin@acme.example"
    assert [(m["role"], m["workspace"]["name"]) for m in viewer["memberships"]] == [
        ("ADMIN", "Acme Realty")
    ]


def test_no_token_is_unauthenticated(anonymous: Persona) -> None:
    assert anonymous.error(VIEWER)["extensions"]["code"] == "UNAUTHENTICATED"


def test_garbage_token_is_unauthenticated(server) -> None:
    for header in ("Bearer garbage", "Basic abc", "Bearer", "Bearer a.b.c"):
        persona = Persona(server.url, None, {"Authorization": header})
        assert persona.error(VIEWER)["extensions"]["code"] == "UNAUTHENTICATED", header


def test_token_signed_with_another_key_is_rejected(server, database_url, sql_session) -> None:
    user_id = sql_session("SELECT id FROM app_user WHERE email = 'admin@acme.example'")[0]["id"]
    forged = jwt.encode(
        {
            "sub": str(user_id),
            "iat": datetime.now(UTC),
            "exp": datetime.now(UTC) + timedelta(hours=1),
            "iss": "dashgraph",
        },
        "not-the-server-secret-at-all-0123456789",
        algorithm="HS256",
    )
    error = Persona(server.url, forged).error(VIEWER)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


def test_expired_token_is_unauthenticated(server, database_url, sql_session) -> None:
    user_id = sql_session("SELECT id FROM app_user WHERE email = 'admin@acme.example'")[0]["id"]
    settings = settings_for(database_url)
    expired = issue_token(settings, user_id, now=datetime.now(UTC) - timedelta(days=2))
    error = Persona(server.url, expired).error(VIEWER)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in error["message"].lower()


def test_workspace_defaults_to_first_and_header_or_argument_select(
    admin_client: Persona, workspace_ids: dict[str, str]
) -> None:
    acme = workspace_ids["acme"]
    assert admin_client.execute(WORKSPACE)["workspace"] == {
        "id": acme,
        "name": "Acme Realty",
        "viewerRole": "ADMIN",
    }
    assert admin_client.execute(WORKSPACE, id=acme)["workspace"]["id"] == acme
    by_header = admin_client.with_headers(**{"X-Workspace-Id": acme})
    assert by_header.execute(WORKSPACE)["workspace"]["id"] == acme


def test_foreign_workspace_is_not_found_by_argument_or_header(
    admin_client: Persona, workspace_ids: dict[str, str]
) -> None:
    globex = workspace_ids["globex"]
    error = admin_client.error(WORKSPACE, id=globex)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "Globex" not in str(error)
    by_header = admin_client.with_headers(**{"X-Workspace-Id": globex})
    assert by_header.error(WORKSPACE)["extensions"]["code"] == "NOT_FOUND"
    # a workspace that does not exist answers exactly the same
    assert admin_client.error(WORKSPACE, id="999999")["message"] == error["message"]


def test_malformed_workspace_id_is_bad_input(admin_client: Persona) -> None:
    error = admin_client.error(WORKSPACE, id="acme")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "workspaceId" in error["extensions"]["details"]["fields"]


def test_users_is_admin_only_and_scoped(
    admin_client: Persona,
    user_client: Persona,
    agent_client: Persona,
    globex_client: Persona,
    sql_session,
) -> None:
    emails = {u["email"] for u in admin_client.execute(USERS)["workspace"]["users"]}
    members = sql_session(
        "SELECT u.email FROM app_user u JOIN membership m ON m.user_id = u.id "
        "JOIN workspace w ON w.id = m.workspace_id WHERE w.slug = 'acme'"
        " ORDER BY u.full_name, u.id LIMIT 100"
    )
    assert emails == {r["email"] for r in members}
    assert "admin@globex.example" not in emails
    assert "admin@globex.example" in {
        u["email"] for u in globex_client.execute(USERS)["workspace"]["users"]
    }
    for persona in (user_client, agent_client):
        assert persona.error(USERS)["extensions"]["code"] == "FORBIDDEN"
