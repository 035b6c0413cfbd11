"""Entra ID tokens and Graph lookups through the portal's credential and Graph session."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError

from provisioning.azure.clients import AzureClients, GraphLookupError
from provisioning.standin import StandIn


def _clients(standin: StandIn, **overrides: Any) -> AzureClients:
    options = {
        "arm_endpoint": standin.base_url,
        "authority_host": standin.base_url,
        "graph_endpoint": standin.base_url,
        "credential_kind": "client_secret",
        "tenant_id": standin.tenant_id,
        "client_id": standin.client_id,
        "client_secret": standin.client_secret,
        "disable_instance_discovery": True,
    }
    return AzureClients(**{**options, **overrides})


def test_client_secret_credential_gets_a_token_the_standin_issued(standin: StandIn) -> None:
    token = _clients(standin).credential().get_token(f"{standin.base_url}/.default")

    assert token.token in standin.state.tokens
    assert standin.state.operation_counts() == {"entra.openid_configuration": 1, "entra.token": 1}


def test_a_wrong_secret_is_refused_as_invalid_client(standin: StandIn) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        _clients(standin, client_secret="not-the-secret").credential().get_token(
            f"{standin.base_url}/.default"
        )

    assert standin.state.status_codes("entra.token") == [401]


def test_a_token_for_a_resource_the_standin_does_not_serve_is_refused(standin: StandIn) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        _clients(standin).credential().get_token("https://management.azure.com/.default")


def test_arm_refuses_requests_without_a_token_it_issued(standin: StandIn) -> None:
    url = f"{standin.base_url}/subscriptions/s1/resourcegroups/rg?api-version=2025-04-01"

    missing = requests.get(url, timeout=10)
    forged = requests.get(url, headers={"Authorization": "Bearer forged"}, timeout=10)

    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "AuthenticationFailed")
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "InvalidAuthenticationToken")
    assert "Bearer" in forged.headers["WWW-Authenticate"]


def test_users_are_found_by_upn_or_by_mail(standin: StandIn, azure_clients: AzureClients) -> None:
    alice = standin.add_user("alice@contoso.com", mail="alice.smith@contoso.com")
    standin.add_user("bob@contoso.com")
    graph = azure_clients.graph()

    assert graph.user_object_id("alice@contoso.com") == alice
    assert graph.user_object_id("Alice.Smith@Contoso.com") == alice
    assert graph.user("alice@contoso.com")["id"] == alice  # type: ignore[index]
    with pytest.raises(GraphLookupError, match=r"0 Entra ID objects match the user 'carol@contoso\.com'"):
        graph.user_object_id("carol@contoso.com")


def test_groups_need_exactly_one_match(standin: StandIn, azure_clients: AzureClients) -> None:
    scientists = standin.add_group("Data Scientists")
    standin.add_group("Analysts")
    standin.add_group("Analysts")
    graph = azure_clients.graph()

    assert graph.group_object_id("Data Scientists") == scientists
    with pytest.raises(GraphLookupError, match="2 Entra ID objects match the group named 'Analysts'"):
        graph.group_object_id("Analysts")
    with pytest.raises(GraphLookupError, match="0 Entra ID objects"):
        graph.group_object_id("Nobody's group")


def test_graph_answers_a_missing_user_with_its_own_error_shape(standin: StandIn, raw: Any) -> None:
    response = raw.request("GET", "/v1.0/users/nobody@contoso.com")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert "nobody@contoso.com" in error["message"]
    assert "request-id" in error["innerError"]


def test_the_network_guard_refuses_anything_beyond_loopback(loopback_only: list[str]) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get("https://login.microsoftonline.com/common/discovery/instance", timeout=5)

    assert loopback_only == ["lookup login.microsoftonline.com"]
    loopback_only.clear()  # what the autouse guard asserts on: this attempt was the test's own
