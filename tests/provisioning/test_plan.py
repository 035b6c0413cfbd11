"""The plan as a pure function of the spec: changes to an existing workspace, tags, groups, revocations.

What approval stores for the tutorial (its 8 scopes per member, the design's roles, the resources'
settings) is checked in ``test_services_approval``; the step graph built from a plan in ``test_steps``.
"""

from __future__ import annotations

import pytest

from provisioning.plan import build_plan, role_assignments_for, tags_for
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from tests.factories import TUTORIAL_SUBSCRIPTION, tutorial_spec

# The names of an existing workspace, as ``services._workspace_names`` passes them (no data lake).
EXISTING = {
    "resource_group": "bgmr-falcon-eastus2-pro",
    "base": "bgmrfalcone2pro",
    "workspace": "bgmrfalcone2prows",
    "storage_work": "bgmrfalcone2prowork",
    "storage_data": "bgmrfalcone2prodata",
    "data_lake": "",
    "key_vault": "bgmrfalcone2prokv",
    "registry": "bgmrfalcone2procr",
    "app_insights": "bgmrfalcone2proai",
}
EXISTING_SCOPES = [
    ("resource_group", "bgmr-falcon-eastus2-pro"),
    ("workspace", "bgmrfalcone2prows"),
    ("storage_account", "bgmrfalcone2prowork"),
    ("storage_account", "bgmrfalcone2prodata"),
    ("key_vault", "bgmrfalcone2prokv"),
    ("registry", "bgmrfalcone2procr"),
    ("app_insights", "bgmrfalcone2proai"),
]
OTHER_SUBSCRIPTION = "0f0e0d0c-0b0a-4909-8807-060504030201"


def change(spec: RequestSpec, kind: str, **kwargs: object) -> dict:
    return build_plan(
        spec,
        kind=kind,
        request_id=7,
        owner="alice@contoso.com",
        existing_names=EXISTING,
        subscription_id=OTHER_SUBSCRIPTION,
        **kwargs,  # type: ignore[arg-type]
    )


def test_adding_clusters_to_an_existing_workspace_creates_no_resources_and_no_roles() -> None:
    spec = RequestSpec(
        clusters=(
            ClusterSpec("gpu", "STANDARD_NV6", "dedicated", max_nodes=2),
            ClusterSpec(
                "warm", "STANDARD_DS3_V2", min_nodes=1, max_nodes=2, justification="Demos at 9 every day"
            ),
        )
    )

    plan = change(spec, "add_clusters", workspace_quotas=[{"family": "standardNVFamily", "limit": 12}])

    assert (plan["kind"], plan["subscription_id"], plan["names"]) == (
        "add_clusters",
        OTHER_SUBSCRIPTION,
        EXISTING,
    )
    assert (plan["resources"], plan["role_assignments"], plan["revocations"]) == ([], [], [])
    assert plan["custom_roles"] == []  # nobody is granted anything: the custom roles are not needed
    assert plan["clusters"] == [
        {
            "name": "gpu",
            "vm_size": "STANDARD_NV6",
            "priority": "dedicated",
            "min_nodes": 0,
            "max_nodes": 2,
            "idle_seconds": 120,
        },
        {
            "name": "warm",
            "vm_size": "STANDARD_DS3_V2",
            "priority": "low_priority",
            "min_nodes": 1,
            "max_nodes": 2,
            "idle_seconds": 120,
            "justification": "Demos at 9 every day",
        },
    ]
    assert plan["workspace_quotas"] == [{"family": "standardNVFamily", "limit": 12}]


def test_a_change_to_an_existing_workspace_needs_its_names() -> None:
    with pytest.raises(AssertionError, match="need its names"):
        build_plan(
            RequestSpec(clusters=(ClusterSpec("gpu", "STANDARD_NV6"),)),
            kind="add_clusters",
            request_id=1,
            owner="",
        )


def test_granting_access_uses_the_existing_workspaces_scopes_without_a_data_lake() -> None:
    plan = change(RequestSpec(members=(MemberSpec("erin@contoso.com", "team_lead"),)), "grant_access")

    assert [(ra["scope_type"], ra["scope_name"]) for ra in plan["role_assignments"]] == EXISTING_SCOPES
    assert [ra["role"] for ra in plan["role_assignments"]] == [
        "Reader",
        "Team Lead",
        "Storage Blob Data Contributor",
        "Storage Blob Data Contributor",
        "Key Vault Secrets Officer",
        "AcrPush",
        "Reader",
    ]
    assert plan["custom_roles"] == ["Data Scientist", "Team Lead"]


