"""The engine's step handlers: one per kind the plans produce, and a loud failure for any other."""

from __future__ import annotations

import pytest

from provisioning import arm
from provisioning.azure import authz
from provisioning.engine import handlers
from provisioning.plan import build_plan
from provisioning.steps import StepSpec, steps_for_plan
from tests.factories import tutorial_spec


def test_every_step_kind_of_a_full_plan_has_a_handler() -> None:
    plan = build_plan(
        tutorial_spec(),
        kind="new_workspace",
        request_id=1,
        owner="lead@contoso.com",
        workspace_quotas=[{"family": "standardDSv2Family", "limit": 24}],
    )
    kinds = {s.kind for s in steps_for_plan(plan)}
    assert kinds <= set(handlers.HANDLERS)
    assert {"resource_group", "workspace", "cluster", "workspace_quota", "custom_role", "role_grant"} <= kinds


def test_revocations_have_a_handler_too() -> None:
    plan = build_plan(
        tutorial_spec(),
        kind="revoke_access",
        request_id=2,
        owner="lead@contoso.com",
        existing_names={"resource_group": "rg", "workspace": "ws"},
        subscription_id="sub",
        revoked=[{"principal": "user2@contoso.com", "persona": "data_scientist", "principal_type": "user"}],
    )
    assert "role_revoke" in {s.kind for s in steps_for_plan(plan)}


def test_an_unknown_step_kind_fails_instead_of_falling_through() -> None:
    spec = StepSpec("mystery:1", "mystery", "something new", (), {})
    with pytest.raises(handlers.UnknownStepKind, match="mystery"):
        handlers.step_do(None, spec)  # type: ignore[arg-type]


def test_the_custom_roles_are_named_once() -> None:
    assert set(authz.CUSTOM_ROLE_PERMISSIONS) == set(arm.CUSTOM_ROLES) | set(arm.ADMIN_ROLES)
