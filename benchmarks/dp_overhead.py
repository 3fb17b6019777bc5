"""DP-SGD step overhead of each edge model (run: ``python benchmarks/dp_overhead.py``).

Prints, in one run on one CPU thread, for the behaviour GRU, the char-n-gram text model and
the tabular MLP:

1. the non-private step time (forward, batch-mean loss, backward, SGD step);
2. our DP step time (``privacy.DPTrainer`` with ``grad_sample_mode="auto"``, i.e. the
   book-keeping mode for all three models) and its ratio to (1);
3. Opacus's default mode (``"hooks"``) DP step time and its ratio to (1);
4. Opacus's ghost clipping (``"ghost"``) DP step time and its ratio to (1).

A step is one optimizer step on one fixed batch of the printed size (data loading and
Poisson sampling excluded, they are the same for every variant). Each variant has its own
copy of the model (same seed) and its own optimizer. After a warm-up, the variants are
timed in interleaved rounds (so load from other processes hits them alike) and each time
is the median over all timed steps. Goal: DP / non-private <= 2.0 for every model.

``--accuracy`` also trains the text model on generated, masked messages
(``simulations.messages`` templates with light character noise), non-private and with
DP-SGD at ε ≈ 8 (δ = 1e-5, PRV accountant, Poisson sampling), and prints held-out accuracy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from models.behaviour import BehaviourGRU  # noqa: E402
from models.sequences import SequenceSpec  # noqa: E402
from models.tabular import TabularMLP, tabular_loss  # noqa: E402
from models.text import (  # noqa: E402
    EMOTIONS,
    INTENTS,
    TextClassifier,
    TextModelConfig,
    label_indices,
    text_loss,
)
from privacy.accounting import compute_epsilon  # noqa: E402
from privacy.config import DPConfig  # noqa: E402
from privacy.dp import DPTrainer, PrivateTraining  # noqa: E402
from simulations.messages import Intent, render_message  # noqa: E402

PerExampleLoss = Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]
MASKED_PERSON = {
    "name": "<PERSON>",
    "phone": "<CN_MOBILE>",
    "id_number": "<CN_ID_CARD>",
    "email": "<EMAIL_ADDRESS>",
    "bank_card": "<CN_BANK_CARD>",
}
CATEGORIES = ("electronics", "apparel", "beauty", "home", "food", "baby", "sports", "books")
FILLERS = ("", "", "在吗？", "你好，", "麻烦了，", "急！", "谢谢。", "hi ")


@dataclass
class Case:
    """One edge model with a fixed batch and its per-example loss."""

    name: str
    build: Callable[[], nn.Module]
    batch: tuple[torch.Tensor, ...]
    loss: PerExampleLoss

    @property
    def batch_size(self) -> int:
        return int(self.batch[0].shape[0])


# ---------------------------------------------------------------- data
def masked_messages(
    n: int, *, seed: int, noise: float = 0.1
) -> tuple[list[str], list[str], list[str]]:
    """Generate ``n`` masked messages with intent and emotion labels (85 % Chinese)."""
    rng = random.Random(seed)
    texts, intents, emotions = [], [], []
    for _ in range(n):
        lang = "zh" if rng.random() < 0.85 else "en"
        intent = rng.choice(list(Intent))
        text, template = render_message(
            rng=rng, lang=lang, intent=intent, category=rng.choice(CATEGORIES), person=MASKED_PERSON
        )
        chars = [c for c in text if rng.random() >= noise]  # typos: dropped characters
        texts.append(rng.choice(FILLERS) + "".join(chars))
        intents.append(template.intent.value)
        emotions.append(template.emotion.value)
    return texts, intents, emotions


def text_case(batch_size: int, config: TextModelConfig) -> Case:
    texts, intents, emotions = masked_messages(batch_size, seed=1)
    encoded = TextClassifier(config).encode(texts)
    batch = (
        encoded.ids,
        encoded.weights,
        label_indices(intents, names=INTENTS),
        label_indices(emotions, names=EMOTIONS),
    )

    def loss(model: nn.Module, b: Sequence[torch.Tensor]) -> torch.Tensor:
        return text_loss(model(b[0], b[1]), intent=b[2], emotion=b[3], reduction="none")

    return Case(
        f"text (V={config.num_buckets}, D={config.embed_dim}, width={encoded.ids.shape[1]})",
        lambda: TextClassifier.from_seed(0, config),
        batch,
        loss,
    )


def tabular_case(batch_size: int) -> Case:
    gen = torch.Generator().manual_seed(2)
    features = torch.exp(torch.randn(batch_size, 18, generator=gen) * 2.0)
    targets = (torch.rand(batch_size, 2, generator=gen) < 0.3).float()

    def loss(model: nn.Module, b: Sequence[torch.Tensor]) -> torch.Tensor:
        return tabular_loss(model(b[0]), targets=b[1], reduction="none")

    return Case(
        "tabular MLP (18-32-16-2)", lambda: TabularMLP.from_seed(0), (features, targets), loss
    )


def behaviour_case(batch_size: int) -> Case:
    gen = torch.Generator().manual_seed(3)
    max_len = SequenceSpec().max_len
    vocab = BehaviourGRU().config.vocab_size
    lengths = torch.randint(1, max_len + 1, (batch_size,), generator=gen)
    tokens = torch.randint(1, vocab, (batch_size, max_len), generator=gen)
    tokens[torch.arange(max_len)[None, :] >= lengths[:, None]] = 0
    purchase = (torch.rand(batch_size, generator=gen) < 0.3).float()
    escalation = (torch.rand(batch_size, generator=gen) < 0.1).float()
    category = torch.randint(0, 9, (batch_size,), generator=gen)

    def loss(model: nn.Module, b: Sequence[torch.Tensor]) -> torch.Tensor:
        out = model(b[0], b[1])
        return (
            F.binary_cross_entropy_with_logits(out.purchase, b[2], reduction="none")
            + F.binary_cross_entropy_with_logits(out.escalation, b[3], reduction="none")
            + F.cross_entropy(out.category, b[4], reduction="none")
        )

    return Case(
        f"behaviour GRU (max_len={max_len})",
        lambda: BehaviourGRU.from_seed(0),
        (tokens, lengths, purchase, escalation, category),
        loss,
    )


# ---------------------------------------------------------------- timing
def plain_step(case: Case) -> Callable[[], None]:
    model = case.build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    def step() -> None:
        optimizer.zero_grad()
        case.loss(model, case.batch).mean().backward()
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
        private.step(case.loss(model, case.batch))

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
    params = sum(p.numel() for p in case.build().parameters())
    row: dict[str, Any] = {
        "model": case.name,
        "params": params,
        "batch_size": case.batch_size,
        "ours_mode": privates["ours"].mode if "ours" in privates else None,
        "ms": {k: round(v, 3) for k, v in ms.items()},
        "ratio": {k: round(v / ms["non-private"], 2) for k, v in ms.items() if k != "non-private"},
    }
    return row


# ---------------------------------------------------------------- accuracy
def train_text(
    config: TextModelConfig,
    data: tuple[list[str], list[str], list[str]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    sigma: float | None,
    clip: float,
) -> tuple[TextClassifier, list[tuple[float, float, int]]]:
    texts, intents, emotions = data
    model = TextClassifier.from_seed(0, config)
    encoded = model.encode(texts)
    dataset = TensorDataset(
        encoded.ids,
        encoded.weights,
        label_indices(intents, names=INTENTS),
        label_indices(emotions, names=EMOTIONS),
    )
    gen = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if sigma is None:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=gen)
        for _ in range(epochs):
            for ids, weights, yi, ye in loader:
                optimizer.zero_grad()
                text_loss(model(ids, weights), intent=yi, emotion=ye).backward()
                optimizer.step()
        return model, []
    loader = DataLoader(dataset, batch_size=batch_size, generator=gen)
    dp = DPConfig(noise_multiplier=sigma, max_grad_norm=clip, batch_size=batch_size)
    with DPTrainer(dp, grad_sample_mode="auto").make_private(
        module=model, optimizer=optimizer, data_loader=loader
    ) as private:
        for _ in range(epochs):
            for ids, weights, yi, ye in private.data_loader:
                losses = (
                    text_loss(model(ids, weights), intent=yi, emotion=ye, reduction="none")
                    if ids.shape[0]
                    else torch.zeros(0)
                )
                private.step(losses)
    return model, private.history


def text_accuracy(
    model: TextClassifier, data: tuple[list[str], list[str], list[str]]
) -> tuple[float, float]:
    texts, intents, emotions = data
    p_intent, p_emotion = model.score(texts)
    acc_i = sum(
        INTENTS[int(k)] == y for k, y in zip(p_intent.argmax(1), intents, strict=True)
    ) / len(texts)
    acc_e = sum(
        EMOTIONS[int(k)] == y for k, y in zip(p_emotion.argmax(1), emotions, strict=True)
    ) / len(texts)
    return acc_i, acc_e


def accuracy_report(config: TextModelConfig, *, args: argparse.Namespace) -> dict[str, Any]:
    from opacus.accountants.utils import get_noise_multiplier

    train = masked_messages(args.train_size, seed=10)
    test = masked_messages(1000, seed=11)
    batches = -(-args.train_size // args.acc_batch)
    q, steps = 1.0 / batches, batches * args.epochs
    sigma = get_noise_multiplier(
        target_epsilon=args.epsilon, target_delta=1e-5, sample_rate=q, steps=steps, accountant="prv"
    )
    started = time.perf_counter()
    plain, _ = train_text(
        config, train, epochs=args.epochs, batch_size=args.acc_batch, lr=0.5, sigma=None, clip=1.0
    )
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    private, history = train_text(
        config, train, epochs=args.epochs, batch_size=args.acc_batch, lr=0.5, sigma=sigma, clip=1.0
    )
    private_s = time.perf_counter() - started
    spent = compute_epsilon(history, delta=1e-5, accountant="prv")
    return {
        "train_size": args.train_size,
        "test_size": 1000,
        "epochs": args.epochs,
        "batch_size": args.acc_batch,
        "sample_rate": round(q, 4),
        "steps": steps,
        "noise_multiplier": round(float(sigma), 3),
        "epsilon": args.epsilon,
        "epsilon_spent": round(spent, 3),
        "delta": 1e-5,
        "non_private": dict(zip(("intent", "emotion"), text_accuracy(plain, test), strict=True)),
        "dp": dict(zip(("intent", "emotion"), text_accuracy(private, test), strict=True)),
        "seconds": {"non_private": round(plain_s, 2), "dp": round(private_s, 2)},
    }


# ---------------------------------------------------------------- output
def print_table(rows: list[dict[str, Any]], *, goal: float) -> None:
    print(f"DP-SGD step overhead, 1 CPU thread, torch {torch.__version__}")
    header = f"{'model':<44}{'params':>9}{'batch':>7}{'plain ms':>10}"
    header += f"{'ours ms':>9}{'ratio':>7}{'hooks ms':>10}{'ratio':>7}{'ghost ms':>10}{'ratio':>7}"
    print(header)
    for r in rows:
        ms, ratio = r["ms"], r["ratio"]
        line = f"{r['model']:<44}{r['params']:>9}{r['batch_size']:>7}{ms['non-private']:>10.2f}"
        for key in ("ours", "opacus-hooks", "opacus-ghost"):
            line += f"{ms[key]:>9.2f}{ratio[key]:>7.2f}" if key in ms else f"{'-':>9}{'-':>7}"
        print(line)
    print(f"ours = DPTrainer auto mode ({', '.join(sorted({str(r['ours_mode']) for r in rows}))})")
    for r in rows:
        ours = r["ratio"].get("ours")
        hooks = r["ratio"].get("opacus-hooks")
        if ours is None:
            continue
        verdict = "meets" if ours <= goal else "misses"
        better = (
            ""
            if hooks is None
            else (", better than hooks" if ours < hooks else ", NOT better than hooks")
        )
        print(f"  {r['model']}: {verdict} the <= {goal} goal ({ours:.2f}x{better})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-batch", type=int, default=256)
    parser.add_argument("--tabular-batch", type=int, default=256)
    parser.add_argument("--behaviour-batch", type=int, default=64)
    parser.add_argument("--buckets", type=int, default=TextModelConfig().num_buckets)
    parser.add_argument("--dim", type=int, default=TextModelConfig().embed_dim)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant per round")
    parser.add_argument("--models", default="behaviour,text,tabular")
    parser.add_argument(
        "--skip", default="", help="comma list of variants to skip, e.g. opacus-ghost"
    )
    parser.add_argument(
        "--accuracy", action="store_true", help="also train the text model (DP vs not)"
    )
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--acc-batch", type=int, default=256)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")

    text_config = TextModelConfig(num_buckets=args.buckets, embed_dim=args.dim)
    builders = {
        "behaviour": lambda: behaviour_case(args.behaviour_batch),
        "text": lambda: text_case(args.text_batch, text_config),
        "tabular": lambda: tabular_case(args.tabular_batch),
    }
    rows = [measure(builders[name](), args=args) for name in args.models.split(",")]
    report: dict[str, Any] = {"rows": rows, "goal": 2.0}
    if args.accuracy:
        report["text_accuracy"] = accuracy_report(text_config, args=args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print_table(rows, goal=2.0)
    if args.accuracy:
        acc = report["text_accuracy"]
        print(
            f"text accuracy on {acc['test_size']} held-out generated messages "
            f"({acc['train_size']} train, {acc['epochs']} epochs, batch {acc['batch_size']}):"
        )
        plain, dp = acc["non_private"], acc["dp"]
        print(f"  non-private: intent {plain['intent']:.3f}, emotion {plain['emotion']:.3f}")
        print(
            f"  DP (eps={acc['epsilon_spent']} by the ledger's PRV accountant, delta=1e-5, "
            f"sigma={acc['noise_multiplier']}, "
            f"q={acc['sample_rate']}, {acc['steps']} steps): "
            f"intent {dp['intent']:.3f}, emotion {dp['emotion']:.3f}"
        )


if __name__ == "__main__":
    main()
