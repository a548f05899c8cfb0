"""`dashgraph` command line: serve, seed, worker, simulate, schema, train."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.settings import Settings

if TYPE_CHECKING:
    from ml.features import DataSource
    from ml.train import TrainParams
    from models.db import Database

log = logging.getLogger("dashgraph")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dashgraph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve /graphql (embedded Postgres by default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--simulate",
        type=_positive,
        nargs="?",
        const=2.0,
        metavar="RATE",
        help="also write demo activity, RATE actions per second (default 2)",
    )

    seed = commands.add_parser("seed", help="load deterministic demo data")
    seed.add_argument("--size", choices=["tiny", "small", "medium", "large"], default="small")
    seed.add_argument("--reset", action="store_true", help="empty every table first")

    commands.add_parser("worker", help="run job workers only (scale-out)")

    simulate = commands.add_parser("simulate", help="write demo activity into the database")
    simulate.add_argument("--rate", type=_positive, default=2.0, help="actions per second")
    simulate.add_argument("--duration", type=_positive, help="seconds (default: until stopped)")
    simulate.add_argument("--seed", type=int, help="random seed, to repeat a run")

    schema = commands.add_parser("schema", help="print the SDL, or check schema.graphql")
    schema.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    schema.add_argument("--write", action="store_true", help="rewrite the file")
    schema.add_argument("--path", type=Path, default=Path("schema.graphql"))

    train = commands.add_parser("train", help="train, register and maybe promote a model")
    train.add_argument("--workspace", metavar="SLUG", help="one workspace (default: every one)")
    train.add_argument("--iterations", type=int, default=300)
    train.add_argument("--depth", type=int, default=6)
    train.add_argument("--learning-rate", type=float, default=0.1)
    # seed 003 dataSource: learn from the labelled leads created in [FROM, BEFORE)
    train.add_argument(
        "--created-from", type=_timestamp, metavar="ISO", help="leads created at or after (UTC)"
    )
    train.add_argument(
        "--created-before", type=_timestamp, metavar="ISO", help="leads created before (UTC)"
    )

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    commands_by_name = {
        "serve": _serve,
        "seed": _seed,
        "worker": _worker,
        "simulate": _simulate,
        "schema": _schema,
        "train": _train,
    }
    commands_by_name[args.command](args)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The database URL, starting (and finally stopping) the embedded server if none is set."""
    if not settings.embedded:
        yield settings.url
        return
    from app.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(settings.data_dir)
    print(f"starting embedded PostgreSQL in {server.path} ...", flush=True)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def _prepare(url: str) -> None:
    from models.migrate import upgrade

    upgrade(url)


def _progress_bar() -> tuple[
    contextlib.AbstractContextManager[object], Callable[[str, int, int], None]
]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    tasks: dict[str, object] = {}

    def progress(table: str, done: int, total: int) -> None:
        if table not in tasks:
            tasks[table] = bar.add_task(table, total=total)
        bar.update(tasks[table], completed=done, total=total)  # type: ignore[arg-type]

    return bar, progress


async def _run_seed(url: str, size: str, reset: bool, only_if_empty: bool) -> bool:
    from models import seed as seeding
    from models.db import Database

    db = Database(url, pool_size=2)
    try:
        if only_if_empty and not await seeding.is_empty(db):
            return False
        bar, progress = _progress_bar()
        with bar:
            counts = await seeding.seed(db, size, reset=reset, progress=progress)
        print("seeded: " + ", ".join(f"{t} {n:,}" for t, n in counts.items() if n))
        return True
    finally:
        await db.dispose()


async def _queue_first_models(url: str) -> int:
    """One retrain job per workspace with enough outcomes to learn from; the server's workers
    train, promote, then score. Jobs queued."""
    from ml.registry import request_retrain
    from models.db import Database
    from models.errors import ModelTrainingFailed
    from models.scope import Scope
    from models.workspaces import Role, workspace_admins

    db = Database(url, pool_size=1)
    queued = 0
    try:
        async with db.transaction() as session:
            for workspace, admin_id in await workspace_admins(session):
                assert workspace.id is not None
                scope = Scope(workspace.id, admin_id, Role.ADMIN)
                try:
                    await request_retrain(
                        session, scope, None, reason="first model of the demo data"
                    )
                except ModelTrainingFailed as refused:
                    print(f"{workspace.slug}: no first model ({refused.message})")
                else:
                    queued += 1
        return queued
    finally:
        await db.dispose()


