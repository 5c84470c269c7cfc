"""The admin in a real browser: Playwright driving Debian's Chromium against a live server and the moto server.

One flow, as an operator would go: log in, open Spaces, filter to the spaces
without a code, press the button on a legacy space, regenerate a legacy code
through the confirmation, run a bulk action, preview and run the backfill.
After each step DynamoDB itself is checked. When a test fails, screenshots of
the page it was on and of the space list are saved to ``test-output/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invites import services as engine
from invites.services import space_create
from spaces.models import InviteMapping
from tests.invariants import invariant_violations, stored_code
from tests.legacy import put_legacy_space

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
PASSWORD = "browser-pass-123"

if shutil.which(CHROMIUM) is None:
    pytestmark.append(pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: `make test` installs Debian's package"))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while the
    # browser lives; the ORM calls of the tests and of pytest-django's database
    # teardown are still plain synchronous code, so Django must not refuse them.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
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


def has_consistent_mapping(space_id: str) -> bool:
    code = stored_code(space_id)
    mappings = [m.code for m in InviteMapping.query(f"INVITE#{code}")] if code else []
    resolved, _ = engine.invite_code_resolve(typed_code=code or "")
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
    page.get_by_role("link", name="Spaces").first.click()
    page.wait_for_url(re.compile(r"/admin/invites/dynamospace/$"))
    assert row(page, current.id).locator(".field-invite-code").inner_text() == current.invite_code

    # Filter to the spaces without a code.
    page.locator("#changelist-filter").get_by_role("link", name="No").click()
    page.wait_for_url(re.compile(r"has_code=no$"))
    listed = page.locator("#result_list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.spaceId)")
    assert set(listed) == {*without_code, for_bulk, *for_backfill}

    # Press the button on one legacy space: it gets a code at once; its neighbours do not.
    target, neighbour = without_code
    row(page, target).get_by_role("button", name="Regenerate invite code").click()
    page.wait_for_load_state()
    new_code = stored_code(target)
    assert new_code is not None
    assert success_message(page) == (
        f"The invite code of space “Legacy without code 0” ({target}) is now {new_code} (it had none)."
    )
    assert stored_code(neighbour) is None
    assert has_consistent_mapping(target)

    # Regenerate a legacy code: the confirmation warns that the old link stops working.
    page.goto(f"/admin/invites/dynamospace/?q={old_code_space}")
    row(page, old_code_space).get_by_role("button", name="Regenerate invite code").click()
    assert "The old invite link will stop working" in page.locator("#content").inner_text()
    assert stored_code(old_code_space) == "a3f9c2d4"
    page.get_by_role("button", name="Yes, regenerate the invite code").click()
    page.wait_for_load_state()
    regenerated = stored_code(old_code_space)
    assert regenerated not in (None, "a3f9c2d4")
    assert regenerated in success_message(page) and "(was a3f9c2d4)" in success_message(page)
    assert row(page, old_code_space).locator(".field-invite-code").inner_text() == regenerated
    assert has_consistent_mapping(old_code_space)

    # A bulk action on the selected rows: one without a code, one with.
    page.goto("/admin/invites/dynamospace/")
    row(page, for_bulk).locator("input.action-select").check()
    row(page, current.id).locator("input.action-select").check()
    page.select_option("select[name=action]", "add_missing_invite_codes")
    page.get_by_role("button", name="Go").click()
    page.wait_for_load_state()
    assert success_message(page).startswith("Added invite codes to 1 space: “Team Hub”")
    assert "Left 1 space unchanged" in page.locator("ul.messagelist").inner_text()
    assert stored_code(for_bulk) is not None and stored_code(current.id) == current.invite_code

    # The backfill page: preview, then confirm.
    page.get_by_role("link", name="Backfill missing codes").click()
    page.get_by_role("button", name="Preview (dry run)").click()
    summary = page.locator(".backfill-summary").inner_text()
    assert "4 spaces lack an invite code" in summary  # the neighbour and the three left for the backfill
    assert all(stored_code(space_id) is None for space_id in for_backfill)
    page.locator("#backfill-run input[type=submit]").click()
    page.wait_for_load_state()
    assert success_message(page).startswith("Gave invite codes to 4 spaces")
    assert page.locator(".backfill-remaining").inner_text() == "nothing: every space has a code"

    # DynamoDB holds a consistent code for every space.
    assert invariant_violations(require_codes=True) == []
    assert all(has_consistent_mapping(space_id) for space_id in [*for_backfill, neighbour, for_bulk])


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

    row(page, third).get_by_role("button", name="Regenerate invite code").click()
    page.wait_for_load_state()

    assert [space_id for space_id in spaces if stored_code(space_id)] == [third]
    assert row(page, third).locator(".field-invite-code").inner_text() == stored_code(third)
