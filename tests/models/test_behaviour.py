from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from opacus.validators import ModuleValidator

from models import (
    BEHAVIOUR_FEATURES,
    CATEGORIES,
    BehaviourExample,
    BehaviourModel,
    BehaviourModelConfig,
    get_weights,
    set_weights,
)
from models.behaviour import (
    FEATURE_SCALING,
    IGNORE_CATEGORY,
    BehaviourOutput,
    batch_examples,
    behaviour_loss,
    squash,
)
from models.sequences import PAD_TOKEN, VOCAB_SIZE, event_token
from privacy.bookkeeping import unsupported_layers

NF = 6  # a feature count other than len(BEHAVIOUR_FEATURES): inputs are not scaled
MAX_LEN = 16

CONFIGS: dict[str, BehaviourModelConfig] = {
    "linear": BehaviourModelConfig(num_features=NF),
    "hidden": BehaviourModelConfig(num_features=NF, hidden=5),
    "sequence": BehaviourModelConfig(num_features=NF, sequence=4, embed_dim=3),
    "hidden+sequence": BehaviourModelConfig(num_features=NF, hidden=5, sequence=4, embed_dim=3),
    "default": BehaviourModelConfig(),
    "wide linear": BehaviourModelConfig(num_features=11, num_categories=3),
}
SEQUENCE_CONFIGS = ("sequence", "hidden+sequence")


def _features(i: int, num_features: int) -> tuple[float, ...]:
    return tuple(float((i + 1) * (j - 2)) * 3.5 for j in range(num_features))


def _examples(num_features: int = NF) -> list[BehaviourExample]:
    view, buy = event_token("page_view", "books"), event_token("purchase", "food")
    return [
        BehaviourExample("ps_" + "1" * 64, _features(0, num_features), (view, buy), 1.0, 0.0, 2),
        BehaviourExample("ps_" + "2" * 64, _features(1, num_features), (buy,), 0.0, 1.0, None),
        BehaviourExample(
            "ps_" + "3" * 64,
            _features(2, num_features),
            tuple(1 + t % (VOCAB_SIZE - 1) for t in range(40)),
            0.0,
            0.0,
            0,
        ),
        BehaviourExample("ps_" + "4" * 64, _features(3, num_features), (), 1.0, 1.0, 1),
    ]


def _batch(config: BehaviourModelConfig, max_len: int = MAX_LEN):
    return batch_examples(
        _examples(config.num_features), num_features=config.num_features, max_len=max_len
    )


def _forward(model: BehaviourModel, batch) -> BehaviourOutput:
    return model(batch.features, batch.tokens, batch.lengths)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_shapes_match_heads_and_outputs_are_finite(name: str) -> None:
    config = CONFIGS[name]
    model = BehaviourModel.from_seed(0, config)
    batch = _batch(config)

    out = _forward(model, batch)

    assert out.purchase.shape == (4,)
    assert out.escalation.shape == (4,)
    assert out.category.shape == (4, config.num_categories)
    assert all(bool(torch.isfinite(t).all()) for t in out)


@pytest.mark.parametrize(
    ("name", "present", "absent"),
    [
        ("linear", set(), {"hidden.weight", "embedding.weight", "gru.weight_hh_l0"}),
        ("hidden", {"hidden.weight"}, {"embedding.weight", "gru.weight_hh_l0"}),
        ("sequence", {"embedding.weight", "gru.weight_hh_l0"}, {"hidden.weight"}),
        ("hidden+sequence", {"hidden.weight", "embedding.weight", "gru.weight_hh_l0"}, set()),
    ],
)
def test_each_part_is_present_only_when_configured(
    name: str, present: set[str], absent: set[str]
) -> None:
    weights = get_weights(BehaviourModel(CONFIGS[name]))

    assert present <= set(weights)
    assert not absent & set(weights)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_from_bytes_round_trip_infers_each_architecture(name: str) -> None:
    config = CONFIGS[name]
    model = BehaviourModel.from_seed(1, config)
    batch = _batch(config)

    rebuilt = BehaviourModel.from_bytes(model.to_bytes())

    assert rebuilt.config == config
    expected = get_weights(model)
    actual = get_weights(rebuilt)
    assert list(actual) == list(expected)
    assert all(np.array_equal(actual[k], expected[k]) for k in expected)
    with torch.no_grad():
        torch.testing.assert_close(_forward(rebuilt, batch), _forward(model, batch))