def _print_logins() -> None:
    from models.seed import DEMO_LOGINS, DEMO_PASSWORD

    print(f"demo logins (password: {DEMO_PASSWORD}):")
    for email, role, workspace in DEMO_LOGINS:
        print(f"  {email:<24} {role:<6} {workspace}")


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = Settings()
    with _database(settings) as url:
        _prepare(url)
        if settings.embedded:
            os.environ["DASHGRAPH_EMBEDDED_DATABASE_URL"] = url
            if asyncio.run(_run_seed(url, settings.demo_size, reset=False, only_if_empty=True)):
                print("the database was empty: loaded the demo data")
                queued = asyncio.run(_queue_first_models(url))
                print(f"training each workspace's first model in the background ({queued} jobs)")
            _print_logins()
        if args.simulate:
            # read by each uvicorn worker's lifespan (Settings.simulate_rate): split the rate
            os.environ["DASHGRAPH_SIMULATE_RATE"] = str(args.simulate / max(args.workers, 1))
            print(f"simulating demo activity: {args.simulate:g} actions/s", flush=True)
        print(f"serving http://{args.host}:{args.port}/graphql (GraphiQL in a browser)", flush=True)
        # uvicorn shuts down gracefully, then re-raises the signal it caught; with these
        # handlers in place that becomes a clean exit, so the embedded Postgres is stopped
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_cleanly)
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers if args.workers > 1 else None,
            timeout_graceful_shutdown=15,
            # live snapshots are small JSON frames sent to every subscriber: compressing each
            # per socket cost more CPU than it saved bytes (bench/README.md "Live fan-out")
            ws_per_message_deflate=False,
            log_level="info",
            lifespan="on",
        )


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _seed(args: argparse.Namespace) -> None:
    settings = Settings()
    with _database(settings) as url:
        _prepare(url)
        try:
            asyncio.run(_run_seed(url, args.size, reset=args.reset, only_if_empty=False))
        except Exception as exc:
            from models.errors import DomainError

            if isinstance(exc, DomainError):
                sys.exit(f"dashgraph seed: {exc.message}")
            raise
        _print_logins()


