"""The admin in a real browser: Playwright driving Debian's Chromium against a live server and the moto server.

One flow, as an operator would go: log in, open Spaces, filter to the spaces
without a code, press the button on a legacy space, regenerate a legacy code
through the confirmation, run a bulk action, preview and run the backfill,
pause and unpause a code. After each step DynamoDB itself is checked.

The layout is checked at 1280 and 1920 pixels: every row's button fully
visible, in its cell, its words not cut; the maintenance pages' buttons have
the admin's own padding. The layout test keeps its screenshots of the space
list (``test-output/space-list-1280.png``, ``...-1920.png``) for review; when
any test fails, screenshots of the page it was on and of the space list are
saved to ``test-output/`` too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.demo import seed_demo
from invites import joining
from invites import services as engine
from invites.services import space_create
from spaces.models import InviteMapping, Space
from tests.browser import TEST_OUTPUT, requires_chromium
from tests.browser import chromium_browser as chromium_browser
from tests.invariants import invariant_violations, stored_code
from tests.legacy import put_legacy_mapping, put_legacy_space

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-pass-123"
pytestmark.append(requires_chromium)


@pytest.fixture
def page(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; ``@pytest.mark.parametrize("page", [1280], indirect=True)`` sets the screen's width."""
    width = getattr(request, "param", 1400)
    context = chromium.new_context(base_url=live_server.url, viewport={"width": width, "height": 1000})
    context.set_default_timeout(20_000)
    browser_page = context.new_page()
    yield browser_page
    call_report = getattr(request.node, "report_call", None)
    if call_report is not None and call_report.failed:
        TEST_OUTPUT.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        browser_page.screenshot(path=str(TEST_OUTPUT / f"{name}-last-page.png"), full_page=True)
        browser_page.goto("/admin/invites/dynamospace/")
        browser_page.screenshot(path=str(TEST_OUTPUT / f"{name}-space-list.png"), full_page=True)
    context.close()


@pytest.fixture
def staff_who_may_change_codes(transactional_db: None) -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="invites", codename="change_invite_code"))
    return user


