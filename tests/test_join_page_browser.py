"""The join page in a real browser: Playwright driving Debian's Chromium against a live server and the moto server.

A signed-out visitor opens an invite link, signs in, comes back and joins; a
member is told so; a replaced and an expired code get the not-found page; the
page fits a phone and a laptop; the join button is reached by keyboard with a
visible focus. Every test checks that the page logged no Content-Security-Policy
violation and loaded nothing from another origin. Screenshots of failures go
to ``test-output/``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from invites import joining, policies
from invites.services import invite_code_policy_update, invite_code_regenerate, space_create
from spaces.models import ROLE_MEMBER
from spaces.selectors import space_with_membership
from tests.api_support import add_member, new_user_id
from tests.browser import (
    LAPTOP,
    PHONE,
    browser_console,  # noqa: F401  (fixture "console")
    browser_page,  # noqa: F401  (fixture "page")
    chromium_browser,  # noqa: F401  (fixture "chromium")
    fits_horizontally,
    requires_chromium,
    sign_in_as,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True), requires_chromium]

PASSWORD = "browser-pass-123"
NOT_FOUND_TITLE = "This invite link does not work"


@pytest.fixture
def visitor(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("visitor", password=PASSWORD)


@pytest.fixture
def garden(dynamo_table: object) -> Any:
    return space_create(
        owner_id=new_user_id(),
        name="The Saturday Morning Community Garden Club of Upper Riverside",
        description="Tomatoes, beans and a shared shed. Bring gloves; the compost heap is on the left.",
    )


@pytest.fixture(autouse=True)
def page_stays_self_contained(console: Any, live_server: Any) -> Any:
    """After each test: no CSP violation in the console, no request to another origin."""
    yield
    assert console.csp_violations == []
    assert console.foreign_requests(live_server.url) == []


def heading(page: Any) -> str:
    return page.get_by_role("heading", level=1).inner_text()


def test_a_signed_out_visitor_signs_in_comes_back_and_joins(page, live_server, garden, visitor) -> None:
    join_page = f"/join/{garden.invite_code}"
    opened = page.goto(join_page)
    assert opened.status == 200
    assert heading(page) == garden.name
    assert page.get_by_text("1 member", exact=True).is_visible()

    page.get_by_role("link", name="Sign in to join").click()
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill("visitor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{live_server.url}{join_page}")
    page.get_by_role("button", name=f"Join {garden.name}").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text() == f"You are now a member of {garden.name}."
    assert heading(page) == garden.name
    assert page.get_by_text("2 members", exact=True).is_visible()
    membership = space_with_membership(space_id=garden.id, user_id=str(visitor.pk))[1]
    assert membership is not None and membership.role == ROLE_MEMBER


def test_a_member_sees_that_they_already_are(page, live_server, garden, visitor) -> None:
    add_member(garden.id, str(visitor.pk), ROLE_MEMBER)
    sign_in_as(page, visitor, live_server.url)

    opened = page.goto(f"/join/{garden.invite_code.lower()}")

    assert opened.status == 200
    assert page.get_by_role("status").inner_text() == f"You are already a member of {garden.name}."
    assert page.get_by_role("button", name=re.compile("^Join")).count() == 0


def test_a_replaced_code_and_an_expired_code_show_the_not_found_page(page, garden, monkeypatch) -> None:
    replaced = garden.invite_code
    invite_code_regenerate(space_id=garden.id)
    expiring = space_create(owner_id=new_user_id(), name="Short-lived")
    invite_code_policy_update(space_id=expiring.id, expires_in=60)
    assert page.goto(f"/join/{expiring.invite_code}").status == 200

    later = policies.now_epoch() + 120  # the live server runs in this process: the clock moves for it too
    monkeypatch.setattr(policies, "now_epoch", lambda: later)
    monkeypatch.setattr(joining, "now_epoch", lambda: later)

    for code in (replaced, expiring.invite_code):
        opened = page.goto(f"/join/{code}")
        assert opened.status == 404
        assert heading(page) == NOT_FOUND_TITLE
        assert page.get_by_role("link", name="Enter an invite code").is_visible()


@pytest.mark.parametrize("screen", [PHONE, LAPTOP], ids=["phone-375", "laptop-1280"])
def test_the_pages_fit_the_screen_with_the_button_in_view(page, live_server, garden, visitor, screen) -> None:
    page.set_viewport_size(screen)
    join_page = f"/join/{garden.invite_code}"

    page.goto(join_page)
    assert fits_horizontally(page)
    assert_fully_in_view(page, page.get_by_role("link", name="Sign in to join"), screen)

    page.goto(f"/accounts/login/?next={join_page}")
    assert fits_horizontally(page)
    assert_fully_in_view(page, page.get_by_role("button", name="Sign in"), screen)

    sign_in_as(page, visitor, live_server.url)
    page.goto(join_page)
    assert fits_horizontally(page)
    assert_fully_in_view(page, page.get_by_role("button", name=f"Join {garden.name}"), screen)


def assert_fully_in_view(page: Any, element: Any, screen: dict[str, int]) -> None:
    assert element.is_visible()
    box = element.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= screen["width"]
    assert box["height"] >= 44  # a touch target


def test_the_join_button_is_reached_by_keyboard_with_a_visible_focus(page, live_server, garden, visitor) -> None:
    sign_in_as(page, visitor, live_server.url)
    page.goto(f"/join/{garden.invite_code}")
    button = page.get_by_role("button", name=f"Join {garden.name}")

    for _ in range(5):  # past "Sign out" to the join button
        page.keyboard.press("Tab")
        if button.evaluate("element => element === document.activeElement"):
            break

    assert button.evaluate("element => element === document.activeElement")
    style = button.evaluate(
        "element => [getComputedStyle(element).outlineStyle, getComputedStyle(element).outlineWidth]"
    )
    assert style == ["solid", "3px"]


def test_the_console_check_sees_a_csp_violation(page, garden, console) -> None:
    """The check after every test is not vacuous: an inline script on the page is reported."""
    page.goto(f"/join/{garden.invite_code}")

    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = 1'; document.body.append(s); }"
    )
    page.wait_for_timeout(200)

    assert console.csp_violations
    assert page.evaluate("window.ran") is None
    console.messages.clear()  # expected here; the autouse check must not fail this test
