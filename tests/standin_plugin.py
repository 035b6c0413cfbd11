"""pytest fixtures for the local Azure stand-in (register with ``pytest_plugins = ["tests.standin_plugin"]``).

- ``azure_standin`` (session): a running ``StandIn``; for the whole session REQUESTS_CA_BUNDLE and
  CURL_CA_BUNDLE name a bundle of the system CAs plus the stand-in's, and the Django settings
  AZURE_* / GRAPH_ENDPOINT point at it (client secret credential, no instance discovery).
- ``standin`` (function): the same stand-in, reset before and after the test (state, faults, latency).
- ``azure_clients`` (session): ``AzureClients.from_settings()`` against the stand-in, shared so the SDKs
  are imported and their connection pools opened once.
- ``loopback_only`` (function): fails any connection or name lookup beyond 127.0.0.1 / localhost.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from provisioning.standin import StandIn

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="session")
def azure_standin() -> Iterator[StandIn]:
    """The stand-in for the whole test session, with TLS trust and settings pointing at it."""
    standin = StandIn()
    base_url = standin.start()
    bundle = standin.write_ca_bundle()
    saved = {name: os.environ.get(name) for name in CA_VARIABLES}
    os.environ.update(dict.fromkeys(CA_VARIABLES, bundle))
    override = override_settings(
        AZURE_ARM_ENDPOINT=base_url,
        AZURE_AUTHORITY_HOST=base_url,
        GRAPH_ENDPOINT=base_url,
        AZURE_TENANT_ID=standin.tenant_id,
        AZURE_CLIENT_ID=standin.client_id,
        AZURE_CLIENT_SECRET=standin.client_secret,
        AZURE_CREDENTIAL="client_secret",
        AZURE_DISABLE_INSTANCE_DISCOVERY=True,
    )
    override.enable()
    try:
        yield standin
    finally:
        override.disable()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        standin.stop()


@pytest.fixture
def standin(azure_standin: StandIn) -> Iterator[StandIn]:
    """The session's stand-in, empty and without faults for this test."""
    azure_standin.reset()
    yield azure_standin
    azure_standin.reset()


@pytest.fixture(scope="session")
def azure_clients(azure_standin: StandIn) -> Iterator[Any]:
    """The portal's client factory, configured from the (overridden) settings."""
    from provisioning.azure.clients import AzureClients

    clients = AzureClients.from_settings()
    yield clients
    clients.close()


def _loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse (and record) every connection or DNS lookup that would leave the machine."""
    attempts: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(host):
            attempts.append(f"connect {host}")
            raise OSError(f"blocked by loopback_only: connection to {host}")
        return real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(f"blocked by loopback_only: lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts
