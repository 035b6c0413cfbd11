"""``manage.py azure_standin`` runs in the foreground, tells how to reach it, and stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline and proc.stdout is not None:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
    return seen


def test_command_prints_the_environment_and_serves_until_interrupted(tmp_path: Path) -> None:
    env_file = tmp_path / "standin.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "azure_standin",
            "--latency-scale",
            "0",
            "--user",
            "lead@contoso.com",
            "--guest",
            "eve@fabrikam.com",
            "--disabled-user",
            "former@contoso.com",
            "--env-file",
            str(env_file),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        output = _read_until(proc, "Ctrl-C stops it.")
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", output, re.MULTILINE))
        base_url = exports["AZURE_ARM_ENDPOINT"]
        discovery = requests.get(
            f"{base_url}/{exports['AZURE_TENANT_ID']}/v2.0/.well-known/openid-configuration",
            verify=exports["REQUESTS_CA_BUNDLE"],
            timeout=10,
        )
        bundle = Path(exports["REQUESTS_CA_BUNDLE"]).read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=15)

    assert re.search(r"listening on https://127\.0\.0\.1:\d+", output)
    assert "User lead@contoso.com: " in output
    assert "Guest eve_fabrikam.com#EXT#@contoso.onmicrosoft.com: " in output
    assert "Disabled user former@contoso.com: " in output
    assert exports["GRAPH_ENDPOINT"] == exports["AZURE_AUTHORITY_HOST"] == base_url
    assert exports["AZURE_CLIENT_SECRET"] and exports["AZURE_DISABLE_INSTANCE_DISCOVERY"] == "true"
    assert bundle.count("BEGIN CERTIFICATE") > 1  # the system's CAs and the stand-in's
    assert discovery.json()["token_endpoint"].startswith(base_url)
    assert env_file.read_text().count("export ") == len(exports)
    assert "stopped" in rest
    assert proc.returncode == 0
