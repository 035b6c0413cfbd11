"""What ``spec_problems`` refuses that the submit and form tests do not reach: each kind's own needs, the
workspace a change is made to (its clusters, members and memberships), and which names are held.

The naming and policy problems of a new workspace, field by field, are in ``test_services``; environment
policy, sizes and budgets in ``test_capacity``.
"""

from __future__ import annotations

import pytest

from provisioning.models import AllowedRegion, ChangeRequest, Policy, ResourceState, VmSize, Workspace
from provisioning.problems import Problem
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.workflow.validation import names_in_use, region_abbreviation_problem, spec_problems
from tests.factories import (
    ChangeRequestFactory,
    ClusterFactory,
    MembershipFactory,
    WorkspaceFactory,
    tutorial_spec,
    tutorial_workspace,
    vm_size,
)

pytestmark = pytest.mark.django_db

Kind = ChangeRequest.Kind
TUTORIAL_NAMES = tutorial_spec().workspace.names()


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def messages(problems: list[Problem]) -> dict[str, str]:
    return {p.field: p.message for p in problems}


def cluster(name: str = "cpu", **values: object) -> ClusterSpec:
    return ClusterSpec(name=name, vm_size="STANDARD_DS3_V2", **values)  # type: ignore[arg-type]


# --- the region's abbreviation -----------------------------------------------------------------------------


def test_the_abbreviation_must_be_the_one_the_portal_knows_for_the_region(policy: None) -> None:
    eastus2 = AllowedRegion.objects.get(name="eastus2")

    wrong = region_abbreviation_problem(eastus2, " WE ")

    assert wrong == Problem("region_abbv", "East US 2 is abbreviated 'e2' in resource names, not 'we'")
    assert region_abbreviation_problem(eastus2, "E2") is None  # compared as names are made: lowercase


@pytest.mark.parametrize("typed", ["", "   "])
def test_nothing_typed_yet_is_left_to_the_naming_rules(policy: None, typed: str) -> None:
    assert region_abbreviation_problem(AllowedRegion.objects.get(name="eastus2"), typed) is None


def test_an_unknown_region_or_one_without_an_abbreviation_is_not_judged(policy: None) -> None:
    unabbreviated = AllowedRegion.objects.create(
        name="norwayeast", display_name="Norway East", abbreviation=""
    )

    assert region_abbreviation_problem(None, "xx") is None
    assert region_abbreviation_problem(unabbreviated, "xx") is None


# --- what each kind of request needs -------------------------------------------------------------------------


def test_a_new_workspace_request_needs_its_workspace_details(policy: None) -> None:
    problems = spec_problems(RequestSpec(clusters=(cluster(),)), kind=Kind.NEW_WORKSPACE)

    assert problems == [Problem("workspace", "a new-workspace request needs its workspace details")]


@pytest.mark.parametrize("kind", [Kind.ADD_CLUSTERS, Kind.GRANT_ACCESS, Kind.REVOKE_ACCESS])
def test_a_change_needs_the_workspace_it_changes(policy: None, kind: str) -> None:
    spec = RequestSpec(clusters=(cluster(),), members=(MemberSpec("x@contoso.com", "data_scientist"),))

    assert spec_problems(spec, kind=kind) == [
        Problem("workspace", "choose the workspace this request changes")
    ]


@pytest.mark.parametrize(
    ("kind", "field", "message"),
    [
        (Kind.ADD_CLUSTERS, "clusters", "add at least one cluster"),
        (Kind.GRANT_ACCESS, "members", "add at least one member"),
        (Kind.REVOKE_ACCESS, "revoke", "choose at least one member to revoke"),
    ],
)
def test_an_empty_change_is_refused(policy: None, kind: str, field: str, message: str) -> None:
    assert spec_problems(RequestSpec(), kind=kind, workspace=WorkspaceFactory()) == [Problem(field, message)]


