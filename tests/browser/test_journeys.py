"""The three personas' journeys in Chromium: a live portal, Entra sign-in at the stand-in, a real RQ worker.

A team lead requests a workspace with two clusters and three members (the form starts with one row of each:
the others are added with its buttons, a mistaken member row removed), watches the resource names follow
what they type, meets the naming errors (a 17-character cluster name, a team name too long for a storage
account, a storage name taken elsewhere in Azure, fixed by copying the request into a new draft) and
submits; an admin reviews the plan and
approves, and the request page follows provisioning by itself until it shows ``succeeded`` (and nothing
on it still says queued); a data
scientist finds the workspace and its clusters and downloads ``config.json``. Another team's lead gets the
portal's 404 page. Every page is photographed, checked with axe-core and measured on laptop screens
(``tests.browser.tour``), and every request the browser made stayed on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from provisioning.models import ChangeRequest, Workspace
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow import principal_checks, services
from tests import factories
from tests.browser.conftest import Portal
from tests.browser.tour import Tour, missing_tools

if missing_tools():
    pytest.skip(missing_tools(), allow_module_level=True)

# The live server needs committed data; serialized_rollback brings back what migrations seed (persona
# groups, environment policies) after each test's flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TEAM = "bluegranit"
TAKEN_STORAGE = "bgmrbluegranite2devwork"  # the team's workspace storage name, used elsewhere in Azure
CUSTOM_NAME = "bluegranitedev"  # the team lead's way around it
CLUSTER_TOO_LONG = "ds3-v2-cluster-01"  # 17 characters; AzureML allows 16
# (name, VM size, priority, max nodes); min nodes stay 0 (a minimum above 0 needs a justification).
CLUSTERS = (
    ("ds3-v2-cluster", "STANDARD_DS3_V2", "low_priority", "2"),
    ("nv6-gpucluster", "STANDARD_NV6", "dedicated", "1"),
)
MEMBERS = (
    ("user1@contoso.com", "team_lead"),
    ("scientist@contoso.com", "data_scientist"),
    ("user2@contoso.com", "data_scientist"),
)
# Once saved, Lena Lead, who asks, is the first member (she left "Make me a member" ticked).
SAVED_MEMBERS = (("lead@contoso.com", "team_lead"), *MEMBERS)
PROVISIONING_TIMEOUT_MS = 90_000


# --- signing in and out ---------------------------------------------------------------------------


def sign_in(tour: Tour, portal: Portal, person: str, *, photograph: bool = False) -> None:
    """From the portal's sign-in page through the stand-in's account picker, as a person would."""
    page = tour.page
    page.goto(portal.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    if photograph:
        tour.check("sign-in")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()
    assert page.url.startswith(portal.signin_url), page.url
    if photograph:
        tour.check("entra-pick-an-account")
    page.get_by_role("button", name=re.compile(person)).click()
    expect(page.get_by_role("navigation", name="Main navigation")).to_contain_text(person)
    assert page.url.startswith(portal.url), page.url


def sign_out(tour: Tour, *, photograph: bool = False) -> None:
    page = tour.page
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
    if photograph:
        tour.check("signed-out")


# --- the request form ------------------------------------------------------------------------------


def fill_workspace(page: Page, *, custom_name: str = "") -> None:
    """Where the workspace lives; the team name is typed separately, to watch the preview."""
    page.get_by_label("Subscription", exact=True).select_option(factories.TUTORIAL_SUBSCRIPTION)
    page.get_by_label("Region", exact=True).select_option("eastus2")
    expect(page.get_by_label("Region abbreviation")).to_have_value("e2")  # filled in from the region
    page.get_by_label("Department", exact=True).fill("bgmr")
    page.get_by_label("Environment", exact=True).select_option("dev")
    if custom_name:
        page.get_by_label("Custom name (optional)").fill(custom_name)


def add_row_if_missing(page: Page, prefix: str, row: int) -> None:
    """The form starts with one row of each; the next comes from the *Add a ...* button, in place."""
    field = "name" if prefix == "clusters" else "principal"
    if page.locator(f"#id_{prefix}-{row}-{field}").count() == 0:
        page.get_by_role("button", name="Add a cluster" if prefix == "clusters" else "Add a member").click()
        expect(page.locator(f"#id_{prefix}-{row}-{field}")).to_be_focused()
    expect(page.locator(f"#id_{prefix}-TOTAL_FORMS")).to_have_value(str(row + 1))


def fill_clusters(page: Page, clusters: tuple[tuple[str, str, str, str], ...]) -> None:
    for row, (name, vm_size, priority, max_nodes) in enumerate(clusters):
        add_row_if_missing(page, "clusters", row)
        page.locator(f"#id_clusters-{row}-name").fill(name)
        size = page.locator(f"#id_clusters-{row}-vm_size")
        expect(size.locator(f"option[value='{vm_size}']")).to_be_enabled()  # offered to a person, too
        size.select_option(vm_size)
        page.locator(f"#id_clusters-{row}-priority").select_option(priority)
        page.locator(f"#id_clusters-{row}-max_nodes").fill(max_nodes)
        expect(page.locator(f"#id_clusters-{row}-min_nodes")).to_have_value("0")  # the defaults, in place
        expect(page.locator(f"#id_clusters-{row}-idle_seconds")).to_have_value("120")


def fill_members(page: Page) -> None:
    """The members, with a mistaken row typed second and removed: the rows after it move up."""
    typed = [MEMBERS[0], ("mistake@contoso.com", "team_lead"), *MEMBERS[1:]]
    for row, (principal, persona) in enumerate(typed):
        add_row_if_missing(page, "members", row)
        page.locator(f"#id_members-{row}-principal").fill(principal)
        page.locator(f"#id_members-{row}-persona").select_option(persona)
    page.get_by_role("button", name="Remove member 2").click()
    expect(page.locator("#id_members-TOTAL_FORMS")).to_have_value(str(len(MEMBERS)))
    expect(page.get_by_role("button", name=f"Remove member {len(MEMBERS) + 1}")).to_have_count(0)
    for row, (principal, persona) in enumerate(MEMBERS):
        expect(page.locator(f"#id_members-{row}-principal")).to_have_value(principal)
        expect(page.locator(f"#id_members-{row}-persona")).to_have_value(persona)
    expect(page.locator("#request-form")).not_to_contain_text("mistake@contoso.com")


def request_pk(page: Page) -> int:
    found = re.search(r"/requests/(\d+)/", page.url)
    assert found, page.url
    return int(found.group(1))


# --- the journeys ----------------------------------------------------------------------------------


def team_lead_requests_a_workspace(tour: Tour, portal: Portal) -> int:
    """Lena Lead: names as she types, every naming error, the fixes, and a request waiting for approval."""
    page = tour.page
    sign_in(tour, portal, "Lena Lead", photograph=True)
    expect(page.get_by_role("heading", name="You have not requested anything yet")).to_be_visible()
    tour.check("team-lead-no-requests-yet")

    page.get_by_role("link", name="New workspace").click()
    expect(page.get_by_role("heading", name="Request a new workspace")).to_be_visible()
    form = page.locator("#request-form")  # one cluster and one member to start with
    expect(form.locator("#clusters-rows fieldset")).to_have_count(1)
    expect(form.locator("#members-rows fieldset")).to_have_count(1)
    expect(page.locator("#config-yml-hint")).to_contain_text("docs/config-yml.md")
    tour.check("new-workspace")
    fill_workspace(page)
    preview = page.locator("#name-preview")
    team = page.get_by_label("Team", exact=True)
    team.press_sequentially(TEAM, delay=20)
    expect(preview).to_contain_text(TAKEN_STORAGE)  # the names follow the typing (htmx)
    expect(preview).to_contain_text("bgmr-bluegranit-eastus2-dev")
    team.press_sequentially("eteam", delay=20)  # "bluegraniteteam": too long for a storage account
    expect(preview).to_contain_text("bgmrbluegraniteteame2devwork")
    expect(preview).to_contain_text("team name too long for a storage account: use at most 10 characters")
    fill_clusters(page, ((CLUSTER_TOO_LONG, *CLUSTERS[0][1:]), CLUSTERS[1]))
    fill_members(page)
    tour.check("new-workspace-names-as-you-type", focus=page.locator("#workspace-heading"))

    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("alert").filter(has_text="cannot be submitted yet")).to_be_visible()
    summary = page.locator("#form-problems")  # every problem on top, linked to its field, and focused
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name="Team", exact=True)).to_have_attribute("href", "#id_team")
    expect(summary.get_by_role("link", name="Cluster 1, name")).to_have_attribute(
        "href", "#id_clusters-0-name"
    )
    expect(page.locator("#id_team_error")).to_contain_text("team name too long for a storage account")
    expect(team).to_have_attribute("aria-invalid", "true")
    cluster_name = page.locator("#id_clusters-0-name")
    expect(page.locator("#id_clusters-0-name_error")).to_contain_text(
        f"'{CLUSTER_TOO_LONG}' is too long for a compute cluster name: 17 characters, at most 16"
    )
    expect(cluster_name).to_have_attribute("aria-invalid", "true")
    expect(cluster_name).to_have_value(CLUSTER_TOO_LONG)  # everything typed is kept, every row added too
    expect(page.locator("#id_clusters-TOTAL_FORMS")).to_have_value(str(len(CLUSTERS)))
    expect(page.locator("#id_clusters-1-name")).to_have_value(CLUSTERS[1][0])
    expect(page.locator("#id_clusters-1-priority")).to_have_value(CLUSTERS[1][2])
    expect(page.locator("#id_members-TOTAL_FORMS")).to_have_value(str(len(SAVED_MEMBERS)))
    for row, (principal, _) in enumerate(SAVED_MEMBERS):
        expect(page.locator(f"#id_members-{row}-principal")).to_have_value(principal)
    expect(page.locator("#id_lead_joins")).to_have_count(0)  # asked once: she is a row now, removable
    tour.check("draft-with-naming-errors", focus=page.locator("#form-problems"))

    team.fill(TEAM)
    cluster_name.fill(CLUSTERS[0][0])
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("heading", name=re.compile(r"Request #\d+"))).to_contain_text("Submitted")
    taken = page.locator("#name-check")
    expect(taken).to_contain_text("Being checked by the provisioning workers")
    tour.check("submitted-names-being-checked", focus=taken)
    # The worker asks Azure; the section refreshes itself with the answer.
    expect(taken).to_contain_text("Taken elsewhere in Azure", timeout=PROVISIONING_TIMEOUT_MS)
    expect(taken).to_contain_text(TAKEN_STORAGE)
    tour.check("storage-name-taken", focus=taken)

    page.get_by_role("button", name="Cancel request").click()
    expect(page.get_by_role("heading", name=re.compile(r"Request #\d+"))).to_contain_text("Cancelled")
    page.get_by_role("button", name="Copy into a new draft").click()
    expect(page.get_by_role("heading", name=re.compile(r"Edit draft #\d+"))).to_be_visible()
    expect(team).to_have_value(TEAM)  # everything typed comes along
    expect(page.locator("#id_clusters-1-name")).to_have_value(CLUSTERS[1][0])
    expect(page.locator("#id_members-3-principal")).to_have_value(SAVED_MEMBERS[3][0])
    page.get_by_label("Custom name (optional)").fill(CUSTOM_NAME)
    expect(page.locator("#name-preview")).to_contain_text(f"{CUSTOM_NAME}ws")
    tour.check("copied-into-a-new-draft")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("heading", name=re.compile(r"Request #\d+"))).to_contain_text("Submitted")
    checked = page.locator("#name-check")
    expect(checked).to_contain_text(
        "All globally unique names are available", timeout=PROVISIONING_TIMEOUT_MS
    )
    tour.check("submitted-names-available")
    pk = request_pk(page)

    page.get_by_role("link", name="My requests").first.click()
    rows = page.get_by_role("table", name="Your requests").get_by_role("row")
    expect(rows.filter(has_text=f"#{pk}")).to_contain_text("Submitted")
    expect(rows.filter(has_text=TEAM + "e2devws")).to_contain_text("Cancelled")
    tour.check("team-lead-requests")
    return pk


def admin_approves(tour: Tour, portal: Portal, pk: int) -> None:
    """Ada Admin: the queue, the full plan, the approval, then provisioning followed live to the end."""
    page = tour.page
    sign_in(tour, portal, "Ada Admin")
    expect(page.get_by_role("heading", name="Approvals", exact=True)).to_be_visible()
    tour.check("admin-approvals")
    page.get_by_role("link", name=f"Review request #{pk}").click()

    plan = page.locator("section", has=page.get_by_role("heading", name="Plan", exact=True))
    resources = plan.get_by_role("table", name="Resources to create")
    for name in ("bluegranitedevws", "bluegranitedevwork", "bluegranitedevdata", "bluegranitedevkv"):
        expect(resources).to_contain_text(name)
    clusters = plan.get_by_role("table", name="Compute clusters to create")
    for name, vm_size, _, _ in CLUSTERS:
        expect(clusters.get_by_role("row").filter(has_text=name)).to_contain_text(vm_size)
    groups = plan.locator("details.role-group")
    for principal, _ in MEMBERS:  # one group per person, collapsed, with its count
        person = groups.filter(
            has=page.locator("summary", has_text=re.compile(rf"^{re.escape(principal)}: \d+ assignment"))
        )
        expect(person).to_have_count(1)
        expect(person).not_to_have_attribute("open", "")
    first = groups.first
    first.locator("summary").click()
    expect(first.get_by_role("table")).to_be_visible()  # opened: every assignment in full
    expect(page.locator("#name-check")).to_contain_text("All globally unique names are available")
    summary = page.locator("section", has=page.get_by_role("heading", name="Summary", exact=True))
    expect(summary).to_contain_text("Nothing blocks the approval")
    expect(summary).to_contain_text("Worst-case cost")
    tour.check("admin-review-plan")

    approve = page.get_by_role("button", name="Approve and provision")
    page.evaluate("() => window.scrollTo(0, 0)")
    box = approve.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 768, f"the approve button is below the fold: {box}"
    expect(page.get_by_label("Reason for rejecting")).to_be_in_viewport()
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")  # down the plan: the decision stays
    expect(approve).to_be_in_viewport()
    page.evaluate("() => window.scrollTo(0, 0)")
    approve.click()
    progress = page.locator("#progress")
    expect(progress).to_be_visible()
    page.evaluate("() => { window.portalTourSamePage = true; }")  # gone if the page reloads
    status = page.locator("#progress-heading .status-badge")
    expect(status).to_have_text(re.compile("Approved|Provisioning"))
    tour.check("admin-provisioning-live", focus=progress)
    expect(status).to_have_text("Succeeded", timeout=PROVISIONING_TIMEOUT_MS)
    assert page.evaluate("() => window.portalTourSamePage === true"), "the page reloaded instead of updating"
    expect(page.locator("#request-status")).to_have_text("Succeeded")  # the heading's badge follows
    expect(progress).to_contain_text("steps done")
    expect(progress.locator(".step-failed")).to_have_count(0)
    # Nothing on the page still says it waits: the headline follows the status it was polled with.
    expect(progress.locator("[data-progress-headline]")).to_contain_text("provisioning succeeded")
    expect(page.get_by_role("main")).not_to_contain_text(
        re.compile("queued|waiting for a provisioning worker")
    )
    # Times are in the viewer's time zone, the UTC time on hover.
    created = page.get_by_role("main").locator("time[datetime]").first  # when the request was created
    expect(created).to_have_attribute("title", re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$"))
    expect(created).not_to_have_text(re.compile(r"^\d{4}-\d{2}-\d{2}"))
    tour.check("admin-provisioning-succeeded", focus=progress)

    page.get_by_role("link", name=f"{CUSTOM_NAME}ws").click()
    expect(page.get_by_role("heading", name=f"{CUSTOM_NAME}ws")).to_be_visible()
    tour.check("workspace")
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    tour.check("admin-audit")

    page.get_by_role("link", name="Capacity").click()
    expect(page.get_by_role("heading", name="Capacity", exact=True)).to_be_visible()
    page.get_by_role("button", name="Refresh from Azure").first.click()  # the worker reads the stand-in
    read = page.get_by_text("Usage and limits read from Azure")
    for _ in range(30):
        if read.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(read).to_be_visible()
    budgets = page.get_by_role("table", name=re.compile("budget", re.IGNORECASE))
    expect(budgets.first).to_contain_text(TEAM)
    tour.check("admin-capacity")


def data_scientist_connects(tour: Tour, portal: Portal, tmp_path: Path) -> None:
    """Sam Scientist: the workspace, its clusters, and the SDK's config.json."""
    page = tour.page
    sign_in(tour, portal, "Sam Scientist")
    card = page.locator("section.access-card", has=page.get_by_role("heading", name=f"{CUSTOM_NAME}ws"))
    expect(card).to_contain_text("Data Scientist")
    clusters = card.get_by_role("table", name=f"Compute clusters of {CUSTOM_NAME}ws")
    for name, vm_size, _, _ in CLUSTERS:
        expect(clusters.get_by_role("row").filter(has_text=name)).to_contain_text(vm_size)
    tour.check("data-scientist-my-access")

    with page.expect_download() as download_info:
        card.get_by_role("link", name=re.compile("Download config.json")).click()
    download = download_info.value
    assert download.suggested_filename == "config.json"
    target = tmp_path / "config.json"
    download.save_as(target)
    workspace = Workspace.objects.get(workspace_name=f"{CUSTOM_NAME}ws")
    assert json.loads(target.read_text()) == {
        "subscription_id": factories.TUTORIAL_SUBSCRIPTION,
        "resource_group": workspace.resource_group,
        "workspace_name": f"{CUSTOM_NAME}ws",
    }


