"""The audio modality end to end through the CLI: run, generate WAV files, evaluate with provenance."""

from __future__ import annotations

import json

import av
import numpy as np
import soundfile

TINY_AUDIO = ["--dataset", "tones", "--set", "data.length=1024", "--set", "data.sample_rate=8000",
              "--set", "model.model_size=4", "--set", "model.latent_dim=16", "--set", "train.batch_size=8",
              "--set", "train.n_critic=2"]


def test_run_generate_and_evaluate_audio(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("run", "-m", "audio", "-p", "wavegan", "--max-steps", "4", "--out", str(out), "--no-progress",
                 "--set", "train.sample_every=2", *TINY_AUDIO)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["step-00000002.png", "step-00000004.png"]
    assert soundfile.info(str(out / "samples" / "audio" / "step-00000004.wav")).samplerate == 8000
    assert list((out / "tb").glob("events.out.tfevents.*"))
    info = json.loads((out / "data_info.json").read_text())
    assert (info["sample_rate"], info["length"], info["num_classes"]) == (8000, 1024, 6)

    result = cli("generate", str(out), "-n", "4", "--seed", "3")
    assert result.exit_code == 0, result.output
    wavs = sorted((out / "generated").glob("*.wav"))
    assert [p.name for p in wavs] == [f"seed3-sample-00000{i}.wav" for i in range(4)]
    for path in wavs:
        data, rate = soundfile.read(str(path), dtype="float32")
        assert rate == 8000 and data.shape == (1024,) and np.abs(data).max() <= 1.0
        with av.open(str(path)) as container:  # an independent decoder reads the same file
            stream = container.streams.audio[0]
            assert stream.rate == 8000 and stream.codec_context.name == "pcm_s16le"
            decoded = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
        assert decoded.shape == (1024,)
    again = cli("generate", str(out), "-n", "4", "--seed", "3", "--out", str(tmp_path / "again"))
    assert again.exit_code == 0
    assert [p.read_bytes() for p in wavs] == [p.read_bytes() for p in sorted((tmp_path / "again").glob("*.wav"))]

    result = cli("evaluate", str(out), "-n", "48", "--json", "--option", "classifier.max_steps=40",
                 "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    metrics = {row["metric"]: row for row in report["metrics"]}
    assert set(metrics) == {"fad@logmel", "fad@classifier", "classifier-score"}
    logmel, classifier, score = metrics["fad@logmel"], metrics["fad@classifier"], metrics["classifier-score"]
    assert logmel["value"] > 0 and classifier["value"] > 0 and 1.0 <= score["value"] <= 6.0
    assert "n_mels=64" in logmel["preprocessing"] and "8000 Hz" in logmel["preprocessing"]
    assert len(logmel["weights_sha256"]) == 64 and len(classifier["weights_sha256"]) == 64
    assert classifier["weights_sha256"] == score["weights_sha256"]
    assert classifier["details"]["classifier_trained_on"] == "train split of 'tones'"
    assert 0.0 <= classifier["details"]["classifier_accuracy"] <= 1.0
    assert logmel["n_fake"] == 48 and logmel["checkpoint"] == "step-00000004"


def test_unknown_audio_dataset_and_bad_length_are_one_line_errors(cli, tmp_path):
    result = cli("run", "-m", "audio", "-p", "wavegan", "--dataset", "birdsong", "--out", str(tmp_path / "a"),
                 "--no-progress")
    assert result.exit_code == 2 and "valid names: spoken-digits, tones" in result.stderr
    result = cli("run", "-m", "audio", "-p", "wavegan", "--dataset", "tones", "--set", "data.length=1000",
                 "--max-steps", "1", "--out", str(tmp_path / "b"), "--no-progress")
    assert result.exit_code == 2, result.output
    assert "wavegan needs data.length = 16 * 4**k samples, got 1000" in result.stderr
    assert "Traceback" not in result.output
