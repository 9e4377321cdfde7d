"""The demo's HTML report in a real browser: Debian's chromium driven by Playwright (its own browser download is
not reachable, so it is launched with ``executable_path``). The page loads from ``file://`` with no console error
and no request but its own file, every chart is drawn, the record table's links land on their records, the
keyboard reaches the content, and it reads at phone width and in dark mode. Screenshots go to the test's
``tmp_path`` (and to ``$LOOPFORGE_SCREENSHOTS`` when set, e.g. ``benchmarks/screenshots``).

.ci/run installs chromium (``apt-get install -y chromium``) and Playwright (the ``test`` extra).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.report.helpers import ARGS, CHROMIUM, DemoRun

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MARKS = ".plot .series rect, .plot .series path, .plot .series circle"  # what pygal draws data with


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install -y chromium (.ci/run does it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Loaded:
    def __init__(self, page: Page, errors: list[str], requests: list[str]) -> None:
        self.page, self.errors, self.requests = page, errors, requests


def load(browser: Browser, url: str, *, viewport: dict[str, int], scheme: str = "light") -> Loaded:
    context = browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="load")
    return Loaded(page, errors, requests)


def save(page: Page, name: str, tmp_path: Path, **kw: Any) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), **kw)
    assert path.stat().st_size > 10_000
    extra = os.environ.get("LOOPFORGE_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def test_loads_offline_without_errors(browser: Browser, demo_run: DemoRun, tmp_path: Path) -> None:
    url = demo_run.html.as_uri()
    view = load(browser, url, viewport=DESKTOP)
    assert view.errors == []
    assert view.requests == [url]  # the page itself, nothing else: no font, script, image or stylesheet
    assert view.page.title() == "LoopForge report"
    save(view.page, "report-desktop.png", tmp_path)
    view.page.context.close()


def test_every_chart_is_drawn(browser: Browser, demo_run: DemoRun) -> None:
    view = load(browser, demo_run.html.as_uri(), viewport=DESKTOP)
    figures = view.page.locator("figure.chart")
    assert figures.count() == 7
    for i in range(figures.count()):
        figure = figures.nth(i)
        key = figure.get_attribute("data-chart")
        svg = figure.locator("svg[role=img]")
        assert svg.count() == 1, key
        box = svg.bounding_box()
        assert box is not None and box["width"] > 250 and box["height"] > 150, (key, box)
        # marks with an area: bars, lines, dots inside the plot
        drawn = svg.evaluate(f"""s => [...s.querySelectorAll('{MARKS}')]
                                  .filter(e => {{ const b = e.getBBox(); return b.width * b.height > 0
                                                 || (e.tagName === 'path' && b.width + b.height > 0); }}).length""")
        assert drawn > 0, key
        assert svg.get_attribute("aria-label"), key
    view.page.context.close()


def test_record_links_land_on_their_records(browser: Browser, demo_run: DemoRun, tmp_path: Path) -> None:
    view = load(browser, demo_run.html.as_uri(), viewport=DESKTOP)
    page = view.page
    links = page.locator("#records tbody th.id a")
    assert links.count() == 20
    missing = page.evaluate("""() => [...document.querySelectorAll('#records tbody th.id a')]
        .map(a => a.getAttribute('href').slice(1)).filter(id => !document.getElementById(id))""")
    assert missing == []
    for i in (0, 7, 19):
        link = links.nth(i)
        target = str(link.get_attribute("href"))
        name = link.inner_text()
        link.click()
        page.wait_for_function("h => location.hash === h", arg=target)
        section = page.locator(target)
        assert name in section.locator("h3").inner_text()
        box = section.bounding_box()
        assert box is not None and 0 <= box["y"] < 100  # scrolled to the top of the window
        assert section.locator("svg.pathdiagram .pd-current").count() == 1
        assert section.locator("table tbody tr").count() >= 5
        page.locator(target).get_by_role("link", name="back to the table").click()
        page.wait_for_function("() => location.hash === '#records'")
    bypass = page.locator("section.record", has=page.locator(".pd-edge.pd-bad"))
    assert bypass.count() == 1  # the bypass merge: its violation edge is red
    bypass.evaluate("e => e.scrollIntoView()")
    save(page, "report-record-violation.png", tmp_path)
    assert view.errors == []
    page.context.close()


def test_keyboard(browser: Browser, demo_run: DemoRun) -> None:
    view = load(browser, demo_run.html.as_uri(), viewport=DESKTOP)
    page = view.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the report"
    assert page.evaluate("getComputedStyle(document.activeElement).left") != "-9999px"  # visible when focused
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.hash === '#main'")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('main') !== null")
    assert focused
    # every table has headers with a scope; the wide ones scroll in focusable regions
    assert page.evaluate("[...document.querySelectorAll('table')].every(t => t.querySelector('th[scope]'))")
    assert page.evaluate("[...document.querySelectorAll('.scroll')].every(r => r.tabIndex === 0)")
    page.context.close()


def test_phone_width_and_dark_mode(browser: Browser, demo_run: DemoRun, tmp_path: Path) -> None:
    phone = load(browser, demo_run.html.as_uri(), viewport=PHONE)
    page = phone.page
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    for i in range(page.locator("figure.chart svg").count()):
        box = page.locator("figure.chart svg").nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    save(page, "report-phone.png", tmp_path)
    page.context.close()

    light = load(browser, demo_run.html.as_uri(), viewport=DESKTOP, scheme="light")
    dark = load(browser, demo_run.html.as_uri(), viewport=DESKTOP, scheme="dark")
    style = "() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]"
    light_bg, light_fg = light.page.evaluate(style)
    dark_bg, dark_fg = dark.page.evaluate(style)
    assert light_bg == "rgb(255, 255, 255)" and dark_bg == "rgb(13, 17, 23)"
    assert light_fg != dark_fg
    # chart text follows the page colour (currentColor), so it stays readable on the dark background
    axis_fill = dark.page.evaluate("""() => getComputedStyle(document.querySelector(
        'figure.chart svg .axis text')).fill""")
    assert axis_fill == dark_fg
    save(dark.page, "report-dark.png", tmp_path)
    assert dark.errors == [] and light.errors == []
    light.page.context.close()
    dark.page.context.close()
