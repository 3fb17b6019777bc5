"""DP-SGD step overhead of every edge model we ship (run: ``python benchmarks/dp_overhead.py``).

Prints, in one run on one CPU thread, for each model a run config can name (the behaviour
model as shipped — linear heads on the aggregate features —, with a hidden layer
(``behaviour-hidden``), with the DPGRU sequence part (``behaviour-sequence``); the text
model with the private vocabulary and with the large non-private one):

1. the non-private step time (forward, batch-mean loss, backward, SGD step);
2. our DP step time (``privacy.DPTrainer`` with ``grad_sample_mode="auto"``, the mode the
   training loop uses) and its ratio to (1);
3. Opacus's default mode (``"hooks"``) and its ghost clipping (``"ghost"``), same ratios.

A step is one optimizer step on one fixed batch of the printed size (data loading and
Poisson sampling excluded: they are the same for every variant). Each variant has its own
copy of the model (same seed) and its own optimizer; after a warm-up the variants are timed
in interleaved rounds (so load from other processes hits them alike) and each time is the
median over all timed steps. Batches come from the models' own encoders (``models.learners``)
on generated examples: random behaviour histories and masked generated messages. Goal: DP /
non-private <= 1.3 for every model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from models import RunConfig  # noqa: E402
from models.behaviour import BEHAVIOUR_FEATURES, BehaviourExample  # noqa: E402
from models.learners import (  # noqa: E402
    BehaviourLearner,
    Learner,
    TextLearner,
    behaviour_config,
    text_config,
)
from models.sequences import VOCAB_SIZE  # noqa: E402
from models.text import EMOTIONS, INTENTS  # noqa: E402
from privacy.config import DPConfig  # noqa: E402
from privacy.dp import DPTrainer, PrivateTraining  # noqa: E402
from simulations.labeled import masked_messages as generated_masked_messages  # noqa: E402

GOAL = 1.3


@dataclass
class Case:
    """One shipped model, its learner (loss) and one fixed batch."""

    name: str
    learner: Learner
    batch: tuple[torch.Tensor, ...]

    @property
    def batch_size(self) -> int:
        return int(self.batch[0].shape[0])

    def build(self) -> nn.Module:
        return self.learner.new_model(0)

    def loss(self, model: nn.Module) -> torch.Tensor:
        return self.learner.losses(model, self.batch)


# ---------------------------------------------------------------- data
def behaviour_examples(n: int, *, seed: int, max_len: int) -> list[BehaviourExample]:
    """Random behaviour histories (positive features, event tokens, labels)."""
    rng = np.random.default_rng(seed)
    return [
        BehaviourExample(
            subject=f"ps_{i}",
            features=tuple(float(v) for v in rng.exponential(5.0, len(BEHAVIOUR_FEATURES))),
            tokens=tuple(int(t) for t in rng.integers(1, VOCAB_SIZE, rng.integers(1, max_len))),
            purchase=float(rng.random() < 0.3),
            escalation=float(rng.random() < 0.1),
            next_category=int(rng.integers(0, 8)) if rng.random() < 0.7 else None,
        )
        for i in range(n)
    ]


def masked_messages(n: int, *, seed: int) -> tuple[list[str], dict[str, np.ndarray]]:
    """Generate ``n`` masked messages with intent and emotion labels (85 % Chinese)."""
    texts, labels = generated_masked_messages(n, seed=seed)
    return texts, {
        "intent": np.array([INTENTS.index(x) for x in labels["intent"]]),
        "emotion": np.array([EMOTIONS.index(x) for x in labels["emotion"]]),
    }


def behaviour_case(name: str, config: RunConfig, batch_size: int) -> Case:
    learner = BehaviourLearner(behaviour_config(config, num_features=len(BEHAVIOUR_FEATURES)))
    data = learner.encode(behaviour_examples(batch_size, seed=3, max_len=learner.max_len))
    return Case(name, learner, tuple(data.tensors))


def text_case(name: str, config: RunConfig, batch_size: int) -> Case:
    learner = TextLearner(text_config(config))
    texts, targets = masked_messages(batch_size, seed=1)
    data = learner.encode(texts, targets)
    return Case(name, learner, tuple(data.tensors))


def cases(args: argparse.Namespace) -> dict[str, Callable[[], Case]]:
    """Every model a run config can name (the shipped defaults first)."""
    base = RunConfig()
    return {
        "behaviour": lambda: behaviour_case(
            "behaviour linear (default)", base, args.behaviour_batch
        ),
        "behaviour-hidden": lambda: behaviour_case(
            "behaviour + hidden 32",
            base.model_copy(update={"behaviour_hidden": 32}),
            args.behaviour_batch,
        ),
        "behaviour-sequence": lambda: behaviour_case(
            "behaviour + hidden 32 + DPGRU 32",
            base.model_copy(update={"behaviour_hidden": 32, "behaviour_sequence": 32}),
            args.behaviour_batch,
        ),
        "text": lambda: text_case(
            "text linear, private vocab (8k)",
            base.model_copy(update={"task": "text"}),
            args.text_batch,
        ),
        "text-large": lambda: text_case(
            "text linear, 200k vocab + 262k buckets",
            base.model_copy(
                update={"task": "text", "text_vocabulary": 200_000, "text_buckets": 262_144}
            ),
            args.text_batch,
        ),
    }


# ---------------------------------------------------------------- timing
def plain_step(case: Case) -> Callable[[], None]:
    model = case.build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    def step() -> None:
        optimizer.zero_grad()
        torch.autograd.backward(case.loss(model).mean())
        optimizer.step()

    return step


def private_step(case: Case, mode: str) -> tuple[Callable[[], None], PrivateTraining]:
    model = case.build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    dataset = TensorDataset(*(t.repeat(10, *([1] * (t.dim() - 1))) for t in case.batch))
    loader = DataLoader(dataset, batch_size=case.batch_size)
    config = DPConfig(noise_multiplier=1.0, max_grad_norm=1.0, batch_size=case.batch_size)
    private = DPTrainer(config, grad_sample_mode=mode).make_private(  # type: ignore[arg-type]
        module=model, optimizer=optimizer, data_loader=loader
    )

    def step() -> None:
        private.step(case.loss(model))

    return step, private


def time_variants(
    steps: dict[str, Callable[[], None]], *, warmup: int, rounds: int, per_round: int
) -> dict[str, float]:
    """Median ms per step of each variant, timed in interleaved rounds."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def measure(case: Case, *, args: argparse.Namespace) -> dict[str, Any]:
    steps: dict[str, Callable[[], None]] = {"non-private": plain_step(case)}
    privates: dict[str, PrivateTraining] = {}
    for label, mode in (("ours", "auto"), ("opacus-hooks", "hooks"), ("opacus-ghost", "ghost")):
        if label in args.skip:
            continue
        steps[label], privates[label] = private_step(case, mode)
    ms = time_variants(steps, warmup=args.warmup, rounds=args.rounds, per_round=args.steps)
    for private in privates.values():
        private.close()
    return {
        "model": case.name,
        "params": sum(p.numel() for p in case.build().parameters()),
        "batch_size": case.batch_size,
        "ours_mode": privates["ours"].mode if "ours" in privates else None,
        "ms": {k: round(v, 3) for k, v in ms.items()},
        "ratio": {k: round(v / ms["non-private"], 2) for k, v in ms.items() if k != "non-private"},
    }


