"""Signing in through the form in a real browser; the audit page; accessibility basics."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import LiveServer, accessibility_violations
from tests.web.conftest import PASSWORD, PEOPLE


def test_a_wrong_password_shows_why_and_a_right_one_signs_in(
    browser: Any, live: LiveServer
) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(live.url + "/audit")
    assert "/login" in page.url
    page.get_by_label("用户名").fill(PEOPLE["auditor"])
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    assert "用户名或密码不正确" in page.get_by_role("alert").inner_text()
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/audit")
    assert page.get_by_role("heading", level=1).inner_text().startswith("审计")
    context.close()


def test_the_sign_in_page_can_be_used_with_the_keyboard_alone(
    browser: Any, live: LiveServer
) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(live.url + "/login?next=/audit")
    assert accessibility_violations(page) == []
    page.keyboard.type(PEOPLE["auditor"])  # the user name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live.url + "/audit")
    context.close()


def test_an_auditor_verifies_the_chain_in_the_browser(
    as_user: Any, live: LiveServer, screenshot: Any
) -> None:
    page = as_user("auditor")
    page.goto(live.url + "/audit")
    assert accessibility_violations(page) == []
    page.get_by_role("button", name="开始校验").click()
    result = page.locator("#verify-result")
    result.wait_for()
    assert result.get_attribute("data-ok") == "true"
    head = live.service.verify_log()["head"]  # type: ignore[attr-defined]
    assert page.locator("#verify-head").inner_text() == head
    screenshot(page, "audit")


def test_a_clerk_is_refused_the_audit_page(as_user: Any, live: LiveServer) -> None:
    page = as_user("clerk")
    response = page.goto(live.url + "/audit")
    assert response.status == 403
    assert "无权限" in page.get_by_role("heading", level=1).inner_text()


def test_the_menu_and_a_run_can_be_reached_with_the_keyboard(
    as_user: Any, live: LiveServer
) -> None:
    page = as_user("auditor")
    page.goto(live.url + "/audit")
    page.keyboard.press("Tab")  # the first stop skips to the content
    assert page.evaluate("document.activeElement.textContent") == "跳到正文"
    for _ in range(12):  # then the menu, in order, until 支付批次
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "支付批次":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(live.url + "/runs")
    assert page.get_by_role("heading", level=1).inner_text().startswith("支付批次")
    assert accessibility_violations(page) == []
