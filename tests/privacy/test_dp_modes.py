"""White-box tests of every DP-SGD mode (hooks, ghost, bookkeeping) on every edge model."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models import BEHAVIOUR_FEATURES, BehaviourModel, BehaviourModelConfig, get_weights
from models.behaviour import IGNORE_CATEGORY
from models.text import IGNORE_LABEL, TextClassifier, TextModelConfig, text_loss
from privacy.config import DPConfig
from privacy.dp import DPTrainer, PrivateTraining, resolve_mode

MODES = ("hooks", "ghost", "bookkeeping")
MODELS = ("gru", "mlp", "text")
LR = 1.0
NF = len(BEHAVIOUR_FEATURES)  # the fixed input scaling is part of the models under test
MAX_LEN = 6

Loss = Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]


@dataclass
class Setup:
    """A model, a dataset of ``n`` examples and its per-example loss."""

    model: nn.Module
    data: tuple[torch.Tensor, ...]
    loss: Loss

    @property
    def n(self) -> int:
        return int(self.data[0].shape[0])


def _behaviour_loss(model: nn.Module, b: tuple[torch.Tensor, ...]) -> torch.Tensor:
    out = model(b[0], b[1], b[2])
    return (
        F.binary_cross_entropy_with_logits(out.purchase, b[3], reduction="none")
        + F.binary_cross_entropy_with_logits(out.escalation, b[4], reduction="none")
        + F.cross_entropy(out.category, b[5], ignore_index=IGNORE_CATEGORY, reduction="none")
    )


def _behaviour_data(n: int, *, seed: int, with_tokens: bool) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    features = torch.exp(torch.randn(n, NF, generator=gen) * 2.0)  # heavy tails, raw scale
    if with_tokens:
        lengths = torch.randint(1, MAX_LEN + 1, (n,), generator=gen)
        lengths[1] = 0  # an empty history
        lengths[2] = MAX_LEN  # MAX_LEN tokens out of fewer values: repeated ids in one example
        tokens = torch.randint(1, MAX_LEN, (n, MAX_LEN), generator=gen)
        tokens[torch.arange(MAX_LEN)[None, :] >= lengths[:, None]] = 0
    else:
        lengths, tokens = torch.zeros(n, dtype=torch.long), torch.zeros((n, 1), dtype=torch.long)
    category = torch.randint(0, 9, (n,), generator=gen)
    category[0] = IGNORE_CATEGORY  # one unknown next category
    return (
        features,
        tokens,
        lengths,
        (torch.rand(n, generator=gen) < 0.5).float(),
        (torch.rand(n, generator=gen) < 0.5).float(),
        category,
    )


def _gru(n: int, *, big: bool = False) -> Setup:
    """The behaviour model's sequence path: Embedding → DPGRU (RNNLinear cells) → heads."""
    config = BehaviourModelConfig(sequence=48 if big else 12, embed_dim=8)
    data = _behaviour_data(n, seed=5, with_tokens=True)
    return Setup(BehaviourModel.from_seed(3, config), data, _behaviour_loss)


def _mlp(n: int, *, big: bool = False) -> Setup:
    """The behaviour model's hidden layer: the MLP on tabular features."""
    config = BehaviourModelConfig(hidden=128 if big else 16)
    data = _behaviour_data(n, seed=6, with_tokens=False)
    return Setup(BehaviourModel.from_seed(3, config), data, _behaviour_loss)


_TEXTS = (
    "我要投诉，<PERSON>的快递三天没到！",
    "请问羽绒服有没有优惠？电话<CN_MOBILE>",
    "想再买两件连衣裙，谢谢",
    "申请退款，卡号<CN_BANK_CARD>",
    "Is the yoga mat in stock?",
    "退货退货，尺码不对",
    "好",
    "",
)


def _text(n: int, *, big: bool = False) -> Setup:
    heads = {"intent": 4, "emotion": 3}
    config = TextModelConfig(vocabulary=300, buckets=1024 if big else 64, heads=heads)
    texts = [_TEXTS[i % len(_TEXTS)] for i in range(n)]
    batch = config.featurizer.encode(texts)
    data = (
        batch.ids,
        batch.weights,
        torch.tensor([i % 4 for i in range(n)]),
        torch.tensor([(i * 2) % 3 if i % 5 else IGNORE_LABEL for i in range(n)]),
    )

    def loss(model: nn.Module, b: tuple[torch.Tensor, ...]) -> torch.Tensor:
        targets = {"intent": b[2], "emotion": b[3]}
        return text_loss(model(b[0], b[1]), targets, reduction="none")

    return Setup(TextClassifier.from_seed(3, config), data, loss)


