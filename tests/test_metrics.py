"""/metrics: Prometheus' text for the operators' token only; the figures are the database's and Redis' now."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from provisioning import queue
from provisioning.models import DriftItem, Run, Step
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db
TOKEN = "a-long-random-metrics-token-for-the-tests"


def _scrape(token: str = TOKEN) -> dict[str, dict[tuple, float]]:
    response = Client(HTTP_HOST="10.1.2.3:8000").get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_are_off_without_a_token_and_refused_without_the_right_one(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    refused = Client().get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics").status_code == 401


def test_the_figures_are_the_databases_and_the_queues(settings, policy, rq_queue, alice, client):
    settings.METRICS_TOKEN = TOKEN
    run = RunFactory(status=Run.Status.FAILED)
    Step.objects.create(
        run=run, key="a", kind="storage", target="sa", status=Step.Status.FAILED, error_code="QuotaExceeded"
    )
    queue.job_enqueue("provisioning.jobs.sweep", job_id="metrics-test", description="a job waiting")
    client.force_login(alice)
    client.get("/requests/")

    scraped = _scrape()
    assert scraped["portal_runs"][(("status", "failed"),)] == Run.objects.filter(status="failed").count()
    assert scraped["portal_steps"][(("status", "failed"),)] == 1
    assert scraped["portal_azure_errors_total"][(("code", "QuotaExceeded"),)] == 1
    assert scraped["portal_queue_jobs"][(("queue", "provisioning"),)] == rq_queue.count >= 1
    assert scraped["portal_queue_oldest_job_age_seconds"][(("queue", "provisioning"),)] >= 0
    assert scraped["portal_drift_items_open"][()] == DriftItem.objects.filter(status="open").count()
    assert "portal_notifications_waiting" in scraped
    rq_queue.connection.incrbyfloat("portal:rate_limit_wait_seconds_total", 2.5)
    assert _scrape()["portal_rate_limit_wait_seconds_total"][()] >= 2.5
    timed = scraped["portal_http_request_duration_seconds_count"]
    assert timed[(("method", "GET"), ("view", "provisioning:my_requests"))] >= 1


def test_the_grafana_dashboard_draws_only_metrics_the_portal_exports():
    import json
    import re
    from pathlib import Path

    dashboard = json.loads(
        (Path(__file__).parent.parent / "deploy/grafana/portal-dashboard.json").read_text()
    )
    exported = {
        "portal_http_request_duration_seconds",
        "portal_queue_jobs",
        "portal_queue_oldest_job_age_seconds",
        "portal_runs",
        "portal_steps",
        "portal_step_duration_seconds",
        "portal_azure_errors_total",
        "portal_drift_items_open",
        "portal_notifications_waiting",
        "portal_rate_limit_wait_seconds_total",
    }
    used = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"portal_[a-z_]+", target["expr"])
    }
    assert used == exported
