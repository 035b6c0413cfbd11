"""The plan's dependency graph: every operation present once, dependencies acyclic and meaningful."""

from provisioning.plan import build_plan
from provisioning.steps import critical_path, steps_for_plan
from tests.factories import tutorial_spec


def _tutorial_plan() -> dict:
    return build_plan(tutorial_spec(), kind="new_workspace", request_id=1, owner="alice@contoso.com")


def test_tutorial_graph_has_every_operation_once() -> None:
    specs = steps_for_plan(_tutorial_plan())
    keys = [s.key for s in specs]
    assert len(keys) == len(set(keys))
    kinds = [s.kind for s in specs]
    assert kinds.count("resource_group") == 1
    assert kinds.count("storage_account") == 3  # work, data, data lake
    assert kinds.count("workspace") == 1
    assert kinds.count("cluster") == 3
    assert kinds.count("custom_role") == 2
    assert kinds.count("principal") == 5  # 2 team leads, 2 data scientists, the security group
    assert kinds.count("role_grant") == 5 * 8  # 8 scopes each: rg, workspace, 3 storage, kv, acr, insights


def test_dependencies_point_backwards_and_exist() -> None:
    specs = steps_for_plan(_tutorial_plan())
    seen: set[str] = set()
    for spec in specs:
        assert set(spec.depends_on) <= seen, spec.key
        seen.add(spec.key)


def test_workspace_waits_for_its_resources_and_grants_for_scope_and_principal() -> None:
    specs = {s.key: s for s in steps_for_plan(_tutorial_plan())}
    assert set(specs["workspace"].depends_on) == {
        "resource_group",
        "storage_account:bgmrbluegranite2devwork",
        "key_vault:bgmrbluegranite2devkv",
        "container_registry:bgmrbluegranite2devcr",
        "app_insights:bgmrbluegranite2devai",
    }
    grant = specs["grant:user2@contoso.com:workspace:bgmrbluegranite2devws:Data Scientist"]
    assert set(grant.depends_on) == {
        "principal:user:user2@contoso.com",
        "workspace",
        "custom_role:Data Scientist",
    }
    assert grant.params["scope"].endswith(
        "/resourceGroups/bgmr-bluegranit-eastus2-dev/providers/Microsoft.MachineLearningServices/workspaces/"
        "bgmrbluegranite2devws"
    )


def test_critical_path_is_the_longest_chain() -> None:
    specs = steps_for_plan(_tutorial_plan())
    durations = {s.key: 1.0 for s in specs}
    length, path = critical_path(specs, durations)
    # resource group -> storage -> workspace -> cluster (or a workspace-scoped grant)
    assert length == 4.0
    assert path[0] == "resource_group" and path[2] == "workspace"
