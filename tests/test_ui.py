"""The timeline UI in a real browser: headless Chromium (Debian's, driven by Playwright, as in
test_browser.py) opens the admin listener's page of a real edge; a request through the edge
appears in the live list within a second, its detail shows the header a viewer-request
function added, and the filters narrow the list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import RecordingOrigin, StartEdge, Viewer, distribution, handler
from playwright.async_api import Page, async_playwright, expect
from test_browser import CHROMIUM, CHROMIUM_ARGS

MARK = [{"event_type": "viewer-request", "handler": handler("mark_request.py:viewer_request")}]


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    assert CHROMIUM.is_file(), "Debian's chromium is missing: `make test` installs it"
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()


async def marked_edge(origin: RecordingOrigin, start_edge: StartEdge) -> Viewer:
    document = distribution(origin.port)
    document["distribution"]["ordered_cache_behavior"] = [
        {
            **document["distribution"]["default_cache_behavior"],
            "path_pattern": "/marked/*",
            "lambda_function_association": MARK,
        }
    ]
    viewer: Viewer = await start_edge(document)
    return viewer


async def test_a_request_appears_live_and_its_detail_shows_the_header_change(
    origin: RecordingOrigin, start_edge: StartEdge, page: Page
):
    viewer = await marked_edge(origin, start_edge)
    await page.goto(viewer.running.admin_url + "/")
    await expect(page.locator("#live")).to_have_class("on")  # the stream is open
    await viewer.get("/marked/page")
    row = page.locator("tr.exchange").filter(has_text="/marked/page")
    await expect(row).to_have_count(1, timeout=1000)  # pushed, within a second
    await expect(row.locator(".pattern")).to_have_text("/marked/*")
    await expect(row.locator(".stages")).to_have_text("viewer-request")
    await expect(row.locator(".xcache")).to_have_text("Miss")

    await row.click()
    call = page.locator("#detail .call[data-stage='viewer-request']")
    await expect(call.locator(".diff-added")).to_have_text("+ x-viewer-request: /marked/page")
    detail = page.locator("#detail")
    await expect(detail).to_contain_text("mark_request.py")
    await expect(detail).to_contain_text("X-Viewer-Request")  # what the origin received
    await expect(detail).to_contain_text("TTL 60 s")  # the cache decision


async def test_filters_narrow_the_list(origin: RecordingOrigin, start_edge: StartEdge, page: Page):
    viewer = await marked_edge(origin, start_edge)
    for path in ("/plain", "/plain", "/marked/one"):
        await viewer.get(path)
    await page.goto(viewer.running.admin_url + "/")
    rows = page.locator("tr.exchange")
    await expect(rows).to_have_count(3)
    await page.select_option("select[name=stage]", "viewer-request")
    await expect(rows).to_have_count(1)
    await expect(rows.locator(".path")).to_have_text("/marked/one")
    await page.select_option("select[name=stage]", "")
    await page.select_option("select[name=x_cache]", "Hit")
    await expect(rows).to_have_count(1)
    await expect(rows.locator(".path")).to_have_text("/plain")
    await page.fill("input[name=status]", "5xx")
    await expect(rows).to_have_count(0)
    await page.click("button[type=reset]")
    await expect(rows).to_have_count(3)
    # a filter applies to what arrives live too
    await page.fill("input[name=path]", "/marked")
    await expect(rows).to_have_count(1)
    await viewer.get("/plain-again")
    await viewer.get("/marked/two")
    await expect(rows.filter(has_text="/marked/two")).to_have_count(1)
    await expect(rows).to_have_count(2)
