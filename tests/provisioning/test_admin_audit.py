"""Policy edits through the Django admin are audited: actor, object, the fields' old and new values."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts import personas
from accounts.models import User
from provisioning.audit import audit_verify_chain
from provisioning.models import AllowedRegion, AllowedVmSize, AuditEvent, EnvironmentPolicy, VmPrice
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client, policy) -> User:
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def _form_data(response: Any) -> dict[str, Any]:
    """The admin form as a browser would post it back unchanged."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = [str(v) for v in value] if isinstance(value, list | tuple) else value
    return data


def _change(client: Any, obj: Any, **changes: Any) -> Any:
    url = reverse(f"admin:provisioning_{obj._meta.model_name}_change", args=[obj.pk])
    data = {**_form_data(client.get(url)), **changes}
    return client.post(url, data)


def test_an_environment_policy_change_is_audited_with_old_and_new_values(client, root) -> None:
    dev = EnvironmentPolicy.objects.get(environment="dev")
    old_max, old_sizes = dev.max_nodes, sorted(str(s) for s in dev.allowed_sizes.all())
    kept = AllowedVmSize.objects.get(name="STANDARD_DS3_V2")

    response = _change(client, dev, max_nodes=old_max + 2, allowed_sizes=[str(kept.pk)])

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="policy.environmentpolicy.changed")
    assert (event.actor, event.object_type, event.object_id) == ("root", "environmentpolicy", str(dev.pk))
    assert event.before == {"max_nodes": old_max, "allowed_sizes": old_sizes}
    assert event.after == {"max_nodes": old_max + 2, "allowed_sizes": ["STANDARD_DS3_V2"]}
    assert audit_verify_chain()[1] is None


def test_saving_unchanged_writes_nothing_and_adding_or_deleting_is_audited(client, root) -> None:
    region = AllowedRegion.objects.get(name="eastus2")
    assert _change(client, region).status_code == 302
    assert not AuditEvent.objects.filter(action__startswith="policy.").exists()

    add = client.post(
        reverse("admin:provisioning_vmprice_add"),
        {"vm_size": "STANDARD_E4S_V3", "priority": "dedicated", "hourly_usd": "0.25", "note": "list price"},
    )
    assert add.status_code == 302
    added = AuditEvent.objects.get(action="policy.vmprice.added")
    assert added.before is None and added.after["hourly_usd"] == "0.25"

    price = VmPrice.objects.get(vm_size="STANDARD_E4S_V3")
    client.post(reverse("admin:provisioning_vmprice_delete", args=[price.pk]), {"post": "yes"})
    deleted = AuditEvent.objects.get(action="policy.vmprice.deleted")
    assert deleted.object_id == str(price.pk) and deleted.before["vm_size"] == "STANDARD_E4S_V3"
    assert not VmPrice.objects.filter(pk=price.pk).exists()


def test_a_bulk_delete_audits_every_object(client, root) -> None:
    regions = list(AllowedRegion.objects.order_by("pk")[:2])
    response = client.post(
        reverse("admin:provisioning_allowedregion_changelist"),
        {"action": "delete_selected", "_selected_action": [r.pk for r in regions], "post": "yes"},
    )
    assert response.status_code == 302
    events = AuditEvent.objects.filter(action="policy.allowedregion.deleted").order_by("object_id")
    assert sorted(e.object_id for e in events) == sorted(str(r.pk) for r in regions)


def test_a_users_groups_change_is_audited_without_the_password(client, root) -> None:
    dana = UserFactory(username="dana2", persona=personas.DATA_SCIENTIST)
    admins = Group.objects.get(name=personas.ADMIN)
    url = reverse("admin:accounts_user_change", args=[dana.pk])
    data = {
        **_form_data(client.get(url)),
        "groups": [str(g.pk) for g in dana.groups.all()] + [str(admins.pk)],
    }
    data["last_login_0"], data["last_login_1"] = "", ""
    data["date_joined_0"], data["date_joined_1"] = dana.date_joined.strftime("%Y-%m-%d"), "00:00:00"
    response = client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="policy.user.changed")
    assert event.before["groups"] == [personas.DATA_SCIENTIST]
    assert event.after["groups"] == sorted([personas.DATA_SCIENTIST, personas.ADMIN])
    assert "password" not in event.before and "password" not in event.after
