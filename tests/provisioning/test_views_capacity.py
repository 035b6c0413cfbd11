"""The admins' capacity page through the web client: figures per region and family, the refresh button,
team budgets (form, audit, workspace quota job) and the clusters flagged for breaking policy."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from rq.job import Job

from provisioning.engine import capacity_sync
from provisioning.models import AuditEvent, ClusterFlag, CoreUsage, TeamBudget
from tests import factories
from tests.factories import TUTORIAL_SUBSCRIPTION, ChangeRequestFactory

pytestmark = pytest.mark.django_db

Scope = CoreUsage.Scope
_size = factories.vm_size
_usage = factories.core_usage
_budget = factories.team_budget


@pytest.fixture
def catalog(policy: None) -> None:
    """The tutorial's three sizes in eastus2, and one size westeurope offers that eastus2 does not."""
    for row in factories.TUTORIAL_SIZES:
        _size("eastus2", *row)
    _size("westeurope", "Standard_F2s_v2", "standardFSv2Family", 2)


@pytest.fixture
def usages(catalog: None) -> None:
    """What Azure reported for the tutorial's subscription in eastus2."""
    _usage(Scope.FAMILY, "standardDSv2Family", 20, 48)
    _usage(Scope.FAMILY, "standardDv2Family", 4, 24)
    _usage(Scope.FAMILY, "standardNVFamily", 0, 24)
    _usage(Scope.DEDICATED_TOTAL, "", 30, 100)
    _usage(Scope.LOW_PRIORITY_TOTAL, "", 12, 100)


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _chart_text(html: str, title: str) -> str:
    """The accessible description of the chart with this title (its figures, in words)."""
    found = re.search(
        r"<title id=\"(?P<id>[^\"]+)-title\">" + re.escape(title) + r"</title>\s*<desc id=\"(?P=id)-desc\">"
        r"(?P<desc>[^<]*)</desc>",
        html,
    )
    assert found, f"no chart titled {title!r}"
    return found.group("desc")


def test_the_page_shows_used_allocated_pending_and_limit_per_region_and_family(client, usages, alice, bob):
    _budget("standardDv2Family", dedicated=32, low_priority=8)
    _budget("standardDSv2Family", dedicated=0, low_priority=16)
    ChangeRequestFactory(
        requester=alice, submitted=True
    )  # ds13 dedicated 2 x 8 cores; ds3 and nv6 low priority, 1 node each
    client.force_login(bob)

    response = client.get(reverse("provisioning:capacity"))

    assert response.status_code == 200
    html = response.content.decode()
    assert _chart_text(html, "Standard Dv2 Family, dedicated cores in eastus2") == (
        "Used now (Azure): 4 cores; Allocated to teams: 32 cores; Held by portal clusters: 0 cores; "
        "Requested, pending: 16 cores; Limit (Azure): 24 cores."
    )
    assert _chart_text(html, "Standard DSv2 Family, dedicated cores in eastus2") == (
        "Used now (Azure): 20 cores; Allocated to teams: 0 cores; Held by portal clusters: 0 cores; "
        "Requested, pending: 0 cores; Limit (Azure): 48 cores."
    )
    assert _chart_text(html, "All dedicated cores (regional total) in eastus2") == (
        "Used now (Azure): 30 cores; Allocated to teams: 32 cores; Held by portal clusters: 0 cores; "
        "Requested, pending: 16 cores; Limit (Azure): 100 cores."
    )
    assert _chart_text(html, "All low-priority cores (regional total) in eastus2") == (
        "Used now (Azure): 12 cores; Allocated to teams: 24 cores; Held by portal clusters: 0 cores; "
        "Requested, pending: 10 cores; Limit (Azure): 100 cores."
    )
    assert 'role="img"' in html and "Refresh from Azure" in html
    # A family with only a limit (nothing used, budgeted, held or asked for) is listed, not charted.
    assert "Standard NV Family, dedicated cores in eastus2" not in html
    idle = re.search(r"<details class=\"mb-3\">(.*?)</details>", html, re.S)
    assert idle and "1 other family with a dedicated limit and nothing in use" in idle.group(1)
    assert re.search(r"standardNVFamily</span></th><td class=\"text-end\">24</td>", idle.group(1))
    # westeurope has a catalog but no usage read yet: its empty state says so and offers the button
    assert "No usage read from Azure for West Europe yet" in html


