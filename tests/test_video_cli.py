"""End to end through the CLI: cgan run (TGAN on moving-digits), cgan generate (MP4s), cgan evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

av = pytest.importorskip("av")

QUICK = ["--set", "data.resolution=32", "--set", "data.frames=8", "--set", "data.size=32",
         "--set", "data.reference_size=16", "--set", "model.base_channels=8", "--set", "train.batch_size=4",
         "--set", "train.n_preview=4"]


def test_run_generate_and_evaluate_video(tmp_path: Path, cli):
    out = tmp_path / "run"
    result = cli("run", "--modality", "video", "--plugin", "tgan", "--dataset", "moving-digits", "--max-steps", "3",
                 "--out", str(out), "--no-progress", *QUICK)
    assert result.exit_code == 0, result.output
    assert (out / "samples" / "step-00000003.png").is_file()
    info = json.loads((out / "data_info.json").read_text())
    assert info["shape"] == [1, 8, 32, 32] and info["digits_per_clip"] == 2

    result = cli("generate", str(out), "-n", "8", "--seed", "3")
    assert result.exit_code == 0, result.output
    files = sorted((out / "generated").glob("*.mp4"))
    assert len(files) == 8
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            frames = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
        assert len(frames) == 8 and frames[0].shape == (32, 32)
    # the same run, checkpoint and seed give the same content
    again = tmp_path / "again"
    assert cli("generate", str(out), "-n", "8", "--seed", "3", "--out", str(again)).exit_code == 0
    assert [p.read_bytes() for p in files] == [p.read_bytes() for p in sorted(again.glob("*.mp4"))]
    result = cli("generate", str(out), "-n", "2", "--format", "gif", "--out", str(tmp_path / "gifs"))
    assert result.exit_code == 0 and len(list((tmp_path / "gifs").glob("*.gif"))) == 2

    result = cli("evaluate", str(out), "--metric", "fvd@classifier,temporal-consistency", "-n", "16", "--json",
                 "--option", "clip-classifier.steps=20", "--option", "frame-classifier.steps=20",
                 "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    by_name = {m["metric"]: m for m in report["metrics"]}
    fvd, consistency = by_name["fvd@classifier"], by_name["temporal-consistency"]
    assert fvd["value"] >= 0 and not fvd["higher_is_better"] and fvd["extractor"] == "classifier"
    assert len(fvd["weights_sha256"]) == 64 and fvd["n_real"] == 16 and fvd["n_fake"] == 16
    assert "train split" in fvd["details"]["classifier_trained_on"]
    assert 0.0 <= consistency["value"] <= 1.0 and consistency["higher_is_better"]
    assert 0.0 <= consistency["details"]["reference_value"] <= 1.0


def test_video_run_errors_are_one_line(tmp_path: Path, cli):
    result = cli("run", "--modality", "video", "--plugin", "tgan", "--out", str(tmp_path / "r"), "--no-progress",
                 "--set", "data.resolution=48", "--max-steps", "1", "--set", "data.size=8")
    assert result.exit_code == 2 and "32x32 or 64x64" in result.output and "Traceback" not in result.output
    result = cli("generate", str(tmp_path / "nothing"), "-n", "2")
    assert result.exit_code == 2