def test_revocations_are_the_roles_the_persona_was_granted() -> None:
    revoked = [
        {"principal": "user2@contoso.com", "persona": "data_scientist", "principal_type": "user"},
        {"principal": "ml-readers", "persona": "data_scientist", "principal_type": "group"},
    ]

    plan = change(RequestSpec(revoke=(41, 42)), "revoke_access", revoked=revoked)

    assert plan["role_assignments"] == [] and plan["custom_roles"] == []
    by_principal = {
        p: [(ra["scope_name"], ra["role"]) for ra in plan["revocations"] if ra["principal"] == p]
        for p in ("user2@contoso.com", "ml-readers")
    }
    expected = list(
        zip(
            [name for _, name in EXISTING_SCOPES],
            [
                "Reader",
                "Data Scientist",
                "Storage Blob Data Contributor",
                "Storage Blob Data Contributor",
                "Key Vault Secrets User",
                "AcrPull",
                "Reader",
            ],
            strict=True,
        )
    )
    assert by_principal == {"user2@contoso.com": expected, "ml-readers": expected}
    assert {ra["principal_type"] for ra in plan["revocations"] if ra["principal"] == "ml-readers"} == {
        "group"
    }


def test_a_group_gets_the_data_scientist_roles_whatever_persona_it_names() -> None:
    group = MemberSpec("ml-leads", "team_lead", principal_type="group")

    assignments = role_assignments_for(group, EXISTING)

    assert {ra["role"] for ra in assignments} == {
        "Reader",
        "Data Scientist",
        "Storage Blob Data Contributor",
        "Key Vault Secrets User",
        "AcrPull",
    }
    assert {(ra["persona"], ra["principal_type"]) for ra in assignments} == {("team_lead", "group")}


def test_the_new_workspaces_security_group_is_granted_as_data_scientists() -> None:
    with_group = build_plan(tutorial_spec(), kind="new_workspace", request_id=3, owner="alice@contoso.com")
    without = build_plan(
        tutorial_spec(security_group=""), kind="new_workspace", request_id=3, owner="alice@contoso.com"
    )

    groups = [ra for ra in with_group["role_assignments"] if ra["principal_type"] == "group"]
    assert {ra["principal"] for ra in groups} == {"datasciencegroup"}
    assert len(groups) == 8
    assert len(with_group["role_assignments"]) - len(without["role_assignments"]) == 8
    assert not any(ra["principal_type"] == "group" for ra in without["role_assignments"])


def test_a_new_workspace_takes_its_subscription_and_names_from_the_spec() -> None:
    plan = build_plan(
        tutorial_spec(data_lake=False),
        kind="new_workspace",
        request_id=3,
        owner="alice@contoso.com",
        subscription_id=OTHER_SUBSCRIPTION,  # ignored: the spec says where the workspace goes
    )

    assert plan["subscription_id"] == TUTORIAL_SUBSCRIPTION
    assert plan["names"] == tutorial_spec(data_lake=False).workspace.names().as_dict()
    assert [r["type"] for r in plan["resources"]] == [
        "resource_group",
        "storage_account",
        "storage_account",
        "key_vault",
        "container_registry",
        "app_insights",
        "workspace",
    ]
    assert {r.get("location") for r in plan["resources"] if "location" in r} == {"eastus2"}


def test_tags_name_the_team_the_owner_and_the_request() -> None:
    spec = tutorial_spec(department=" BGMR ", team="BlueGranit", environment="Dev")

    assert tags_for(spec, request_id=12, owner="alice@contoso.com") == {
        "dept": "bgmr",
        "team": "bluegranit",
        "environment": "dev",
        "owner": "alice@contoso.com",
        "managed-by": "azureml-portal",
        "portal-request": "12",
    }
    assert tags_for(spec, request_id=None, owner="alice@contoso.com")["portal-request"] == ""


def test_the_plan_is_plain_data_and_keeps_no_reference_to_the_callers_lists() -> None:
    quotas = [{"family": "standardDv2Family", "limit": 24}]
    revoked: list[dict[str, str]] = []

    plan = change(
        RequestSpec(clusters=(ClusterSpec("gpu", "STANDARD_NV6"),)), "add_clusters", workspace_quotas=quotas
    )
    quotas.append({"family": "standardNVFamily", "limit": 6})

    assert plan["workspace_quotas"] == [{"family": "standardDv2Family", "limit": 24}]
    assert change(RequestSpec(), "add_clusters", revoked=revoked) == change(RequestSpec(), "add_clusters")
