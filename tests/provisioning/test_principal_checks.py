"""Members and groups are looked up in Entra ID by a worker at submit; a bad one blocks the approval."""

from __future__ import annotations

from typing import Any

import pytest

from provisioning import jobs
from provisioning.engine.principal_checks import request_check_principals
from provisioning.models import ChangeRequest, EnvironmentPolicy, Membership
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow import services
from provisioning.workflow.principal_checks import Target, principal_verdict
from provisioning.workflow.services import RequestError
from tests.factories import TUTORIAL_MEMBERS, ChangeRequestFactory, tutorial_workspace

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_only")]

UNKNOWN = "nobody.here@contoso.com"


def _directory(standin: Any, *, skip: str = "") -> dict[str, str]:
    """The tutorial's members and group in the directory; their object ids by UPN or name."""
    ids = {m.principal: standin.add_user(m.principal) for m in TUTORIAL_MEMBERS if m.principal != skip}
    return {**ids, "datasciencegroup": standin.add_group("datasciencegroup")}


def _submitted(alice: Any, capture: Any, members: tuple[MemberSpec, ...] = TUTORIAL_MEMBERS) -> ChangeRequest:
    spec = RequestSpec(workspace=tutorial_workspace(), members=members)
    with capture(execute=True):  # the checks are queued once the submit commits
        return ChangeRequestFactory(requester=alice, spec=spec, submitted=True)


def test_submit_queues_the_check(policy, alice, rq_queue, django_capture_on_commit_callbacks) -> None:
    cr = _submitted(alice, django_capture_on_commit_callbacks)
    assert f"check-principals-{cr.pk}" in rq_queue.job_ids
    assert ChangeRequest.objects.get(pk=cr.pk).principal_check is None


def test_unknown_upn_is_stopped_before_approval_with_the_member_named(
    policy, alice, bob, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks, client
) -> None:
    _directory(standin)
    members = (*TUTORIAL_MEMBERS, MemberSpec(principal=UNKNOWN, persona="data_scientist"))
    cr = _submitted(alice, django_capture_on_commit_callbacks, members)

    answers = request_check_principals(request_id=cr.pk, clients=azure_clients)

    refused = [a for a in answers if a["problem"]]
    assert [(a["principal"], a["field"]) for a in refused] == [(UNKNOWN, "members.4.principal")]
    assert refused[0]["problem"] == f"no user '{UNKNOWN}' in Entra ID"
    assert all(a["object_id"] for a in answers if not a["problem"])
    with pytest.raises(RequestError) as stopped:
        services.request_approve(request_id=cr.pk, approver=bob)
    assert [p.field for p in stopped.value.problems] == ["members.4.principal"]
    assert UNKNOWN in stopped.value.problems[0].message
    assert ChangeRequest.objects.get(pk=cr.pk).status == ChangeRequest.Status.SUBMITTED
    client.force_login(bob)
    page = client.get(f"/requests/{cr.pk}/").content.decode()
    assert "Entra ID does not accept 1 of them" in page
    assert f"no user &#x27;{UNKNOWN}&#x27; in Entra ID" in page
    assert "reject it with a reason" in page


def test_disabled_guest_and_microsoft_365_group_are_refused(
    policy, alice, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks
) -> None:
    standin.add_user("gone@contoso.com", enabled=False)
    guest = "partner_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    standin.add_user(guest, mail="partner@fabrikam.com", guest=True)
    standin.add_group("datasciencegroup", security=False)
    members = (
        MemberSpec(principal="gone@contoso.com", persona="data_scientist"),
        MemberSpec(principal="partner@fabrikam.com", persona="data_scientist"),
    )
    cr = _submitted(alice, django_capture_on_commit_callbacks, members)

    answers = {a["field"]: a for a in request_check_principals(request_id=cr.pk, clients=azure_clients)}

    assert "disabled" in answers["members.0.principal"]["problem"]
    assert "guest account" in answers["members.1.principal"]["problem"]
    assert "not a security group" in answers["workspace.security_group"]["problem"]
    assert not any(a["object_id"] for a in answers.values())


def test_guests_pass_where_the_environment_allows_them(
    policy, alice, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks
) -> None:
    EnvironmentPolicy.for_environment("dev")  # the row exists, with its defaults
    EnvironmentPolicy.objects.filter(environment="dev").update(guests_allowed=True)
    standin.add_user(
        "partner_fabrikam.com#EXT#@contoso.onmicrosoft.com", mail="partner@fabrikam.com", guest=True
    )
    standin.add_group("datasciencegroup")
    members = (MemberSpec(principal="partner@fabrikam.com", persona="data_scientist"),)
    cr = _submitted(alice, django_capture_on_commit_callbacks, members)

    answers = request_check_principals(request_id=cr.pk, clients=azure_clients)

    assert [a["problem"] for a in answers] == ["", ""]


def test_accepted_principals_let_the_approval_through_with_their_object_ids(
    policy, alice, bob, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks
) -> None:
    directory = _directory(standin)
    cr = _submitted(alice, django_capture_on_commit_callbacks)
    assert jobs.check_principals(cr.pk) == 0  # the job, as a worker runs it

    services.request_approve(request_id=cr.pk, approver=bob)

    ids = dict(Membership.objects.filter(change_request=cr).values_list("principal_name", "object_id"))
    assert ids == directory


def test_a_request_without_members_is_checked_at_once(
    policy, alice, rq_queue, django_capture_on_commit_callbacks
) -> None:
    spec = RequestSpec(workspace=tutorial_workspace(security_group=""))
    with django_capture_on_commit_callbacks(execute=True):
        cr = ChangeRequestFactory(requester=alice, spec=spec, submitted=True)
    assert ChangeRequest.objects.get(pk=cr.pk).principal_check == []
    assert f"check-principals-{cr.pk}" not in rq_queue.job_ids


def test_a_decided_request_keeps_its_answer(
    policy, alice, bob, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks
) -> None:
    _directory(standin, skip="user3@contoso.com")
    cr = _submitted(alice, django_capture_on_commit_callbacks)
    services.request_reject(request_id=cr.pk, approver=bob, reason="not now")
    assert request_check_principals(request_id=cr.pk, clients=azure_clients) == []
    assert ChangeRequest.objects.get(pk=cr.pk).principal_check is None


@pytest.mark.parametrize(
    ("found", "problem"),
    [
        ([{"id": "1"}, {"id": "2"}], "2 users have the address 'a@contoso.com'"),
        ([{"id": "1", "accountEnabled": True, "userType": "Member"}], ""),
        ([{"id": "1", "userType": "Guest"}], "guest account"),
    ],
)
def test_the_verdict_of_one_user(found: list[dict[str, Any]], problem: str) -> None:
    verdict = principal_verdict(Target("a@contoso.com", "user", "members.0.principal"), found, guests=False)
    assert problem in verdict["problem"] and bool(verdict["problem"]) == bool(problem)
    assert bool(verdict["object_id"]) == (not problem)


def test_two_groups_of_the_same_name_are_ambiguous() -> None:
    found = [{"id": "1", "securityEnabled": True}, {"id": "2", "securityEnabled": True}]
    verdict = principal_verdict(Target("team", "group", "workspace.security_group"), found, guests=False)
    assert verdict["problem"] == "2 groups are named 'team'" and verdict["object_id"] == ""
