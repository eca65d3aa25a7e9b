"""``report.html``: one self-contained page per run for people who follow training.

It shows the run's facts and config, the preview samples over training (``samples/``), the
training log as curves (``metrics.jsonl``), the evaluation results with their provenance
(``eval/*.json``) and their curves. Images, audio and video are inlined as data URIs and plots as
inline SVG (matplotlib), so the page works offline and can be mailed around. The trainer rewrites
it at every checkpoint (:class:`ReportCallback`); ``cgan report RUN`` writes it on demand.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import string
import sys
import time
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from cgan_core.callbacks import Callback
from cgan_core.db.records import eval_metric_rows, read_jsonl
from cgan_core.fileio import atomic_write_text
from cgan_core.runs import RunDir
from cgan_core.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.trainer import Trainer

MAX_PREVIEW_STEPS = 12
"""Preview steps shown (evenly spaced over training, always with the last)."""
MAX_INLINE_BYTES = 4 << 20
"""Larger preview files are named, not inlined, to keep the page light."""
MEDIA_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
    ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg",
    ".mp4": "video/mp4", ".webm": "video/webm",
}
TEXT_SUFFIXES = (".txt", ".md", ".json")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _esc(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}" if math.isfinite(value) else _esc(value)


def _table(headers: Optional[Sequence[str]], rows: Sequence[Sequence[Any]]) -> str:
    head = "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_format_number(c)}</td>' if isinstance(c, (int, float))
                         and not isinstance(c, bool) else f"<td>{c if isinstance(c, _Raw) else _esc(c)}</td>"
                         for c in row) + "</tr>"
        for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


# --- plots ---------------------------------------------------------------------------------------
def svg_plot(series: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]], title: str,
             markers: bool = False) -> str:
    """Small multiples as inline SVG: one panel per metric, one line per group (e.g. phase).

    Args:
        series: metric name -> group name -> ``[(step, value), ...]``.
        title: Figure title.
        markers: Draw points as well as lines (for sparse evaluation results).
    """
    from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone

    names = [n for n in series if any(series[n].values())]
    if not names:
        return ""
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4.2 * columns, 2.8 * rows), dpi=96, layout="constrained")
    figure.suptitle(title)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, name in enumerate(names):
        axis = axes[index // columns][index % columns]
        for group, points in sorted(series[name].items()):
            if not points:
                continue
            xs, ys = zip(*sorted(points))
            axis.plot(xs, ys, marker="o" if markers or len(xs) == 1 else None, markersize=3, linewidth=1.2,
                      label=group or None)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
        if len([g for g in series[name] if g]) > 1:
            axis.legend(fontsize=7)
    for index in range(len(names), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return f'<div class="plot">{svg[svg.index("<svg"):]}</div>'


def training_series(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """metric -> phase -> points, from ``metrics.jsonl`` records (non-finite values are skipped)."""
    series: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        step = record.get("step")
        if not isinstance(step, (int, float)):
            continue
        for key, value in record.items():
            if key in ("step", "phase") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                series[key][str(record.get("phase") or "")].append((float(step), float(value)))
    return series


# --- sections ------------------------------------------------------------------------------------
def _media(path: Path) -> str:
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix in TEXT_SUFFIXES:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        shown = "\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else "")
        return f"<pre>{_esc(shown)}</pre>"
    media = MEDIA_TYPES.get(suffix)
    if media is None or size > MAX_INLINE_BYTES:
        return f'<p class="muted">{_esc(path.name)} ({size} bytes, not inlined)</p>'
    uri = f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    if media.startswith("image/"):
        return f'<img src="{uri}" alt="{_esc(path.name)}">'
    tag = "audio" if media.startswith("audio/") else "video"
    return f'<{tag} controls src="{uri}"></{tag}>'


def _preview_steps(run: RunDir) -> dict[int, list[Path]]:
    steps: dict[int, list[Path]] = defaultdict(list)
    if not run.samples.is_dir():
        return {}
    for path in sorted(run.samples.glob("step-*")):
        digits = path.name[len("step-"):].split(".", 1)[0]
        if path.is_file() and digits.isdigit() and not path.name.startswith("."):
            steps[int(digits)].append(path)
    return dict(sorted(steps.items()))


def _pick_evenly(values: Sequence[int], count: int) -> list[int]:
    if len(values) <= count:
        return list(values)
    picked = {values[round(i * (len(values) - 1) / (count - 1))] for i in range(count)}
    return sorted(picked)


def samples_section(run: RunDir) -> str:
    """Preview samples over training, evenly spaced steps."""
    steps = _preview_steps(run)
    if not steps:
        return "<h2>Samples over training</h2><p class=\"muted\">No preview samples yet.</p>"
    shown = _pick_evenly(list(steps), MAX_PREVIEW_STEPS)
    figures = []
    for step in shown:
        media = "".join(_media(p) for p in steps[step])
        figures.append(f"<figure>{media}<figcaption>step {step}</figcaption></figure>")
    note = f" ({len(shown)} of {len(steps)} preview steps)" if len(shown) < len(steps) else ""
    return f"<h2>Samples over training{note}</h2><div class=\"samples\">{''.join(figures)}</div>"


def _evaluations(run: RunDir) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    results = []
    if not run.eval_dir.is_dir():
        return results
    for path in sorted(run.eval_dir.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(document, dict):
            results.append((path.name, document, eval_metric_rows("", document, f"eval/{path.name}", path.stem)))
    return results


def evaluation_section(run: RunDir) -> str:
    """Evaluation tables (value and provenance per metric) and the metric curves over checkpoints."""
    evaluations = _evaluations(run)
    if not evaluations:
        return ("<h2>Evaluation</h2><p class=\"muted\">No evaluation results yet (run "
                f"<code>cgan evaluate {_esc(run.path)}</code>).</p>")
    parts = ["<h2>Evaluation</h2>"]
    curves: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for name, document, rows in sorted(evaluations, key=lambda e: (e[2][0]["step"] if e[2] else 0, e[0])):
        table_rows = []
        for row in rows:
            # The checkpoint, step, run and modality head the page or the table already.
            provenance = {k: v for k, v in (row["provenance"] or {}).items()
                          if k not in ("origin", "checkpoint", "step", "run", "modality")
                          and v not in (None, "", {}, [])}
            listed = "<br>".join(f"{_esc(k)}: {_esc(json.dumps(v) if isinstance(v, (dict, list)) else v)}"
                                 for k, v in sorted(provenance.items()))
            value = row["value"] if row["value"] is not None else provenance.get("raw", "")
            table_rows.append([row["name"], value, _Raw(f'<span class="prov">{listed}</span>')])
            if row["value"] is not None:
                curves[row["name"]]["eval"].append((float(row["step"]), float(row["value"])))
        checkpoint = rows[0]["checkpoint"] if rows else Path(name).stem
        step = rows[0]["step"] if rows else ""
        parts.append(f"<h3>{_esc(checkpoint)} (step {_esc(step)}) <span class=\"muted\">{_esc(name)}</span></h3>")
        parts.append(_table(["metric", "value", "provenance"], table_rows) if table_rows
                     else "<p class=\"muted\">No metric values in this file.</p>")
    if any(len(points["eval"]) > 1 for points in curves.values()):
        parts.append(svg_plot(curves, "Evaluation metrics over training", markers=True))
    return "".join(parts)


def _summary(run: RunDir, info: Mapping[str, Any]) -> str:
    data = info.get("data") or {}
    rows = [
        ["run id", info.get("id", "")], ["directory", str(run.path.resolve())],
        ["status", _Raw(f'<span class="status-{_esc(info.get("status", ""))}">{_esc(info.get("status", "?"))}</span>')],
        ["modality", info.get("modality", "")], ["model", info.get("plugin", "")],
        ["dataset", info.get("dataset", "")], ["step", info.get("step", 0)],
        ["phase", info.get("phase", "")], ["latest checkpoint", info.get("latest_checkpoint", "")],
        ["created", info.get("created_at", "")], ["updated", info.get("updated_at", "")],
        ["data items", data.get("items", "")], ["skipped items", data.get("skipped", "")],
        ["data fingerprint", data.get("fingerprint", "")], ["data source", data.get("source", "")],
    ]
    return "<h2>Run</h2>" + _table(None, rows)


def build_report(run_path: Path) -> str:
    """The report page of a run, as an HTML string.

    Raises:
        UsageError: ``run_path`` is not a run directory.
    """
    run = RunDir.open(Path(run_path))
    info = run.read_info()
    records = read_jsonl(run.metrics_path)
    curves = svg_plot(training_series(records), "Training log") if records else ""
    config = run.config_path.read_text(encoding="utf-8") if run.config_path.is_file() else ""
    body = [
        _summary(run, info),
        samples_section(run),
        "<h2>Training curves</h2>" + (curves or '<p class="muted">Nothing logged yet.</p>'),
        evaluation_section(run),
        f"<h2>Config</h2><pre>{_esc(config)}</pre>",
    ]
    template = string.Template(resources.files("cgan_core").joinpath("report_template.html").read_text("utf-8"))
    subtitle = " · ".join(str(v) for v in (info.get("modality"), info.get("plugin"), info.get("dataset"),
                                            info.get("status")) if v)
    return template.substitute(title=_esc(run.path.name), subtitle=_esc(subtitle), body="\n".join(body),
                               version=_esc(__version__), generated_at=time.strftime("%Y-%m-%d %H:%M:%S %z"))


def write_report(run_path: Path, out: Optional[Path] = None) -> Path:
    """Write the report atomically to ``out`` (default ``RUN/report.html``); returns its path."""
    page = build_report(run_path)
    target = Path(out) if out is not None else Path(run_path) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    return target


class ReportCallback(Callback):
    """Rewrites ``report.html`` at every checkpoint and when training stops, with its final status
    (main process only). A failure to write the report costs a warning, never the training run."""

    name = "report"

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self._failed = False

    def on_checkpoint(self, trainer: "Trainer", name: str) -> None:
        if not trainer.is_last_step:  # the last one is followed by on_close
            self._write(trainer)

    def on_close(self, trainer: "Trainer") -> None:
        self._write(trainer)

    def _write(self, trainer: "Trainer") -> None:
        if not trainer.is_main or self._failed:
            return
        try:
            write_report(self.run.path)
        except Exception as exc:  # a report is a view; training goes on without it
            self._failed = True
            print(f"warning: could not write {self.run.path / 'report.html'} ({type(exc).__name__}: {exc}); "
                  f"write it later with: cgan report {self.run.path}", file=sys.stderr)
