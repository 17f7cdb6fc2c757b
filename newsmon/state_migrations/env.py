"""Alembic's environment for the shared state database (``newsmon state upgrade``): online
migrations only, each in one transaction (PostgreSQL has transactional DDL)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool

url = context.config.get_main_option("sqlalchemy.url")
assert url, "newsmon.state.upgrade sets sqlalchemy.url"
engine = sa.create_engine(url, poolclass=NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