def test_approved_clusters_count_as_held_by_the_portal(client, usages, alice, bob):
    _budget("standardDv2Family", dedicated=32)
    ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    client.force_login(bob)

    html = client.get(reverse("provisioning:capacity")).content.decode()

    assert "Held by portal clusters: 16 cores; Requested, pending: 0 cores" in _chart_text(
        html, "Standard Dv2 Family, dedicated cores in eastus2"
    )
    row = re.search(r"bgmr/bluegranit</td>.*?</tr>", html, re.S)
    assert row
    cells = re.findall(r"<td class=\"text-end[^\"]*\">(\d+)</td>", row.group(0))
    assert cells == ["32", "16", "0", "0", "0", "0"]  # dedicated budget, held, pending; low-priority the same


def test_no_usage_read_yet_explains_the_refresh(client, policy, bob):
    client.force_login(bob)

    html = client.get(reverse("provisioning:capacity")).content.decode()

    assert "No usage has been read from Azure yet" in html
    assert "No usage read from Azure for East US 2 yet" in html
    assert "every few minutes" in html
    assert html.count(reverse("provisioning:capacity_refresh")) >= 2
    assert "No team has a budget yet" in html
    assert "No cluster breaks policy" in html


def test_refresh_queues_the_capacity_job_once(
    client, policy, bob, rq_queue, django_capture_on_commit_callbacks
):
    client.force_login(bob)

    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues once the transaction commits
        response = client.post(reverse("provisioning:capacity_refresh"))
    again = client.post(reverse("provisioning:capacity_refresh"), follow=True)

    assert response.status_code == 302
    assert response.url == reverse("provisioning:capacity")
    assert rq_queue.job_ids == ["provisioning-capacity"]
    job = Job.fetch("provisioning-capacity", connection=rq_queue.connection, serializer=rq_queue.serializer)
    assert job.func_name == "provisioning.jobs.capacity_check"
    assert any("queued" in m for m in _messages(response))
    assert "already queued" in again.content.decode()


def test_setting_a_budget_saves_audits_and_queues_the_workspace_quota(
    client, usages, bob, rq_queue, django_capture_on_commit_callbacks
):
    _budget("standardDSv2Family", dedicated=8)
    client.force_login(bob)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("provisioning:budget_set"),
            {
                "team": "bgmr/bluegranit",
                "region": "eastus2",
                "family": "standardDv2Family",
                "dedicated_cores": "16",
                "low_priority_cores": "32",
            },
        )

    assert response.status_code == 302
    budget = TeamBudget.objects.get(
        department="bgmr", team="bluegranit", region="eastus2", family="standardDv2Family"
    )
    assert (budget.dedicated_cores, budget.low_priority_cores) == (16, 32)
    event = AuditEvent.objects.get(action="budget.set")
    assert event.actor == "bob"
    assert event.before is None
    assert event.after["dedicated_cores"] == 16 and event.after["low_priority_cores"] == 32
    job_id = f"team-quota-bgmr-bluegranit-eastus2-{event.pk}"
    assert rq_queue.job_ids == [job_id]
    job = Job.fetch(job_id, connection=rq_queue.connection, serializer=rq_queue.serializer)
    assert job.func_name == "provisioning.jobs.team_quota_apply"
    assert list(job.args) == ["bgmr", "bluegranit", "eastus2"]
    assert any("Standard Dv2 Family" in m and "16 dedicated" in m for m in _messages(response))


def test_changing_a_budget_audits_before_and_after(
    client, usages, bob, rq_queue, django_capture_on_commit_callbacks
):
    _budget("standardDSv2Family", dedicated=8, low_priority=4)
    client.force_login(bob)
    form = client.get(
        reverse("provisioning:capacity"),
        {"team": "bgmr/bluegranit", "region": "eastus2", "family": "standardDSv2Family"},
    )
    assert 'value="8"' in form.content.decode()  # the "change" link fills the form with the budget

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("provisioning:budget_set"),
            {
                "team": "bgmr/bluegranit",
                "region": "eastus2",
                "family": "standardDSv2Family",
                "dedicated_cores": "12",
                "low_priority_cores": "4",
            },
        )

    event = AuditEvent.objects.get(action="budget.set")
    assert (event.before["dedicated_cores"], event.after["dedicated_cores"]) == (8, 12)
    assert TeamBudget.objects.get().dedicated_cores == 12
    assert len(rq_queue.job_ids) == 1
    again = client.get(
        reverse("provisioning:capacity"),
        {"team": "bgmr/bluegranit", "region": "eastus2", "family": "standardDSv2Family"},
    )
    assert 'value="12"' in again.content.decode()  # the form's kept fields follow the new budget


