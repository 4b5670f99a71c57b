"""Without Chromium the browser tests skip with a message, except in CI, where they fail."""

from __future__ import annotations

import pytest

from tests.browser import conftest as browser


def test_a_missing_browser_skips_outside_ci_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DANGLIANG_CHROMIUM", "/nowhere/chromium")
    monkeypatch.setattr(browser, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        browser.require_browser()
    monkeypatch.setattr(browser, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        browser.require_browser()


def test_a_named_browser_is_used_when_it_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DANGLIANG_CHROMIUM", __file__)  # any file that exists
    assert browser.require_browser() == __file__
