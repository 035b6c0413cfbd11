"""The change page of a workspace: its clusters and members as they are, changed into a request with a diff."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from provisioning.models import ChangeRequest, ResourceState, Workspace
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec

pytestmark = pytest.mark.django_db

Kind = ChangeRequest.Kind
CHANGE_PAGE_QUERIES = 16


@pytest.fixture
def ws(active_workspace: Workspace) -> Workspace:
    return active_workspace


def _form(ws: Workspace, **changes: Any) -> dict[str, Any]:
    """The page's form as a browser posts it untouched, with ``changes`` ({"cluster-0-max_nodes": 3, ...})."""
    data: dict[str, Any] = {}
    for i, c in enumerate(ws.clusters.filter(state=ResourceState.ACTIVE).order_by("name")):
        data.update(
            {
                f"cluster-{i}-name": c.name,
                f"cluster-{i}-vm_size": c.vm_size,
                f"cluster-{i}-priority": c.priority,
                f"cluster-{i}-max_nodes": c.max_nodes,
                f"cluster-{i}-min_nodes": c.min_nodes,
                f"cluster-{i}-idle_seconds": c.idle_seconds,
                f"cluster-{i}-justification": c.justification,
            }
        )
    members = ws.memberships.filter(state=ResourceState.ACTIVE).order_by("persona", "principal_name")
    for i, m in enumerate(members):
        data[f"member-{i}-persona"] = m.persona
    data.update(changes)
    return data


def test_the_page_lists_what_the_workspace_holds(client, ws, alice, django_assert_max_num_queries) -> None:
    client.force_login(alice)
    with django_assert_max_num_queries(CHANGE_PAGE_QUERIES):
        page = client.get(reverse("provisioning:workspace_change", args=[ws.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for name in (
        "ds13-v2-2ndclust",
        "ds3-v2-cluster",
        "nv6-gpucluster",
        "user2@contoso.com",
        "datasciencegroup",
    ):
        assert name in html
    detail = client.get(reverse("provisioning:workspace_detail", args=[ws.pk])).content.decode()
    assert reverse("provisioning:workspace_change", args=[ws.pk]) in detail


def test_a_change_is_submitted_and_its_page_shows_the_diff(client, ws, alice) -> None:
    client.force_login(alice)
    # clusters by name: 0 ds13-v2-2ndclust, 1 ds3-v2-cluster, 2 nv6-gpucluster; members by persona, name.
    members = list(ws.memberships.filter(state=ResourceState.ACTIVE).order_by("persona", "principal_name"))
    user2 = next(i for i, m in enumerate(members) if m.principal_name == "user2@contoso.com")
    user3 = next(i for i, m in enumerate(members) if m.principal_name == "user3@contoso.com")
    data = _form(
        ws,
        **{
            "cluster-1-max_nodes": 3,
            "cluster-2-delete": "on",
            f"member-{user2}-persona": "team_lead",
            f"member-{user3}-remove": "on",
            "action": "submit",
        },
    )
    response = client.post(reverse("provisioning:workspace_change", args=[ws.pk]), data)

    cr = ChangeRequest.objects.get(kind=Kind.CHANGE_WORKSPACE)
    assert response.status_code == 302 and response.url == reverse(
        "provisioning:request_detail", args=[cr.pk]
    )
    assert cr.status == ChangeRequest.Status.SUBMITTED
    assert RequestSpec.from_json(cr.spec) == RequestSpec(
        cluster_updates=(ClusterSpec("ds3-v2-cluster", "STANDARD_DS3_V2", "low_priority", max_nodes=3),),
        cluster_deletes=("nv6-gpucluster",),
        persona_changes=(MemberSpec("user2@contoso.com", "team_lead"),),
        revoke=(members[user3].pk,),
    )
    html = client.get(response.url).content.decode()
    assert "Changes (4)" in html and "update in place" in html
    assert 'max_nodes: <span class="mono">1</span> → <span class="mono">3</span>' in html


def test_a_size_change_shows_why_it_is_a_replace(client, ws, alice) -> None:
    client.force_login(alice)
    data = _form(ws, **{"cluster-1-vm_size": "STANDARD_D13_V2", "action": "draft"})
    response = client.post(reverse("provisioning:workspace_change", args=[ws.pk]), data)
    html = client.get(response.url).content.decode()
    assert "replace" in html and "cannot change the VM size or priority" in html


def test_posting_nothing_changed_saves_nothing(client, ws, alice) -> None:
    client.force_login(alice)
    page = client.post(reverse("provisioning:workspace_change", args=[ws.pk]), _form(ws, action="submit"))
    assert page.status_code == 200 and "nothing is changed" in page.content.decode()
    assert not ChangeRequest.objects.filter(kind=Kind.CHANGE_WORKSPACE).exists()


def test_a_draft_reopens_with_its_changes_and_problems(client, ws, alice, policy) -> None:
    client.force_login(alice)
    data = _form(ws, **{"cluster-1-max_nodes": 50, "action": "draft"})
    client.post(reverse("provisioning:workspace_change", args=[ws.pk]), data)
    cr = ChangeRequest.objects.get(kind=Kind.CHANGE_WORKSPACE)  # saved as a draft, problems and all
    page = client.get(reverse("provisioning:request_edit", args=[cr.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and 'value="50"' in html and "max nodes must be between 1 and" in html


def test_outsiders_cannot_change_a_workspace(client, ws, charlie, dana) -> None:
    for user in (charlie, dana):
        client.force_login(user)
        assert client.get(reverse("provisioning:workspace_change", args=[ws.pk])).status_code in (403, 404)
        response = client.post(
            reverse("provisioning:workspace_change", args=[ws.pk]), _form(ws, **{"cluster-0-delete": "on"})
        )
        assert response.status_code in (403, 404)
    assert not ChangeRequest.objects.filter(kind=Kind.CHANGE_WORKSPACE).exists()