@pytest.mark.parametrize(
    ("posted", "field", "error"),
    [
        ({"dedicated_cores": "-1"}, "dedicated_cores", "cannot be negative"),
        ({"low_priority_cores": "many"}, "low_priority_cores", "whole number"),
        (
            {"dedicated_cores": "999"},
            "dedicated_cores",
            "more than the subscription&#x27;s limit in eastus2 (24)",
        ),
        ({"low_priority_cores": "500"}, "low_priority_cores", "regional low-priority limit in eastus2 (100)"),
        ({"family": "standardFSv2Family"}, "family", "Azure offers no Standard FSv2 Family sizes"),
        ({"team": ""}, "team", "Choose the team the budget is for"),
    ],
)
def test_bad_budget_input_shows_the_error_and_keeps_what_was_typed(
    client, usages, bob, rq_queue, posted, field, error
):
    _budget("standardDSv2Family", dedicated=8)
    client.force_login(bob)
    data = {
        "team": "bgmr/bluegranit",
        "region": "eastus2",
        "family": "standardDv2Family",
        "dedicated_cores": "16",
        "low_priority_cores": "32",
        **posted,
    }

    response = client.post(reverse("provisioning:budget_set"), data)

    assert response.status_code == 200
    html = response.content.decode()
    errors = re.search(rf'id="id_{field}_error">(.*?)</div></div>', html, re.S)
    assert errors and error in errors.group(1)
    typed = posted.get("dedicated_cores") or posted.get("low_priority_cores")
    if typed:
        assert f'value="{typed}"' in html
    assert list(TeamBudget.objects.values_list("family", flat=True)) == ["standardDSv2Family"]
    assert not AuditEvent.objects.filter(action="budget.set").exists()
    assert rq_queue.job_ids == []


def test_team_leads_get_403(client, policy, alice, rq_queue):
    client.force_login(alice)
    _budget("standardDSv2Family", dedicated=8)

    assert client.get(reverse("provisioning:capacity")).status_code == 403
    assert client.post(reverse("provisioning:capacity_refresh")).status_code == 403
    budget = {
        "team": "bgmr/bluegranit",
        "region": "eastus2",
        "family": "standardDSv2Family",
        "dedicated_cores": "99",
        "low_priority_cores": "0",
    }
    assert client.post(reverse("provisioning:budget_set"), budget).status_code == 403
    assert TeamBudget.objects.get().dedicated_cores == 8
    assert rq_queue.job_ids == []


def test_signed_out_visitors_are_sent_to_sign_in(client, policy):
    response = client.get(reverse("provisioning:capacity"))

    assert response.status_code == 302
    assert "login" in response.url or "accounts" in response.url


def _flag(cluster: str, *, resolved: bool = False, by_portal: bool = False) -> ClusterFlag:
    now = timezone.now()
    return ClusterFlag.objects.create(
        subscription_id=TUTORIAL_SUBSCRIPTION,
        region="eastus2",
        resource_group="rg-handmade",
        workspace_name="handmadews",
        cluster_name=cluster,
        azure_id=f"/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourceGroups/rg-handmade/providers/"
        f"Microsoft.MachineLearningServices/workspaces/handmadews/computes/{cluster}",
        kind=ClusterFlag.Kind.MIN_NODES,
        detail="1 nodes stay up (and bill) while idle; no justification is recorded in the portal",
        managed_by_portal=by_portal,
        first_seen=now - timedelta(hours=2),
        last_seen=now,
        resolved_at=now if resolved else None,
    )


def test_open_cluster_flags_are_listed(client, policy, bob):
    _flag("alwayson")
    _flag("fixedsince", resolved=True)
    client.force_login(bob)

    html = client.get(reverse("provisioning:capacity")).content.decode()

    flags = html[html.index('id="flags"') :]
    assert "alwayson" in flags and "fixedsince" not in flags
    assert "Min nodes above 0" in flags
    assert "no justification is recorded in the portal" in flags
    assert "outside the portal" in flags
    assert "No cluster breaks policy" not in html