BUILDERS: dict[str, Callable[..., Setup]] = {"gru": _gru, "mlp": _mlp, "text": _text}


def _flat(model: nn.Module) -> np.ndarray:
    return np.concatenate([v.ravel() for v in get_weights(model).values()])


def _per_example_grads(setup: Setup) -> list[np.ndarray]:
    grads = []
    for i in range(setup.n):
        setup.model.zero_grad()
        one = tuple(t[i : i + 1] for t in setup.data)
        setup.loss(setup.model, one).sum().backward()
        grads.append(
            np.concatenate(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).numpy().ravel()
                    for p in setup.model.parameters()
                ]
            )
        )
    setup.model.zero_grad()
    return grads


def _hand_clipped_mean(grads: list[np.ndarray], clip: float) -> np.ndarray:
    """Σ_i clip(∇ loss_i, C) / n with Opacus's factor min(1, C / (‖g‖ + 1e-6))."""
    total = sum(g * min(1.0, clip / (np.linalg.norm(g) + 1e-6)) for g in grads)
    return np.asarray(total) / len(grads)


def _private(
    setup: Setup,
    mode: str,
    config: DPConfig,
    *,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
) -> PrivateTraining:
    loader = DataLoader(
        TensorDataset(*setup.data),
        batch_size=batch_size or setup.n,
        generator=torch.Generator().manual_seed(0),
    )
    optimizer = torch.optim.SGD(setup.model.parameters(), lr=LR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DPTrainer(config, grad_sample_mode=mode).make_private(  # type: ignore[arg-type]
            module=setup.model, optimizer=optimizer, data_loader=loader, generator=generator
        )


def _one_full_batch_step(
    setup: Setup, mode: str, config: DPConfig, generator: torch.Generator | None = None
) -> PrivateTraining:
    """One DP-SGD step with q = 1 on the whole dataset, through the uniform contract."""
    with _private(setup, mode, config, generator=generator) as private:
        assert private.sample_rate == 1.0 and private.expected_batch_size == setup.n
        private.step(setup.loss(setup.model, setup.data))
    return private


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("mode", MODES)
def test_zero_noise_update_equals_hand_written_per_example_clipping(mode: str, model: str) -> None:
    setup = BUILDERS[model](7)
    grads = _per_example_grads(setup)
    norms = [float(np.linalg.norm(g)) for g in grads]
    assert max(norms) > 1.1 * min(norms)
    clip = (min(norms) + max(norms)) / 2  # some clipped, some not
    before = _flat(setup.model)
    expected = before - LR * _hand_clipped_mean(grads, clip)

    private = _one_full_batch_step(setup, mode, DPConfig(noise_multiplier=0.0, max_grad_norm=clip))

    assert private.mode == mode
    np.testing.assert_allclose(_flat(setup.model), expected, atol=1e-5, rtol=0)
    assert not np.allclose(_flat(setup.model), before)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("mode", MODES)
def test_noise_std_is_sigma_clip_over_expected_batch(mode: str, model: str) -> None:
    sigma, clip, n = 1.5, 0.1, 8
    noisy, clean = BUILDERS[model](n, big=True), BUILDERS[model](n, big=True)

    _one_full_batch_step(
        noisy,
        mode,
        DPConfig(noise_multiplier=sigma, max_grad_norm=clip),
        generator=torch.Generator().manual_seed(11),
    )
    _one_full_batch_step(clean, mode, DPConfig(noise_multiplier=0.0, max_grad_norm=clip))

    noise = (_flat(clean.model) - _flat(noisy.model)) / LR
    expected = sigma * clip / n
    assert noise.size > 5_000
    assert abs(noise.mean()) < 0.05 * expected
    assert noise.std() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("mode", MODES)
def test_history_counts_every_step_including_empty_poisson_batches(mode: str) -> None:
    setup = _text(12)
    config = DPConfig(noise_multiplier=0.8, max_grad_norm=1.0)
    steps = 0

    with _private(setup, mode, config, batch_size=3) as private:
        for _ in range(3):
            for batch in private.data_loader:
                losses = setup.loss(setup.model, tuple(batch)) if len(batch[0]) else torch.zeros(0)
                private.step(losses)
                steps += 1

    assert private.sample_rate == 0.25 and private.expected_batch_size == 3
    assert steps == 12
    assert private.history == [(0.8, 0.25, steps)] and private.steps == steps


@pytest.mark.parametrize("mode", MODES)
def test_empty_batch_step_moves_weights_by_noise_only(mode: str) -> None:
    noisy, quiet = _mlp(4), _mlp(4)
    before = _flat(noisy.model)

    with _private(noisy, mode, DPConfig(noise_multiplier=1.0, max_grad_norm=1.0)) as private:
        private.step(torch.zeros(0))
    with _private(quiet, mode, DPConfig(noise_multiplier=0.0, max_grad_norm=1.0)) as private:
        private.step(torch.zeros(0))

    assert not np.allclose(_flat(noisy.model), before)
    np.testing.assert_array_equal(_flat(quiet.model), before)
    assert private.steps == 1


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("mode", ["ghost", "bookkeeping"])
def test_plain_loss_backward_is_refused_before_any_update(mode: str) -> None:
    setup = _mlp(6)
    before = _flat(setup.model)

    with _private(setup, mode, DPConfig(noise_multiplier=0.0, max_grad_norm=1e-3)) as private:
        private.optimizer.zero_grad()
        setup.loss(setup.model, setup.data).mean().backward()
        with pytest.raises(RuntimeError, match="PrivateTraining.backward"):
            private.optimizer.step()

    np.testing.assert_array_equal(_flat(setup.model), before)
    assert private.steps == 0


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_hooks_mode_accepts_opacus_loop_and_uniform_step_alike() -> None:
    config = DPConfig(noise_multiplier=0.0, max_grad_norm=0.05)
    opacus_style, uniform = _gru(5), _gru(5)

    with _private(opacus_style, "hooks", config) as private:
        private.optimizer.zero_grad()
        opacus_style.loss(opacus_style.model, opacus_style.data).mean().backward()
        private.optimizer.step()
    _one_full_batch_step(uniform, "hooks", config)

    np.testing.assert_allclose(_flat(opacus_style.model), _flat(uniform.model), atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_close_leaves_the_model_as_it_was(mode: str) -> None:
    setup = _text(4)
    hooks_before = [len(m._forward_hooks) + len(m._backward_hooks) for m in setup.model.modules()]

    private = _private(setup, mode, DPConfig())
    setup.loss(setup.model, setup.data)  # a forward whose backward never runs
    private.close()

    hooks_after = [len(m._forward_hooks) + len(m._backward_hooks) for m in setup.model.modules()]
    assert hooks_after == hooks_before
    assert not any(
        hasattr(p, "grad_sample") or hasattr(p, "_norm_sample") for p in setup.model.parameters()
    )
    assert not any(hasattr(m, "activations") for m in setup.model.modules())


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: BehaviourModel(BehaviourModelConfig(sequence=4)), "bookkeeping"),
        (lambda: BehaviourModel(BehaviourModelConfig(hidden=4)), "bookkeeping"),
        (lambda: BehaviourModel(BehaviourModelConfig(hidden=4, sequence=4)), "bookkeeping"),
        (BehaviourModel, "bookkeeping"),
        (lambda: TextClassifier(TextModelConfig(vocabulary=10)), "bookkeeping"),
        (lambda: nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1)), "hooks"),
    ],
    ids=["gru", "mlp", "mlp+gru", "linear", "text", "layernorm"],
)
def test_auto_mode_picks_bookkeeping_when_every_layer_allows_it(
    build: Callable[[], nn.Module], expected: str
) -> None:
    model = build()

    assert resolve_mode(model, "auto") == expected
    assert resolve_mode(model, "ghost") == "ghost"


def test_bookkeeping_mode_refuses_unsupported_layers_naming_them() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    loader = DataLoader(TensorDataset(torch.zeros(4, 3)), batch_size=2)

    with pytest.raises(ValueError, match="LayerNorm"):
        DPTrainer(DPConfig(), grad_sample_mode="bookkeeping").make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), data_loader=loader
        )


def test_trainer_takes_the_mode_from_the_config_unless_overridden() -> None:
    assert DPConfig().grad_sample_mode == "auto"
    assert DPTrainer(DPConfig(grad_sample_mode="auto")).grad_sample_mode == "auto"
    assert (
        DPTrainer(DPConfig(grad_sample_mode="auto"), grad_sample_mode="ghost").grad_sample_mode
        == "ghost"
    )
