"""``loopforge report``: one self-contained HTML file, untrusted text inert, one-line errors, no chart library in
the Action."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loopforge import LoopService, LoopState
from loopforge.report.build import build_report
from loopforge.report.page import anchor
from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.service import Veto
from tests.cli.helpers import run
from tests.paths import ROOT
from tests.report.helpers import T0

S = LoopState
HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\"><svg onload=alert(1)>",
           "javascript:alert(1)", "</table></section><h1>fake</h1>", "&lt;b&gt; &amp;", "\x1b[31mred\u202e",
           "https://evil.example/x", "' onmouseover='alert(1)"]
CHART_KEYS = {"funnel", "lead-distribution", "lead-trend", "time-in-state", "ci-rate", "ci-retries", "violations"}


class Collector(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Collector:
    parser = Collector()
    parser.feed(html)
    return parser


def hostile_store() -> MemoryRepository:
    repository = MemoryRepository()
    service = LoopService(repository=repository)
    for i, text in enumerate(HOSTILE):
        rid = service.create(ref=text, repo="o/r", state=S.PR_CREATED, actor=text, trigger=text,
                             occurred_at=T0).record_id
        service.transition(rid, S.CI_PENDING, text, actor=text, evidence={"run_url": text})
        service.observe(rid, S.MERGED, text, actor=text, violations=[Veto(rule=text, reason=text)])
        service.note(rid, text, reason=text, evidence={"run_url": f"https://github.com/o/r/actions/runs/{i}"})
    return repository


def test_untrusted_text_is_inert(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    build_report(hostile_store(), out, now=T0)
    html = out.read_text()
    doc = parse(html)
    tags = {t for t, _ in doc.tags}
    assert "script" not in tags and "img" not in tags and "iframe" not in tags and "h1" in tags
    assert sum(1 for t, _ in doc.tags if t == "h1") == 1  # the fake heading stayed text
    for tag, attrs in doc.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src", "xlink:href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#") or value.startswith("https://github.com/"), (tag, value)
    assert "\x1b" not in html and "\u202e" not in html
    text = "".join(doc.text)
    assert "<script>alert(1)</script>" in text  # shown, as text
    assert re.search(r"<svg[^>]*onload", html) is None


def test_self_contained(known_db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    build_report(SQLiteRepository(known_db), out, now=T0)
    html = out.read_text()
    doc = parse(html)
    csp = [a for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in str(csp[0]["content"])
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert re.findall(r"url\((?!#pd-)", html) == []  # only the page's own arrowheads
    # nothing to fetch: the only URLs are SVG namespaces and links to GitHub or within the page
    urls = set(re.findall(r"(?:https?:)?//[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"} | {
        u for u in urls if u.startswith("https://github.com/")}, urls
    figures = [a for t, a in doc.tags if t == "figure" and a.get("data-chart")]
    assert {a["data-chart"] for a in figures} == CHART_KEYS
    assert html.count('<svg role="img"') == 7  # every chart drawn (the store has data for each)
    assert "Charts: pygal" in html and "Vega" not in html  # the footer names the library that drew them
    # the table links each record to its section
    for rid in ("o/r#1", "o/r#2", "o/r#3", "x/y#4"):
        assert f'href="#{anchor(rid)}"' in html and f'id="{anchor(rid)}"' in html
    assert html.count('class="pathdiagram"') == 4


def test_empty_store_still_makes_a_page(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    build_report(MemoryRepository(), out, now=T0)
    html = out.read_text()
    assert html.count('class="empty muted"') == 7 and "0 records" in html


def test_report_command(known_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    md = tmp_path / "r.md"
    code, stdout, err = run(capsys, "--db", known_db, "report", "--html", str(out), "--markdown", str(md))
    assert (code, err) == (0, "")
    assert stdout.startswith("report of 4 records (") and out.stat().st_size > 10_000
    digest = md.read_text()
    assert "| `merged` | 2 |" in digest and "policy\u200b:needs\\-review" in digest  # escaped like the check run
    assert "Median PR → merge: 9.0 h." in digest  # 6 h and 12 h
    code, stdout, _ = run(capsys, "report", "--db", known_db, "--html", str(out), "--repo", "x/y")
    assert code == 0 and stdout.startswith("report of 1 records")
    code, stdout, _ = run(capsys, "report", "--db", known_db, "--html", str(out), "--since", "2999-01-01")
    assert code == 0 and stdout.startswith("report of 0 records")


@pytest.mark.parametrize(("args", "message"), [
    (["--html", "{tmp}"], "--html {tmp}: is a directory"),
    (["--html", "{tmp}/no/such/r.html"], "does not exist"),
    (["--html", "{tmp}/r.html", "--repo", "not a repo"], "--repo: expected OWNER/REPO"),
    (["--html", "{tmp}/r.html", "--since", "yesterday"], "--since"),
    (["--html", "{tmp}/r.html", "--details", "-1"], "--details"),
])
def test_report_bad_input_is_one_line(known_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      args: list[str], message: str) -> None:
    filled = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = run(capsys, "--db", known_db, "report", *filled)
    assert code == 2 and err.count("\n") == 1 and err.startswith("loopforge: error: ")
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert not (tmp_path / "r.html").exists()


def test_report_never_creates_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = run(capsys, "--db", str(missing), "report", "--html", str(tmp_path / "r.html"))
    assert code == 2 and err.startswith("loopforge: error: ") and err.count("\n") == 1
    assert not missing.exists() and not (tmp_path / "r.html").exists()


def test_the_action_and_the_command_line_do_not_import_the_chart_library() -> None:
    code = ("import sys, loopforge.cli as c, loopforge.github.recorder, loopforge.github.render; "
            "c.build_parser(); import loopforge.report; "
            "assert 'pygal' not in sys.modules, 'pygal imported'; "
            "from loopforge.report import charts; assert 'pygal' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for module in ("loopforge.action", "loopforge.action_cli"):
        probe = subprocess.run([sys.executable, "-c", f"import importlib.util, sys\n"
                                f"if importlib.util.find_spec('{module}'):\n"
                                f"    import {module}\nassert 'pygal' not in sys.modules"],
                               capture_output=True, text=True, cwd=ROOT)
        assert probe.returncode == 0, probe.stderr