def test_refused_workspace_quota_is_shown_with_azures_reason(client, usages, alice, bob):
    from provisioning.models import Workspace, WorkspaceQuota

    _budget("standardDv2Family", dedicated=16)
    ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    workspace = Workspace.objects.get()
    Workspace.objects.filter(pk=workspace.pk).update(state="active")
    WorkspaceQuota.objects.create(
        workspace=workspace,
        family="standardDv2Family",
        requested=16,
        applied=0,
        status="InvalidQuotaExceedsSubscriptionLimit",
        message="Azure refused 16 vCPUs of Standard Dv2 Family for this workspace: the subscription's limit",
        applied_at=timezone.now(),
    )
    client.force_login(bob)

    html = client.get(reverse("provisioning:capacity")).content.decode()

    budgets = html[html.index('id="budgets"') : html.index('id="flags"')]
    assert workspace.workspace_name in budgets
    assert "refused" in budgets and "InvalidQuotaExceedsSubscriptionLimit" in budgets
    assert "Azure refused 16 vCPUs of Standard Dv2 Family" in budgets


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_usage_and_limits_flow_from_the_standin_to_the_capacity_page(
    client, policy, bob, standin, azure_clients
):
    """Acceptance: the capacity refresh reads the stand-in's sizes and usages; the page shows its numbers."""
    capacity_sync.capacity_refresh(azure_clients)
    client.force_login(bob)

    html = client.get(reverse("provisioning:capacity")).content.decode()

    dsv2 = CoreUsage.objects.get(region="eastus2", scope=Scope.FAMILY, family="standardDSv2Family")
    assert (dsv2.current, dsv2.limit) == (20, 48)  # other teams' clusters made by hand use 20 of 48
    assert _chart_text(html, "Standard DSv2 Family, dedicated cores in eastus2").startswith(
        "Used now (Azure): 20 cores;"
    )
    assert "Limit (Azure): 48 cores." in _chart_text(html, "Standard DSv2 Family, dedicated cores in eastus2")
    west = CoreUsage.objects.get(region="westeurope", scope=Scope.LOW_PRIORITY_TOTAL)
    assert (west.current, west.limit) == (20, 50)
    assert "Used now (Azure): 20 cores;" in _chart_text(
        html, "All low-priority cores (regional total) in westeurope"
    )
    assert "Limit (Azure): 50 cores." in _chart_text(
        html, "All low-priority cores (regional total) in westeurope"
    )
    assert "No usage read from Azure for" not in html


@pytest.fixture
def staff_bob(bob: Any) -> Any:
    """Bob as he signs in with the admin role: Django admin access with the policy permissions."""
    from accounts.services import admin_permissions

    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(*admin_permissions())
    return bob


def test_a_budget_saved_in_the_django_admin_goes_through_the_service(
    client, usages, staff_bob, rq_queue, django_capture_on_commit_callbacks
):
    client.force_login(staff_bob)
    data = {
        "department": "bgmr",
        "team": "bluegranit",
        "region": "eastus2",
        "family": "standardDv2Family",
        "dedicated_cores": "999",
        "low_priority_cores": "0",
    }

    refused = client.post(reverse("admin:provisioning_teambudget_add"), data)
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(reverse("admin:provisioning_teambudget_add"), {**data, "dedicated_cores": "12"})

    assert refused.status_code == 200
    assert "more than the subscription&#x27;s limit in eastus2 (24)" in refused.content.decode()
    assert saved.status_code == 302
    budget = TeamBudget.objects.get()
    assert (budget.family, budget.dedicated_cores) == ("standardDv2Family", 12)
    event = AuditEvent.objects.get(action="budget.set")
    assert (event.actor, event.object_id) == ("bob", str(budget.pk))
    assert rq_queue.job_ids == [f"team-quota-bgmr-bluegranit-eastus2-{event.pk}"]


def test_what_workers_read_from_azure_is_read_only_in_the_django_admin(client, usages, staff_bob):
    client.force_login(staff_bob)

    for model in ("vmsize", "coreusage", "workspacequota", "clusterflag", "vmprice", "environmentpolicy"):
        assert client.get(reverse(f"admin:provisioning_{model}_changelist")).status_code == 200
    for model in ("vmsize", "coreusage", "workspacequota", "clusterflag"):
        assert client.get(reverse(f"admin:provisioning_{model}_add")).status_code == 403
    assert client.get(reverse("admin:provisioning_vmprice_add")).status_code == 200
