"""/healthz answers without I/O; /readyz checks the database (migrations applied), Redis and a worker's
heartbeat, for real: 200, or 503 naming what fails. Both answer probes that come by IP, over plain HTTP."""

from __future__ import annotations

import shutil
import socket
import subprocess  # nosec B404 # starts the machine's redis-server
import time
from pathlib import Path

import pytest
import redis
from django.test import Client
from rq import Queue, Worker

from portal import health
from provisioning.management.embedded_redis import free_port

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


def _redis_server(port: int, data: Path) -> subprocess.Popen[bytes]:
    """A real redis-server on 127.0.0.1 keeping its data in ``data`` (append-only), as a managed Redis does."""
    server = subprocess.Popen(  # the machine's redis-server, fixed arguments
        [
            *(shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(port)),
            *("--dir", str(data), "--appendonly", "yes", "--appendfsync", "always", "--save", ""),
        ],
        stdout=subprocess.DEVNULL,
    )
    conn = redis.Redis(port=port, socket_connect_timeout=0.2)
    for _ in range(100):
        try:
            conn.ping()
            return server
        except redis.ConnectionError:
            time.sleep(0.05)
    server.kill()
    raise AssertionError("redis-server did not start")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the machine's redis-server")
def test_readyz_is_503_while_redis_is_stopped_and_200_when_it_is_back(settings, tmp_path: Path) -> None:
    port = free_port()
    settings.RQ_QUEUES = {
        "provisioning": {**settings.RQ_QUEUES["provisioning"], "URL": f"redis://127.0.0.1:{port}/0"}
    }
    server = _redis_server(port, tmp_path)
    try:
        conn = redis.Redis(port=port)
        worker = Worker([Queue("provisioning", connection=conn)], connection=conn)
        worker.register_birth()
        worker.heartbeat()
        assert _probe("/readyz").status_code == 200

        server.terminate()  # SIGTERM: Redis writes its data and stops
        server.wait(10)
        stopped = _probe("/readyz")
        assert stopped.status_code == 503
        assert stopped.json()["failing"] == ["redis", "worker"]

        server = _redis_server(port, tmp_path)  # back on the same port, with the worker's heartbeat
        back = _probe("/readyz")
        assert back.status_code == 200, back.json()
    finally:
        server.kill()
        server.wait(10)
