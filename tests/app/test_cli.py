"""`dashgraph serve` as a user runs it: embedded Postgres, demo data, SIGTERM, restart reuses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets

from tests.client import LOGIN
from tests.conftest import free_port


def start_serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHGRAPH_")}
    # `small` is the default demo: the smallest size the first model can be trained on
    env |= {"DASHGRAPH_DATA_DIR": str(data_dir), "DASHGRAPH_DEMO_SIZE": "small"}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_serving(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.post(url, json={"query": "{ __typename }"}).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("dashgraph serve did not answer")


FIRST_MODEL = """
{ models { version status }
  workspace { leads(first: 1, sort: {field: SCORE}) { edges { node { score {
    value modelVersion } } } } } }
"""


def wait_for_first_scores(url: str, token: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        data = httpx.post(url, json={"query": FIRST_MODEL}, headers=headers).json()["data"]
        node = data["workspace"]["leads"]["edges"][0]["node"]
        if node["score"] is not None:
            assert [m["status"] for m in data["models"]] == ["ACTIVE"]
            return dict(node["score"])
        time.sleep(0.5)
    raise AssertionError("no model was trained and no lead scored after the first serve")


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_serve_embedded_then_restart_reuses_data(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    first = start_serve(tmp_path, port)
    try:
        wait_until_serving(first, url)
        login = {"query": LOGIN, "variables": {"email": "admin@acme.example", "password": "demo"}}
        token = httpx.post(url, json=login).json()["data"]["login"]["token"]
        page = httpx.get(url, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        # the first serve trains a model in the background, promotes it and scores the leads
        scored = wait_for_first_scores(url, token)
        assert 1 <= scored["value"] <= 99 and scored["modelVersion"] == "1"
    finally:
        output = stop(first)
    assert "loaded the demo data" in output and "admin@acme.example" in output
    pg = tmp_path / "pg"
    assert not (pg / "postmaster.pid").exists(), "embedded Postgres still running"

    second = start_serve(tmp_path, port)
    try:
        wait_until_serving(second, url)
        login = {"query": LOGIN, "variables": {"email": "user@acme.example", "password": "demo"}}
        token = httpx.post(url, json=login).json()["data"]["login"]["token"]
        # a live subscriber is told to reconnect when the server stops
        close_code = asyncio.run(subscribe_then_terminate(second, url, token))
    finally:
        output = stop(second)
    assert "loaded the demo data" not in output
    # going away (1001), said before uvicorn's own shutdown would say 1012
    assert close_code == 1001, close_code


async def subscribe_then_terminate(
    process: subprocess.Popen[str], url: str, token: str
) -> int | None:
    ws_url = url.replace("http://", "ws://")
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        query = "subscription { liveMetrics { totalLeads } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "next":
            pass
        process.send_signal(signal.SIGTERM)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


def run_train(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHGRAPH_")}
    env |= {
        "DASHGRAPH_DATABASE_URL": database_url,
        "DASHGRAPH_JWT_SECRET": "test-jwt-secret-0123456789abcdef",
        "DASHGRAPH_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "train", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_train_refuses_bad_parameters_naming_them(database_url: str) -> None:
    done = run_train(database_url, "--depth", "50", "--learning-rate", "0")
    assert done.returncode == 1
    assert "depth: between 1 and 10" in done.stderr
    assert "learningRate" in done.stderr


def test_train_refuses_a_workspace_with_too_few_outcomes(database_url: str) -> None:
    # the session database holds the `tiny` demo data: far below 1,000 labelled leads
    done = run_train(database_url, "--workspace", "acme", "--iterations", "20")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "acme: MODEL_TRAINING_FAILED" in done.stdout
    assert "could not be trained" in done.stderr
    missing = run_train(database_url, "--workspace", "no-such-place")
    assert missing.returncode == 1 and "no workspace 'no-such-place'" in missing.stderr
