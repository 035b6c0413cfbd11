"""Sign-in settings: the authority is one tenant; the portal refuses to start otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from accounts.entra import EntraConfig, config_problems

TENANT = "3f2a8b8e-1111-4222-8333-444455556666"


@pytest.mark.parametrize("tenant", ["common", "organizations", "Common", "consumers"])
def test_multi_tenant_authorities_are_refused(tenant):
    (problem,) = config_problems(tenant_id=tenant, client_id="app", client_secret="s")

    assert "any tenant" in problem


def test_the_tenant_must_be_a_tenant_id_and_the_app_complete():
    assert config_problems(tenant_id=TENANT, client_id="app", client_secret="s") == []
    assert len(config_problems(tenant_id="contoso.onmicrosoft.com", client_id="", client_secret="")) == 3


def _settings_process(code: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh process with these environment variables (they are read at import)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **variables}
    program = f"from django.conf import settings; {code}"
    return subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("tenant", ["common", "organizations"])
def test_the_portal_refuses_to_start_with_a_multi_tenant_authority(tenant):
    result = _settings_process(
        "settings.INSTALLED_APPS",
        AUTH_MODE="entra",
        ENTRA_TENANT_ID=tenant,
        ENTRA_CLIENT_ID="app",
        ENTRA_CLIENT_SECRET="s",
    )

    assert result.returncode != 0
    assert f"ENTRA_TENANT_ID='{tenant}' would let any tenant in" in result.stderr


def test_in_production_the_session_cookie_is_secure_httponly_lax_and_bounded():
    result = _settings_process(
        "print(settings.SESSION_ENGINE, settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY, "
        "settings.SESSION_COOKIE_SAMESITE, settings.SESSION_COOKIE_AGE)",
        DEBUG="false",
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="portal.contoso.com",
        AUTH_MODE="entra",
        ENTRA_TENANT_ID=TENANT,
        ENTRA_CLIENT_ID="app",
        ENTRA_CLIENT_SECRET="s",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.contrib.sessions.backends.db", "True", "True", "Lax", "28800"]


def test_settings_changed_after_start_are_checked_when_used(settings):
    settings.ENTRA_TENANT_ID, settings.ENTRA_CLIENT_ID, settings.ENTRA_CLIENT_SECRET = (
        "organizations",
        "a",
        "s",
    )

    with pytest.raises(ImproperlyConfigured, match="any tenant"):
        EntraConfig.from_settings()