# ---------------------------------------------------------------- output
def print_table(rows: list[dict[str, Any]], *, goal: float) -> None:
    print(f"DP-SGD step overhead, 1 CPU thread, torch {torch.__version__}")
    header = f"{'model':<40}{'params':>9}{'batch':>7}{'plain ms':>10}"
    header += f"{'ours ms':>9}{'ratio':>7}{'hooks ms':>10}{'ratio':>7}{'ghost ms':>10}{'ratio':>7}"
    print(header)
    for r in rows:
        ms, ratio = r["ms"], r["ratio"]
        line = f"{r['model']:<40}{r['params']:>9}{r['batch_size']:>7}{ms['non-private']:>10.2f}"
        for key in ("ours", "opacus-hooks", "opacus-ghost"):
            line += f"{ms[key]:>9.2f}{ratio[key]:>7.2f}" if key in ms else f"{'-':>9}{'-':>7}"
        print(line)
    print(f"ours = DPTrainer auto mode ({', '.join(sorted({str(r['ours_mode']) for r in rows}))})")
    for r in rows:
        ours = r["ratio"].get("ours")
        if ours is None:
            continue
        others = [r["ratio"][k] for k in ("opacus-hooks", "opacus-ghost") if k in r["ratio"]]
        verdict = "meets" if ours <= goal else "misses"
        beside = f", Opacus's best {min(others):.2f}x" if others else ""
        print(f"  {r['model']}: {verdict} the <= {goal} goal ({ours:.2f}x{beside})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--text-batch", type=int, default=256)
    parser.add_argument("--behaviour-batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant per round")
    parser.add_argument(
        "--models", default="behaviour,behaviour-hidden,behaviour-sequence,text,text-large"
    )
    parser.add_argument(
        "--skip", default="", help="comma list of variants to skip, e.g. opacus-ghost"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
    builders = cases(args)
    unknown = [m for m in args.models.split(",") if m not in builders]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(builders)}")
    rows = [measure(builders[name](), args=args) for name in args.models.split(",")]
    if args.json:
        print(json.dumps({"rows": rows, "goal": GOAL}, indent=2))
        return
    print_table(rows, goal=GOAL)


if __name__ == "__main__":
    main()