def log_in(page: Any, then: str = "/admin/invites/dynamospace/") -> None:
    page.goto(f"/admin/login/?next={then}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(re.escape(then) + "$"))


def has_consistent_mapping(space_id: str) -> bool:
    code = stored_code(space_id)
    mappings = [m.code for m in InviteMapping.query(f"INVITE#{code}")] if code else []
    resolved, _ = joining.invite_code_resolve(typed_code=code or "")
    return mappings == [code] and resolved.id == space_id


def row(page: Any, space_id: str) -> Any:
    return page.locator(f'#result_list tr[data-space-id="{space_id}"]')


def success_message(page: Any) -> str:
    return page.locator("ul.messagelist li.success").first.inner_text()


def test_an_operator_fixes_invite_codes_through_the_admin(
    page: Any, legacy_table: object, staff_who_may_change_codes: Any
) -> None:
    # Arrange: spaces as the earlier system left them, and one current space.
    without_code = [put_legacy_space(name=f"Legacy without code {n}") for n in range(2)]
    old_code_space = put_legacy_space(name="Chess Night", invite_code="a3f9c2d4")
    for_bulk = put_legacy_space(name="Team Hub")
    for_backfill = [put_legacy_space(name=f"Backfill me {n}") for n in range(3)]
    current = space_create(owner_id=str(staff_who_may_change_codes.pk), name="Garden Club")

    # Log in as staff and open Spaces from the admin index.
    page.goto("/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.get_by_role("link", name="Spaces", exact=True).first.click()
    page.wait_for_url(re.compile(r"/admin/invites/dynamospace/$"))
    assert row(page, current.id).locator(".field-invite-code").inner_text() == current.invite_code

    # Filter to the spaces without a code.
    page.locator("#changelist-filter").get_by_role("link", name="No").click()
    page.wait_for_url(re.compile(r"has_code=no$"))
    listed = page.locator("#result_list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.spaceId)")
    assert set(listed) == {*without_code, for_bulk, *for_backfill}

    press_add_code_on_one_row(page, *without_code)
    regenerate_a_legacy_code_through_the_confirmation(page, old_code_space)
    add_codes_in_bulk(page, without=for_bulk, coded=current)
    preview_and_run_the_backfill(page, for_backfill)

    # DynamoDB holds a consistent code for every space.
    assert invariant_violations(require_codes=True) == []
    assert all(has_consistent_mapping(space_id) for space_id in [*for_backfill, without_code[1], for_bulk])

    pause_and_unpause_a_code(page, current)


def press_add_code_on_one_row(page: Any, target: str, neighbour: str) -> None:
    """The button on one legacy space: it gets a code at once; its neighbours do not."""
    row(page, target).get_by_role("button", name="Add code").click()
    page.wait_for_load_state()
    new_code = stored_code(target)
    assert new_code is not None
    assert success_message(page) == (
        f"The invite code of space “Legacy without code 0” ({target}) is now {new_code} (it had none)."
    )
    assert stored_code(neighbour) is None
    assert has_consistent_mapping(target)


def regenerate_a_legacy_code_through_the_confirmation(page: Any, space_id: str) -> None:
    """The confirmation warns that the old link stops working; confirmed, the space has a new code."""
    page.goto(f"/admin/invites/dynamospace/?q={space_id}")
    row(page, space_id).get_by_role("button", name="Regenerate").click()
    assert "The old invite link will stop working" in page.locator("#content").inner_text()
    assert stored_code(space_id) == "a3f9c2d4"
    page.get_by_role("button", name="Yes, regenerate the invite code").click()
    page.wait_for_load_state()
    regenerated = stored_code(space_id)
    assert regenerated not in (None, "a3f9c2d4")
    assert str(regenerated) in success_message(page) and "(was a3f9c2d4)" in success_message(page)
    assert row(page, space_id).locator(".field-invite-code").inner_text() == regenerated
    assert has_consistent_mapping(space_id)


def add_codes_in_bulk(page: Any, *, without: str, coded: Any) -> None:
    """A bulk action on two selected rows: the one without a code gets one, the other is left alone."""
    page.goto("/admin/invites/dynamospace/")
    row(page, without).locator("input.action-select").check()
    row(page, coded.id).locator("input.action-select").check()
    page.select_option("select[name=action]", "add_missing_invite_codes")
    page.get_by_role("button", name="Go").click()
    page.wait_for_load_state()
    assert success_message(page).startswith("Added invite codes to 1 space: “Team Hub”")
    assert "Left 1 space unchanged" in page.locator("ul.messagelist").inner_text()
    assert stored_code(without) is not None and stored_code(coded.id) == coded.invite_code


def preview_and_run_the_backfill(page: Any, for_backfill: list[str]) -> None:
    page.get_by_role("link", name="Backfill missing codes").click()
    page.get_by_role("button", name="Preview (dry run)").click()
    summary = page.locator(".backfill-summary").inner_text()
    assert "4 spaces lack an invite code" in summary  # the neighbour and the three left for the backfill
    assert all(stored_code(space_id) is None for space_id in for_backfill)
    page.locator("#backfill-run input[type=submit]").click()
    page.wait_for_load_state()
    assert success_message(page).startswith("Gave invite codes to 4 spaces")
    assert page.locator(".backfill-remaining").inner_text() == "nothing: every space has a code"


def pause_and_unpause_a_code(page: Any, space: Any) -> None:
    """On the space's page: the code stays, its policy changes."""
    page.goto(f"/admin/invites/dynamospace/{space.id}/change/")
    page.get_by_role("button", name="Pause invite code").click()
    page.wait_for_load_state()
    assert success_message(page).endswith("is paused: nobody can join with it.")
    assert Space.get(*Space.key(space.id), consistent_read=True).invite_paused is True
    assert page.locator(".field-works").inner_text() == "no: paused"
    page.get_by_role("button", name="Unpause invite code").click()
    page.wait_for_load_state()
    assert success_message(page).endswith("works again.")
    unpaused = Space.get(*Space.key(space.id), consistent_read=True)
    assert (unpaused.invite_paused, unpaused.invite_code) == (None, space.invite_code)


def test_the_row_button_acts_on_its_own_row_in_the_browser(
    page: Any, dynamo_table: object, staff_who_may_change_codes: Any
) -> None:
    spaces = [put_legacy_space(name=f"Row {n}") for n in range(4)]
    page.goto("/admin/login/?next=/admin/invites/dynamospace/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/invites/dynamospace/$"))
    # Select another row's checkbox first: the row button must ignore the bulk form.
    order = page.locator("#result_list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.spaceId)")
    third, first = order[2], order[0]
    row(page, first).locator("input.action-select").check()

    row(page, third).get_by_role("button", name="Add code").click()
    page.wait_for_load_state()

    assert [space_id for space_id in spaces if stored_code(space_id)] == [third]
    assert row(page, third).locator(".field-invite-code").inner_text() == stored_code(third)


# --- layout --------------------------------------------------------------------------------

# Every row button: inside the viewport, inside its cell, inside the results' box (which
# scrolls sideways when the table is too wide), and its words not cut; the headers not cut.
ROW_BUTTON_PROBLEMS = """() => {
  const problems = [];
  const slack = 0.5;
  const viewport = document.documentElement.clientWidth;
  const results = document.querySelector('#changelist-form .results');
  const box = results.getBoundingClientRect();
  if (results.scrollWidth > results.clientWidth) {
    problems.push(`the table is wider than its box: ${results.scrollWidth} > ${results.clientWidth}`);
  }
  for (const button of document.querySelectorAll('#result_list tbody button')) {
    const name = `${button.closest('tr').dataset.spaceId} "${button.innerText}"`;
    const b = button.getBoundingClientRect();
    const cell = button.closest('td').getBoundingClientRect();
    if (b.left < -slack || b.right > viewport + slack) problems.push(`${name}: outside the viewport`);
    if (b.left < box.left - slack || b.right > box.right + slack) problems.push(`${name}: outside the table's box`);
    if (b.left < cell.left - slack || b.right > cell.right + slack || b.top < cell.top - slack
        || b.bottom > cell.bottom + slack) problems.push(`${name}: outside its cell`);
    if (button.scrollWidth > button.clientWidth) problems.push(`${name}: its words are cut`);
  }
  for (const header of document.querySelectorAll('#result_list thead th')) {
    const h = header.getBoundingClientRect();
    const text = header.innerText.trim() || '(checkbox)';
    if (h.right > viewport + slack || h.right > box.right + slack) problems.push(`header ${text}: outside`);
    if (header.scrollWidth > header.clientWidth) problems.push(`header ${text}: cut`);
  }
  return problems;
}"""


def seed_a_realistic_list(owner: Any) -> None:
    """The demo data, a long name owned by a user unknown here (a raw UUID), and codes with a policy."""
    seed_demo()
    space_create(owner_id=str(uuid.uuid4()), name="A space with a rather long name that needs two lines")
    limited = space_create(owner_id=str(owner.pk), name="Limited and paused")
    engine.invite_code_policy_update(space_id=limited.id, paused=True, max_uses=25, expires_in=7 * 24 * 3600)
    expiring = space_create(owner_id=str(owner.pk), name="Expiring soon")
    engine.invite_code_policy_update(space_id=expiring.id, expires_in=3600)


@pytest.mark.parametrize("page", [1280, 1920], indirect=True)
def test_every_row_button_is_fully_visible_on_a_laptop_and_a_desktop_screen(
    page: Any, legacy_table: object, staff_who_may_change_codes: Any
) -> None:
    seed_a_realistic_list(staff_who_may_change_codes)

    log_in(page)
    width = page.viewport_size["width"]
    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / f"space-list-{width}.png"), full_page=True)

    buttons = page.locator("#result_list tbody button")
    assert buttons.count() == 12  # 9 demo spaces and 3 more
    assert page.evaluate(ROW_BUTTON_PROBLEMS) == []
    assert set(buttons.all_inner_texts()) == {"Regenerate", "Add code"}


