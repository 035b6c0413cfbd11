"""ARM's write limit, respected: a write budget per subscription shared through Redis, and 429s waited out."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from typing import Any

import pytest

from provisioning.azure.clients import AzureClients
from provisioning.azure.rate_limit import KEY_PREFIX, READ_KEY_PREFIX, WAIT_COUNTER, WriteBudget
from provisioning.engine import executor as engine
from provisioning.models import Run
from provisioning.spec import MemberSpec, RequestSpec
from tests.factories import TUTORIAL_SUBSCRIPTION, ChangeRequestFactory, tutorial_workspace

BURST, RATE = 5, 50.0


def _acquire_times(url: str, subscription: str, count: int, out: Any = None) -> list[float]:
    budget = WriteBudget(url, rate=RATE, burst=BURST)
    times = []
    for _ in range(count):
        budget.acquire(subscription)
        times.append(time.time())
    budget.close()
    if out is not None:
        out.put(times)
    return times


def _never_over_budget(started: float, times: list[float]) -> None:
    for n, at in enumerate(sorted(times), start=1):
        assert n <= BURST + RATE * (at - started) + 1, f"{n} tokens by {at - started:.3f} s"


def test_concurrent_threads_never_draw_more_than_the_bucket_allows(redis_url: str) -> None:
    subscription, results = str(uuid.uuid4()), []
    started = time.time()
    threads = [
        threading.Thread(target=lambda: results.extend(_acquire_times(redis_url, subscription, 5)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 30
    _never_over_budget(started, results)
    assert max(results) - started >= (30 - BURST) / RATE * 0.9  # the budget made them wait


def test_concurrent_processes_share_one_budget(redis_url: str) -> None:
    subscription = str(uuid.uuid4())
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    started = time.time()
    workers = [
        context.Process(target=_acquire_times, args=(redis_url, subscription, 6, out)) for _ in range(3)
    ]
    for p in workers:
        p.start()
    results = [at for _ in workers for at in out.get(timeout=20)]
    for p in workers:
        p.join(10)

    assert len(results) == 18
    _never_over_budget(started, results)


def test_without_redis_the_budget_still_limits_this_process() -> None:
    budget = WriteBudget("redis://127.0.0.1:1/0", rate=RATE, burst=BURST)
    started = time.time()
    for _ in range(10):
        budget.acquire("sub")
    assert time.time() - started >= (10 - BURST) / RATE * 0.9


def _with_budgets(
    clients: AzureClients, *, writes: WriteBudget | None = None, reads: WriteBudget | None = None
) -> AzureClients:
    """The session's clients (same endpoints and credential) with these budgets."""
    return AzureClients(
        arm_endpoint=clients.arm_endpoint,
        authority_host=clients.authority_host,
        graph_endpoint=clients.graph_endpoint,
        credential_kind="client_secret",
        credential=clients.credential(),
        write_budget=writes,
        read_budget=reads,
    )


def _budgeted(clients: AzureClients, redis_url: str, *, rate: float, burst: int) -> AzureClients:
    return _with_budgets(clients, writes=WriteBudget(redis_url, rate=rate, burst=burst))


