"""A team lead signs in and requests a workspace with the keyboard alone: Tab, typing, arrows, Space, Enter.

No mouse click and no programmatic filling: every field is reached by Tab in the page's own order, shows
where the focus is, and the request ends submitted.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from provisioning.models import ChangeRequest
from tests import factories
from tests.browser.conftest import Portal
from tests.browser.tour import Tour, missing_tools

if missing_tools():
    pytest.skip(missing_tools(), allow_module_level=True)

# The live server needs committed data; serialized_rollback brings back what migrations seed (persona
# groups, environment policies) after each test's flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

MAX_TABS = 80
FOCUSED_ID = "() => document.activeElement ? document.activeElement.id : ''"
FOCUSED_TEXT = "() => document.activeElement === document.body ? '' : document.activeElement.textContent"
# Bootstrap shows focus with a box-shadow on form controls and buttons; browsers outline links.
FOCUS_VISIBLE = """() => {
  const style = getComputedStyle(document.activeElement);
  return style.outlineStyle !== "none" || style.boxShadow !== "none";
}"""


def tab_until(page: Page, reached: str, describe: str) -> None:
    """Press Tab until ``reached`` (a JS function returning true) holds; the focus must be visible there."""
    for _ in range(MAX_TABS):
        if page.evaluate(reached):
            assert page.evaluate(FOCUS_VISIBLE), f"{describe} has the focus but shows no focus indicator"
            return
        page.keyboard.press("Tab")
    pytest.fail(f"{describe} was not reached with {MAX_TABS} presses of Tab")


def tab_to(page: Page, element_id: str) -> None:
    tab_until(
        page, f"() => document.activeElement && document.activeElement.id === {element_id!r}", element_id
    )


def type_into(page: Page, element_id: str, text: str) -> None:
    tab_to(page, element_id)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def choose(page: Page, element_id: str, value: str) -> None:
    """Move through a select's options with the arrow keys until ``value`` is chosen."""
    tab_to(page, element_id)
    for key in ("Home", *["ArrowDown"] * 40):
        if page.evaluate("() => document.activeElement.value") == value:
            return
        page.keyboard.press(key)
    pytest.fail(f"option {value!r} of {element_id} cannot be chosen with the arrow keys")


def test_a_team_lead_requests_a_workspace_with_the_keyboard_alone(portal: Portal, tour: Tour) -> None:
    tour.name = "keyboard"
    page = tour.page
    page.goto(f"{portal.url}/requests/new/")

    tab_until(page, f"() => ({FOCUSED_TEXT})().includes('Sign in with Microsoft')", "the sign-in link")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()
    tab_until(page, f"() => ({FOCUSED_TEXT})().includes('Lena Lead')", "Lena Lead's account")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Request a new workspace")).to_be_visible()

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)"), (
        "the skip link does not lead past the navigation"
    )

    choose(page, "id_subscription_id", factories.TUTORIAL_SUBSCRIPTION)
    choose(page, "id_region", "eastus2")
    type_into(page, "id_department", "bgmr")
    type_into(page, "id_team", "keyboard")
    tab_to(page, "id_region_abbv")
    expect(page.locator("#id_region_abbv")).to_have_value("e2")
    choose(page, "id_environment", "dev")
    tab_to(page, "id_data_lake")
    page.keyboard.press("Space")
    expect(page.locator("#id_data_lake")).to_be_checked()
    expect(page.locator("#name-preview")).to_contain_text("bgmrkeyboarde2devbig")
    tour.check("keyboard-focus-and-names")

    type_into(page, "id_clusters-0-name", "cpu-cluster")
    choose(page, "id_clusters-0-vm_size", "STANDARD_DS3_V2")
    choose(page, "id_clusters-0-priority", "dedicated")
    type_into(page, "id_clusters-0-max_nodes", "2")
    type_into(page, "id_members-0-principal", "scientist@contoso.com")
    choose(page, "id_members-0-persona", "data_scientist")
    tab_until(page, f"() => ({FOCUSED_TEXT})().trim() === 'Submit for approval'", "the submit button")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Request #")).to_contain_text("Submitted")
    cr = ChangeRequest.objects.get()
    assert (cr.status, cr.spec["workspace"]["team"], cr.spec["workspace"]["data_lake"]) == (
        ChangeRequest.Status.SUBMITTED,
        "keyboard",
        True,
    )
    assert [(c["name"], c["vm_size"], c["priority"], c["max_nodes"]) for c in cr.spec["clusters"]] == [
        ("cpu-cluster", "STANDARD_DS3_V2", "dedicated", 2)
    ]
    assert [(m["principal"], m["persona"]) for m in cr.spec["members"]] == [
        ("lead@contoso.com", "team_lead"),  # who asks joins, as the ticked box said
        ("scientist@contoso.com", "data_scientist"),
    ]
    tour.assert_stayed_local()
    tour.assert_no_errors()