def padding(locator: Any) -> str:
    return locator.evaluate("element => getComputedStyle(element).padding")


def height(locator: Any) -> float:
    return locator.evaluate("element => element.getBoundingClientRect().height")


def test_the_maintenance_pages_buttons_have_the_admins_own_padding(
    page: Any, dynamo_table: object, staff_who_may_change_codes: Any
) -> None:
    put_legacy_space(name="Bare")
    put_legacy_mapping(code="GONE2345", space_id="deleted")

    log_in(page, "/admin/invites/dynamospace/backfill/")
    assert padding(page.get_by_role("button", name="Preview (dry run)")) == "10px 15px"  # .submit-row input
    page.get_by_role("button", name="Preview (dry run)").click()
    again, run = page.get_by_role("button", name="Preview again"), page.locator("#backfill-run input[type=submit]")
    assert padding(again) == padding(run) == "10px 15px"
    assert height(again) == height(run)

    page.goto("/admin/invites/dynamospace/audit/")
    assert padding(page.get_by_role("button", name="Run the audit")) == "10px 15px"
    page.get_by_role("button", name="Run the audit").click()
    again = page.get_by_role("button", name="Run the audit again")
    repair = page.locator("#audit-repair input[type=submit]")
    assert padding(again) == padding(repair) == "10px 15px"
    assert height(again) == height(repair)
