"""Typed settings, read once from `DASHGRAPH_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dashgraph-embedded-dev-secret-not-for-production"
DEV_SECRET_KEY = "dashgraph-embedded-dev-key-not-for-production"
PLACEHOLDERS = {"", "secret", "changeme", "change-me", DEV_JWT_SECRET, DEV_SECRET_KEY}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHGRAPH_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset: an embedded PostgreSQL under data_dir"
    )
    # set by `dashgraph serve` for its own uvicorn workers; not for users
    embedded_database_url: str | None = None
    broadcast_url: str = "memory://"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_ttl_seconds: int = 12 * 3600
    secret_key: str = DEV_SECRET_KEY
    data_dir: Path = Path(".dashgraph")
    demo_size: str = "small"
    db_pool_size: int = 10

    # GraphQL guards
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 3000

    # rate limits per viewer (seed 000: dashboard data 200/min, custom dashboards 100/min);
    # login per client address and per email, against password guessing
    rate_limit_query: str = "200/minute"
    rate_limit_mutation: str = "100/minute"
    rate_limit_login: str = "10/minute"
    rate_limit_subscription: str = "500/minute"  # seed 000: real-time updates
    # seed 003: individual scoring, a query of only `lead` / `predictConversion` (instead of
    # the query limit)
    rate_limit_scoring: str = "500/minute"
    rate_limit_batch_scoring: str = "50/minute"  # seed 003: scoreLeads, on top of mutations

    # live
    live_tick_seconds: float = 1.0
    # analytics results live until the workspace's next change event, and at most this long
    # (their windows end "now" and slide without writes)
    analytics_cache_seconds: float = 30.0
    # dollars per staff hour: workflowPerformance's cost savings = hours saved x this
    workflow_hourly_rate: float = Field(default=40.0, ge=0)
    max_subscriptions_per_connection: int = 50
    # demo activity written by each server process, actions per second (0: none);
    # `dashgraph serve --simulate` sets it
    simulate_rate: float = Field(default=0.0, ge=0)

    # jobs
    run_workers: bool = True
    worker_concurrency: int = 2
    job_lease_seconds: float = 30.0
    job_poll_seconds: float = 1.0
    # the ML check (ml/watch.py) runs this often (0: never): monitored deployments roll back on
    # an alert; champions are retrained when the ML config's training.autoRetrain says so
    ml_check_seconds: float = Field(default=600.0, ge=0)

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def url(self) -> str:
        url = self.database_url or self.embedded_database_url
        if url is None:
            raise RuntimeError("no database: the embedded PostgreSQL was not started")
        return url

    @model_validator(mode="after")
    def _secrets_are_real_outside_dev(self) -> Settings:
        # The embedded mode is a laptop demo; anything pointed at a real database must not sign
        # tokens with a key that is printed in this repository.
        if self.database_url is not None:
            for name in ("jwt_secret", "secret_key"):
                value = getattr(self, name)
                if value in PLACEHOLDERS or len(value) < 32:
                    raise ValueError(
                        f"DASHGRAPH_{name.upper()} must be set to a real secret (32+ characters) "
                        "when DASHGRAPH_DATABASE_URL is set"
                    )
        return self