def test_linear_from_weights_reads_num_features_from_the_head_width() -> None:
    weights = get_weights(BehaviourModel(BehaviourModelConfig(num_features=13)))

    config = BehaviourModelConfig.from_weights(weights)

    assert (config.num_features, config.hidden, config.sequence) == (13, 0, 0)


def _linear_weights(width: int) -> dict[str, np.ndarray]:
    return get_weights(BehaviourModel(BehaviourModelConfig(num_features=width)))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"fc.weight": np.zeros((2, 2))}, "not those of a BehaviourModel"),
        ({"heads.weight": np.zeros(9)}, "not those of a BehaviourModel"),
        ({"heads.weight": np.zeros((2, 7))}, "not those of a BehaviourModel"),
        (
            {**_linear_weights(7), "hidden.weight": np.zeros((5, 3)), "hidden.bias": np.zeros(5)},
            "head width",
        ),
        (
            {
                **_linear_weights(4),
                "gru.weight_hh_l0": np.zeros((3 * 4, 4)),
                "embedding.weight": np.zeros((VOCAB_SIZE, 8)),
            },
            "head width",
        ),
    ],
    ids=["foreign", "head not 2-d", "no category row", "hidden vs head width", "sequence wider"],
)
def test_from_weights_refuses_weights_of_another_shape(
    weights: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BehaviourModel.from_weights(weights)


@pytest.mark.parametrize("name", SEQUENCE_CONFIGS)
def test_empty_history_is_finite_and_ignores_the_sequence_part(name: str) -> None:
    config = CONFIGS[name]
    model = BehaviourModel.from_seed(2, config)
    batch = _batch(config)
    empty = batch.lengths == 0
    assert empty.tolist() == [False, False, False, True]
    with torch.no_grad():
        before = _forward(model, batch)
        assert model.gru is not None and model.embedding is not None
        for param in (*model.gru.parameters(), *model.embedding.parameters()):
            param.add_(1.0)

        after = _forward(model, batch)

    assert all(bool(torch.isfinite(t).all()) for t in after)
    torch.testing.assert_close(after.purchase[empty], before.purchase[empty])
    torch.testing.assert_close(after.category[empty], before.category[empty])
    assert not torch.allclose(after.purchase[~empty], before.purchase[~empty])


@pytest.mark.parametrize("name", SEQUENCE_CONFIGS)
def test_padding_width_does_not_change_scores(name: str) -> None:
    config = CONFIGS[name]
    model = BehaviourModel.from_seed(3, config)
    examples = _examples()[:2] + _examples()[3:]  # histories shorter than both widths

    short = model.score(batch_examples(examples, num_features=NF, max_len=4))
    long = model.score(batch_examples(examples, num_features=NF, max_len=32))

    np.testing.assert_allclose(short[0], long[0], atol=1e-6)
    np.testing.assert_allclose(short[1], long[1], atol=1e-6)


def test_batch_examples_pads_keeps_the_tail_and_marks_missing_category() -> None:
    examples = _examples()

    batch = batch_examples(examples, num_features=NF, max_len=MAX_LEN)

    assert batch.features.shape == (4, NF) and batch.features.dtype == torch.float32
    assert batch.tokens.shape == (4, MAX_LEN)
    assert batch.lengths.tolist() == [2, 1, MAX_LEN, 0]
    assert batch.tokens[0].tolist() == [*examples[0].tokens, *[PAD_TOKEN] * (MAX_LEN - 2)]
    assert batch.tokens[2].tolist() == list(examples[2].tokens[-MAX_LEN:])  # most recent kept
    assert batch.tokens[3].tolist() == [PAD_TOKEN] * MAX_LEN
    assert batch.purchase.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert batch.escalation.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert batch.category.tolist() == [2, IGNORE_CATEGORY, 0, 1]


@pytest.mark.parametrize("max_len", [0, 1])
def test_batch_examples_keeps_at_least_one_token_column(max_len: int) -> None:
    batch = batch_examples(_examples(), num_features=NF, max_len=max_len)

    assert batch.tokens.shape == (4, 1)
    assert batch.lengths.tolist() == [1, 1, 1, 0]


def test_batch_examples_empty_list_gives_empty_tensors_of_the_right_width() -> None:
    batch = batch_examples([], num_features=NF, max_len=MAX_LEN)

    assert batch.features.shape == (0, NF)
    assert batch.tokens.shape == (0, MAX_LEN)
    assert batch.lengths.shape == batch.purchase.shape == batch.category.shape == (0,)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ((1.0,) * (NF - 1), f"{NF} features"),
        ((1.0,) * (NF + 1), f"{NF} features"),
        ((), f"{NF} features"),
        ((1.0,) * (NF - 1) + (math.nan,), "finite"),
        ((math.inf,) + (1.0,) * (NF - 1), "finite"),
        ((-math.inf,) + (1.0,) * (NF - 1), "finite"),
    ],
    ids=["too few", "too many", "none", "nan", "inf", "-inf"],
)
def test_batch_examples_refuses_bad_features(features: tuple[float, ...], message: str) -> None:
    good = _examples()[0]
    bad = BehaviourExample("ps_" + "9" * 64, features, (), 0.0, 0.0, None)

    with pytest.raises(ValueError, match=message):
        batch_examples([good, bad], num_features=NF, max_len=MAX_LEN)