def test_a_retired_workspace_takes_no_more_changes(policy: None) -> None:
    workspace = WorkspaceFactory(state=ResourceState.REVOKED)

    problems = spec_problems(RequestSpec(clusters=(cluster(),)), kind=Kind.ADD_CLUSTERS, workspace=workspace)

    assert problems == [Problem("workspace", f"workspace '{workspace.workspace_name}' is retired")]


def test_a_well_formed_change_to_a_live_workspace_has_no_problems(policy: None) -> None:
    workspace = WorkspaceFactory()

    assert (
        spec_problems(RequestSpec(clusters=(cluster(),)), kind=Kind.ADD_CLUSTERS, workspace=workspace) == []
    )
    grant = RequestSpec(members=(MemberSpec("newcomer@contoso.com", "data_scientist"),))
    assert spec_problems(grant, kind=Kind.GRANT_ACCESS, workspace=workspace) == []


# --- the workspace's clusters and members --------------------------------------------------------------------


def test_cluster_names_are_unique_in_the_workspace_ignoring_case_but_a_removed_one_is_free(
    policy: None,
) -> None:
    workspace = WorkspaceFactory()
    ClusterFactory(workspace=workspace, name="gpu")
    ClusterFactory(workspace=workspace, name="old", state=ResourceState.REVOKED)
    spec = RequestSpec(clusters=(cluster("GPU"), cluster("old")))

    problems = spec_problems(spec, kind=Kind.ADD_CLUSTERS, workspace=workspace)

    assert problems == [Problem("clusters.0.name", "the workspace already has a cluster named 'GPU'")]


def test_a_cluster_named_twice_in_one_request_is_refused_once(policy: None) -> None:
    spec = RequestSpec(clusters=(cluster("cpu"), cluster("gpu"), cluster("Cpu")))

    problems = spec_problems(spec, kind=Kind.ADD_CLUSTERS, workspace=WorkspaceFactory())

    assert problems == [Problem("clusters.2.name", "cluster name 'Cpu' appears twice in this request")]


def test_the_portal_limits_how_many_clusters_one_request_adds(policy: None) -> None:
    Policy.objects.update_or_create(pk=1, defaults={"max_clusters_per_request": 2})
    spec = RequestSpec(clusters=(cluster("a1"), cluster("a2"), cluster("a3")))

    problems = spec_problems(spec, kind=Kind.ADD_CLUSTERS, workspace=WorkspaceFactory())

    assert problems == [Problem("clusters", "at most 2 clusters per request")]


def test_a_size_without_low_priority_nodes_in_the_region_must_be_dedicated(policy: None) -> None:
    vm_size("eastus2", "Standard_DS3_v2", "standardDSv2Family", 4)
    VmSize.objects.filter(name="STANDARD_DS3_V2").update(low_priority_capable=False)
    workspace = WorkspaceFactory()

    low = spec_problems(
        RequestSpec(clusters=(cluster(priority="low_priority"),)), kind=Kind.ADD_CLUSTERS, workspace=workspace
    )

    assert messages(low) == {
        "clusters.0.priority": "STANDARD_DS3_V2 has no low-priority nodes in eastus2: choose dedicated"
    }


def test_a_live_member_is_not_added_again_but_a_revoked_one_may_come_back(policy: None) -> None:
    workspace = WorkspaceFactory()
    MembershipFactory(workspace=workspace, principal_name="user2@contoso.com")
    MembershipFactory(workspace=workspace, principal_name="gone@contoso.com", state=ResourceState.REVOKED)
    spec = RequestSpec(
        members=(
            MemberSpec("User2@Contoso.com", "team_lead"),
            MemberSpec("gone@contoso.com", "data_scientist"),
        )
    )

    problems = spec_problems(spec, kind=Kind.GRANT_ACCESS, workspace=workspace)

    assert problems == [
        Problem("members.0.principal", "'User2@Contoso.com' is already a member of the workspace")
    ]