def test_sdk_writes_wait_for_the_budget_and_arm_never_throttles(
    standin: Any, azure_clients: AzureClients, redis_url: str
) -> None:
    import redis

    standin.set_arm_limits(sizes={"writes": 3})  # ARM: 3 at once, then 10 per second
    # Half ARM's rate: a write's token is taken before the request is signed and sent, so the time between two
    # writes reaching ARM varies by a few milliseconds; the margin absorbs it.
    clients = _budgeted(azure_clients, redis_url, rate=5.0, burst=3)
    before = float(redis.Redis.from_url(redis_url).get(WAIT_COUNTER) or 0)
    # The credential's first token is fetched now (a read takes no write token), not between two writes.
    clients.resources(TUTORIAL_SUBSCRIPTION).resource_groups.check_existence("rg-budget-0")
    started = time.monotonic()
    try:
        for n in range(7):
            clients.resources(TUTORIAL_SUBSCRIPTION).resource_groups.create_or_update(
                f"rg-budget-{n}", {"location": "eastus2"}
            )
    finally:
        clients.close()

    assert time.monotonic() - started >= (7 - 3) / 5.0 * 0.9
    assert standin.state.status_codes("resource_group.create") == [201] * 7
    assert float(redis.Redis.from_url(redis_url).get(WAIT_COUNTER) or 0) > before


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_a_step_throttled_by_arm_waits_retry_after_and_succeeds(
    policy: None, alice: Any, bob: Any, standin: Any, azure_clients: AzureClients, rq_queue: Any
) -> None:
    standin.add_user("user1@contoso.com")
    spec = RequestSpec(
        workspace=tutorial_workspace(team="limits", data_lake=False, security_group=""),
        members=(MemberSpec(principal="user1@contoso.com", persona="team_lead"),),
    )
    cr = ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True)
    standin.set_latency_scale(0.2)  # ARM refills 50 write tokens per second: Retry-After 0.02 s
    standin.set_arm_limits(sizes={"writes": 1})

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    statuses = [r.status for r in standin.state.requests if r.method in ("PUT", "POST", "PATCH")]
    assert 429 in statuses  # the session's clients' budget is larger than this tiny bucket
    assert len(standin.state.list_resources("storage")) == 2
    assert not Run.objects.get(change_request=cr).steps.filter(status="failed").exists()


def test_sdk_reads_wait_for_the_read_budget_and_arm_never_throttles_them(
    standin: Any, azure_clients: AzureClients, redis_url: str
) -> None:
    standin.set_arm_limits(sizes={"reads": 4})  # ARM: 4 reads at once, then 25 per second
    clients = _with_budgets(
        azure_clients, reads=WriteBudget(redis_url, rate=12.5, burst=3, key_prefix=READ_KEY_PREFIX)
    )
    clients.credential().get_token(f"{clients.arm_endpoint}/.default")
    standin.state.clear_requests()
    started = time.monotonic()
    try:
        for n in range(10):
            clients.resources(TUTORIAL_SUBSCRIPTION).resource_groups.check_existence(f"rg-reads-{n}")
    finally:
        clients.close()

    assert time.monotonic() - started >= (10 - 3) / 12.5 * 0.9
    reads = [r.status for r in standin.state.requests if r.method in ("GET", "HEAD")]
    assert len(reads) == 10 and 429 not in reads


def test_reads_and_writes_draw_from_separate_buckets(redis_url: str) -> None:
    import redis

    subscription = str(uuid.uuid4())
    WriteBudget(redis_url, rate=RATE, burst=BURST, key_prefix=READ_KEY_PREFIX).acquire(subscription)
    conn = redis.Redis.from_url(redis_url)
    assert conn.exists(READ_KEY_PREFIX + subscription)
    assert not conn.exists(KEY_PREFIX + subscription)  # a read takes no write token


def test_a_client_shared_by_a_runs_step_threads_keeps_its_connections(
    standin: Any, azure_clients: AzureClients, caplog: pytest.LogCaptureFixture
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    standin.set_latency("resource_group.exists", 0.2)  # the 16 calls overlap
    client = azure_clients.resources(TUTORIAL_SUBSCRIPTION)
    client.resource_groups.check_existence("rg-pool-0")  # the token, fetched once
    with caplog.at_level("WARNING", logger="urllib3.connectionpool"), ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda n: client.resource_groups.check_existence(f"rg-pool-{n}"), range(16)))

    assert found == [False] * 16
    assert "Connection pool is full" not in caplog.text  # no connection opened only to be dropped


