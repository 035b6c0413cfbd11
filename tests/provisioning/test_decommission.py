"""Decommissioning a workspace (issue 14, item 3): the plan, the run on the stand-in, what stays, and the key
vault's soft delete (its name held until purged). The engine runs in-process against the stand-in over HTTPS
with the real SDK clients; Azure's state is read back from the stand-in."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from provisioning.audit import audit_verify_chain
from provisioning.engine import executor as engine
from provisioning.engine.key_vaults import deleted_vault_purge, deleted_vault_refresh
from provisioning.engine.name_checks import request_check_names
from provisioning.engine.reconcile import reconcile
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    DeletedKeyVault,
    Membership,
    ResourceState,
    Run,
    Workspace,
)
from provisioning.workflow import decommission, key_vaults, services
from provisioning.workflow.transitions import RequestError
from provisioning.workflow.validation import names_in_use
from tests import factories
from tests.factories import TUTORIAL_SUBSCRIPTION, ChangeRequestFactory, tutorial_spec
from tests.provisioning.provisioned import provisioned

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

SUB = TUTORIAL_SUBSCRIPTION
RG = "bgmr-bluegranit-eastus2-dev"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
Status = ChangeRequest.Status


def _under_group(standin: Any, group: str = RG_ID) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the stand-in holds in the group (resources, by id) and the role assignments at or below it."""
    resources = [
        r
        for r in standin.state.resources.values()
        if r["id"].lower().startswith(group.lower() + "/") and r["type"] != "Microsoft.Resources/deployments"
    ]
    assignments = [
        a
        for a in standin.state.list_role_assignments()
        if a["properties"]["scope"].lower().startswith(group.lower())
    ]
    return resources, assignments


def _decommissioned(
    cr: ChangeRequest, approvers: list[Any], azure_clients: Any
) -> tuple[ChangeRequest, Workspace]:
    """Read Azure for the plan, approve (each approver in turn), run the engine."""
    assert cr.workspace_id is not None
    reconcile(workspace_ids=[cr.workspace_id], clients=azure_clients)
    for approver in approvers:
        services.request_approve(request_id=cr.pk, approver=approver)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    cr.refresh_from_db()
    return cr, Workspace.objects.get(pk=cr.workspace_id)