def _worker(args: argparse.Namespace) -> None:
    settings = Settings()

    async def run(url: str) -> None:
        from app.handlers import HANDLERS
        from app.jobs import Worker
        from app.pubsub import PubSub
        from models.db import Database

        db = Database(url, pool_size=settings.worker_concurrency + 2)
        pubsub = PubSub(settings.broadcast_url)
        await pubsub.connect()
        worker = Worker(
            db,
            pubsub,
            HANDLERS,
            concurrency=settings.worker_concurrency,
            lease=timedelta(seconds=settings.job_lease_seconds),
            poll_seconds=settings.job_poll_seconds,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker.start()
        print(f"worker {worker.worker_id} running kinds: {', '.join(HANDLERS) or '(none yet)'}")
        try:
            await stop.wait()
        finally:
            await worker.stop()
            await pubsub.disconnect()
            await db.dispose()

    with _database(settings) as url:
        _prepare(url)
        asyncio.run(run(url))


def _simulate(args: argparse.Namespace) -> None:
    settings = Settings()

    async def run(url: str) -> None:
        from app.pubsub import PubSub
        from app.simulate import Simulator
        from models.db import Database

        db = Database(url, pool_size=2)
        pubsub = PubSub(settings.broadcast_url)
        await pubsub.connect()
        simulator = Simulator(db, pubsub, rate=args.rate, seed=args.seed)
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await simulator.run(args.duration)
        except asyncio.CancelledError:
            pass  # stopped by a signal: the simulator has ended its calls
        finally:
            await pubsub.disconnect()
            await db.dispose()
        done = ", ".join(f"{n} {name}" for name, n in sorted(simulator.done.items()))
        print(f"simulated: {done or 'nothing'}")

    with _database(settings) as url:
        _prepare(url)
        if settings.broadcast_url.startswith("memory://"):
            print(
                "note: DASHGRAPH_BROADCAST_URL is memory://, so only the database changes; a "
                "`dashgraph serve` in another process shows it live when both processes use "
                "DASHGRAPH_BROADCAST_URL=redis://...",
                flush=True,
            )
        print(f"simulating demo activity: {args.rate:g} actions/s (Ctrl-C stops)", flush=True)
        asyncio.run(run(url))


def _timestamp(text: str) -> datetime:
    """An ISO 8601 date or time for a flag (argparse names the flag of a bad one)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None


def _train(args: argparse.Namespace) -> None:
    from ml.features import DataSource
    from ml.train import TrainParams
    from models.errors import DomainError

    settings = Settings()
    params = TrainParams(
        iterations=args.iterations, depth=args.depth, learning_rate=args.learning_rate
    )
    source = DataSource.of(args.created_from, args.created_before)
    try:
        params.validate()  # before starting a database for nothing
        source.validate()
        with _database(settings) as url:
            _prepare(url)
            failures = asyncio.run(_run_train(url, args.workspace, params, source))
    except DomainError as exc:
        fields = exc.details.get("fields") or {}
        problems = "".join(f"\n  {name}: {problem}" for name, problem in fields.items())
        sys.exit(f"dashgraph train: {exc.message}{problems}")
    if failures:
        sys.exit(f"dashgraph train: {failures} workspace(s) could not be trained")


async def _run_train(url: str, slug: str | None, params: TrainParams, source: DataSource) -> int:
    """Train each workspace in turn; returns how many were refused."""
    from models.db import Database
    from models.errors import DomainError, NotFound
    from models.workspaces import workspaces

    db = Database(url, pool_size=2)
    failures = 0
    try:
        async with db.session() as session:
            found = await workspaces(session, slug)
        if not found:
            raise NotFound(f"no workspace {slug!r}" if slug else "no workspaces: seed first")
        for workspace in found:
            try:
                result = await _train_workspace(db, workspace.id, workspace.slug, params, source)
            except DomainError as exc:
                failures += 1
                print(f"{workspace.slug}: {exc.code}: {exc.message}")
                continue
            outcome = "promoted to champion" if result["promoted"] else "kept as candidate"
            print(
                f"{workspace.slug}: {result['name']} v{result['version']}, "
                f"test AUC {result['metrics']['auc']:.3f}, {outcome}"
            )
    finally:
        await db.dispose()
    return failures


async def _train_workspace(
    db: Database, workspace_id: int | None, slug: str, params: TrainParams, source: DataSource
) -> dict[str, Any]:
    """One workspace, like the `ml.retrain` job, with a progress bar instead of a job row."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from app.ml_jobs import train_and_register, training_fraction
    from ml.train import TrainingProgress

    assert workspace_id is not None
    bar = Progress(
        TextColumn("{task.description:<28}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn()
    )
    task = bar.add_task(slug, total=1.0)

    async def stage(fraction: float, name: str) -> None:
        bar.update(task, completed=fraction, description=f"{slug}: {name}")

    def iteration(report: TrainingProgress) -> bool:
        bar.update(task, completed=training_fraction(report))
        return True

    with bar:
        result = await train_and_register(
            db,
            workspace_id,
            params,
            stage=stage,
            iteration=iteration,
            reason="dashgraph train",
            source=source,
        )
        bar.update(task, completed=1.0, description=f"{slug}: done")
    assert result is not None  # `iteration` never stops the training
    return result


def _schema(args: argparse.Namespace) -> None:
    from resolvers.schema import schema

    sdl = schema.as_str() + "\n"
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != sdl:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    sdl.splitlines(keepends=True),
                    str(args.path),
                    "code",
                )
            )
            sys.exit(f"{args.path} is out of date: run `dashgraph schema --write`")
        print(f"{args.path} is up to date")
    elif args.write:
        args.path.write_text(sdl)
        print(f"wrote {args.path}")
    else:
        sys.stdout.write(sdl)


if __name__ == "__main__":
    main()
