"""Integration configs (WooCommerce, Shopify, domains, feature flags); secrets stay encrypted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.db import row_id, stamped, tenant_key


class IntegrationConfig(SQLModel, table=True):
    __tablename__ = "integration_config"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    kind: str = Field(max_length=24)
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    # AES-256-GCM ciphertext (nonce prepended) of the JSON of the secrets; never in clear
    secrets_encrypted: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    updated_at: datetime = stamped()

    __table_args__ = (sa.UniqueConstraint("workspace_id", "kind"),)
