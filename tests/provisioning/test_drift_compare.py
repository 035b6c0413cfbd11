"""The comparison of approved and observed state (``provisioning.drift``): pure, no database, no Azure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from provisioning.arm import OWNERSHIP_TAG, OWNERSHIP_VALUE
from provisioning.drift import (
    Approved,
    ApprovedCluster,
    ApprovedMember,
    Observation,
    SeenAssignment,
    SeenCluster,
    SeenResource,
    compare,
    expected_assignments,
    in_words,
)

SUB = "8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-team"
TAGS = {OWNERSHIP_TAG: OWNERSHIP_VALUE, "team": "t"}
NAMES = {
    "resource_group": "rg-team",
    "workspace": "teamws",
    "storage_work": "teamwork",
    "storage_data": "teamdata",
    "data_lake": "",
    "key_vault": "teamkv",
    "registry": "teamcr",
    "app_insights": "teamai",
}
LEAD = ApprovedMember("lead@contoso.com", "user", "team_lead", "11111111-1111-1111-1111-111111111111")
GROUP = ApprovedMember("scientists", "group", "data_scientist", "22222222-2222-2222-2222-222222222222")
CLUSTER = ApprovedCluster("cpu", "STANDARD_DS3_V2", "low_priority", 0, 2, 120)
APPROVED = Approved(SUB, NAMES, clusters=(CLUSTER,), members=(LEAD, GROUP))


def _resources(approved: Approved = APPROVED) -> tuple[SeenResource, ...]:
    return tuple(
        SeenResource(approved.resource_id(provider, name), name, provider, "eastus2", dict(TAGS))
        for _kind, provider, name in approved.resources()
    )


def _assignments(approved: Approved = APPROVED) -> tuple[SeenAssignment, ...]:
    return tuple(
        SeenAssignment(
            f"{e.scope}/providers/Microsoft.Authorization/roleAssignments/{n}",
            e.scope,
            f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{n}",
            e.role,
            e.member.object_id,
            e.member.principal_type.title(),
        )
        for n, e in enumerate(expected_assignments(approved))
    )


def _cluster(**changes: Any) -> SeenCluster:
    values: dict[str, Any] = {
        "azure_id": f"{APPROVED.cluster_id('cpu')}",
        "name": "cpu",
        "vm_size": "STANDARD_DS3_V2",
        "priority": "low_priority",
        "min_nodes": 0,
        "max_nodes": 2,
        "idle_seconds": 120,
        "tags": dict(TAGS),
    }
    values.update(changes)
    return SeenCluster(**values)


def _in_step(**changes: Any) -> Observation:
    seen = Observation(
        group=SeenResource(RG, "rg-team", "Microsoft.Resources/resourceGroups", "eastus2", dict(TAGS)),
        resources=_resources(),
        clusters=(_cluster(),),
        assignments=_assignments(),
    )
    return replace(seen, **changes)


def test_what_matches_the_approved_state_is_no_drift() -> None:
    assert compare(APPROVED, _in_step()) == []
    # 2 members x 7 scopes (no data lake): a group gets the data scientist column.
    roles = {(e.member.principal, e.role) for e in expected_assignments(APPROVED)}
    assert ("scientists", "Data Scientist") in roles and ("lead@contoso.com", "Team Lead") in roles
    assert len(expected_assignments(APPROVED)) == 14


def test_a_resized_cluster_is_one_item_per_changed_setting() -> None:
    seen = _in_step(clusters=(_cluster(max_nodes=40, priority="dedicated"),))

    found = compare(APPROVED, seen)

    assert [(d.kind, d.field, d.expected, d.actual) for d in found] == [
        ("changed", "priority", "low_priority", "dedicated"),
        ("changed", "max_nodes", 2, 40),
    ]
    assert all(d.resource_id.endswith("/computes/cpu") for d in found)
    assert len({d.key for d in found}) == 2


def test_vm_sizes_compare_whatever_their_case() -> None:
    assert compare(APPROVED, _in_step(clusters=(_cluster(vm_size="Standard_DS3_v2"),))) == []


def test_missing_resources_and_clusters() -> None:
    resources = tuple(r for r in _resources() if r.name != "teamkv")

    found = compare(APPROVED, _in_step(resources=resources, clusters=()))

    kinds = [(d.kind, d.details.get("name")) for d in found]
    assert ("missing", "teamkv") in kinds and ("missing", "cpu") in kinds
    cluster = next(d for d in found if d.details.get("name") == "cpu")
    assert cluster.expected == CLUSTER.settings()
    assert cluster.resource_id == APPROVED.cluster_id("cpu")


def test_a_gone_resource_group_takes_everything_with_it() -> None:
    found = compare(APPROVED, Observation(group=None))

    kinds = [d.kind for d in found]
    assert kinds[0] == "missing" and found[0].resource_id == RG
    assert kinds.count("missing") == 1 + 6 + 1  # the group, 6 resources, the cluster
    assert kinds.count("access_removed") == 14


def test_the_managed_by_tag_removed_is_a_change() -> None:
    resources = tuple(replace(r, tags={}) if r.name == "teamwork" else r for r in _resources())

    (found,) = compare(APPROVED, _in_step(resources=resources))

    assert (found.kind, found.field, found.expected, found.actual) == (
        "changed",
        "tags.managed-by",
        OWNERSHIP_VALUE,
        None,
    )


def test_resources_and_clusters_the_portal_did_not_make_are_unmanaged() -> None:
    stray = SeenResource(
        f"{RG}/providers/Microsoft.Storage/storageAccounts/byhand",
        "byhand",
        "Microsoft.Storage/storageAccounts",
    )
    extra = _cluster(name="byhand", azure_id=APPROVED.cluster_id("byhand"), tags={})

    found = compare(APPROVED, _in_step(resources=(*_resources(), stray), clusters=(_cluster(), extra)))

    assert [(d.kind, d.details["name"]) for d in found] == [("unmanaged", "byhand"), ("unmanaged", "byhand")]
    assert found[0].resource_id == stray.azure_id and found[1].details["type"] == "cluster"


def test_clusters_a_request_is_still_making_are_not_unmanaged() -> None:
    approved = replace(APPROVED, in_flight_clusters=frozenset({"new"}))
    new = _cluster(name="new", azure_id=APPROVED.cluster_id("new"))

    assert compare(approved, _in_step(clusters=(_cluster(), new))) == []


def test_access_removed_and_added() -> None:
    assignments = list(_assignments())
    removed = assignments.pop(0)
    owner = SeenAssignment(
        f"{RG}/providers/Microsoft.Authorization/roleAssignments/by-hand",
        RG,
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/8e3af657",
        "Owner",
        "33333333-3333-3333-3333-333333333333",
        "User",
        "someone@contoso.com",
    )

    found = compare(APPROVED, _in_step(assignments=(*assignments, owner)))

    gone, added = found
    assert (gone.kind, gone.resource_id, gone.expected["role"]) == (
        "access_removed",
        removed.scope,
        removed.role_name,
    )
    assert gone.details["scope_type"] == "resource_group" and gone.details["persona"] == "team_lead"
    assert (added.kind, added.resource_id) == ("access_added", owner.azure_id)
    assert added.details["assignment_id"] == owner.azure_id
    assert added.details["role_name"] == "Owner" and added.details["principal_type"] == "User"
    assert added.details["principal_name"] == "someone@contoso.com" and added.details["scope_managed"] is True
    assert in_words(added.actual) == "Owner for someone@contoso.com"


def test_access_on_what_the_portal_does_not_make_or_of_its_own_identities_is_not_drift() -> None:
    stray_id = f"{RG}/providers/Microsoft.Storage/storageAccounts/byhand"
    workspace = next(r for r in _resources() if r.name == "teamws")
    with_identity = tuple(
        replace(r, identity_principal_id="44444444-4444-4444-4444-444444444444") if r.name == "teamws" else r
        for r in _resources()
    )
    on_stray = SeenAssignment(
        f"{stray_id}/providers/x/roleAssignments/a", stray_id, "d", "Owner", "5", "User"
    )
    of_workspace = SeenAssignment(
        f"{RG}/providers/x/roleAssignments/b",
        workspace.azure_id,
        "d",
        "Contributor",
        "44444444-4444-4444-4444-444444444444",
        "ServicePrincipal",
    )
    stray = SeenResource(stray_id, "byhand", "Microsoft.Storage/storageAccounts")

    found = compare(
        APPROVED,
        _in_step(resources=(*with_identity, stray), assignments=(*_assignments(), on_stray, of_workspace)),
    )

    assert [d.kind for d in found] == ["unmanaged"]


def test_members_never_resolved_and_members_in_flight_are_not_compared() -> None:
    unresolved = ApprovedMember("new@contoso.com", "user", "data_scientist", "")
    leaving = "55555555-5555-5555-5555-555555555555"
    approved = replace(
        APPROVED, members=(*APPROVED.members, unresolved), in_flight_principals=frozenset({leaving})
    )
    still_there = SeenAssignment(f"{RG}/providers/x/roleAssignments/c", RG, "d", "Reader", leaving, "User")

    assert compare(approved, _in_step(assignments=(*_assignments(), still_there))) == []


def test_the_same_difference_has_the_same_key_in_every_reconcile() -> None:
    seen = _in_step(clusters=(_cluster(max_nodes=40),))
    again = _in_step(clusters=(_cluster(max_nodes=50),))

    assert [d.key for d in compare(APPROVED, seen)] == [d.key for d in compare(APPROVED, again)]


def test_the_workspace_admin_groups_admin_role_is_the_portals_not_drift() -> None:
    group = "66666666-6666-6666-6666-666666666666"
    approved = replace(APPROVED, admin_principals=frozenset({group}))
    admin = SeenAssignment(
        f"{RG}/providers/x/roleAssignments/d", RG, "d", "AzureML Workspace Admin", group, "Group"
    )
    owner_too = SeenAssignment(f"{RG}/providers/x/roleAssignments/e", RG, "d", "Owner", group, "Group")
    someone = replace(admin, azure_id=f"{RG}/providers/x/roleAssignments/f", principal_id="7")

    found = compare(approved, _in_step(assignments=(*_assignments(), admin, owner_too, someone)))

    # Only its admin role is explained: the same group as Owner, or the role for someone else, is drift.
    assert sorted(d.details["role_name"] + "|" + d.details["principal_id"] for d in found) == [
        "AzureML Workspace Admin|7",
        f"Owner|{group}",
    ]
