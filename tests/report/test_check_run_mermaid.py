"""The check run's path diagram is valid Mermaid: rendered by Mermaid 11 (npm ``mermaid``, the version GitHub's
markdown renders) in Debian's chromium, for the demo's bypass merge and for the largest path a record can take.

.ci/run installs the package: ``npm install --prefix $TMPDIR/loopforge-mermaid mermaid@11`` and points
``LOOPFORGE_MERMAID_JS`` at ``node_modules/mermaid/dist/mermaid.min.js``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from loopforge.github.render import path_mermaid
from loopforge.states import VALID_TRANSITIONS, LoopState
from tests.report.helpers import ARGS, CHROMIUM, DemoRun

MERMAID_JS = Path(os.environ.get("LOOPFORGE_MERMAID_JS") or
                  Path(os.environ.get("TMPDIR", "/tmp")) / "loopforge-mermaid/node_modules/mermaid/dist/mermaid.min.js")


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    assert MERMAID_JS.is_file(), (f"{MERMAID_JS} missing: npm install --prefix $TMPDIR/loopforge-mermaid mermaid@11 "
                                  f"(.ci/run does it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.set_content("<html><body><div id=out></div></body></html>")
        page.add_script_tag(content=MERMAID_JS.read_text(encoding="utf-8"))
        page.evaluate("mermaid.initialize({startOnLoad: false})")
        yield page
        browser.close()


def render(page: Page, code: str) -> str:
    result: str = page.evaluate("""async (code) => {
        try { const {svg} = await mermaid.render('d' + Math.floor(Math.random() * 1e9), code); return svg; }
        catch (e) { return 'ERROR ' + e.message; } }""", code)
    assert not result.startswith("ERROR"), result
    return result


def test_the_demo_check_run_diagram_renders(page: Page, demo_run: DemoRun) -> None:
    markdown = demo_run.check_run.read_text(encoding="utf-8")
    code = re.search(r"```mermaid\n(.*?)\n```", markdown, re.S)
    assert code is not None
    svg = render(page, code.group(1))
    labels = set(re.findall(r">(pr_created|ci_pending|ci_passed|awaiting_review|approved|merged)<", svg))
    assert labels == {"pr_created", "ci_pending", "ci_passed", "awaiting_review", "approved", "merged"}
    assert "1× · 1 violation" in svg and "#d73a49" in svg  # the violation edge is drawn red


def test_the_largest_path_renders(page: Page) -> None:
    path = {">issue_created": {"taken": 1, "violations": 0}}
    path.update({f"{a.value}>{b.value}": {"taken": 12, "violations": 1 if b is LoopState.MERGED else 0}
                 for a, targets in VALID_TRANSITIONS.items() for b in targets})
    svg = render(page, path_mermaid(path, LoopState.CI_PENDING))
    assert all(f">{s.value}<" in svg for s in LoopState)  # every state visited is a node
    assert svg.count("12×") >= len(path) - 1
