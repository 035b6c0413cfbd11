"""The access-control matrix, walked through the API: the same people see and do the same as on the pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from tests.api.conftest import Api, token_of
from tests.factories import ChangeRequestFactory, MemberSpec, tutorial_spec

pytestmark = pytest.mark.django_db

USERS = ("alice", "bob", "charlie", "dana", "anonymous")


@pytest.fixture
def world(policy, alice, bob, charlie, dana, rq_queue) -> dict[str, Any]:
    """alice owns an approved workspace (dana is a member of it), a submitted request and a draft."""
    spec = tutorial_spec(security_group="")
    spec = type(spec)(
        workspace=spec.workspace,
        clusters=spec.clusters,
        members=(MemberSpec("dana@contoso.com", "data_scientist"),),
    )
    approved = ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True)
    submitted = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="second"), submitted=True)
    draft = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="third"))
    people = {"alice": alice, "bob": bob, "charlie": charlie, "dana": dana}
    return {
        "ws": approved.workspace.pk,
        "submitted": submitted.pk,
        "draft": draft.pk,
        "api": {name: Api(token_of(user)) for name, user in people.items()} | {"anonymous": Api()},
    }


# (method, path with {keys} from `world`, body, expected status per user in USERS order)
CASES = [
    ("get", "requests/", None, (200, 200, 200, 403, 401)),
    (
        "post",
        "requests/",
        {"kind": "new_workspace", "spec": tutorial_spec(team="fresh").to_json()},
        (201, 403, 201, 403, 401),
    ),
    ("get", "requests/{submitted}/", None, (200, 200, 404, 403, 401)),
    ("get", "requests/{draft}/", None, (200, 404, 404, 403, 401)),
    ("get", "requests/{submitted}/plan/", None, (200, 200, 404, 403, 401)),
    (
        "patch",
        "requests/{draft}/",
        {"spec": tutorial_spec(team="third").to_json()},
        (200, 404, 404, 403, 401),
    ),
    ("post", "requests/{submitted}/approve/", None, (403, 200, 404, 403, 401)),
    ("post", "requests/{submitted}/reject/", {"reason": "no"}, (403, 200, 404, 403, 401)),
    ("post", "requests/{submitted}/cancel/", None, (200, 403, 404, 403, 401)),
    ("post", "requests/{draft}/submit/", None, (200, 404, 404, 403, 401)),
    ("get", "workspaces/", None, (200, 200, 200, 200, 401)),
    ("get", "workspaces/{ws}/", None, (200, 200, 404, 200, 401)),
    ("get", "workspaces/{ws}/members/", None, (200, 200, 404, 200, 401)),
    ("get", "workspaces/{ws}/clusters/", None, (200, 200, 404, 200, 401)),
    ("get", "workspaces/{ws}/drift/", None, (403, 200, 403, 403, 401)),
    ("get", "capacity/", None, (403, 200, 403, 403, 401)),
    ("get", "audit/", None, (403, 200, 403, 403, 401)),
    ("get", "me/access/", None, (200, 200, 200, 200, 401)),
]


@pytest.mark.parametrize("user", USERS)
def test_the_matrix_through_the_api(world, user):
    """Every case for one person, each in a savepoint rolled back after it (one world per person)."""
    api = world["api"][user]
    for method, path, body, expected in CASES:
        url = path.format(**world)
        with transaction.atomic():
            response = api.get(url) if method == "get" else getattr(api, method)(url, body)
            transaction.set_rollback(True)
        want = expected[USERS.index(user)]
        assert response.status_code == want, (user, method, url, response.content[:300])
        if want >= 400:
            assert response.json()["detail"] and response.json()["problems"] is not None
