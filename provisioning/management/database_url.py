"""The ``DATABASE_URL`` of the database this process uses now (a test or benchmark database included),
for the processes it starts: gunicorn in ``bench_web``, RQ workers in the tests."""

from __future__ import annotations

from django.db import connection


def current_database_url() -> str:
    """``DATABASE_URL`` naming the default connection's database as it is now."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
