"""Regenerate the screenshots of docs/ui.md: start the demo edge (a copy of config/ on free
ports), send it a few requests, open the timeline UI in headless Chromium (Playwright) and
save each view under docs/img/. Run: python scripts/ui_screenshots.py (make ui-screenshots)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import httpx
import yaml
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeproxy.config.loading import load_config  # noqa: E402
from edgeproxy.runtime import RunningEdge, running_edge  # noqa: E402

IMAGES = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 860}
# What the demo is asked, in order: misses, hits, functions of each kind, an error.
REQUESTS = [
    "/index.html",
    "/index.html",
    "/query/?B=2&a=1",
    "/cf/docs/",
    "/www/about",
    "/members/club",
    "/style.css",
    "/style.css",
    "/missing.html",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_config(folder: Path) -> Path:
    shutil.copytree(ROOT / "config", folder / "config")
    path = folder / "config" / "distribution.yaml"
    document = yaml.safe_load(path.read_text())
    edge = document["edge"]
    edge["listeners"] = {"http_port": free_port()}
    edge["admin"]["port"] = free_port()
    edge["demo_origin"]["port"] = free_port()
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def traffic(running: RunningEdge) -> None:
    async with httpx.AsyncClient(headers={"Host": "www.example.com"}) as client:
        for path in REQUESTS:
            await client.get(running.url(path))


async def shoot(page: Page, name: str) -> None:
    await page.screenshot(path=str(IMAGES / name))
    print(f"docs/img/{name}")


async def views(page: Page, running: RunningEdge) -> None:
    await page.goto(running.admin_url + "/")
    await page.locator("tr.exchange").nth(len(REQUESTS) - 1).wait_for()
    await shoot(page, "ui-list.png")
    await page.locator("tr.exchange").filter(has_text="/query/").first.click()
    await page.locator("#detail .call").first.wait_for()
    await page.locator("#detail details").first.evaluate("node => node.open = true")
    await shoot(page, "ui-detail.png")
    await page.locator("#detail h3", has_text="Cache").scroll_into_view_if_needed()
    await shoot(page, "ui-detail-origin.png")
    await page.select_option("select[name=x_cache]", "Hit")
    await page.locator("tr.exchange").filter(has_text="/query/").wait_for(state="detached")
    await shoot(page, "ui-filters.png")


async def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        config = load_config(demo_config(Path(folder))).config
        async with running_edge(config, use_dns=False) as running:
            await traffic(running)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    page = await browser.new_page(viewport=VIEWPORT)
                    await views(page, running)
                finally:
                    await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