def test_fixed_scaling_is_used_for_behaviour_features_only() -> None:
    full = BehaviourModel()
    other = BehaviourModel(BehaviourModelConfig(num_features=NF))
    center, scale = (torch.tensor(v) for v in zip(*FEATURE_SCALING, strict=True))

    assert full.config.num_features == len(BEHAVIOUR_FEATURES) == len(FEATURE_SCALING)
    torch.testing.assert_close(full.center, center)
    torch.testing.assert_close(full.scale, scale)
    assert bool((full.scale > 0).all()) and not bool((full.scale == 1).all())
    torch.testing.assert_close(other.center, torch.zeros(NF))
    torch.testing.assert_close(other.scale, torch.ones(NF))


@pytest.mark.parametrize("num_features", [len(BEHAVIOUR_FEATURES), NF])
def test_linear_heads_read_the_squashed_scaled_features(num_features: int) -> None:
    model = BehaviourModel.from_seed(4, BehaviourModelConfig(num_features=num_features))
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(5, num_features, generator=gen) * 500.0
    tokens, lengths = torch.zeros((5, 1), dtype=torch.long), torch.zeros(5, dtype=torch.long)
    if num_features == len(BEHAVIOUR_FEATURES):
        center, scale = (torch.tensor(v) for v in zip(*FEATURE_SCALING, strict=True))
    else:
        center, scale = torch.zeros(num_features), torch.ones(num_features)

    with torch.no_grad():
        out = model(features, tokens, lengths)
        at_center = model(center.expand(2, -1), tokens[:2], lengths[:2])
        expected = model.heads(squash((features - center) / scale))[:, 0]

    torch.testing.assert_close(out.purchase, expected)
    torch.testing.assert_close(at_center.purchase, model.heads.bias[0].expand(2))


def test_scaling_constants_are_buffers_never_exchanged() -> None:
    model = BehaviourModel()

    names = {name for name, _ in model.named_parameters()}

    assert {"center", "scale"} <= {name for name, _ in model.named_buffers()}
    assert not {"center", "scale"} & (names | set(get_weights(model)) | set(model.state_dict()))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0], [0.0]),
        ([math.e - 1.0], [1.0]),
        ([-(math.e - 1.0)], [-1.0]),
        ([1e6], [math.log1p(1e6)]),
    ],
)
def test_squash_is_signed_log1p(values: list[float], expected: list[float]) -> None:
    torch.testing.assert_close(squash(torch.tensor(values)), torch.tensor(expected))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_variant_suits_opacus_and_bookkeeping(name: str) -> None:
    model = BehaviourModel(CONFIGS[name])

    assert ModuleValidator.validate(model, strict=False) == []
    assert unsupported_layers(model) == []


