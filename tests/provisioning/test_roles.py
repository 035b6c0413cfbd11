"""The portal's custom roles read as Azure reads them: what each persona may and may not do."""

from __future__ import annotations

import pytest

from provisioning import arm
from provisioning.roles import CUSTOM_ROLE_PERMISSIONS, allows, persona_abilities

ML = "Microsoft.MachineLearningServices"


@pytest.mark.parametrize(
    ("entries", "action", "allowed"),
    [
        (
            {"actions": [f"{ML}/workspaces/*/write"], "not_actions": []},
            f"{ML}/workspaces/computes/write",
            True,
        ),
        (
            {"actions": [f"{ML}/workspaces/*/write"], "not_actions": [f"{ML}/workspaces/computes/*/write"]},
            f"{ML}/workspaces/computes/write",
            False,  # ambiguous (does "*" need a segment?): read as the denial Microsoft describes
        ),
        (
            {"actions": ["*"], "not_actions": ["microsoft.authorization/*"]},
            "Microsoft.Authorization/x/write",
            False,
        ),
        ({"actions": [f"{ML}/workspaces/*/read"], "not_actions": []}, f"{ML}/locations/usages/read", False),
    ],
)
def test_actions_match_as_azure_matches_them(entries, action, allowed) -> None:
    assert allows(entries, action) is allowed


def test_a_data_scientist_cannot_create_change_or_delete_clusters() -> None:
    scientist = CUSTOM_ROLE_PERMISSIONS["Data Scientist"]

    for action in ("computes/write", "computes/delete", "computes/cpu/write", "computes/listKeys/action"):
        assert not allows(scientist, f"{ML}/workspaces/{action}")
    assert allows(scientist, f"{ML}/workspaces/jobs/write")
    assert allows(scientist, f"{ML}/workspaces/computes/read")


def test_each_persona_reads_its_roles_in_words() -> None:
    scientist, lead = persona_abilities("data_scientist"), persona_abilities("team_lead")

    assert set(CUSTOM_ROLE_PERMISSIONS) == set(arm.CUSTOM_ROLES) | set(arm.ADMIN_ROLES)
    assert (scientist.role, lead.role) == ("Data Scientist", "Team Lead")
    assert "submit jobs on the workspace's clusters" in scientist.can
    assert "create or change clusters" in scientist.cannot
    assert "create and change clusters" in lead.can
    assert any(c.startswith("request quota") for c in lead.cannot)
    assert not set(scientist.can) & set(scientist.cannot)


def test_docs_roles_md_writes_down_every_line_of_the_admin_roles_with_its_reason() -> None:
    from pathlib import Path

    from provisioning.roles import ADMIN_ROLE_REASONS

    page = (Path(__file__).resolve().parents[2] / "docs" / "roles.md").read_text()
    for kinds in ADMIN_ROLE_REASONS.values():
        for kind, lines in kinds.items():
            verb = "allows" if kind == "actions" else "denies"
            for action, why in lines:
                assert f"| {verb} | `{action}` | {why} |" in page


def test_the_built_in_data_scientist_role_reads_as_microsoft_describes_it() -> None:
    builtin = persona_abilities("data_scientist", "AzureML Data Scientist")

    assert builtin.role == "AzureML Data Scientist"
    assert "submit jobs on the workspace's clusters" in builtin.can
    # Its computes/*/write is read as denying computes/write too ("except for creating compute resources").
    assert "create or change clusters" in builtin.cannot
    assert "create or change clusters" in persona_abilities("data_scientist").cannot
