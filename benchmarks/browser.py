"""A real headless Chromium (for the report tests and benchmarks/report.py) (the Debian package, driven by Playwright) with the network cut off.

Every request that is not a file:// or data: URL is aborted and recorded, so a page that reaches
for a CDN shows up in ``blocked`` (and fails to draw); console errors and uncaught exceptions are
recorded in ``errors``.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field

CHARTS_DRAWN = ("document.querySelectorAll('div.vega-chart').length === "
                "document.querySelectorAll('div.vega-chart[data-rendered]').length")


@dataclass
class PageLog:
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "this test needs Chromium: `apt-get install chromium` (.ci/run installs it)"
    return path


@contextmanager
def offline_page(url: str, *, width: int = 1280, height: int = 900):
    """Open ``url`` offline; yields ``(page, log)``."""
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": width, "height": height})

            def route(r):
                if r.request.url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    log.blocked.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: log.errors.append(str(e)))
            page.goto(url)
            yield page, log
        finally:
            browser.close()


def drawn_charts(page, selector: str = "div.vega-chart") -> list[dict]:
    """Per chart: its id, how many SVG roots and how many drawn marks (paths, images, text) it holds."""
    return page.evaluate(f"""Array.from(document.querySelectorAll({selector!r})).map(e => ({{
        id: e.id, svg: e.querySelectorAll('svg').length, canvas: e.querySelectorAll('canvas').length,
        marks: e.querySelectorAll('svg path, svg image, svg rect, svg line, svg text').length}}))""")
