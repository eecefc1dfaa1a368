"""A libpq connection string for the database a test runs on, password included (a stock
PostgreSQL asks for one over TCP): for tests that open a second connection of their own."""

from __future__ import annotations

from psycopg.conninfo import make_conninfo


def conninfo(db: dict) -> str:
    return make_conninfo(
        host=db["HOST"] or "127.0.0.1",
        port=str(db["PORT"] or 5432),
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )
