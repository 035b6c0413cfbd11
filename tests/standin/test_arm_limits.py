"""ARM's per-subscription request limits (token buckets) in the stand-in, as clients see them."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB

API = "api-version=2025-04-01"


def _call(standin: StandIn, clients: AzureClients, method: str, path: str, body: Any = None) -> Any:
    token = clients.credential().get_token(f"{standin.base_url}/.default").token
    return requests.request(
        method,
        f"{standin.base_url}/subscriptions/{SUB}{path}?{API}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("method", "path", "header"),
    [
        ("GET", "/resourcegroups/rg-limits", "reads"),
        ("PUT", "/resourcegroups/rg-limits", "writes"),
        ("DELETE", "/resourcegroups/rg-limits", "deletes"),
    ],
)
def test_every_arm_answer_says_what_is_left_of_its_bucket(
    standin: StandIn, azure_clients: AzureClients, method: str, path: str, header: str
) -> None:
    body = {"location": "eastus2"} if method == "PUT" else None

    first = _call(standin, azure_clients, method, path, body)
    second = _call(standin, azure_clients, method, path, body)

    name = f"x-ms-ratelimit-remaining-subscription-{header}"
    assert int(first.headers[name]) >= int(second.headers[name]) >= 1
    others = {"reads", "writes", "deletes"} - {header}
    assert not any(f"x-ms-ratelimit-remaining-subscription-{o}" in first.headers for o in others)


def test_an_empty_write_bucket_answers_429_with_retry_after(
    standin: StandIn, azure_clients: AzureClients
) -> None:
    standin.set_arm_limits(sizes={"writes": 2})
    answers = [
        _call(standin, azure_clients, "PUT", f"/resourcegroups/rg-{n}", {"location": "eastus2"})
        for n in range(3)
    ]

    assert [a.status_code for a in answers] == [201, 201, 429]
    throttled = answers[-1]
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert throttled.headers["Retry-After"] == "1"  # latency scale 1: ARM's whole seconds, 10 tokens/s
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    reads = _call(standin, azure_clients, "GET", "/resourcegroups/rg-0")
    assert reads.status_code == 200  # reads have their own bucket


def test_a_scaled_stand_in_refills_faster_and_says_so_in_fractional_seconds(
    standin: StandIn, azure_clients: AzureClients
) -> None:
    standin.set_latency_scale(0.01)  # 1000 write tokens per second
    standin.set_arm_limits(sizes={"writes": 1})
    for n in range(20):
        answer = _call(standin, azure_clients, "PUT", f"/resourcegroups/rg-{n}", {"location": "eastus2"})
        if answer.status_code == 429:
            assert float(answer.headers["Retry-After"]) <= 0.002
            return
    # Requests slower than a millisecond never find the bucket empty: that is the refill working too.


def test_azure_core_waits_retry_after_and_the_call_succeeds(
    standin: StandIn, azure_clients: AzureClients
) -> None:
    standin.set_arm_limits(sizes={"writes": 1})
    groups = azure_clients.resources(SUB).resource_groups
    started = time.monotonic()

    groups.create_or_update("rg-a", {"location": "eastus2"})
    groups.create_or_update("rg-b", {"location": "eastus2"})

    assert time.monotonic() - started >= 0.9
    assert standin.state.status_codes("resource_group.create") == [201, 429, 201]


def test_limits_are_off_by_default_and_reset(standin: StandIn, azure_clients: AzureClients) -> None:
    standin.set_arm_limits(sizes={"writes": 1})
    standin.reset()
    answers = [
        _call(standin, azure_clients, "PUT", f"/resourcegroups/rg-{n}", {"location": "eastus2"}).status_code
        for n in range(3)
    ]
    assert answers == [201, 201, 201]
