"""White-box tests of the DP-SGD mechanism on the behaviour model's GRU path (hooks mode)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from models import (
    BEHAVIOUR_FEATURES,
    BehaviourExample,
    BehaviourModel,
    BehaviourModelConfig,
    get_weights,
)
from models.behaviour import BehaviourBatch, batch_examples, behaviour_loss
from models.sequences import VOCAB_SIZE
from privacy import DPConfig, DPTrainer

MAX_LEN = 6
LR = 1.0
NF = len(BEHAVIOUR_FEATURES)  # the fixed input scaling is part of the model under test
#: The sequence (GRU, Opacus RNNLinear cells) path, small enough for hand clipping.
GRU = BehaviourModelConfig(sequence=12, embed_dim=8)
#: About 10k parameters, for the noise statistics.
BIG_GRU = BehaviourModelConfig(sequence=48, embed_dim=8)


def _examples(n: int) -> list[BehaviourExample]:
    rng = np.random.default_rng(0)
    return [
        BehaviourExample(
            f"ps_{i:064x}",
            tuple(float(v) for v in rng.lognormal(1.0, 1.5, size=NF)),
            # example 1 has an empty history: its GRU summary is zero
            tuple(
                int(t)
                for t in rng.integers(
                    1, VOCAB_SIZE, size=0 if i == 1 else int(rng.integers(1, MAX_LEN + 1))
                )
            ),
            float(i % 2),
            float(i % 3 == 0),
            None if i % 4 == 0 else int(i % 9),
        )
        for i in range(n)
    ]


def _batch(examples: list[BehaviourExample]) -> BehaviourBatch:
    return batch_examples(examples, num_features=NF, max_len=MAX_LEN)


def _dataset(examples: list[BehaviourExample]) -> TensorDataset:
    return TensorDataset(*_batch(examples))


def _flat(model: torch.nn.Module) -> np.ndarray:
    return np.concatenate([v.ravel() for v in get_weights(model).values()])


def _one_private_step(
    model: BehaviourModel,
    examples: list[BehaviourExample],
    config: DPConfig,
    generator: torch.Generator | None = None,
) -> None:
    """One DP-SGD step with q = 1 (batch size = n): every example is in the batch."""
    loader = DataLoader(_dataset(examples), batch_size=len(examples))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with DPTrainer(config).make_private(
            module=model, optimizer=optimizer, data_loader=loader, generator=generator
        ) as private:
            assert private.sample_rate == 1.0
            for features, tokens, lengths, purchase, escalation, category in private.data_loader:
                private.optimizer.zero_grad()
                out = model(features, tokens, lengths)
                behaviour_loss(
                    out, purchase=purchase, escalation=escalation, category=category
                ).backward()
                private.optimizer.step()
            assert private.history == [(config.noise_multiplier, 1.0, 1)]


def _hand_clipped_update(
    model: BehaviourModel, examples: list[BehaviourExample], clip: float
) -> np.ndarray:
    """Σ_i clip(∇ loss_i, C) / n, written out one example at a time."""
    batch = _batch(examples)
    total: np.ndarray | None = None
    for i in range(len(examples)):
        model.zero_grad()
        out = model(batch.features[i : i + 1], batch.tokens[i : i + 1], batch.lengths[i : i + 1])
        behaviour_loss(
            out,
            purchase=batch.purchase[i : i + 1],
            escalation=batch.escalation[i : i + 1],
            category=batch.category[i : i + 1],
        ).backward()
        grad = np.concatenate(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).detach().numpy().ravel()
                for p in model.parameters()
            ]
        )
        factor = min(1.0, clip / (np.linalg.norm(grad) + 1e-6))  # Opacus's flat clipping
        total = grad * factor if total is None else total + grad * factor
    assert total is not None
    return total / len(examples)


def test_dp_trainer_zero_noise_update_equals_hand_written_per_example_clipping() -> None:
    examples = _examples(6)
    clip = 0.05  # small, so every example's gradient is clipped
    reference = BehaviourModel.from_seed(3, GRU)
    private = BehaviourModel.from_seed(3, GRU)
    before = _flat(reference)
    expected = before - LR * _hand_clipped_update(reference, examples, clip)

    _one_private_step(
        private,
        examples,
        DPConfig(grad_sample_mode="hooks", noise_multiplier=0.0, max_grad_norm=clip),
    )

    np.testing.assert_allclose(_flat(private), expected, atol=1e-6)
    assert not np.allclose(_flat(private), before)


def test_dp_trainer_noise_std_is_sigma_clip_over_expected_batch() -> None:
    examples = _examples(8)
    sigma, clip = 1.5, 0.1
    noisy, clean = BehaviourModel.from_seed(4, BIG_GRU), BehaviourModel.from_seed(4, BIG_GRU)

    _one_private_step(
        noisy,
        examples,
        DPConfig(grad_sample_mode="hooks", noise_multiplier=sigma, max_grad_norm=clip),
    )
    _one_private_step(
        clean,
        examples,
        DPConfig(grad_sample_mode="hooks", noise_multiplier=0.0, max_grad_norm=clip),
    )

    noise = (_flat(clean) - _flat(noisy)) / LR  # about 10k independent draws
    expected = sigma * clip / len(examples)
    assert noise.size > 9_000
    assert abs(noise.mean()) < 0.05 * expected
    assert noise.std() == pytest.approx(expected, rel=0.05)


def test_dp_trainer_default_noise_is_os_random_not_torch_seeded() -> None:
    examples = _examples(4)
    config = DPConfig(grad_sample_mode="hooks", noise_multiplier=1.0, max_grad_norm=0.1)
    first, second = BehaviourModel.from_seed(0, GRU), BehaviourModel.from_seed(0, GRU)

    torch.manual_seed(0)
    _one_private_step(first, examples, config)
    torch.manual_seed(0)
    _one_private_step(second, examples, config)

    assert not np.allclose(_flat(first), _flat(second))


def test_dp_trainer_explicit_generator_warns_and_is_reproducible() -> None:
    examples = _examples(4)
    config = DPConfig(grad_sample_mode="hooks", noise_multiplier=1.0, max_grad_norm=0.1)
    loader = DataLoader(_dataset(examples), batch_size=4)
    model = BehaviourModel.from_seed(0, GRU)

    with pytest.warns(UserWarning, match="experiments only"):
        DPTrainer(config).make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=LR),
            data_loader=loader,
            generator=torch.Generator().manual_seed(1),
        ).close()
    runs = []
    for _ in range(2):
        net = BehaviourModel.from_seed(0, GRU)
        _one_private_step(net, examples, config, generator=torch.Generator().manual_seed(1))
        runs.append(_flat(net))

    np.testing.assert_array_equal(runs[0], runs[1])


def test_dp_trainer_history_counts_every_step_with_poisson_rate() -> None:
    examples = _examples(10)
    model = BehaviourModel.from_seed(0, GRU)
    loader = DataLoader(
        _dataset(examples), batch_size=5, generator=torch.Generator().manual_seed(0)
    )
    config = DPConfig(grad_sample_mode="hooks", noise_multiplier=0.8, max_grad_norm=1.0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with DPTrainer(config).make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), data_loader=loader
        ) as private:
            steps = 0
            for features, tokens, lengths, purchase, escalation, category in private.data_loader:
                if features.shape[0] == 0:
                    continue
                private.optimizer.zero_grad()
                behaviour_loss(
                    model(features, tokens, lengths),
                    purchase=purchase,
                    escalation=escalation,
                    category=category,
                ).backward()
                private.optimizer.step()
                steps += 1

    assert private.sample_rate == 0.5 and private.expected_batch_size == 5
    assert private.history == [(0.8, 0.5, steps)] and private.steps == steps


def test_dp_trainer_close_removes_hooks_and_state() -> None:
    examples = _examples(3)
    model = BehaviourModel.from_seed(0, GRU)
    private = DPTrainer(DPConfig(grad_sample_mode="hooks")).make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        data_loader=DataLoader(_dataset(examples), batch_size=3),
    )
    batch = _batch(examples)
    model(batch.features, batch.tokens, batch.lengths)  # a forward whose backward never runs

    private.close()
    model(batch.features, batch.tokens, batch.lengths).purchase.sum().backward()

    assert not any(hasattr(p, "grad_sample") for p in model.parameters())
    assert not any(hasattr(m, "activations") for m in model.modules())


def test_dp_trainer_disabled_config_refuses() -> None:
    model = BehaviourModel(GRU)

    with pytest.raises(ValueError, match="disabled"):
        DPTrainer(DPConfig(enabled=False)).make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(_dataset(_examples(2)), batch_size=2),
        )


@pytest.mark.parametrize("mode", ["functorch", "ew", ""])
def test_dp_trainer_unknown_grad_sample_mode_refused_listing_modes(mode: str) -> None:
    with pytest.raises(ValueError, match="'auto', 'hooks', 'ghost', 'bookkeeping'"):
        DPTrainer(DPConfig(), grad_sample_mode=mode)  # type: ignore[arg-type]


def test_dp_config_refuses_unknown_grad_sample_mode() -> None:
    with pytest.raises(ValueError, match="grad_sample_mode"):
        DPConfig(grad_sample_mode="functorch")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["hooks", "bookkeeping"])
def test_dp_trainer_per_example_step_on_behaviour_gru_matches_hand_clipping(mode: str) -> None:
    examples = _examples(6)
    clip = 0.05
    reference = BehaviourModel.from_seed(3, GRU)
    private_model = BehaviourModel.from_seed(3, GRU)
    expected = _flat(reference) - LR * _hand_clipped_update(reference, examples, clip)
    batch = _batch(examples)
    loader = DataLoader(_dataset(examples), batch_size=len(examples))

    with DPTrainer(
        DPConfig(grad_sample_mode="hooks", noise_multiplier=0.0, max_grad_norm=clip),
        grad_sample_mode=mode,
    ).make_private(
        module=private_model,
        optimizer=torch.optim.SGD(private_model.parameters(), lr=LR),
        data_loader=loader,
    ) as private:
        out = private_model(batch.features, batch.tokens, batch.lengths)
        losses = torch.stack(
            [
                behaviour_loss(
                    type(out)(*(t[i : i + 1] for t in out)),
                    purchase=batch.purchase[i : i + 1],
                    escalation=batch.escalation[i : i + 1],
                    category=batch.category[i : i + 1],
                )
                for i in range(len(examples))
            ]
        )
        private.step(losses)

    assert private.mode == mode
    np.testing.assert_allclose(_flat(private_model), expected, atol=1e-6)