def _queue_writes(budget: WriteBudget, subscription: str, count: int, times: list[float]) -> threading.Thread:
    """Another run's writes, queued for the bucket one after another (as resources and deployments do)."""

    def write() -> None:
        for _ in range(count):
            budget.acquire(subscription)
            times.append(time.monotonic())

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@pytest.mark.parametrize("spare", [2, 0], ids=["yields", "does-not-yield"])
def test_a_grant_leaves_the_budget_to_writes_queued_for_it(redis_url: str, spare: int) -> None:
    """A burst's role assignments go after the resources and deployments other steps wait on."""
    subscription = str(uuid.uuid4())
    budget = WriteBudget(redis_url, rate=20.0, burst=4, spare=spare)
    for _ in range(4):
        budget.acquire(subscription)  # the bucket is empty: writes queue from here on
    others: list[float] = []
    queued = _queue_writes(budget, subscription, 12, others)  # 0.6 s of tokens
    time.sleep(0.1)

    waited = budget.acquire_yielding(subscription)
    granted = time.monotonic()
    queued.join()
    budget.close()

    if spare:  # it went after every write queued before and while it waited
        assert len(others) == 12 and granted >= max(others)
        assert waited >= 0.4
    else:  # it queued like them, in the order asked
        assert granted < max(others)


def test_a_grant_takes_a_free_token_at_once_and_queues_after_its_patience(redis_url: str) -> None:
    subscription = str(uuid.uuid4())
    budget = WriteBudget(redis_url, rate=20.0, burst=4, spare=2)
    assert budget.acquire_yielding(subscription) == 0.0  # nobody queues: the bucket has 4
    for _ in range(3):
        budget.acquire(subscription)
    others: list[float] = []
    queued = _queue_writes(budget, subscription, 40, others)  # 2 s of tokens

    started = time.monotonic()
    budget.acquire_yielding(subscription, patience=0.5)
    granted = time.monotonic()
    queued.join()
    budget.close()

    assert 0.5 <= granted - started < 1.5  # yielded for 0.5 s, then took its place in the queue
    assert granted < max(others)


def test_without_redis_a_grant_still_yields_in_this_process() -> None:
    budget = WriteBudget("redis://127.0.0.1:1/0", rate=RATE, burst=BURST, spare=2)
    started = time.monotonic()
    for _ in range(10):
        budget.acquire_yielding("sub")
    assert time.monotonic() - started >= (10 - BURST + 2) / RATE * 0.9  # it leaves 2 tokens each time


def test_the_authorization_clients_writes_yield_and_the_others_do_not(
    standin: Any, azure_clients: AzureClients, redis_url: str
) -> None:
    """Wired by client: a role definition's PUT waits while another run's writes queue; a resource group's
    PUT takes its place in the queue."""
    from azure.mgmt.authorization.v2022_04_01.models import Permission, RoleDefinition

    budget = WriteBudget(redis_url, rate=20.0, burst=4, spare=2)
    clients = _with_budgets(azure_clients, writes=budget)
    clients.credential().get_token(f"{clients.arm_endpoint}/.default")
    scope = f"/subscriptions/{TUTORIAL_SUBSCRIPTION}"
    role = RoleDefinition(
        role_name="Yielding Test Role",
        description="a test's",
        role_type="CustomRole",
        permissions=[Permission(actions=["Microsoft.Resources/subscriptions/resourceGroups/read"])],
        assignable_scopes=[scope],
    )
    try:
        for write in ("group", "role"):
            for _ in range(4):
                budget.acquire(TUTORIAL_SUBSCRIPTION)
            others: list[float] = []
            queued = _queue_writes(budget, TUTORIAL_SUBSCRIPTION, 12, others)
            time.sleep(0.1)
            if write == "group":
                clients.resources(TUTORIAL_SUBSCRIPTION).resource_groups.create_or_update(
                    "rg-yield", {"location": "eastus2"}
                )
            else:
                clients.authorization(TUTORIAL_SUBSCRIPTION).role_definitions.create_or_update(
                    scope, str(uuid.uuid4()), role
                )
            sent = time.monotonic()
            queued.join()
            assert (sent >= max(others)) == (write == "role"), write
    finally:
        clients.close()
