"""Graph users and groups with the attributes the portal checks: account state, user type, group kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn

EVENTUAL = {"ConsistencyLevel": "eventual"}


def _list(
    raw: Any,
    collection: str,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    return raw.request("GET", f"/v1.0/{collection}", params=dict(query or {}), headers=dict(headers or {}))


def test_users_show_account_state_and_type_only_when_selected(standin: StandIn, raw: Any) -> None:
    alice = standin.add_user("alice@contoso.com")
    bob = standin.add_user("bob@contoso.com", enabled=False)

    default = _list(raw, "users").json()["value"]
    selected = _list(raw, "users", {"$select": "id,userPrincipalName,accountEnabled,userType"}).json()
    one = raw.request("GET", f"/v1.0/users/{bob}", params={"$select": "accountEnabled"}).json()

    assert "accountEnabled" not in default[0] and "userType" not in default[0]  # not default properties
    assert default[0]["userPrincipalName"] == "alice@contoso.com"
    assert selected["value"] == [
        {"id": alice, "userPrincipalName": "alice@contoso.com", "accountEnabled": True, "userType": "Member"},
        {"id": bob, "userPrincipalName": "bob@contoso.com", "accountEnabled": False, "userType": "Member"},
    ]
    assert selected["@odata.context"].endswith(
        "/v1.0/$metadata#users(id,userPrincipalName,accountEnabled,userType)"
    )
    assert one == {
        "@odata.context": f"{standin.base_url}/v1.0/$metadata#users(accountEnabled)/$entity",
        "id": bob,
        "accountEnabled": False,
    }


def test_a_guest_has_an_external_upn_and_its_invited_mail(
    standin: StandIn, raw: Any, azure_clients: AzureClients
) -> None:
    guest = standin.add_user("carol.jones@fabrikam.com", guest=True)
    upn = "carol.jones_fabrikam.com#EXT#@contoso.onmicrosoft.com"

    found = _list(
        raw, "users", {"$filter": "userType eq 'Guest'", "$select": "id,userPrincipalName,mail,userType"}
    ).json()["value"]

    assert standin.state.principal(guest).upn == upn  # type: ignore[union-attr]
    assert found == [
        {"id": guest, "userPrincipalName": upn, "mail": "carol.jones@fabrikam.com", "userType": "Guest"}
    ]
    # The portal's lookups find a guest by its invited address (mail) and by its UPN ('#' sent as %23).
    graph = azure_clients.graph()
    assert graph.user_object_id("Carol.Jones@fabrikam.com") == guest
    assert graph.user_object_id(upn) == guest
    assert graph.user(upn)["id"] == guest  # type: ignore[index]


def test_boolean_and_string_filters(standin: StandIn, raw: Any) -> None:
    standin.add_user("alice@contoso.com")
    bob = standin.add_user("bob@contoso.com", enabled=False)
    guest = standin.add_user("dan@fabrikam.com", guest=True)

    def ids(expression: str) -> list[str]:
        return [u["id"] for u in _list(raw, "users", {"$filter": expression}).json()["value"]]

    assert ids("accountEnabled eq false") == [bob]
    assert ids("accountEnabled eq true and userType eq 'guest'") == [guest]
    assert ids(f"id in ('{bob}', '{guest}')") == [bob, guest]
    assert ids("startswith(userPrincipalName,'dan_') or accountEnabled eq false") == [bob, guest]


def test_security_and_microsoft_365_groups(standin: StandIn, raw: Any, azure_clients: AzureClients) -> None:
    scientists = standin.add_group("Data Scientists")
    mailing = standin.add_group("Lab Announcements", mail="lab@contoso.com")
    team = standin.add_group("Project Falcon", security=False)

    groups = {g["id"]: g for g in _list(raw, "groups").json()["value"]}
    unified = _list(raw, "groups", {"$filter": "groupTypes/any(c:c eq 'Unified')"}).json()["value"]
    security = _list(raw, "groups", {"$filter": "securityEnabled eq true", "$select": "id"}).json()["value"]

    assert (groups[scientists]["securityEnabled"], groups[scientists]["mailEnabled"]) == (True, False)
    assert groups[scientists]["groupTypes"] == [] and groups[scientists]["mail"] is None
    assert (groups[mailing]["securityEnabled"], groups[mailing]["mailEnabled"]) == (True, True)
    assert {k: groups[team][k] for k in ("securityEnabled", "mailEnabled", "groupTypes", "mail")} == {
        "securityEnabled": False,
        "mailEnabled": True,
        "groupTypes": ["Unified"],
        "mail": "projectfalcon@contoso.onmicrosoft.com",
    }
    assert [g["id"] for g in unified] == [team]
    assert security == [{"id": scientists}, {"id": mailing}]
    assert azure_clients.graph().group_object_id("Project Falcon") == team


def test_top_pages_with_a_next_link(standin: StandIn, raw: Any) -> None:
    made = [standin.add_user(f"user{i:02}@contoso.com") for i in range(5)]

    first = _list(raw, "users", {"$top": "2", "$select": "id"}).json()
    link = first["@odata.nextLink"]
    second = raw.request("GET", link.removeprefix(standin.base_url)).json()
    last = raw.request("GET", second["@odata.nextLink"].removeprefix(standin.base_url)).json()

    assert [u["id"] for u in first["value"] + second["value"] + last["value"]] == made
    assert "@odata.nextLink" not in last
    assert parse_qs(urlsplit(link).query)["$select"] == ["id"]
    assert "$skiptoken=" in link


def test_top_outside_graphs_range_is_refused(standin: StandIn, raw: Any) -> None:
    too_big = _list(raw, "users", {"$top": "1000"})
    zero = _list(raw, "groups", {"$top": "0"})
    words = _list(raw, "users", {"$top": "ten"})

    assert (too_big.status_code, too_big.json()["error"]["code"]) == (400, "Request_UnsupportedQuery")
    assert (
        too_big.json()["error"]["message"]
        == "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    )
    assert "request-id" in too_big.json()["error"]["innerError"]
    assert zero.status_code == 400
    assert (words.status_code, words.json()["error"]["code"]) == (400, "BadRequest")
    assert _list(raw, "users", {"$top": "999"}).status_code == 200


def test_search_needs_the_eventual_consistency_header(standin: StandIn, raw: Any) -> None:
    standin.add_user("alice@contoso.com", display_name="Alice Smith")

    refused = _list(raw, "users", {"$search": '"displayName:ali"'})

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert refused.json()["error"]["message"] == (
        "Request with $search query parameter only works through MSGraph with a special request header: "
        "'ConsistencyLevel: eventual'"
    )


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ('"displayName:smi"', ["Alice Smith", "Bob Smithers"]),
        ('"displayName:SMITH"', ["Alice Smith", "Bob Smithers"]),
        ('"displayName:mith"', []),  # a word prefix, not a substring
        ('"displayName:alice smith"', ["Alice Smith"]),
        ('"userPrincipalName:bob"', ["Bob Smithers"]),
        ('"mail:fabrikam"', ["Carol Jones"]),
        ('"displayName:carol" OR "mail:bob"', ["Bob Smithers", "Carol Jones"]),
        ('"displayName:smith" AND "mail:alice"', ["Alice Smith"]),
    ],
)
def test_search_matches_word_prefixes(standin: StandIn, raw: Any, search: str, expected: list[str]) -> None:
    standin.add_user("alice@contoso.com", display_name="Alice Smith")
    standin.add_user("bob.smithers@contoso.com", display_name="Bob Smithers")
    standin.add_user("carol@fabrikam.com", display_name="Carol Jones", guest=True)

    found = _list(raw, "users", {"$search": search, "$count": "true"}, EVENTUAL).json()

    assert [u["displayName"] for u in found["value"]] == expected
    assert found["@odata.count"] == len(expected)


def test_search_and_filter_combine_on_groups(standin: StandIn, raw: Any) -> None:
    standin.add_group("Data Scientists")
    team = standin.add_group("Data Platform Team", security=False)

    found = _list(
        raw, "groups", {"$search": '"displayName:data"', "$filter": "securityEnabled eq false"}, EVENTUAL
    ).json()["value"]
    bad = _list(raw, "groups", {"$search": "data"}, EVENTUAL)

    assert [g["id"] for g in found] == [team]
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "Request_UnsupportedQuery")


def test_a_disabled_user_cannot_sign_in(standin: StandIn) -> None:
    import requests

    app = standin.register_app("portal-signin", redirect_uris=["http://127.0.0.1/callback"])
    bob = standin.add_user("bob@contoso.com", roles=["Portal.User"])
    standin.set_account_enabled(bob, False)

    answer = requests.get(
        f"{standin.base_url}/{standin.tenant_id}/oauth2/v2.0/authorize",
        params={
            "client_id": app.client_id,
            "redirect_uri": "http://127.0.0.1/callback",
            "response_type": "code",
            "scope": "openid profile",
            "login_hint": "bob@contoso.com",
        },
        allow_redirects=False,
        timeout=10,
    )

    assert answer.status_code == 400
    assert "AADSTS50057" in answer.text


def test_a_guest_signs_in_with_the_address_it_was_invited_with(standin: StandIn) -> None:
    import requests

    app = standin.register_app("portal-signin", redirect_uris=["http://127.0.0.1/callback"])
    standin.add_user("eve@fabrikam.com", guest=True)

    answer = requests.get(
        f"{standin.base_url}/{standin.tenant_id}/oauth2/v2.0/authorize",
        params={
            "client_id": app.client_id,
            "redirect_uri": "http://127.0.0.1/callback",
            "response_type": "code",
            "scope": "openid profile",
            "login_hint": "eve@fabrikam.com",
        },
        allow_redirects=False,
        timeout=10,
    )

    assert answer.status_code == 302
    assert "code=" in answer.headers["Location"]
