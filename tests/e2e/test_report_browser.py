"""The report in a real browser: Debian's Chromium, headless, driven by Playwright (the
system browser only: nothing downloads one). Skipped only when no Chromium is installed."""

from __future__ import annotations

import io
import shutil
import tempfile

import pytest
from PIL import Image, ImageStat

from dataset_util import nst
from test_report import make_stylize_run

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium installed (`apt-get install -y chromium`, as .ci/run does)")
    return path


def test_report_opens_in_chromium(tmp_path):
    browser_path = chromium()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    run = make_stylize_run(tmp_path)
    r = nst("report", run, "--samples", 4)
    assert r.returncode == 0, r.stderr[-2000:]
    index = run / "report" / "index.html"
    errors, requests = [], []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=browser_path, headless=True,
                                                    args=CHROMIUM_FLAGS, viewport={"width": 1200, "height": 900})
        try:
            page = ctx.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda q: errors.append(f"failed: {q.url}"))
            page.on("request", lambda q: requests.append(q.url))
            page.goto(index.as_uri(), wait_until="load")
            page.evaluate("Promise.all(Array.from(document.images).map(i => i.decode()))")
            widths = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
            failure = page.inner_text(".fail")
            shot = page.screenshot(full_page=True)
            page.click(".card a")  # a thumbnail opens the full output
            page.wait_for_load_state()
            opened = page.url
        finally:
            ctx.close()
    assert errors == []
    assert all(u.startswith(("file://", "data:")) for u in requests), requests  # no network
    plots = sorted(src for src, _ in widths if src.startswith("plots/"))
    thumbs = [src for src, _ in widths if src.startswith("thumbs/")]
    assert plots == ["plots/look.svg", "plots/loss.svg", "plots/seconds.svg"], widths
    assert len(thumbs) == 4 * 3 and len(widths) == len(plots) + len(thumbs), widths  # 4 sheet rows of 3
    assert all(w > 0 for _, w in widths), widths  # every picture decoded
    assert "failed_decode" in failure and "zz_broken.png" in failure and "decode" in failure
    pixels = Image.open(io.BytesIO(shot)).convert("L")
    assert pixels.height > 900 and ImageStat.Stat(pixels).stddev[0] > 20  # not blank
    assert opened.startswith((run / "report" / "full").as_uri()) and opened.endswith(".png")
