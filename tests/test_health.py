"""/healthz answers without I/O; /readyz checks the database (migrations applied), Redis and a worker's
heartbeat, for real: 200, or 503 naming what fails. Both answer probes that come by IP, over plain HTTP."""

from __future__ import annotations

import socket

import pytest
from django.test import Client
from rq import Queue, Worker

from portal import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(rq_queue):  # type: ignore[no-untyped-def]
    """A provisioning worker registered in the test Redis, with a fresh heartbeat (as `rqworker` does)."""
    w = Worker([Queue("provisioning", connection=rq_queue.connection)], connection=rq_queue.connection)
    w.register_birth()
    w.heartbeat()
    yield w
    w.register_death()


def _probe(path: str) -> Client:
    # By IP, over HTTP, with the production redirect to HTTPS on: the probe is still answered.
    return Client(HTTP_HOST="10.1.2.3:8000").get(path)


def test_healthz_answers_without_io(django_assert_num_queries, settings):
    settings.SECURE_SSL_REDIRECT = True
    with django_assert_num_queries(0):
        response = _probe("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_readyz_is_ready_with_the_database_migrated_redis_and_a_worker(worker, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = _probe("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {
        "database": {"ok": True},
        "redis": {"ok": True},
        "worker": {"ok": True},
    }


def test_readyz_names_a_missing_worker(rq_queue):
    for w in Worker.all(connection=rq_queue.connection):
        w.register_death()
    response = _probe("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]
    assert "heartbeat" in response.json()["checks"]["worker"]["problem"]


def test_readyz_names_a_stale_heartbeat(worker, settings):
    settings.READY_WORKER_SECONDS = 0
    assert _probe("/readyz").json()["failing"] == ["worker"]


def test_readyz_names_redis_down(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    settings.RQ_QUEUES = {
        "provisioning": {**settings.RQ_QUEUES["provisioning"], "URL": f"redis://127.0.0.1:{closed}/0"}
    }
    response = _probe("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis", "worker"]
    assert response.json()["checks"]["database"] == {"ok": True}
    assert "127.0.0.1" not in response.content.decode()  # no driver's error text


def test_only_get_is_answered_as_a_probe():
    assert Client().post("/healthz").status_code != 200
    assert health.PROBES.keys() == {"/healthz", "/readyz", "/metrics"}
