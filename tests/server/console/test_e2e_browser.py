"""End to end in real headless Chromium (Debian's package, driven by Playwright).

An officer logs in, approves an erasure together with a second officer, downloads the
receipt, publishes a notice version and sees the audit verify status; an agent is refused.
Skips with the reason when /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privacy import verify_signed

from .live import CHROMIUM, CHROMIUM_ARGS, LiveConsole, browser_missing_reason, live_console

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(browser_missing_reason() is not None, reason=str(browser_missing_reason())),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    with live_console(tmp_path_factory.mktemp("console")) as console:
        console.seed(subjects=12)
        yield console


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _login(browser: Any, live: LiveConsole, token: str) -> Any:
    context = browser.new_context(accept_downloads=True, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live.base_url}/console/")
    assert page.url.endswith("/console/login")  # redirected: no session yet
    page.fill("#token", token)
    page.click("#login")
    return page


def test_two_officers_erase_download_receipt_publish_notice_and_verify(
    browser: Any, live: LiveConsole, tmp_path: Path
) -> None:
    request = f"{live.base_url}/console/requests/{live.requests['erase']}"
    # 1. Officer A logs in, starts verification of the erasure and approves it.
    a = _login(browser, live, live.officer_a)
    assert a.text_content("#who") == "compliance_officer:li.wei"
    a.click("text=Requests")
    a.click(f"tr[data-id='{live.requests['erase']}'] >> text=Open")
    a.click("#verify")
    a.click("#approve")
    assert a.text_content("#state") == "verifying"  # one officer is not enough
    assert a.locator("#approve").count() == 1
    a.click("#approve")  # the same officer again is refused
    assert "not allowed" in (a.text_content("#error") or "")
    # 2. Officer B, in another browser context, approves and carries it out.
    b = _login(browser, live, live.officer_b)
    b.goto(request)
    b.click("#approve")
    assert b.text_content("#state") == "approved"
    b.click("#execute")
    assert b.text_content("#state") == "completed"
    approvals = b.text_content("#approvals") or ""
    assert "li.wei" in approvals and "zhang.min" in approvals
    # 3. The receipt downloads and its signature verifies.
    with b.expect_download() as download_info:
        b.click("#download-receipt")
    saved = tmp_path / "receipt.json"
    download_info.value.save_as(saved)
    verify_signed(json.loads(saved.read_text(encoding="utf-8")))
    assert live.subjects[1] not in saved.read_text(encoding="utf-8")
    # 4. Officer A publishes a material notice for marketing, in Chinese.
    a.goto(f"{live.base_url}/console/consent?lang=zh")
    assert "同意管理" in (a.text_content("h1") or "")
    a.fill("input[name=version]", "2026-12")
    a.check("input[name=purpose_marketing]")
    a.fill("input[name=url]", "https://example.com/notice/2026-12")
    a.fill("textarea[name=text]", "营销告知书（2026 年 12 月版）")
    a.click("#publish")
    assert "告知书版本已发布" in (a.text_content("#published") or "")
    renewal = a.text_content("#purposes tr[data-purpose=marketing] td.renewal")
    # 12 subjects granted marketing, 3 withdrew it and one was just erased: 8 to renew.
    assert renewal is not None and int(renewal) == 8
    # 5. Officer A runs the audit verification and sees the status (page refreshes itself).
    a.goto(f"{live.base_url}/console/audit?lang=en")
    a.click("#run-verify")
    a.wait_for_selector("#verify-status.ok", timeout=20_000)
    assert "intact" in (a.text_content("#verify-status") or "")
    a.goto(f"{live.base_url}/console/")
    assert "intact" in (a.text_content("#verify-status") or "")


def test_agent_is_refused_the_compliance_pages(browser: Any, live: LiveConsole) -> None:
    page = _login(browser, live, live.agent)
    assert "may not use the compliance console" in (page.text_content("#error") or "")
    for path in ("/console/", "/console/requests", "/console/audit"):
        page.goto(f"{live.base_url}{path}")
        assert page.url.endswith("/console/login")
