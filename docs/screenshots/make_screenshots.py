"""Take a PNG of every console page (English and Chinese) for the docs and the README.

Run from the repository root: ``python docs/screenshots/make_screenshots.py``. It starts the
same live console the browser tests use (uvicorn on a temporary SQLite database, seeded
through the public API), walks an erasure through two officers, publishes a notice, runs
the audit verification and photographs each page with Debian's headless chromium through
Playwright (no browser download).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.server.console.live import CHROMIUM, CHROMIUM_ARGS, live_console  # noqa: E402


def main() -> int:
    """Seed a live console, drive it and write ``docs/screenshots/*.png``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, live_console(Path(tmp)) as live:
        live.seed(subjects=40)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            pages = []
            for token in (live.officer_b, live.officer_a):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{live.base_url}/console/login")
                page.fill("#token", token)
                page.click("#login")
                pages.append(page)
            b, a = pages
            shots: dict[str, str] = {}
            erase = f"{live.base_url}/console/requests/{live.requests['erase']}"
            a.goto(erase)
            a.click("#verify")
            a.click("#approve")
            b.goto(erase)
            b.click("#approve")
            b.click("#execute")
            a.goto(f"{live.base_url}/console/audit")
            a.click("#run-verify")
            a.wait_for_selector("#verify-status.ok", timeout=20_000)
            a.goto(f"{live.base_url}/console/consent")
            a.fill("input[name=version]", "2026-12")
            a.check("input[name=purpose_marketing]")
            a.fill("input[name=url]", "https://example.com/notice/2026-12")
            a.fill("textarea[name=text]", "Marketing notice, December 2026")
            a.click("#publish")
            shots.update(
                {
                "overview": "/console/?lang=en",
                "consent": f"/console/consent?subject={live.subjects[0]}",
                "requests": "/console/requests",
                "request": f"/console/requests/{live.requests['erase']}",
                "audit": "/console/audit",
                "budget": "/console/budget",
                "overview_zh": "/console/?lang=zh",
                "consent_zh": "/console/consent?lang=zh",
            })  # fmt: skip
            login = browser.new_page(viewport={"width": 1280, "height": 600})
            login.goto(f"{live.base_url}/console/login")
            login.screenshot(path=str(HERE / "login.png"))
            for name, path in shots.items():
                a.goto(f"{live.base_url}{path}")
                a.screenshot(path=str(HERE / f"{name}.png"), full_page=name != "audit")
                print(f"wrote docs/screenshots/{name}.png")  # noqa: T201
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
