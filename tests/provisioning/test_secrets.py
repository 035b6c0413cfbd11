"""No credential ever leaves the worker: not in logs (even at DEBUG), rows, queued jobs or pages.

The stand-in remembers every access token it issued, so the test searches for the real values, as
well as for the worker's client secret and anything that looks like a SAS signature or a bearer header.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import serializers
from django.urls import reverse

from provisioning import exports
from provisioning.azure.clients import AzureClients
from provisioning.engine import executor as engine
from provisioning.models import AuditEvent, AuditExport, ChangeRequest, Membership, Run, Step, Workspace
from provisioning.queue import provisioning_job_id
from tests.factories import TUTORIAL_MEMBERS, ChangeRequestFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

BEARER = re.compile(r"bearer\s+[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE)
SAS_SIGNATURE = re.compile(r"[?&]sig=", re.IGNORECASE)


@pytest.fixture
def fresh_clients(azure_standin: Any) -> Iterator[AzureClients]:
    """Clients with no cached token, so the client-secret exchange happens while the test logs."""
    clients = AzureClients.from_settings()
    yield clients
    clients.close()


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = [f"secret {s[:6]}…" for s in secrets if s in text]
    found += [f"bearer header {m.group(0)[:16]}…" for m in BEARER.finditer(text)]
    found += [
        f"SAS signature near {text[max(0, m.start() - 40) : m.end()]!r}" for m in SAS_SIGNATURE.finditer(text)
    ]
    return found


def _rows_as_json() -> str:
    models = (AuditEvent, Step, Run, ChangeRequest, Workspace, Membership)
    return "\n".join(serializers.serialize("json", model.objects.all()) for model in models)


def _queued_jobs_as_json(queue: Any) -> str:
    jobs = [queue.fetch_job(job_id) for job_id in queue.job_ids]
    return json.dumps(
        [
            {
                "func": j.func_name,
                "args": j.args,
                "kwargs": j.kwargs,
                "description": j.description,
                "meta": j.meta,
            }
            for j in jobs
            if j is not None
        ]
    )


def _pages(client: Any, users: list[Any], cr: ChangeRequest) -> str:
    html = []
    for user in users:
        client.force_login(user)
        for url in (
            reverse("provisioning:request_detail", args=[cr.pk]),
            reverse("provisioning:request_progress", args=[cr.pk]),
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            html.append(response.content.decode())
    client.force_login(users[-1])
    html.append(client.get(reverse("provisioning:audit")).content.decode())
    client.post(reverse("provisioning:audit_export_create"), {"format": "csv"})
    export = AuditExport.objects.latest("id")
    exports.audit_export_run(export_id=export.pk)
    response = client.get(reverse("provisioning:audit_export_download", args=[export.pk]))
    assert response.status_code == 200
    html.append(b"".join(response.streaming_content).decode())
    return "\n".join(html)


def test_no_token_or_secret_appears_in_logs_rows_jobs_or_pages(
    policy, alice, bob, standin, fresh_clients, rq_queue, client, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' HTTP logging included
    caplog.set_level(logging.DEBUG, logger="azure")
    caplog.set_level(logging.DEBUG, logger="msal")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    monkeypatch.setattr(engine, "STEP_BACKOFF", (0.05,))
    for member in TUTORIAL_MEMBERS:
        standin.add_user(member.principal)
    standin.add_group("datasciencegroup")
    # Throttling, and an outage that outlasts azure-core's retries: their retry paths log too.
    standin.fail_next("storage.create", status=429, retry_after=0.05)
    standin.fail_next("key_vault.create", status=503, retry_after=0.05, times=4)

    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    jobs = _queued_jobs_as_json(rq_queue)
    assert provisioning_job_id(cr.pk) in rq_queue.job_ids
    assert engine.request_execute(request_id=cr.pk, clients=fresh_clients) == Run.Status.SUCCEEDED

    tokens = list(standin.state.tokens)
    assert tokens, "the stand-in issued no token: the test would prove nothing"
    secrets = [standin.client_secret, *tokens]
    assert "/oauth2/v2.0/token" in caplog.text, "the token exchange was not logged: nothing was tested"
    assert max(Step.objects.values_list("attempts", flat=True)) > 1  # the engine's retry path ran
    assert _leaks(caplog.text, secrets) == []
    assert _leaks(_rows_as_json(), secrets) == []
    assert _leaks(jobs, secrets) == []
    assert _leaks(_pages(client, [alice, bob], cr), secrets) == []
    # The jobs carry ids only.
    for job in (rq_queue.fetch_job(job_id) for job_id in rq_queue.job_ids):
        assert all(isinstance(arg, int) for arg in job.args) and not job.kwargs
