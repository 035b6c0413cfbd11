"""Shared fixtures: named users, the tutorial's policy, and a Redis the tests can reach.

Redis: with ``REDIS_URL`` set (CI sets it to the machine's Redis) tests use that server; otherwise
an in-process Redis-protocol server (fakeredis over TCP) is started, so the real redis-py and RQ
code paths run either way.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests import factories

pytest_plugins = ["tests.standin_plugin", "tests.worker_plugin"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """The test database lets Django empty the audit table between transactional tests.

    PostgreSQL refuses TRUNCATE on it (migration 0007) unless the database sets
    ``portal.allow_audit_truncate``; only this throwaway database does.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock():
            name = connection.settings_dict["NAME"]
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER DATABASE \"{name}\" SET portal.allow_audit_truncate = 'on'")
                cursor.execute("SET portal.allow_audit_truncate = 'on'")
    return django_db_setup


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    server = None
    if not url:
        from fakeredis import TcpFakeServer

        port = _free_port()
        server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"redis://127.0.0.1:{port}/0"
    yield url
    if server is not None:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:  # type: ignore[no-untyped-def]
    # The production hasher takes ~0.3 s per user on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _rq_points_at_test_redis(redis_url: str) -> None:
    for queue in settings.RQ_QUEUES.values():
        queue["URL"] = redis_url


@pytest.fixture(autouse=True)
def _arm_write_budget_full(redis_url: str) -> None:
    """Every test starts with full ARM read and write budgets (the session's clients share them in Redis)."""
    import redis

    from provisioning.azure.rate_limit import KEY_PREFIX, READ_KEY_PREFIX

    conn = redis.Redis.from_url(redis_url)
    try:
        keys = [key for prefix in (KEY_PREFIX, READ_KEY_PREFIX) for key in conn.scan_iter(f"{prefix}*")]
        if keys:
            conn.delete(*keys)
    finally:
        conn.close()


@pytest.fixture
def rq_queue(redis_url: str):  # type: ignore[no-untyped-def]
    """The provisioning queue, emptied before the test."""
    import django_rq

    queue = django_rq.get_queue("provisioning")
    queue.connection.flushdb()
    return queue


@pytest.fixture
def policy(db: None) -> None:
    factories.allow_tutorial_policy()


@pytest.fixture
def alice(db: None):  # type: ignore[no-untyped-def]
    """A team lead: owner of the requests in most tests."""
    return factories.team_lead("alice")


@pytest.fixture
def bob(db: None):  # type: ignore[no-untyped-def]
    """An admin: the approver."""
    return factories.admin("bob")


@pytest.fixture
def charlie(db: None):  # type: ignore[no-untyped-def]
    """Another team's team lead: the outsider."""
    return factories.team_lead("charlie")


@pytest.fixture
def dana(db: None):  # type: ignore[no-untyped-def]
    """A data scientist."""
    return factories.data_scientist("dana")


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Audit export files go to the test's own directory, never var/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "exports")},
        },
    }


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty cache (the capacity page keeps figures in it)."""
    from django.core.cache import cache

    cache.clear()