def test_decommission_removes_everything_managed_and_holds_the_key_vault_name_until_purged(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    # The portal's vaults have purge protection on; this one, as some teams' older vaults, has it off.
    vault = next(r for r in standin.state.resources.values() if r["name"] == ws.key_vault)
    vault["properties"]["enablePurgeProtection"] = False
    cr = decommission.decommission_request(
        workspace_id=ws.pk, requester=alice, reason="project finished", submit=True
    )
    assert cr.status == Status.SUBMITTED and cr.kind == ChangeRequest.Kind.DECOMMISSION
    with pytest.raises(RequestError, match="has not been read"):  # the plan waits for a fresh read of Azure
        services.request_approve(request_id=cr.pk, approver=bob)
    reconcile(workspace_ids=[ws.pk], clients=azure_clients)
    plan = services.request_plan(ChangeRequest.objects.get(pk=cr.pk))
    deleted = {(c["object"], c["name"]) for c in plan["changes"]}
    assert {c["action"] for c in plan["changes"]} == {"delete"}
    assert ("resource_group", RG) in deleted and ("workspace", ws.workspace_name) in deleted
    assert ("key_vault", ws.key_vault) in deleted and ("storage_account", ws.storage_data) in deleted
    assert sum(1 for o, _ in deleted if o == "cluster") == 3
    assert sum(1 for c in plan["changes"] if c["object"] == "role_assignment") == 40
    assert {k["name"] for k in plan["kept"]} == {"Data Scientist", "Team Lead"}

    cr, ws = _decommissioned(cr, [bob], azure_clients)

    assert cr.status == Status.SUCCEEDED
    assert ws.state == ResourceState.DECOMMISSIONED and ws.decommissioned_at is not None
    assert set(ws.clusters.values_list("state", flat=True)) == {ResourceState.REVOKED}
    assert set(ws.memberships.values_list("state", flat=True)) == {ResourceState.REVOKED}
    assert _under_group(standin) == ([], [])
    assert standin.state.get(RG_ID) is None
    assert AuditEvent.objects.filter(action="workspace.decommissioned", object_id=str(ws.pk)).exists()
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == "nothing to do"
    # The key vault is soft-deleted: the name check of a new request for the same names finds it held.
    again = ChangeRequestFactory(requester=alice, spec=tutorial_spec(), submitted=True)
    answers = request_check_names(request_id=again.pk, clients=azure_clients)
    held = next(a for a in answers if a["kind"] == "key_vault")
    assert not held["available"] and held["soft_deleted"] and held["frees_on"]
    assert [a["name"] for a in answers if not a["available"]] == [ws.key_vault]
    with pytest.raises(RequestError) as refused:
        services.request_approve(request_id=again.pk, approver=bob)
    assert f"soft-deleted key vault until {held['frees_on']}" in refused.value.problems[0].message
    found = deleted_vault_refresh(workspace_id=ws.pk, clients=azure_clients)  # the job at the run's end
    assert found is not None and found.workspace_id == ws.pk and not found.purge_protection
    assert DeletedKeyVault.objects.count() == 1
    problems = [p.message for p in names_in_use(tutorial_spec().workspace.names())]  # type: ignore[union-attr]
    assert any(f"soft-deleted key vault until {held['frees_on']}" in m for m in problems)
    with pytest.raises(PermissionDenied):
        key_vaults.key_vault_purge_request(name=ws.key_vault, actor=alice)
    assert key_vaults.key_vault_purge_request(name=ws.key_vault, actor=bob) == "queued"
    purged = deleted_vault_purge(vault_id=found.pk, actor_id=bob.pk, clients=azure_clients)
    assert purged.purged_at is not None and purged.purged_by == bob
    assert key_vaults.key_vault_purge_request(name=ws.key_vault, actor=bob) == "already purged"
    assert not any("soft-deleted" in p.message for p in names_in_use(tutorial_spec().workspace.names()))  # type: ignore[union-attr]
    assert ws.key_vault.lower() not in standin.state.deleted_vaults
    answers = request_check_names(request_id=again.pk, clients=azure_clients)
    assert all(a["available"] for a in answers)
    assert audit_verify_chain()[1] is None
    assert (
        AuditEvent.objects.filter(action="key_vault.purged", actor=bob.upn).exists()
        or AuditEvent.objects.filter(action="key_vault.purged").exists()
    )


def test_keep_data_and_unmanaged_resources_stay_and_the_group_is_kept(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    standin.outside.add_resource(SUB, RG, "byhandstorage09")
    cr = decommission.decommission_request(
        workspace_id=ws.pk, requester=alice, reason="moved to another team", keep_data=True, submit=True
    )
    reconcile(workspace_ids=[ws.pk], clients=azure_clients)
    plan = services.request_plan(ChangeRequest.objects.get(pk=cr.pk))
    kept = {k["name"]: k["why"] for k in plan["kept"]}
    assert "retained until" in kept[ws.storage_data] and "retained until" in kept[ws.data_lake_name]
    assert "not managed by the portal" in kept["byhandstorage09"]
    assert "byhandstorage09" in kept[RG] and ws.storage_data in kept[RG]
    assert ("resource_group", RG) not in {(c["object"], c["name"]) for c in plan["changes"]}

    cr, ws = _decommissioned(cr, [bob], azure_clients)

    resources, assignments = _under_group(standin)
    assert sorted(r["name"] for r in resources) == sorted(
        ["byhandstorage09", ws.storage_data, ws.data_lake_name]
    )
    assert assignments == []  # the kept accounts lost their access, and so did the group
    data = next(r for r in resources if r["name"] == ws.storage_data)
    assert data["tags"]["portal-retained"] and data["tags"]["portal-request"] == str(cr.pk)
    assert "portal-retained" not in (
        next(r for r in resources if r["name"] == "byhandstorage09").get("tags") or {}
    )
    group = standin.state.get(RG_ID)
    assert group is not None
    assert ws.state == ResourceState.DECOMMISSIONED


def test_a_failed_decommission_is_retried_and_a_second_delivery_changes_nothing(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    cr = decommission.decommission_request(workspace_id=ws.pk, requester=alice, reason="done", submit=True)
    reconcile(workspace_ids=[ws.pk], clients=azure_clients)
    services.request_approve(request_id=cr.pk, approver=bob)
    standin.fail_next(
        "registry.delete", status=403, retry_after=None, code="AuthorizationFailed", message="no"
    )
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED
    cr.refresh_from_db()
    assert (
        cr.status == Status.FAILED and "container registry" in cr.runs.get().steps.get(status="failed").target
    )
    assert Workspace.objects.get(pk=ws.pk).state == ResourceState.REVOKING
    services.request_retry(request_id=cr.pk, actor=bob)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    assert Workspace.objects.get(pk=ws.pk).state == ResourceState.DECOMMISSIONED
    assert _under_group(standin) == ([], [])
    # A second delivery of the last run (a worker died before recording it): every removal reads first.
    run = cr.runs.order_by("-number").first()
    assert run is not None
    ChangeRequest.objects.filter(pk=cr.pk).update(status=Status.PROVISIONING)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, lease_owner="")
    run.steps.update(status="pending")
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    assert set(run.steps.values_list("outcome", flat=True)) == {"absent"}
    assert Workspace.objects.get(pk=ws.pk).state == ResourceState.DECOMMISSIONED


def test_a_production_decommission_waits_for_a_second_admin(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob, spec=tutorial_spec(environment="pro"))
    carol = factories.admin("carol")
    cr = decommission.decommission_request(workspace_id=ws.pk, requester=alice, reason="retired", submit=True)
    reconcile(workspace_ids=[ws.pk], clients=azure_clients)
    services.request_approve(request_id=cr.pk, approver=bob)
    cr.refresh_from_db()
    assert cr.status == Status.SUBMITTED and cr.first_approver == bob
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=cr.pk, approver=bob)
    cr, ws = _decommissioned(cr, [carol], azure_clients)
    assert cr.approver == carol and ws.state == ResourceState.DECOMMISSIONED


def test_who_may_decommission_and_when(
    policy, alice, bob, charlie, dana, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    for outsider in (charlie, dana):
        with pytest.raises(PermissionDenied):
            decommission.decommission_request(workspace_id=ws.pk, requester=outsider, reason="mine now")
    for reason in ("", "   ", "x" * 1001, "bad\x07bell"):
        with pytest.raises(RequestError):
            decommission.decommission_request(workspace_id=ws.pk, requester=alice, reason=reason)
    first = decommission.decommission_request(workspace_id=ws.pk, requester=bob, reason="budget", submit=True)
    with pytest.raises(RequestError, match=f"request #{first.pk}"):
        decommission.decommission_request(workspace_id=ws.pk, requester=alice, reason="also", submit=True)
    Workspace.objects.filter(pk=ws.pk).update(management=Workspace.Management.OBSERVED)
    with pytest.raises(RequestError, match="observed"):
        decommission.decommission_request(workspace_id=ws.pk, requester=bob, reason="observed")


def test_a_decommissioned_workspace_takes_no_new_request(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    cr = decommission.decommission_request(workspace_id=ws.pk, requester=alice, reason="done", submit=True)
    _decommissioned(cr, [bob], azure_clients)
    with pytest.raises(RequestError, match="decommissioned"):
        decommission.decommission_request(workspace_id=ws.pk, requester=alice, reason="again")
    assert Membership.objects.filter(workspace=ws).exclude(state=ResourceState.REVOKED).count() == 0


def test_the_command_makes_the_same_request(
    policy, alice, bob, standin, azure_clients, rq_queue, capsys
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    with pytest.raises(CommandError, match="reason"):
        call_command("decommission_workspace", ws.workspace_name, "--requester", alice.upn, "--reason", " ")
    with pytest.raises(CommandError, match="no workspace"):
        call_command("decommission_workspace", "nosuchws", "--requester", alice.upn, "--reason", "x")
    call_command(
        "decommission_workspace",
        ws.workspace_name,
        "--requester",
        alice.upn,
        "--reason",
        "done",
        "--keep-data",
        "--submit",
    )
    cr = ChangeRequest.objects.get(kind=ChangeRequest.Kind.DECOMMISSION)
    assert cr.status == Status.SUBMITTED and cr.spec["decommission"] == {"reason": "done", "keep_data": True}
    assert f"#{cr.pk}" in capsys.readouterr().out
    assert DeletedKeyVault.objects.count() == 0


def test_purge_protection_makes_azure_refuse_the_purge(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)  # the portal's vaults have purge protection on
    cr = decommission.decommission_request(workspace_id=ws.pk, requester=alice, reason="done", submit=True)
    _decommissioned(cr, [bob], azure_clients)
    vault = deleted_vault_refresh(workspace_id=ws.pk, clients=azure_clients)
    assert vault is not None and vault.purge_protection
    with pytest.raises(CommandError, match="only admins"):
        call_command("purge_key_vault", ws.key_vault, "--admin", alice.upn)
    with pytest.raises(CommandError, match="VaultPurgeProtected"):
        call_command("purge_key_vault", ws.key_vault, "--admin", bob.upn)
    vault.refresh_from_db()
    assert vault.purged_at is None and "purge protection" in vault.purge_error
    assert AuditEvent.objects.filter(action="key_vault.purge_refused").count() == 1
    assert ws.key_vault.lower() in standin.state.deleted_vaults


def test_the_pages_ask_show_the_plan_and_the_deleted_vault(
    policy, alice, bob, dana, standin, azure_clients, rq_queue, client
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    Membership.objects.filter(workspace=ws, principal_name="user1@contoso.com").update(
        principal_name=dana.upn, object_id=""
    )
    page = f"/workspaces/{ws.pk}/"
    client.force_login(dana)  # a member, not a team lead: no action, and the form is refused
    assert "Decommission…" not in client.get(page).content.decode()
    assert client.get(f"{page}decommission/").status_code == 403
    client.force_login(alice)
    assert "Decommission…" in client.get(page).content.decode()
    answer = client.post(
        f"{page}decommission/", {"reason": "all done", "keep_data": "on", "action": "submit"}
    )
    cr = ChangeRequest.objects.get(kind=ChangeRequest.Kind.DECOMMISSION)
    assert answer.status_code == 302 and answer["Location"] == f"/requests/{cr.pk}/"
    assert cr.status == Status.SUBMITTED and cr.spec["decommission"]["keep_data"] is True
    assert "has not been read" in client.get(f"/requests/{cr.pk}/").content.decode()
    reconcile(workspace_ids=[ws.pk], clients=azure_clients)
    shown = client.get(f"/requests/{cr.pk}/").content.decode()
    assert ws.registry in shown and "retained until" in shown and "Team Lead" in shown
    _decommissioned(cr, [bob], azure_clients)
    deleted_vault_refresh(workspace_id=ws.pk, clients=azure_clients)
    shown = client.get(page).content.decode()
    assert "data-decommissioned" in shown and "Decommission…" not in shown and "Request clusters" not in shown
    assert "data-deleted-vault" in shown and "Purge" not in shown  # purge protection on, and alice no admin
    client.force_login(bob)
    assert "data-deleted-vault" in client.get("/workspaces/" + str(ws.pk) + "/").content.decode()
    assert client.post(f"{page}purge-key-vault/").status_code == 302  # queued; Azure refuses it in the job
    assert AuditEvent.objects.filter(action="key_vault.purge_requested").count() == 1
    assert ws.workspace_name in client.get("/workspaces/").content.decode()


def test_the_workspace_page_shows_a_soft_deleted_vault_holding_its_name_until_purged(client, bob) -> None:
    from django.utils import timezone

    from provisioning.models import DeletedKeyVault
    from tests.factories import WorkspaceFactory

    ws = WorkspaceFactory()
    page = reverse("provisioning:workspace_detail", args=[ws.pk])
    client.force_login(bob)
    assert "Soft-deleted key vault" not in client.get(page).content.decode()

    vault = DeletedKeyVault.objects.create(
        name=ws.key_vault.upper(),  # names are compared without case
        subscription_id=ws.subscription_id,
        location=ws.region,
        azure_id=f"/subscriptions/{ws.subscription_id}/providers/Microsoft.KeyVault/locations/{ws.region}/"
        f"deletedVaults/{ws.key_vault}",
        workspace=ws,
        read_at=timezone.now(),
    )
    assert "Soft-deleted key vault" in client.get(page).content.decode()
    vault.purged_at = timezone.now()
    vault.save()
    assert "Soft-deleted key vault" not in client.get(page).content.decode()
