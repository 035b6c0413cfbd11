"""Bounded input in the services (#15): limits and unsafe characters hold whatever sends the request (the form,
the config import, the command line), and the same form posted twice makes one draft."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest
from provisioning.problems import unsafe_character
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.workflow import recovery, services
from provisioning.workflow.transitions import RequestError
from provisioning.workflow.validation import MAX_MEMBERS_PER_REQUEST
from tests.factories import ChangeRequestFactory, tutorial_spec, tutorial_workspace
from tests.provisioning.test_config_yaml import TUTORIAL

pytestmark = pytest.mark.django_db

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "cpu\u202elaicnanif" shows as "cpufinancial"


@pytest.mark.parametrize(
    ("text", "multiline", "found"),
    [
        ("bluegranit", False, None),
        ("Zoë Müller-Łukasz 数据", False, None),
        (f"team{RLO}dorp", False, "U+202E"),
        ("a\u2066b", False, "U+2066"),
        ("zero\u200bwidth", False, "U+200B"),
        ("bell\x07", False, "U+0007"),
        ("two\nlines", False, "U+000A"),
        ("two\nlines\tand a tab", True, None),
        ("bom\ufeff", True, "U+FEFF"),
    ],
)
def test_unsafe_characters(text: str, multiline: bool, found: str | None) -> None:
    assert unsafe_character(text, multiline=multiline) == found


def test_2001_members_through_the_config_import_are_refused_with_the_limit(
    policy, alice, tmp_path: Path
) -> None:
    scientists = ", ".join(f"user{i}@contoso.com" for i in range(2001))
    path = tmp_path / "config.yml"
    path.write_text(
        TUTORIAL.replace(
            "data_scientists: user1@contoso.com, user2@contoso.com", f"data_scientists: {scientists}"
        )
    )

    with pytest.raises(CommandError) as raised:
        call_command("import_config", str(path), requester="alice", stdout=StringIO())

    assert f"at most {MAX_MEMBERS_PER_REQUEST}" in str(raised.value) and "2002 members in one request" in str(
        raised.value
    )
    assert not ChangeRequest.objects.exists()


def test_the_services_refuse_past_the_bounds_even_for_a_draft(policy, alice) -> None:
    too_many = RequestSpec(
        workspace=tutorial_workspace(),
        members=tuple(
            MemberSpec(f"u{i}@contoso.com", "data_scientist") for i in range(MAX_MEMBERS_PER_REQUEST + 1)
        ),
    )
    with pytest.raises(RequestError) as raised:
        services.request_create(requester=alice, kind="new_workspace", spec=too_many)
    assert raised.value.problems[0].field == "members"

    draft = services.request_create(
        requester=alice, kind="new_workspace", spec=tutorial_spec(), lead_joins=False
    )
    sneaky = RequestSpec(
        workspace=tutorial_workspace(), clusters=(ClusterSpec(f"cpu{RLO}laicnanif", "STANDARD_DS3_V2"),)
    )
    with pytest.raises(RequestError) as raised:
        services.request_update(request_id=draft.pk, actor=alice, spec=sneaky)
    assert [p.field for p in raised.value.problems] == ["clusters.0.name"]
    assert "U+202E" in raised.value.problems[0].message
    huge = RequestSpec(
        workspace=tutorial_workspace(), clusters=(ClusterSpec("cpu", "STANDARD_DS3_V2", max_nodes=10**12),)
    )
    with pytest.raises(RequestError):
        services.request_update(request_id=draft.pk, actor=alice, spec=huge)
    assert RequestSpec.from_json(ChangeRequest.objects.get(pk=draft.pk).spec) == tutorial_spec()


def test_a_name_with_a_bidi_override_is_refused(policy, alice) -> None:
    spec = RequestSpec(workspace=tutorial_workspace(security_group=f"data{RLO}science"))
    with pytest.raises(RequestError) as raised:
        services.request_create(requester=alice, kind="new_workspace", spec=spec)
    assert [p.field for p in raised.value.problems] == ["workspace.security_group"]


def test_reasons_are_bounded_and_clean(policy, alice, bob) -> None:
    submitted = ChangeRequestFactory(requester=alice, submitted=True)
    with pytest.raises(RequestError, match="cannot be saved"):
        services.request_reject(request_id=submitted.pk, approver=bob, reason=f"no{RLO}")
    with pytest.raises(RequestError):
        services.request_reject(request_id=submitted.pk, approver=bob, reason="x" * 5000)
    failed = ChangeRequestFactory(
        requester=alice, approver=bob, spec=tutorial_spec(team="other"), failed=True
    )
    with pytest.raises(RequestError, match="cannot be saved"):
        recovery.request_keep(request_id=failed.pk, actor=bob, reason="keep\x1b[31m")
    assert not AuditEvent.objects.filter(action="request.rejected").exists()


def test_the_same_form_posted_twice_makes_one_draft(client, policy, alice) -> None:
    client.force_login(alice)
    page = client.get(reverse("provisioning:new_workspace"))
    token = page.context["form_token"]
    assert len(token) >= 16 and f'value="{token}"' in page.content.decode()
    from provisioning.workflow.forms import request_data

    data = {**request_data(tutorial_spec(), kind="new_workspace"), "form_token": token, "action": "draft"}
    first = client.post(reverse("provisioning:new_workspace"), data)
    second = client.post(reverse("provisioning:new_workspace"), data)

    assert ChangeRequest.objects.count() == 1
    cr = ChangeRequest.objects.get()
    assert first.url == second.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert AuditEvent.objects.filter(action="request.created").count() == 1
    other = client.get(reverse("provisioning:new_workspace")).context["form_token"]
    assert other != token
