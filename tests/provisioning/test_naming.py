"""The naming convention: the tutorial's names, exactly, and Azure's rules at their boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning import naming
from provisioning.naming import (
    NamingInput,
    cluster_name_problem,
    naming_problems,
    resource_names,
    rule_problem,
)


def tutorial_input(**overrides: str) -> NamingInput:
    values = {
        "department": "bgmr",
        "team": "bluegranit",
        "region": "eastus2",
        "region_abbv": "e2",
        "environment": "dev",
        "custom_name": "",
    }
    values.update(overrides)
    return NamingInput(**values)


def fields(inp: NamingInput, *, data_lake: bool = True) -> list[str]:
    return [p.field for p in naming_problems(inp, data_lake=data_lake)]


def messages(inp: NamingInput, *, data_lake: bool = True) -> list[str]:
    return [p.message for p in naming_problems(inp, data_lake=data_lake)]


# --- the tutorial's example -------------------------------------------------------------------------


def test_tutorial_example_gives_the_scripts_names():
    names = resource_names(tutorial_input(), data_lake=True)
    assert names.as_dict() == {
        "resource_group": "bgmr-bluegranit-eastus2-dev",
        "base": "bgmrbluegranite2dev",
        "workspace": "bgmrbluegranite2devws",
        "storage_work": "bgmrbluegranite2devwork",
        "storage_data": "bgmrbluegranite2devdata",
        "data_lake": "bgmrbluegranite2devbig",
        "key_vault": "bgmrbluegranite2devkv",
        "registry": "bgmrbluegranite2devcr",
        "app_insights": "bgmrbluegranite2devai",
    }
    assert naming_problems(tutorial_input(), data_lake=True) == []


def test_no_data_lake_means_no_data_lake_name():
    names = resource_names(tutorial_input(), data_lake=False)
    assert names.data_lake == ""
    assert "data_lake" not in names.globally_unique()
    assert set(resource_names(tutorial_input(), data_lake=True).globally_unique()) == {
        "storage_work",
        "storage_data",
        "data_lake",
        "key_vault",
        "registry",
    }


def test_inputs_are_trimmed_and_lowercased():
    names = resource_names(
        tutorial_input(department=" BGMR", team="BlueGranit ", region_abbv="E2"), data_lake=False
    )
    assert names.storage_work == "bgmrbluegranite2devwork"
    assert names.resource_group == "bgmr-bluegranit-eastus2-dev"


def test_custom_name_replaces_resource_group_and_base():
    inp = tutorial_input(custom_name="myamlsresource")
    names = resource_names(inp, data_lake=True)
    assert names.resource_group == "myamlsresource"
    assert names.base == "myamlsresource"
    assert names.workspace == "myamlsresourcews"
    assert names.storage_work == "myamlsresourcework"
    assert names.storage_data == "myamlsresourcedata"
    assert names.data_lake == "myamlsresourcebig"
    assert names.key_vault == "myamlsresourcekv"
    assert names.registry == "myamlsresourcecr"
    assert naming_problems(inp, data_lake=True) == []


# --- Azure's rules, boundary by boundary --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "valid"),
    [
        # storage account: 3-24, lowercase letters and digits
        ("storage", "a" * 3, True),
        ("storage", "a" * 24, True),
        ("storage", "a" * 2, False),
        ("storage", "a" * 25, False),
        ("storage", "abc123", True),
        ("storage", "Abc", False),
        ("storage", "ab-c", False),
        ("storage", "ab_c", False),
        # key vault: 3-24, letter first, letters/digits/single hyphens, no trailing hyphen
        ("key_vault", "a" * 3, True),
        ("key_vault", "a" * 24, True),
        ("key_vault", "a" * 2, False),
        ("key_vault", "a" * 25, False),
        ("key_vault", "a-b", True),
        ("key_vault", "ab-cd-ef", True),
        ("key_vault", "1abc", False),
        ("key_vault", "-abc", False),
        ("key_vault", "abc-", False),
        ("key_vault", "ab--cd", False),
        ("key_vault", "ab_cd", False),
        # container registry: 5-50 alphanumerics
        ("registry", "a" * 5, True),
        ("registry", "a" * 50, True),
        ("registry", "a" * 4, False),
        ("registry", "a" * 51, False),
        ("registry", "Abc12", True),
        ("registry", "abc-12", False),
        ("registry", "abc_12", False),
        # workspace: 3-33
        ("workspace", "a" * 3, True),
        ("workspace", "a" * 33, True),
        ("workspace", "a" * 2, False),
        ("workspace", "a" * 34, False),
        ("workspace", "my-ws_1", True),
        ("workspace", "-myws", False),
        # resource group: 1-90, not ending with '.'
        ("resource_group", "r" * 90, True),
        ("resource_group", "r" * 91, False),
        ("resource_group", "", False),
        ("resource_group", "bgmr-bluegranit-eastus2-dev", True),
        ("resource_group", "rg.(1)_x", True),
        ("resource_group", "rg.", False),
        ("resource_group", "rg/x", False),
    ],
)
def test_rule_boundaries(kind: str, name: str, valid: bool):
    problem = rule_problem(kind, name)
    assert (problem is None) == valid, problem


@pytest.mark.parametrize(
    "kind", ["storage", "key_vault", "registry", "workspace", "resource_group", "cluster"]
)
def test_a_trailing_newline_never_passes_a_rule(kind: str):
    # `$` matches before a final newline; the rule must look at the whole name.
    assert rule_problem(kind, "abcde\n") is not None


def test_rule_messages_say_what_is_wrong():
    assert (
        rule_problem("storage", "ab") == "'ab' is too short for a storage account name: at least 3 characters"
    )
    assert rule_problem("storage", "a" * 25) == (
        f"'{'a' * 25}' is too long for a storage account name: 25 characters, at most 24"
    )
    assert rule_problem("storage", "Abc") == (
        "'Abc' is not a valid storage account name: lowercase letters and digits only"
    )


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ab", True),
        ("a" * 16, True),
        ("ds13-v2-2ndclust", True),
        ("a", False),
        ("a" * 17, False),
        ("1cluster", False),
        ("-cluster", False),
        ("cluster-", False),
        ("my_cluster", False),
        ("my cluster", False),
        ("  cpu-1  ", True),  # surrounding spaces are trimmed, as the form does
    ],
)
def test_cluster_name_boundaries(name: str, valid: bool):
    problem = cluster_name_problem(name)
    assert (problem is None) == valid, problem


# --- the convention's own limits --------------------------------------------------------------------


def test_team_budget_is_ten_for_the_tutorials_inputs():
    # min(TEAM_MAX, storage max - longest suffix - fixed, BASE_MAX - fixed) with fixed = 4 + 2 + 3.
    fixed = len("bgmr") + len("e2") + len("dev")
    budget = min(naming.TEAM_MAX, 24 - len("work") - fixed, naming.BASE_MAX - fixed)
    assert budget == 10
    assert naming_problems(tutorial_input(team="b" * budget), data_lake=True) == []
    problems = naming_problems(tutorial_input(team="bluegranite"), data_lake=True)
    assert [(p.field, p.message) for p in problems] == [
        (
            "team",
            f"team name too long for a storage account: use at most {budget} characters or a custom name",
        ),
    ]


def test_a_custom_name_lifts_the_team_budget():
    assert (
        naming_problems(tutorial_input(team="bluegranitedatascience", custom_name="bgmrml"), data_lake=True)
        == []
    )


def test_custom_name_too_long():
    assert naming_problems(tutorial_input(custom_name="c" * naming.BASE_MAX), data_lake=True) == []
    problems = naming_problems(tutorial_input(custom_name="c" * 20), data_lake=True)
    assert [(p.field, p.message) for p in problems] == [
        ("custom_name", "custom name too long for a storage account: use at most 19 characters (it is 20)"),
    ]


@pytest.mark.parametrize(
    ("custom_name", "resource"),
    [
        ("my-aml", "storage account"),  # hyphens break the storage account rule
        ("1aml", "key vault"),  # a key vault starts with a letter
        ("ab", "container registry"),  # "abcr" is shorter than 5
    ],
)
def test_custom_name_checked_against_every_rule(custom_name: str, resource: str):
    problems = naming_problems(tutorial_input(custom_name=custom_name), data_lake=True)
    assert problems
    assert {p.field for p in problems} == {"custom_name"}
    assert resource in {p.resource for p in problems}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"department": "bgmrx"}, "department"),
        ({"department": ""}, "department"),
        ({"department": "bg-m"}, "department"),
        ({"department": "2dpt"}, "department"),  # would start the key vault name with a digit
        ({"team": ""}, "team"),
        ({"team": "blue-granit"}, "team"),
        ({"team": "blue granit"}, "team"),
        ({"environment": "prod"}, "environment"),
        ({"environment": "test"}, "environment"),
        ({"region_abbv": "e"}, "region_abbv"),
        ({"region_abbv": "e22"}, "region_abbv"),
        ({"region_abbv": "2e"}, "region_abbv"),
        ({"region_abbv": "e-"}, "region_abbv"),
    ],
)
def test_bad_components_are_refused(overrides: dict[str, str], field: str):
    assert fields(tutorial_input(**overrides)) == [field]


def test_department_message():
    assert messages(tutorial_input(department="bgmrx")) == ["department too long: use at most 4 characters"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"environment": "production"}, "environment"),
        ({"region_abbv": "eastus"}, "region_abbv"),
        ({"department": "finance"}, "department"),
        ({"team": "t" * 25}, "team"),
    ],
)
def test_a_custom_name_does_not_waive_the_other_inputs(overrides: dict[str, str], field: str):
    # They still become tags and Workspace columns (environment holds 3 characters, department 4).
    assert fields(tutorial_input(custom_name="bgmrml", **overrides)) == [field]


# --- properties ----------------------------------------------------------------------------------------

alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
departments = st.tuples(st.sampled_from(alnum[:26]), st.text(alnum, max_size=naming.DEPARTMENT_MAX - 1)).map(
    "".join
)
teams = st.text(alnum, min_size=1, max_size=naming.TEAM_MAX)
abbreviations = st.tuples(st.sampled_from(alnum[:26]), st.sampled_from(alnum)).map("".join)
environments = st.sampled_from(naming.ENVIRONMENTS)


@given(
    department=departments, team=teams, abbv=abbreviations, environment=environments, data_lake=st.booleans()
)
def test_every_conventional_input_gives_valid_names(department, team, abbv, environment, data_lake):
    inp = NamingInput(
        department=department, team=team, region="eastus2", region_abbv=abbv, environment=environment
    )
    assert naming_problems(inp, data_lake=data_lake) == []
    names = resource_names(inp, data_lake=data_lake)
    assert rule_problem("resource_group", names.resource_group) is None
    assert rule_problem("workspace", names.workspace) is None
    assert rule_problem("key_vault", names.key_vault) is None
    assert rule_problem("registry", names.registry) is None
    for storage in (names.storage_work, names.storage_data, names.data_lake or "lake"):
        assert rule_problem("storage", storage) is None


@given(
    department=departments,
    team=st.text(alnum, min_size=naming.TEAM_MAX + 1, max_size=30),
    abbv=abbreviations,
    environment=environments,
)
def test_every_too_long_team_is_refused_never_cut(department, team, abbv, environment):
    inp = NamingInput(
        department=department, team=team, region="eastus2", region_abbv=abbv, environment=environment
    )
    assert fields(inp) == ["team"]
    assert team in resource_names(inp, data_lake=False).base


# --- the convention, backwards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("department", "team", "region", "abbv", "environment"),
    [
        ("bgmr", "bluegranit", "eastus2", "e2", "dev"),
        ("dpt2", "myteam", "eastus2", "e2", "res"),
        ("ops", "forecast", "westeurope", "we", "pro"),
    ],
)
def test_names_made_by_the_convention_read_back_to_its_inputs(
    department, team, region, abbv, environment
) -> None:
    inp = naming.NamingInput(department, team, region, abbv, environment)
    names = naming.resource_names(inp, data_lake=False)

    found = naming.parse_workspace_name(names.workspace, names.resource_group, location=region)

    assert found == naming.ConventionMatch(True, department, team, region, abbv, environment)


def test_the_tutorials_cut_names_read_back() -> None:
    # The scripts cut department to 4, team to 10 and the base to 19 characters.
    found = naming.parse_workspace_name("markcustomersee2devws", "marketing-customersegments-eastus2-dev")

    assert found.follows and (found.department, found.team) == ("marketing", "customersegments")
    assert (found.region_abbv, found.environment) == ("e2", "dev")


@pytest.mark.parametrize(
    ("workspace", "group", "location", "why"),
    [
        ("sandbox-ml", "rg-ml-sandbox", "", "is not department-team-region-environment"),
        ("mlws", "bgmr-blue-eastus2-qa", "", "environment 'qa'"),
        ("bgmrbluee2devws", "bgmr-blue-eastus2-dev", "westeurope", "the workspace is in 'westeurope'"),
        ("bgmrblue-e2devws", "bgmr-blue-eastus2-dev", "", "is not bgmrblue<region abbreviation>devws"),
        ("bgmrbluee2dev", "bgmr-blue-eastus2-dev", "", "does not end with 'ws'"),
        ("myamlsresourcews", "myamlsresource", "", "is not department-team-region-environment"),
    ],
)
def test_names_not_made_by_the_convention_say_why(workspace, group, location, why) -> None:
    found = naming.parse_workspace_name(workspace, group, location=location)

    assert not found.follows and why in found.reason
    assert (found.department, found.team, found.environment) == ("", "", "")


# --- projects and pools -------------------------------------------------------------------------------------


def test_a_project_joins_the_names_after_the_team():
    names = resource_names(tutorial_input(team="blue", project="churn"), data_lake=True)
    assert names.resource_group == "bgmr-blue-churn-eastus2-dev"
    assert names.base == "bgmrbluechurne2dev"
    assert names.workspace == "bgmrbluechurne2devws"
    assert names.storage_work == "bgmrbluechurne2devwork"
    assert naming_problems(tutorial_input(team="blue", project="churn"), data_lake=True) == []


def test_a_project_too_long_for_the_names_is_refused_with_the_room_left():
    found = naming_problems(tutorial_input(project="churn"), data_lake=True)  # bluegranit leaves no room
    assert [p.field for p in found] == ["project"]
    assert "shorten the team or a custom name" in found[0].message
    found = naming_problems(tutorial_input(team="blueg", project="churnpro"), data_lake=True)
    assert [p.field for p in found] == ["project"]
    assert "use at most 5 characters or a custom name" in found[0].message


@pytest.mark.parametrize("project", ["a", "1abc", "churn-x", "abcdefghi", "Ab_c"])
def test_a_project_short_name_is_2_to_8_letters_and_digits(project: str):
    assert "project" in fields(tutorial_input(team="blue", project=project))


def test_a_pool_is_named_like_a_team_workspace():
    names = resource_names(tutorial_input(team="commpool"), data_lake=False)
    assert names.resource_group == "bgmr-commpool-eastus2-dev"
    assert names.workspace == "bgmrcommpoole2devws"
