from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.validators import ModuleValidator

from models import CATEGORIES, BehaviourGRU, BehaviourModelConfig, SequenceExample, get_weights
from models.behaviour import IGNORE_CATEGORY, batch_examples, behaviour_loss, build_model


def _examples() -> list[SequenceExample]:
    return [
        SequenceExample("ps_" + "1" * 64, (5, 6, 7), 1.0, 0.0, 2),
        SequenceExample("ps_" + "2" * 64, (9,), 0.0, 1.0, None),
        SequenceExample("ps_" + "3" * 64, tuple(range(1, 80)), 0.0, 0.0, 0),
    ]


def test_behaviour_gru_forward_shapes_match_heads() -> None:
    model = BehaviourGRU()
    batch = batch_examples(_examples(), max_len=16)

    out = model(batch.tokens, batch.lengths)

    assert out.purchase.shape == (3,)
    assert out.escalation.shape == (3,)
    assert out.category.shape == (3, len(CATEGORIES))


def test_behaviour_gru_padding_does_not_change_scores() -> None:
    model = build_model(seed=0)
    tokens = [[5, 6, 7], [9]]

    short = model.score(tokens, max_len=4)
    long = model.score(tokens, max_len=32)

    np.testing.assert_allclose(short[0], long[0], atol=1e-6)
    np.testing.assert_allclose(short[1], long[1], atol=1e-6)


def test_behaviour_gru_is_valid_for_opacus() -> None:
    assert ModuleValidator.validate(BehaviourGRU(), strict=False) == []


def test_batch_examples_pads_truncates_and_marks_missing_category() -> None:
    batch = batch_examples(_examples(), max_len=16)

    assert batch.tokens.shape == (3, 16)
    assert batch.lengths.tolist() == [3, 1, 16]
    assert batch.tokens[2].tolist() == list(range(64, 80))  # most recent tokens kept
    assert batch.category.tolist() == [2, IGNORE_CATEGORY, 0]


def test_behaviour_loss_is_mean_of_per_example_losses() -> None:
    model = build_model(seed=1)
    examples = _examples()
    batch = batch_examples(examples, max_len=16)
    with torch.no_grad():
        out = model(batch.tokens, batch.lengths)

    whole = behaviour_loss(
        out, purchase=batch.purchase, escalation=batch.escalation, category=batch.category
    )
    singles = [
        behaviour_loss(
            type(out)(*(t[i : i + 1] for t in out)),
            purchase=batch.purchase[i : i + 1],
            escalation=batch.escalation[i : i + 1],
            category=batch.category[i : i + 1],
        )
        for i in range(len(examples))
    ]

    assert float(whole) == pytest.approx(float(sum(singles)) / len(examples), rel=1e-5)


def test_build_model_same_seed_same_weights_and_rng_untouched() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)

    a = get_weights(build_model(seed=7))
    next_draw = torch.rand(1)
    b = get_weights(BehaviourGRU.from_seed(7))
    c = get_weights(build_model(seed=8))

    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert torch.equal(next_draw, expected_next)


def test_model_config_from_weights_roundtrips_architecture() -> None:
    config = BehaviourModelConfig(embed_dim=8, hidden_size=12)
    model = BehaviourGRU(config)

    rebuilt = BehaviourGRU.from_bytes(model.to_bytes())

    assert rebuilt.config == config
    weights = get_weights(rebuilt)
    assert all(np.array_equal(weights[k], v) for k, v in get_weights(model).items())


def test_model_config_from_weights_foreign_weights_raise() -> None:
    with pytest.raises(ValueError, match="not those of a BehaviourGRU"):
        BehaviourModelConfig.from_weights({"fc.weight": np.zeros((2, 2))})


def test_score_returns_probabilities_and_restores_training_mode() -> None:
    model = BehaviourGRU()
    model.train()

    purchase, escalation = model.score([[1, 2], [3]], max_len=8)

    assert model.training
    assert purchase.shape == escalation.shape == (2,)
    assert np.all((purchase > 0) & (purchase < 1)) and np.all((escalation > 0) & (escalation < 1))
    assert model.score([], max_len=8)[0].shape == (0,)