def test_a_workspace_from_request_to_a_connected_data_scientist(
    portal: Portal, tour: Tour, start_worker, tmp_path: Path
) -> None:
    tour.name = "journey"
    portal.standin.take_name("storage", TAKEN_STORAGE)
    portal.standin.set_latency("compute.create", 2)  # provisioning lasts long enough to watch it
    factories.team_budget("standardDSv2Family", dedicated=0, low_priority=16)  # the team's core budget
    factories.team_budget("standardNVFamily", dedicated=12, low_priority=0)
    start_worker()  # starts while the team lead types

    pk = team_lead_requests_a_workspace(tour, portal)
    tour.new_person()
    admin_approves(tour, portal, pk)
    tour.new_person()
    data_scientist_connects(tour, portal, tmp_path)

    assert ChangeRequest.objects.get(pk=pk).status == ChangeRequest.Status.SUCCEEDED
    tour.assert_stayed_local()
    tour.assert_no_errors()


def test_a_team_lead_gets_the_portals_404_for_another_teams_request(portal: Portal, tour: Tour) -> None:
    tour.name = "not-found"
    alice = factories.team_lead("alice")  # another team's lead
    others = services.request_create(
        requester=alice, kind=ChangeRequest.Kind.NEW_WORKSPACE, spec=factories.tutorial_spec()
    )
    services.request_submit(request_id=others.pk, actor=alice)
    page = tour.page
    sign_in(tour, portal, "Leo Lead")

    response = page.goto(f"{portal.url}/requests/{others.pk}/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="We couldn't find that page")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main navigation")).to_contain_text("My requests")
    expect(page.get_by_role("main")).not_to_contain_text("bluegranit")
    tour.check("team-lead-other-teams-request")
    tour.assert_stayed_local()
    tour.assert_no_errors(expected_failures=(f"404 {portal.url}/requests/{others.pk}/",))


def test_signing_out_ends_the_portal_and_the_entra_sessions(portal: Portal, tour: Tour) -> None:
    tour.name = "sign-out"
    sign_in(tour, portal, "Sam Scientist")
    sign_out(tour, photograph=True)
    tour.page.goto(f"{portal.url}/access/")
    expect(tour.page.get_by_role("heading", name="Sign in")).to_be_visible()
    tour.assert_no_errors()


def _access_request_checked(requester, workspace: Workspace) -> ChangeRequest:  # type: ignore[no-untyped-def]
    """A submitted request for a data scientist's access, its member found in Entra ID (as the worker stores)."""
    spec = RequestSpec(members=(MemberSpec(principal="user2@contoso.com", persona="data_scientist"),))
    cr = services.request_create(
        requester=requester, kind=ChangeRequest.Kind.GRANT_ACCESS, spec=spec, workspace=workspace
    )
    services.request_submit(request_id=cr.pk, actor=requester)
    answer = {"principal": "user2@contoso.com", "principal_type": "user", "field": "members.0.principal"}
    found = {"object_id": "00000000-0000-0000-0000-000000000002", "display_name": "Ulf User"}
    principal_checks.principal_check_record(
        request_id=cr.pk, answers=[{**answer, **found, "problem": "", "hint": ""}]
    )
    return cr


def test_an_admin_approves_and_rejects_from_the_queue(portal: Portal, tour: Tour) -> None:
    tour.name = "queue"
    alice = factories.team_lead("alice")
    approved = _access_request_checked(alice, factories.WorkspaceFactory(owner=alice, team="queueone"))
    rejected = _access_request_checked(alice, factories.WorkspaceFactory(owner=alice, team="queuetwo"))
    page = tour.page
    sign_in(tour, portal, "Ada Admin")
    expect(page.get_by_role("heading", name="Approvals", exact=True)).to_be_visible()
    tour.check("admin-queue-decisions")

    queue = page.get_by_role("form", name="Filter the waiting requests")
    queue.get_by_label("Team", exact=True).fill("queueone")
    queue.get_by_role("button", name="Filter").click()
    page.get_by_role("button", name=f"Approve request #{approved.pk}").click()
    expect(page.get_by_role("alert").filter(has_text=f"Request #{approved.pk} approved")).to_be_visible()
    expect(page.get_by_role("button", name=f"Approve request #{approved.pk}")).to_have_count(0)
    assert page.url.endswith("/approvals/?team=queueone&sort=submitted")  # the queue as it was filtered
    queue.get_by_role("link", name="Clear").click()

    page.locator("summary", has_text=f"Reject request #{rejected.pk}").click()
    page.get_by_label(f"Reason for rejecting #{rejected.pk}").fill("Ulf moves to another team next week.")
    tour.check("admin-queue-reject-reason")
    page.get_by_role("button", name=f"Reject #{rejected.pk}").click()
    expect(page.get_by_text("Nothing waiting for approval")).to_be_visible()

    statuses = dict(
        ChangeRequest.objects.filter(pk__in=[approved.pk, rejected.pk]).values_list("pk", "status")
    )
    assert statuses == {
        approved.pk: ChangeRequest.Status.APPROVED,
        rejected.pk: ChangeRequest.Status.REJECTED,
    }


def test_an_admin_finds_requests_by_team_and_by_the_requesters_name(portal: Portal, tour: Tour) -> None:
    """Ada Admin sees how many wait in the nav, then finds a request by its team and by who asked."""
    tour.name = "find"
    from accounts import personas

    dana = factories.UserFactory(username="dana", first_name="Dana Whitfield", persona=personas.TEAM_LEAD)
    alice = factories.team_lead("alice")
    asked = {}
    for person, team in ((dana, "orca"), (alice, TEAM)):
        cr = services.request_create(
            requester=person, kind=ChangeRequest.Kind.NEW_WORKSPACE, spec=factories.tutorial_spec(team=team)
        )
        asked[team] = services.request_submit(request_id=cr.pk, actor=person).pk
    page = tour.page
    sign_in(tour, portal, "Ada Admin")
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name=re.compile(r"^Approvals 2 waiting"))).to_be_visible()

    nav.get_by_role("link", name="Requests", exact=True).click()
    expect(page.get_by_role("heading", name="Requests", exact=True)).to_be_visible()
    rows = page.get_by_role("table", name="Your requests").get_by_role("row")
    expect(rows).to_have_count(3)  # the header and both requests
    filters = page.get_by_role("form", name="Filter the requests")
    filters.get_by_label("Team", exact=True).fill("orca")
    filters.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=f"#{asked['orca']}")).to_contain_text("Dana Whitfield")
    assert page.url.endswith("/requests/?team=orca")  # only the filter set, no empty ones
    tour.check("admin-requests-by-team")

    filters.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(3)
    filters.get_by_label("Requested by").fill("whitfield")
    filters.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=f"#{asked['orca']}")).to_be_visible()
    expect(filters.get_by_label("Requested by")).to_have_value("whitfield")  # the search stays in the form
    workspace_header = page.get_by_role("columnheader", name=re.compile(r"^Workspace"))
    workspace_header.get_by_role("link").click()  # sorting keeps the search
    expect(workspace_header).to_have_attribute("aria-sort", "ascending")
    expect(rows).to_have_count(2)
    assert "requester=whitfield" in page.url and "sort=workspace" in page.url

    nav.get_by_role("link", name=re.compile(r"^Approvals")).click()
    queue = page.get_by_role("form", name="Filter the waiting requests")
    queue.get_by_label("Team", exact=True).fill(TEAM)
    queue.get_by_role("button", name="Filter").click()
    waiting = page.get_by_role("table", name="Submitted requests waiting for a decision").get_by_role("row")
    expect(waiting).to_have_count(2)
    expect(waiting.filter(has_text=f"#{asked[TEAM]}")).to_be_visible()
    tour.check("admin-approvals-by-team")
    tour.assert_stayed_local()
    tour.assert_no_errors()
