"""The production shape in docker-compose.yml and the Dockerfile: Redis demands a password that every
process uses, the portal's containers run unprivileged, and each container holds only its own secrets.

The Redis test starts a real ``redis-server`` on a free loopback port with the arguments compose gives it.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PORTAL = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("azureml-portal")}
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def test_compose_runs_the_portals_processes() -> None:
    assert set(PORTAL) == {"migrate", "web", "worker", "scheduler"}


def test_redis_requires_a_password_from_a_required_variable() -> None:
    command = SERVICES["redis"]["command"]
    password = command[command.index("--requirepass") + 1]
    assert REQUIRED.fullmatch(password) and REQUIRED.fullmatch(password).group(1) == "REDIS_PASSWORD"  # type: ignore[union-attr]
    healthcheck = " ".join(SERVICES["redis"]["healthcheck"]["test"])
    assert "REDISCLI_AUTH" in healthcheck and "PONG" in healthcheck


def test_every_redis_url_carries_the_password() -> None:
    for name in PORTAL:
        url = _env(name)["REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD:?"), (name, url)
        assert url.endswith("@redis:6379/0"), (name, url)


def test_the_portals_containers_do_not_run_as_root() -> None:
    for name, service in PORTAL.items():
        user = str(service.get("user", ""))
        assert user and user.split(":")[0] not in {"0", "root"}, name
    users = [
        line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")
    ]
    assert users and users[-1] not in {"0", "root"}


def test_each_container_gets_only_its_secrets() -> None:
    web, worker = _env("web"), _env("worker")
    assert "ENTRA_CLIENT_SECRET" in web
    assert not {"AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AUDIT_ANCHOR_KEY"} & set(web)
    assert {"AZURE_CLIENT_SECRET", "AUDIT_ANCHOR_KEY"} <= set(worker)
    assert not {"ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_ID"} & set(worker)
    assert worker["AUTH_MODE"] == "none"
    for name in ("scheduler", "migrate"):
        env = _env(name)
        assert not {"ENTRA_CLIENT_SECRET", "AZURE_CLIENT_SECRET", "AUDIT_ANCHOR_KEY"} & set(env), name
        assert env["AUTH_MODE"] == "none", name
    for service in PORTAL.values():
        assert "env_file" not in service  # an env file would hand every secret to every container


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """redis-server with compose's arguments (the password filled in), on a free loopback port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    password = "test-" + tmp_path.name
    program, *arguments = (REQUIRED.sub(password, arg) for arg in SERVICES["redis"]["command"])
    assert program == "redis-server"
    port = _free_port()
    server = subprocess.Popen(
        [
            program,
            *arguments,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port, password
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_composes_redis_refuses_a_client_without_the_password(compose_redis: tuple[int, str]) -> None:
    port, password = compose_redis
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert raw.recv(200).startswith(b"-NOAUTH Authentication required")
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
        redis.Redis(host="127.0.0.1", port=port).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, password="wrong").ping()
    # The URL every portal process gets, with the password filled in.
    url = REQUIRED.sub(password, _env("worker")["REDIS_URL"]).replace("@redis:6379", f"@127.0.0.1:{port}")
    assert redis.Redis.from_url(url).ping() is True


def test_composes_redis_healthcheck_needs_the_password(compose_redis: tuple[int, str]) -> None:
    port, password = compose_redis
    check = (
        SERVICES["redis"]["healthcheck"]["test"][1]
        .replace("$$", "$")
        .replace("redis-cli", f"redis-cli -p {port}")
    )

    def run(env: dict[str, str]) -> int:
        return subprocess.run(
            ["sh", "-c", check], env={"PATH": "/usr/bin:/bin", **env}, timeout=10
        ).returncode

    assert run({"REDIS_PASSWORD": password}) == 0
    assert run({"REDIS_PASSWORD": "wrong"}) != 0
    assert run({}) != 0


def test_the_web_is_ready_only_when_readyz_says_so() -> None:
    check = SERVICES["web"]["healthcheck"]["test"]
    assert "http://127.0.0.1:8000/readyz" in " ".join(check)
