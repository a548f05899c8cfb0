"""schema.graphql is the exported SDL: it must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from resolvers.schema import schema

ROOT = Path(__file__).resolve().parent.parent


def test_checked_in_sdl_matches_the_code() -> None:
    assert (ROOT / "schema.graphql").read_text() == schema.as_str() + "\n", (
        "schema.graphql is stale: run `dashgraph schema --write`"
    )


def test_schema_check_command_reports_drift(tmp_path: Path) -> None:
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { stale: Int }\n")
    cmd = [sys.executable, "-m", "app.cli", "schema", "--check", "--path"]
    assert subprocess.run([*cmd, str(stale)], cwd=ROOT, capture_output=True).returncode == 1
    fresh = subprocess.run([*cmd, str(ROOT / "schema.graphql")], cwd=ROOT, capture_output=True)
    assert fresh.returncode == 0, fresh.stderr


def test_contract_names_are_in_the_sdl() -> None:
    sdl = schema.as_str()
    for name in (
        "login(email: String!, password: String!): LoginPayload!",
        "viewer: Viewer!",
        "workspace(id: ID = null): Workspace!",
        "totalCount: Int!",
        "enum JobStatus",
        "enum Role",
        "createLead(",
        "updateLead(",
        "recordLeadEvent(",
        "job(id: ID!",
    ):
        assert name in sdl, name
