"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``; ``make test``
installs it when missing) draws every plot, the screenshot is not blank, and the page logs no
JavaScript error.  Never skipped: without the browser the test fails and says how to get it."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.report.synth import synthetic_records
from tinywindow.report import SECTIONS, build_report

pytestmark = pytest.mark.browser

TIMEOUT_S = 45
# A console message from the page, as Chromium logs it with --enable-logging=stderr.
_CONSOLE = re.compile(r"CONSOLE.*?\"(.*?)\", source: (\S*)", re.S)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is not installed: run `make test` (it installs Debian's `chromium` when "
                "missing) or `apt-get install -y chromium`", pytrace=False)


@pytest.fixture(scope="module")
def report() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tw-report-") as folder:
        path = Path(folder) / "report.html"
        path.write_text(build_report(synthetic_records(bars=600, symbols=8, fills=400)), encoding="utf-8")
        yield path


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={home / 'profile'}", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"})


def _load(page: Path, home: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the error messages its console logged."""
    done = _run(["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()], home)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = [f"{text} ({source})" for text, source in _CONSOLE.findall(done.stderr)
              if source.startswith("file:") and re.search(r"uncaught|error", text, re.I)]
    return done.stdout, errors


def test_plots_render_without_console_errors(report: Path, tmp_path: Path) -> None:
    dom, errors = _load(report, tmp_path)
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    drawn = dom.count('class="plot-container plotly"')
    assert drawn >= 10, f"only {drawn} plots drawn"  # plotly adds these when its script ran
    assert dom.count('class="main-svg"') >= 2 * drawn
    assert not errors, errors


def test_a_script_error_would_be_seen(tmp_path: Path) -> None:
    """The check above can fail: a page that throws is caught by the same scan."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><p>x</p><script>throw new Error("boom")</script></body></html>')
    _, errors = _load(bad, tmp_path)
    assert any("boom" in e for e in errors), errors


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    done = _run([f"--screenshot={shot}", "--window-size=1400,2000", report.as_uri()], tmp_path)
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1400, 2000)
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        not_white = sum(n for n, (r, g, b) in colours if min(r, g, b) < 240) / (rgb.width * rgb.height)
    assert len(colours) > 64, f"{len(colours)} colours: a blank page"
    assert not_white > 0.01, f"{not_white:.2%} of pixels are not white"