def test_group_names_may_not_hold_control_characters(policy: None) -> None:
    spec = RequestSpec(members=(MemberSpec("data\nscience", "data_scientist", principal_type="group"),))

    problems = spec_problems(spec, kind=Kind.GRANT_ACCESS, workspace=WorkspaceFactory())

    assert problems == [
        Problem(
            "members.0.principal",
            "member holds the invisible or control character U+000A, which can make text read other than it "
            "is: remove it",
        )
    ]


def test_a_new_workspaces_security_group_is_checked_too(policy: None) -> None:
    spec = RequestSpec(workspace=tutorial_workspace(security_group="data\tscience"))

    assert fields(spec_problems(spec, kind=Kind.NEW_WORKSPACE)) == ["workspace.security_group"]


def test_only_active_members_of_this_workspace_can_be_revoked(policy: None) -> None:
    workspace = WorkspaceFactory()
    active = MembershipFactory(workspace=workspace)
    pending = MembershipFactory(workspace=workspace, state=ResourceState.PENDING)
    elsewhere = MembershipFactory()
    spec = RequestSpec(revoke=(active.pk, pending.pk, elsewhere.pk))

    problems = spec_problems(spec, kind=Kind.REVOKE_ACCESS, workspace=workspace)

    assert problems == [
        Problem("revoke.1", f"membership {pending.pk} is not an active member"),
        Problem("revoke.2", f"membership {elsewhere.pk} is not an active member"),
    ]


# --- which names are held ----------------------------------------------------------------------------------


def test_a_workspaces_names_are_held_and_every_clash_is_listed(policy: None) -> None:
    workspace = ChangeRequestFactory(succeeded=True).workspace  # a finished request holds no names itself

    (problem,) = names_in_use(TUTORIAL_NAMES)

    assert problem == Problem(
        "workspace.team",
        f"name already used by workspace '{workspace.workspace_name}' in the portal: "
        "bgmrbluegranite2devbig, bgmrbluegranite2devcr, bgmrbluegranite2devdata, bgmrbluegranite2devkv, "
        "bgmrbluegranite2devwork, bgmrbluegranite2devws; choose another team name or a custom name",
    )


def test_one_shared_globally_unique_name_is_enough_to_clash(policy: None) -> None:
    WorkspaceFactory(custom_name="shared", storage_data=TUTORIAL_NAMES.storage_data)

    (problem,) = names_in_use(TUTORIAL_NAMES, field="workspace.custom_name")

    assert problem.field == "workspace.custom_name"
    assert "in the portal: bgmrbluegranite2devdata;" in problem.message


def test_a_retired_workspace_frees_its_names(policy: None) -> None:
    cr = ChangeRequestFactory(approved=True)
    Workspace.objects.filter(pk=cr.workspace_id).update(state=ResourceState.REVOKED)

    assert [p.message for p in names_in_use(TUTORIAL_NAMES)] == [
        f"workspace name 'bgmrbluegranite2devws' is already requested by request #{cr.pk}; "
        "choose another team name or a custom name"
    ]  # the approved request still holds the workspace name; the workspace row no longer does


@pytest.mark.parametrize("status", ["draft", "rejected", "cancelled", "succeeded", "failed"])
def test_only_submitted_approved_or_provisioning_requests_hold_names(policy: None, status: str) -> None:
    ChangeRequestFactory(status=status)  # succeeded and failed requests leave the names to their workspace

    held = [p.message for p in names_in_use(TUTORIAL_NAMES) if "already requested" in p.message]

    assert held == []


@pytest.mark.parametrize("status", ["submitted", "approved", "provisioning"])
def test_a_pending_or_live_request_holds_its_names_but_not_against_itself(policy: None, status: str) -> None:
    cr = ChangeRequestFactory(status=status)

    held = [p.message for p in names_in_use(TUTORIAL_NAMES) if "already requested" in p.message]
    own = [
        p.message
        for p in names_in_use(TUTORIAL_NAMES, exclude_request_id=cr.pk)
        if "already requested" in p.message
    ]

    assert held == [
        f"workspace name 'bgmrbluegranite2devws' is already requested by request #{cr.pk}; "
        "choose another team name or a custom name"
    ]
    assert own == []
