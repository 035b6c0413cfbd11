"""Web servers log request lines without query strings: Entra ID's answer carries the code and state there."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CALLBACK = "/accounts/callback/?code=0.AUTHCODE-not-for-logs&state=STATE-not-for-logs"


def test_the_development_servers_log_drops_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    server = logging.getLogger("django.server")
    server.addHandler(caplog.handler)  # it does not propagate to the root logger caplog watches
    try:
        with caplog.at_level(logging.INFO, logger="django.server"):
            # What django.core.servers.basehttp.WSGIRequestHandler.log_message sends.
            server.info('"%s" %s %s', f"GET {CALLBACK} HTTP/1.1", "302", "0")
    finally:
        server.removeHandler(caplog.handler)

    assert caplog.messages == ['"GET /accounts/callback/?… HTTP/1.1" 302 0']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gunicorns_access_log_has_the_path_without_the_query(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "access.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "portal.wsgi:application",
        "--config",
        str(ROOT / "portal" / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--access-logfile",
        str(log),
    ]
    env = {**os.environ, "DEBUG": "true", "AUTH_MODE": "local"}
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}{CALLBACK}", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert (
            response.status_code == 404
        )  # Entra sign-in is off in local mode; the line is logged all the same
        for _ in range(50):
            if log.exists() and log.read_text():
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)

    line = log.read_text()
    assert '"GET /accounts/callback/ HTTP/1.1" 404' in line
    assert "AUTHCODE" not in line and "STATE" not in line
