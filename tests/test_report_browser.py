"""The reports in a real headless Chromium (Debian's ``chromium``): no console errors, every
figure drawn, a full-page screenshot of each, and a recipe named ``<script>`` shown as text.

Screenshots go to ``$LADDER_SCREENSHOTS`` (default ``build/report-screenshots/``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import scaling_ladder as sl
from scaling_ladder.report import build_report
from test_report import EVIL, checks_dict, demo_comparison, demo_observations

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("LADDER_SCREENSHOTS",
                            Path(__file__).resolve().parents[1] / "build" / "report-screenshots"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: install Debian's with "
                       "`apt-get install -y chromium` to run the report's browser tests"),
]


def _chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args,
                               page.as_uri()], capture_output=True, text=True, timeout=180)


def _reports() -> dict:
    obs = demo_observations(worse=EVIL)
    demo = build_report(obs, bootstrap=10, compare=demo_comparison(obs, warnings=(EVIL,)),
                        checks=checks_dict(EVIL), title="Demo ladder <b>report</b>")
    chin = build_report(sl.datasets.load("chinchilla").select(
        where="besiroglu_outlier == False"), bootstrap=10)
    over = build_report(sl.datasets.load("overtrain"), metric="val/c4", baseline="c4",
                        bootstrap=10)
    return {"demo": demo, "chinchilla": chin, "overtrain": over}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return {name: (r, r.write(out / f"{name}.html")) for name, r in _reports().items()}


@pytest.mark.parametrize("name", ["demo", "chinchilla", "overtrain"])
def test_report_draws_every_figure_without_console_errors(pages, name):
    report, page = pages[name]
    res = _chromium(page, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", res.stdout).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert int(attrs["figures-expected"]) == len(report.figures) > 0
    assert int(attrs["figures"]) == len(report.figures), "a figure did not draw"
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}.png"
    height = min(int(attrs["height"]), 16000)
    res = _chromium(page, f"--screenshot={shot}", f"--window-size=1280,{height}")
    assert res.returncode == 0 and shot.stat().st_size > 50_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot} ({height} px high)")


def test_recipe_named_script_shows_as_text_in_the_browser(pages):
    _, page = pages["demo"]
    dom = _chromium(page, "--dump-dom").stdout
    assert len(re.findall(r"<script\b", dom)) == 1  # only the page's own figure counter
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # the name, as text
    assert "<title>Demo ladder &lt;b&gt;report&lt;/b&gt;</title>" in dom


def test_the_browser_check_catches_a_broken_page(pages, tmp_path):
    """The two checks above can fail: an empty figure and a script error are both seen."""
    report, page = pages["chinchilla"]
    html = page.read_text()
    first = html.index("<svg ")
    end = html.index("</svg>", first) + len("</svg>")
    broken = tmp_path / "broken.html"
    broken.write_text(html[:first] + "<svg></svg>" + html[end:]
                      .replace("</main>", "</main><script>notAFunction();</script>", 1))
    res = _chromium(broken, "--dump-dom")
    drawn = int(re.search(r'data-figures="(\d+)"', res.stdout).group(1))
    assert drawn == len(report.figures) - 1
    assert any(":CONSOLE" in line and "notAFunction" in line for line in res.stderr.splitlines())
