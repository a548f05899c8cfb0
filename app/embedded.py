"""Embedded PostgreSQL (pgserver) for `dashgraph serve` without DASHGRAPH_DATABASE_URL."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server living in `<data_dir>/pg`; reused by the next start on the same dir."""

    def __init__(self, data_dir: Path) -> None:
        self.path = (data_dir / "pg").resolve()
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs complains about XDG_RUNTIME_DIR
            import pgserver

            self.path.mkdir(parents=True, exist_ok=True)
            # cleanup_mode="stop": stop the postmaster on exit but keep the data for next time
            self._server = pgserver.get_server(self.path, cleanup_mode="stop")
            if "1 row" not in self._server.psql(
                "SELECT 1 FROM pg_database WHERE datname = 'dashgraph';"
            ):
                self._server.psql("CREATE DATABASE dashgraph;")
        uri = str(self._server.get_uri(database="dashgraph"))
        log.info("embedded PostgreSQL at %s", self.path)
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
