"""report.html: self-contained, written during training and by `cgan report`, rendered by Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from test_db_support import invoke, skip_or_fail, trained_run  # noqa: F401

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-default-apps", "--disable-extensions", "--disable-sync",
                  "--no-first-run", "--mute-audio", "--hide-scrollbars",
                  # Any attempt to reach the network would go to a closed port and fail.
                  "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    skip_or_fail("no Chromium to render the report (apt-get install chromium)")
    raise AssertionError("unreachable")


def _eval_result(run: Path, checkpoint: str, step: int, fid: float) -> None:
    """What `cgan evaluate` writes to eval/<checkpoint>.json."""
    common = {"higher_is_better": False, "extractor": "classifier", "weights_sha256": "c0ffee",
              "preprocessing": "resize 32 bilinear", "n_real": 64, "n_fake": 64, "seed": 0, "checkpoint": checkpoint,
              "step": step, "reference": "digits", "modality": "image", "cgan_version": "0.1.0", "details": {}}
    (run / "eval" / f"{checkpoint}.json").write_text(json.dumps({
        "run": str(run), "checkpoint": checkpoint, "step": step, "modality": "image", "seed": 0, "n_real": 64,
        "n_fake": 64, "reference": "digits", "cgan_version": "0.1.0", "skipped": {},
        "metrics": [dict(common, metric="fid@classifier", value=fid),
                    dict(common, metric="precision@classifier", value=0.5, details={"k": 3})]}))


def test_training_writes_the_report_with_its_final_status(trained_run: Path) -> None:
    page = (trained_run / "report.html").read_text()
    assert 'class="status-completed"' in page
    assert page.count("<figcaption>step ") == 2  # previews at steps 3 and 6


def test_report_is_self_contained_and_renders_in_chromium(trained_run: Path, tmp_path: Path) -> None:
    _eval_result(trained_run, "step-00000003", 3, 80.0)
    _eval_result(trained_run, "step-00000006", 6, 60.0)
    result = invoke("report", str(trained_run), "--out", str(tmp_path / "report.html"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    # Nothing is fetched: every source is a data URI or a reference inside the page (SVG glyphs).
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith(("data:", "#")) for s in sources), [s[:40] for s in sources]
    assert page.count('<img src="data:image/png;base64,') == 2
    assert page.count('<div class="plot"><svg') == 2  # training curves and evaluation curves
    for text in ("fid@classifier", "c0ffee", "resize 32 bilinear", "precision@classifier", "lr_g: 0.0002",
                 "loss_d", "step-00000003 (step 3)"):
        assert text in page, text

    chromium = _chromium()
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=5000", "--dump-dom",
                          f"file://{tmp_path / 'report.html'}"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0)))
    # The page's own script counted what the browser decoded and laid out.
    assert attributes["images-total"] == "2" and attributes["images-loaded"] == "2", attributes
    assert attributes["plots"] == "2", attributes
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, "--window-size=1100,1600", f"--screenshot={shot}",
                    f"file://{tmp_path / 'report.html'}"], capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables, sample grids and plot lines


def test_report_of_a_fresh_run_and_errors(trained_run: Path, tmp_path: Path) -> None:
    for child in ("samples", "eval"):
        shutil.rmtree(trained_run / child)
    (trained_run / "metrics.jsonl").unlink()
    assert invoke("report", str(trained_run)).exit_code == 0
    page = (trained_run / "report.html").read_text()
    assert "No preview samples yet" in page and "Nothing logged yet" in page and "No evaluation results yet" in page
    missing = invoke("report", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