@pytest.mark.parametrize("name", ["linear", "hidden+sequence"])
def test_behaviour_loss_mean_is_mean_of_per_example_losses(name: str) -> None:
    config = CONFIGS[name]
    model = BehaviourModel.from_seed(5, config)
    batch = _batch(config)
    with torch.no_grad():
        out = _forward(model, batch)
    targets = {
        "purchase": batch.purchase,
        "escalation": batch.escalation,
        "category": batch.category,
    }

    per_example = behaviour_loss(out, **targets, reduction="none")
    mean = BehaviourModel.loss(out, **targets)

    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ce = torch.nn.functional.cross_entropy
    assert per_example.shape == (4,)
    torch.testing.assert_close(mean, per_example.mean())
    # example 1 has no next category: only the two binary heads count
    torch.testing.assert_close(
        per_example[1],
        bce(out.purchase[1], batch.purchase[1]) + bce(out.escalation[1], batch.escalation[1]),
    )
    torch.testing.assert_close(
        per_example[0],
        bce(out.purchase[0], batch.purchase[0])
        + bce(out.escalation[0], batch.escalation[0])
        + ce(out.category[:1], batch.category[:1]),
    )


def test_behaviour_loss_of_an_empty_batch_is_zero_and_differentiable() -> None:
    config = CONFIGS["hidden"]
    model = BehaviourModel(config)
    batch = batch_examples([], num_features=NF, max_len=MAX_LEN)
    out = _forward(model, batch)

    loss = behaviour_loss(
        out, purchase=batch.purchase, escalation=batch.escalation, category=batch.category
    )
    loss.backward()

    assert float(loss.detach()) == 0.0
    assert behaviour_loss(
        out,
        purchase=batch.purchase,
        escalation=batch.escalation,
        category=batch.category,
        reduction="none",
    ).shape == (0,)


@pytest.mark.parametrize("name", ["hidden", "sequence"])
def test_from_seed_same_seed_same_weights_and_global_rng_untouched(name: str) -> None:
    config = CONFIGS[name]
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)

    a = get_weights(BehaviourModel.from_seed(7, config))
    b = get_weights(BehaviourModel.from_seed(7, config))
    c = get_weights(BehaviourModel.from_seed(8, config))
    next_draw = torch.rand(1)

    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert torch.equal(next_draw, expected_next)


def test_set_weights_carries_scores_between_models() -> None:
    config = CONFIGS["hidden+sequence"]
    source, target = BehaviourModel.from_seed(1, config), BehaviourModel.from_seed(2, config)
    batch = _batch(config)

    set_weights(target, get_weights(source))

    np.testing.assert_array_equal(target.score(batch)[0], source.score(batch)[0])


@pytest.mark.parametrize("name", ["linear", "sequence"])
def test_score_returns_probabilities_and_restores_training_mode(name: str) -> None:
    config = CONFIGS[name]
    model = BehaviourModel.from_seed(6, config)
    model.train()

    purchase, escalation = model.score(_batch(config))
    empty = model.score(batch_examples([], num_features=NF, max_len=MAX_LEN))

    assert model.training
    assert purchase.shape == escalation.shape == (4,)
    assert np.all((purchase > 0) & (purchase < 1)) and np.all((escalation > 0) & (escalation < 1))
    assert empty[0].shape == empty[1].shape == (0,)


def test_default_config_predicts_every_category() -> None:
    config = BehaviourModelConfig()

    assert config.num_categories == len(CATEGORIES)
    assert config.num_features == len(BEHAVIOUR_FEATURES)
    assert (config.hidden, config.sequence) == (0, 0)


@pytest.mark.parametrize(
    "kwargs",
    [{"num_features": 0}, {"hidden": -1}, {"sequence": -1}, {"vocab_size": 1}, {"extra": 1}],
)
def test_config_refuses_bad_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        BehaviourModelConfig(**kwargs)  # type: ignore[arg-type]
