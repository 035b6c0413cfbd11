"""Member fields search the directory as people type: the sign-in app's token, Graph's startswith, bounds."""

from __future__ import annotations

import pytest

from accounts import directory
from tests import factories

pytestmark = [pytest.mark.django_db]

URL = "/accounts/directory/"


@pytest.fixture
def directory_people(entra_mode):  # type: ignore[no-untyped-def]
    entra_mode.add_user("ada.lovelace@contoso.com", display_name="Ada Lovelace")
    entra_mode.add_user("adam.smith@contoso.com", display_name="Adam Smith", enabled=False)
    entra_mode.add_user("bob.builder@contoso.com", display_name="Bob Builder")
    entra_mode.add_group("ada-scientists")
    entra_mode.add_group("ada-newsletter", security=False)
    return entra_mode


def test_a_team_lead_finds_people_by_the_start_of_their_name(client, directory_people) -> None:
    client.force_login(factories.team_lead("lead"))
    response = client.get(URL, {"kind": "user", "members-0-principal": "ada"})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<option value="ada.lovelace@contoso.com">Ada Lovelace</option>' in page
    assert "adam.smith" not in page  # disabled accounts cannot be given access
    assert "bob.builder" not in page
    assert response["Cache-Control"] == "private, no-store"


def test_groups_offer_only_security_groups(client, directory_people) -> None:
    client.force_login(factories.team_lead("lead"))
    page = client.get(URL, {"kind": "group", "security_group": "ada"}).content.decode()
    assert 'value="ada-scientists"' in page and "ada-newsletter" not in page


def test_searches_are_bounded_and_kept(client, directory_people, settings) -> None:
    client.force_login(factories.team_lead("lead"))
    assert client.get(URL, {"kind": "user", "q": "a"}).content.decode().strip() == ""  # too short
    assert client.get(URL, {"kind": "user", "q": "a" * 65}).content.decode().strip() == ""  # too long
    assert client.get(URL, {"kind": "robot", "q": "ada"}).content.decode().strip() == ""
    before = directory_people.state.count("graph.users")
    for _ in range(3):
        client.get(URL, {"kind": "user", "q": "Bob"})
    assert directory_people.state.count("graph.users") == before + 1  # kept a minute per prefix
    for i in range(directory.BURST + 2):
        client.get(URL, {"kind": "user", "q": f"zz{i}"})
    assert directory_people.state.count("graph.users") == before + directory.BURST  # then refused a while


def test_only_people_who_fill_forms_search(client, directory_people) -> None:
    assert client.get(URL, {"q": "ada"}).status_code == 403
    client.force_login(factories.data_scientist("dana"))
    assert client.get(URL, {"q": "ada"}).status_code == 403


def test_without_entra_sign_in_the_form_has_no_search(client, settings) -> None:
    settings.AUTH_MODE = "local"
    client.force_login(factories.team_lead("lead"))
    assert client.get(URL, {"q": "ada"}).content.decode().strip() == ""
    assert not directory.enabled()
