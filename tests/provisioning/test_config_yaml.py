"""Reading the tutorial's config.yml into a request spec, and writing a workspace back."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.configfile import ConfigError, export_config, parse_config
from provisioning.models import ChangeRequest, Workspace
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from tests.factories import TUTORIAL_CLUSTERS, ChangeRequestFactory, tutorial_workspace

DATA = Path(__file__).resolve().parent.parent / "data"
TUTORIAL = (DATA / "config.yml").read_text()

pytestmark = pytest.mark.django_db

TUTORIAL_CONFIG_MEMBERS = (
    MemberSpec(principal="admin1@contoso.com", persona="team_lead"),
    MemberSpec(principal="user1@contoso.com", persona="team_lead"),
    MemberSpec(principal="user2@contoso.com", persona="data_scientist"),
)
TUTORIAL_CONFIG_SPEC = RequestSpec(
    workspace=tutorial_workspace(), clusters=TUTORIAL_CLUSTERS, members=TUTORIAL_CONFIG_MEMBERS
)

# (id, text to replace in the tutorial, replacement, line, field, part of the message).
# tests/data/config.yml: 1 workspace, 2 subscription, 3 custom_name, 4 department, 5 team, 6 region,
# 7 region_abbv, 8 environment, 9 admin, 10 security_group, 11 create_dls, 12 compute, 13 nodes,
# 14 priority, 15 vm_sku, 16 cluster_name, 17 roles, 18 team_leads, 19 data_scientists.
MALFORMED = [
    ("yaml-syntax", "department: bgmr", "department: bgmr: x", 4, "workspace.department", "not valid YAML"),
    ("yaml-indentation", "  admin:", " admin:", 9, "workspace.admin", "indentation"),
    ("yaml-unclosed-list", "nodes: 1, 2, 1", "nodes: [1, 2, 1", 14, "compute.priority", "not valid YAML"),
    ("empty-file", TUTORIAL, "", 1, "workspace", "empty"),
    (
        "unknown-section",
        "roles:",
        "networking:\n  vnet: x\nroles:",
        17,
        "networking",
        "known keys: workspace",
    ),
    ("unknown-key", "  region:", "  regoin:", 6, "workspace.regoin", "did you mean 'region'"),
    ("unknown-compute-key", "  nodes:", "  node_count:", 13, "compute.node_count", "known keys: nodes"),
    (
        "repeated-key",
        "  team: bluegranit\n",
        "  team: bluegranit\n  team: other\n",
        6,
        "workspace.team",
        "twice",
    ),
    (
        "section-not-mapping",
        TUTORIAL[TUTORIAL.index("roles:") :],
        "roles: everyone\n",
        17,
        "roles",
        "must be a section",
    ),
    ("missing-department", "  department: bgmr\n", "", 1, "workspace.department", "required but missing"),
    ("blank-department", "department: bgmr", "department:", 4, "workspace.department", "required but blank"),
    ("missing-admin", "  admin: admin1@contoso.com\n", "", 1, "workspace.admin", "required but missing"),
    (
        "missing-vm-sku",
        "  vm_sku: STANDARD_DS3_V2, STANDARD_D13_V2, STANDARD_NV6\n",
        "",
        12,
        "compute.vm_sku",
        "required",
    ),
    (
        "nodes-not-a-number",
        "nodes: 1, 2, 1",
        "nodes: 1, two, 1",
        13,
        "compute.nodes",
        "'two' is not a whole number",
    ),
    (
        "list-length-mismatch",
        "priority: lowpriority, dedicated, lowpriority",
        "priority: lowpriority, dedicated",
        14,
        "compute.priority",
        "2 value(s) for 3 cluster(s)",
    ),
    (
        "bad-priority",
        "priority: lowpriority, dedicated,",
        "priority: lowpriority, spot,",
        14,
        "compute.priority",
        "'spot' is not a priority",
    ),
    (
        "bad-create-dls",
        "create_dls: y",
        "create_dls: maybe",
        11,
        "workspace.create_dls",
        "'maybe' is not y or n",
    ),
    (
        "create-dls-adls-disagree",
        "create_dls: y",
        "create_dls: y\n  adls: n",
        12,
        "workspace.adls",
        "disagree",
    ),
    (
        "cluster-name-17-chars",
        "ds13-v2-2ndclust,",
        "ds13-v2-2ndclustr,",
        16,
        "compute.cluster_name",
        "cluster 2 'ds13-v2-2ndclustr': 'ds13-v2-2ndclustr' is too long",
    ),
    ("cluster-name-twice", "nv6-gpucluster", "ds3-v2-cluster", 16, "compute.cluster_name", "cluster 3"),
    (
        "vm-size-not-allowed",
        "STANDARD_NV6",
        "STANDARD_M128",
        15,
        "compute.vm_sku",
        "cluster 3 'nv6-gpucluster': VM size 'STANDARD_M128' is not one the portal allows",
    ),
    ("nodes-above-policy", "nodes: 1, 2, 1", "nodes: 1, 50, 1", 13, "compute.nodes", "max nodes must be"),
    (
        "bad-email",
        "user2@contoso.com",
        "user2@contoso",
        19,
        "roles.data_scientists",
        "'user2@contoso' is not an email address",
    ),
    (
        "bad-team-lead",
        "team_leads: admin1@contoso.com, user1@contoso.com",
        "team_leads: admin1@contoso.com, user1",
        18,
        "roles.team_leads",
        "'user1' is not an email address",
    ),
    ("bad-admin", "admin: admin1@contoso.com", "admin: admin1", 9, "workspace.admin", "not an email address"),
    (
        "unknown-region",
        "region: eastus2",
        "region: marsnorth",
        6,
        "workspace.region",
        "not one the portal allows",
    ),
    (
        "unknown-subscription",
        "8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27",
        "00000000-0000-0000-0000-000000000000",
        2,
        "workspace.subscription",
        "not one the portal allows",
    ),
    ("team-too-long", "team: bluegranit", "team: bluegranitextra", 5, "workspace.team", "too long"),
    ("bad-region-abbv", "region_abbv: e2", "region_abbv: e22", 7, "workspace.region_abbv", "exactly 2"),
    (
        "region-abbv-of-another-region",
        "region_abbv: e2",
        "region_abbv: we",
        7,
        "workspace.region_abbv",
        "East US 2 is abbreviated 'e2' in resource names, not 'we'",
    ),
    ("bad-environment", "environment: dev", "environment: test", 8, "workspace.environment", "res, dev, pro"),
    (
        "custom-name-too-long",
        "custom_name:",
        "custom_name: averyveryverylongcustomname",
        3,
        "workspace.custom_name",
        "too long",
    ),
]


def malformed_text(old: str, new: str) -> str:
    assert old in TUTORIAL
    return TUTORIAL.replace(old, new, 1)


def assert_issue(message: str, line: int, field: str, fragment: str) -> None:
    where = f"config.yml line {line}, {field}: "
    matching = [m for m in message.splitlines() if m.startswith(where)]
    assert matching, f"no '{where}' in:\n{message}"
    assert any(fragment in m for m in matching), message


def test_tutorial_example_gives_the_tutorial_request(policy):
    spec = parse_config(TUTORIAL)

    assert spec == TUTORIAL_CONFIG_SPEC
    names = spec.workspace.names()
    assert names.workspace == "bgmrbluegranite2devws"
    assert (names.storage_work, names.storage_data) == ("bgmrbluegranite2devwork", "bgmrbluegranite2devdata")
    assert names.data_lake == "bgmrbluegranite2devbig"
    assert (names.key_vault, names.registry) == ("bgmrbluegranite2devkv", "bgmrbluegranite2devcr")
    assert names.resource_group == "bgmr-bluegranit-eastus2-dev"


def test_the_scripts_layout_adls_lists_and_quotes_give_the_same_request(policy):
    spec = parse_config((DATA / "config_scripts.yml").read_text())

    assert spec == TUTORIAL_CONFIG_SPEC


@pytest.mark.parametrize("key", ["create_dls", "adls"])
@pytest.mark.parametrize(
    ("value", "data_lake"),
    [("y", True), ("yes", True), ("True", True), ("n", False), ("no", False), ("false", False), ("", False)],
)
def test_data_lake_flag_is_read_from_either_key(policy, key, value, data_lake):
    spec = parse_config(TUTORIAL.replace("create_dls: y", f"{key}: {value}"))

    assert spec.workspace.data_lake is data_lake
    assert bool(spec.workspace.names().data_lake) is data_lake


def test_blank_optional_values_and_empty_sections(policy):
    spec = parse_config((DATA / "config_minimal.yml").read_text())

    ws = spec.workspace
    assert (ws.custom_name, ws.security_group, ws.data_lake) == ("", "", False)
    assert spec.clusters == ()
    assert spec.members == (MemberSpec(principal="lead@contoso.com", persona="team_lead"),)
    assert spec.all_members() == spec.members
    assert ws.names().workspace == "finriskweresws"


def test_admin_not_listed_becomes_the_first_team_lead_and_a_person_in_both_lists_stays_team_lead(policy):
    text = TUTORIAL.replace(
        "team_leads: admin1@contoso.com, user1@contoso.com", "team_leads: user1@contoso.com"
    )

    spec = parse_config(text)

    assert spec.members == TUTORIAL_CONFIG_MEMBERS


def test_optional_min_nodes_and_idle_seconds_per_cluster_or_for_all(policy):
    per_cluster = TUTORIAL.replace(
        "roles:",
        "  min_nodes: 0, 1, 0\n  idle_seconds: 300, 120, 1800\n"
        "  justification: ['', 'Nightly scoring, a warm node saves 5 minutes', '']\nroles:",
    )
    for_all = TUTORIAL.replace("roles:", "  idle_seconds: 600\nroles:")

    clusters = parse_config(per_cluster).clusters
    assert [(c.min_nodes, c.idle_seconds) for c in clusters] == [(0, 300), (1, 120), (0, 1800)]
    assert clusters[1].justification == "Nightly scoring, a warm node saves 5 minutes"
    assert {c.idle_seconds for c in parse_config(for_all).clusters} == {600}


@pytest.mark.parametrize(
    ("case", "old", "new", "line", "field", "fragment"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_config_names_its_line_and_field(policy, case, old, new, line, field, fragment):
    with pytest.raises(ConfigError) as raised:
        parse_config(malformed_text(old, new))

    assert_issue(raised.value.message, line, field, fragment)
    assert ChangeRequest.objects.count() == 0


def test_every_problem_is_reported_in_line_order(policy):
    text = TUTORIAL.replace("region: eastus2", "region: marsnorth").replace("user2@contoso.com", "user2")

    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="team.yml")

    assert [(i.line, i.field) for i in raised.value.issues] == [
        (6, "workspace.region"),
        (19, "roles.data_scientists"),
    ]
    assert raised.value.message.splitlines()[0].startswith("team.yml line 6, workspace.region: ")


def test_name_already_used_by_a_portal_workspace(policy, alice, bob):
    ChangeRequestFactory(requester=alice, approver=bob, spec=parse_config(TUTORIAL), approved=True)

    with pytest.raises(ConfigError) as raised:
        parse_config(TUTORIAL)
    assert_issue(
        raised.value.message, 5, "workspace.team", "already used by workspace 'bgmrbluegranite2devws'"
    )

    with pytest.raises(ConfigError) as raised:
        parse_config(TUTORIAL.replace("custom_name:", "custom_name: bgmrbluegranite2dev"))
    assert_issue(raised.value.message, 3, "workspace.custom_name", "already used by workspace")


def test_name_already_requested_by_a_pending_request(policy, alice):
    cr = ChangeRequestFactory(requester=alice, spec=parse_config(TUTORIAL), submitted=True)

    with pytest.raises(ConfigError) as raised:
        parse_config(TUTORIAL)

    assert_issue(raised.value.message, 5, "workspace.team", f"already requested by request #{cr.pk}")


def approved_workspace(spec: RequestSpec, requester, approver) -> Workspace:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(requester=requester, approver=approver, spec=spec, approved=True).workspace


def test_export_writes_the_tutorial_layout_and_reads_back_as_the_same_request(policy, alice, bob):
    spec = parse_config(TUTORIAL)
    workspace = approved_workspace(spec, alice, bob)

    exported = export_config(workspace)

    assert "  create_dls: y\n" in exported
    assert "  nodes: 1, 2, 1\n" in exported
    assert "  priority: lowpriority, dedicated, lowpriority\n" in exported
    assert "  cluster_name: ds3-v2-cluster, ds13-v2-2ndclust, nv6-gpucluster\n" in exported
    assert "  data_scientists: user2@contoso.com\n" in exported
    assert "min_nodes" not in exported
    assert parse_config(exported, validate=False) == spec


def test_export_round_trip_keeps_custom_values(policy, alice, bob):
    spec = RequestSpec(
        workspace=tutorial_workspace(
            custom_name="mlteam42", security_group="Data Science: Team #1", data_lake=False
        ),
        clusters=(
            ClusterSpec(
                name="gpu",
                vm_size="STANDARD_NV6",
                priority="dedicated",
                max_nodes=3,
                min_nodes=1,
                idle_seconds=900,
                justification="Demo days: the first run must start at once, no scale-up wait",
            ),
        ),
        members=(MemberSpec(principal="alice@contoso.com", persona="team_lead"),),
    )
    workspace = approved_workspace(spec, alice, bob)

    exported = export_config(workspace)

    assert "  admin: alice@contoso.com\n" in exported
    assert '  security_group: "Data Science: Team #1"\n' in exported
    assert "  create_dls: n\n" in exported
    assert parse_config(exported, validate=False) == spec


def test_a_project_and_a_pool_round_trip_with_their_purpose(policy, alice, bob):
    project_text = TUTORIAL.replace("team: bluegranit", "team: blue\n  purpose: project\n  project: churn")
    project = parse_config(project_text)
    assert project.workspace is not None and project.workspace.names().workspace == "bgmrbluechurne2devws"
    exported = export_config(approved_workspace(project, alice, bob))
    assert "  purpose: project\n  project: churn\n" in exported
    assert parse_config(exported, validate=False) == project

    pool_text = TUTORIAL.replace(
        "team: bluegranit", "team: commpool\n  purpose: pool\n  pool_teams: bgmr/blue, bgmr/nobody"
    )
    with pytest.raises(ConfigError) as refused:
        parse_config(pool_text)
    (issue,) = refused.value.issues
    assert issue.field == "workspace.pool_teams" and "bgmr/nobody" in issue.message
    pool = parse_config(pool_text.replace(", bgmr/nobody", ""))
    exported = export_config(approved_workspace(pool, alice, bob))
    assert '  pool_teams: "bgmr/blue"\n' in exported  # quoted: "/" is not plain YAML here
    assert parse_config(exported, validate=False) == pool
