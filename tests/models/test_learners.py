from __future__ import annotations

import numpy as np
import pytest
import torch

from models import BEHAVIOUR_FEATURES, BehaviourExample, RunConfig, get_weights
from models.behaviour import (
    IGNORE_CATEGORY,
    BehaviourBatch,
    BehaviourModel,
    BehaviourModelConfig,
    behaviour_loss,
)
from models.learners import (
    BehaviourLearner,
    TextLearner,
    behaviour_config,
    binary_auc,
    initial_weights,
    text_config,
)
from models.text import IGNORE_LABEL, TextClassifier, TextModelConfig, text_loss
from models.text_features import VOCABULARY_BASE

NF = 4
LINEAR = BehaviourModelConfig(num_features=NF)
SEQUENCE = BehaviourModelConfig(num_features=NF, hidden=3, sequence=5, embed_dim=2)
TEXT = TextModelConfig(vocabulary=0, buckets=32, heads={"intent": 4, "emotion": 3})
BINARY_TEXT = TextModelConfig(vocabulary=0, buckets=0, heads={"sentiment": 2})
TEXTS = ["a", "bb", "请问<CN_MOBILE>", ""]


def _examples() -> list[BehaviourExample]:
    return [
        BehaviourExample("ps_" + "1" * 64, (2.0, 0.0, 1.0, 5.0), (3, 4, 5), 1.0, 0.0, 2),
        BehaviourExample("ps_" + "2" * 64, (-1.0, 3.0, 0.0, 0.5), (), 0.0, 1.0, None),
        BehaviourExample("ps_" + "3" * 64, (1.0, 1.0, 1.0, 1.0), (7,), 1.0, 1.0, 0),
        BehaviourExample("ps_" + "4" * 64, (-2.0, 0.0, 2.0, 0.0), (9, 9), 0.0, 0.0, 4),
    ]


def _random(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    return model


# ----------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(
    ("labels", "scores", "expected"),
    [
        ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], 1.0),
        ([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2], 0.0),
        ([0, 1, 1, 0], [0.1, 0.4, 0.35, 0.8], 0.5),
        ([1, 1, 1], [0.1, 0.2, 0.3], 0.5),  # one class only
        ([0, 0], [0.1, 0.2], 0.5),
        ([], [], 0.5),
    ],
)
def test_binary_auc(labels: list[int], scores: list[float], expected: float) -> None:
    assert binary_auc(np.array(labels), np.array(scores)) == pytest.approx(expected)


# ----------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize(("config", "width"), [(LINEAR, 1), (SEQUENCE, 6)])
def test_behaviour_encode_layout_ends_with_the_purchase_class(
    config: BehaviourModelConfig, width: int
) -> None:
    learner = BehaviourLearner(config, max_len=6)

    data = learner.encode(_examples())

    features, tokens, lengths, purchase, escalation, category, label = data.tensors
    assert len(data) == 4 and features.shape == (4, NF)
    assert tokens.shape == (4, width)  # tokens only matter with a sequence part
    assert lengths.tolist() == ([1, 0, 1, 1] if width == 1 else [3, 0, 1, 2])
    assert escalation.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert category.tolist() == [2, IGNORE_CATEGORY, 0, 4]
    assert label.dtype == torch.int64 and label.tolist() == [1, 0, 1, 0]
    assert torch.equal(label.float(), purchase)


def test_behaviour_encode_refuses_examples_of_another_width() -> None:
    learner = BehaviourLearner(BehaviourModelConfig(num_features=NF + 1))

    with pytest.raises(ValueError, match="features"):
        learner.encode(_examples())


@pytest.mark.parametrize("config", [LINEAR, SEQUENCE])
def test_behaviour_losses_are_per_example(config: BehaviourModelConfig) -> None:
    learner = BehaviourLearner(config, max_len=6)
    model = learner.new_model(0)
    data = learner.encode(_examples())
    features, tokens, lengths, purchase, escalation, category, _ = data.tensors

    losses = learner.losses(model, data.tensors)

    expected = behaviour_loss(
        model(features, tokens, lengths),
        purchase=purchase,
        escalation=escalation,
        category=category,
        reduction="none",
    )
    assert losses.shape == (4,) and losses.requires_grad
    torch.testing.assert_close(losses, expected)
    torch.testing.assert_close(learner.losses(model, data[1:2]), expected[1:2])


@pytest.mark.parametrize(
    ("learner", "empty"),
    [
        (BehaviourLearner(LINEAR), lambda learner: learner.encode([]).tensors),
        (
            TextLearner(TEXT),
            lambda learner: learner.encode([], {"intent": np.zeros(0)}).tensors,
        ),
    ],
    ids=["behaviour", "text"],
)
def test_losses_of_an_empty_batch_are_an_empty_tensor(learner, empty) -> None:
    model = learner.new_model(0)

    losses = learner.losses(model, empty(learner))

    assert torch.equal(losses, torch.zeros(0))


def test_behaviour_probabilities_are_the_purchase_head_and_keep_training_mode() -> None:
    learner = BehaviourLearner(SEQUENCE, max_len=6)
    model = learner.new_model(1)
    model.train()
    data = learner.encode(_examples())

    probabilities = learner.probabilities(model, data)

    assert model.training
    assert probabilities.shape == (4, 2) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(1), 1.0)
    purchase, _ = model.score(BehaviourBatch(*data.tensors[:6]))
    np.testing.assert_allclose(probabilities[:, 1], purchase, rtol=1e-6)


def test_behaviour_head_aucs_rank_each_binary_head() -> None:
    learner = BehaviourLearner(LINEAR)
    model = learner.new_model(0)
    with torch.no_grad():  # purchase rises with feature 0, escalation falls with it
        model.heads.weight.zero_()
        model.heads.bias.zero_()
        model.heads.weight[0, 0] = 1.0
        model.heads.weight[1, 0] = -1.0
    examples = [
        BehaviourExample(f"ps_{i:064x}", (x, 0.0, 0.0, 0.0), (), float(x > 0), float(x > 0.5), None)
        for i, x in enumerate([-3.0, -1.0, 0.3, 1.0, 2.0, 4.0])
    ]

    aucs = learner.head_aucs(model, learner.encode(examples))
    one_class = learner.head_aucs(model, learner.encode(examples[:2]))

    assert aucs == {"purchase": 1.0, "escalation": 0.0}
    assert one_class == {"purchase": 0.5, "escalation": 0.5}


def test_behaviour_models_from_seed_and_weights() -> None:
    learner = BehaviourLearner(SEQUENCE)
    weights = get_weights(_random(learner.new_model(0), 3))

    rebuilt = learner.model_from_weights(weights)

    assert isinstance(rebuilt, BehaviourModel) and rebuilt.config == SEQUENCE
    assert all(np.array_equal(get_weights(rebuilt)[k], v) for k, v in weights.items())
    a, b, c = (get_weights(learner.new_model(s)) for s in (5, 5, 6))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match="missing"):
        BehaviourLearner(LINEAR).model_from_weights(weights)


def test_behaviour_learner_names_its_model_and_classes() -> None:
    learner = BehaviourLearner(LINEAR)

    assert (learner.name, learner.num_classes, learner.max_len) == ("behaviour", 2, 64)


# ----------------------------------------------------------------------------- text
def test_text_encode_layout_has_one_target_per_head_then_the_main_label() -> None:
    learner = TextLearner(TEXT)
    intent = np.array([1, 0, IGNORE_LABEL, 3])

    data = learner.encode(TEXTS, {"intent": intent, "unused": np.ones(4)})

    ids, weights, intent_t, emotion_t, label = data.tensors
    expected = TEXT.featurizer.encode(TEXTS)
    assert torch.equal(ids, expected.ids) and torch.equal(weights, expected.weights)
    assert intent_t.dtype == emotion_t.dtype == label.dtype == torch.int64
    assert intent_t.tolist() == [1, 0, IGNORE_LABEL, 3]
    assert emotion_t.tolist() == [IGNORE_LABEL] * 4  # no targets for this head
    assert torch.equal(label, intent_t) and label.data_ptr() != intent_t.data_ptr()


@pytest.mark.parametrize(
    ("config", "main_head", "num_classes"),
    [(TEXT, "intent", 4), (BINARY_TEXT, "sentiment", 2), (TextModelConfig(), "intent", 4)],
)
def test_text_main_head_is_the_first_head(
    config: TextModelConfig, main_head: str, num_classes: int
) -> None:
    learner = TextLearner(config)

    assert (learner.name, learner.main_head, learner.num_classes) == (
        "text",
        main_head,
        num_classes,
    )


def test_text_losses_sum_the_heads_per_example() -> None:
    learner = TextLearner(TEXT)
    model = _random(learner.new_model(0), 1)
    targets = {
        "intent": np.array([1, 0, IGNORE_LABEL, 3]),
        "emotion": np.array([2, 0, 1, IGNORE_LABEL]),
    }
    data = learner.encode(TEXTS, targets)

    losses = learner.losses(model, data.tensors)

    logits = model(data.tensors[0], data.tensors[1])
    expected = text_loss(
        logits, {k: torch.as_tensor(v) for k, v in targets.items()}, reduction="none"
    )
    assert losses.shape == (4,)
    torch.testing.assert_close(losses, expected)


def test_text_probabilities_of_a_fresh_model_are_uniform() -> None:
    learner = TextLearner(TEXT)
    model = learner.new_model(0)
    model.train()
    data = learner.encode(TEXTS, {"intent": np.zeros(4)})

    probabilities = learner.probabilities(model, data)

    assert model.training
    assert probabilities.shape == (4, 4) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, 0.25)


def test_text_head_aucs_skip_unlabelled_examples_and_heads_without_labels() -> None:
    learner = TextLearner(BINARY_TEXT)
    model = learner.new_model(0)
    (ascii_a,) = BINARY_TEXT.featurizer.feature_counts("a")  # the ASCII slot of "a"
    with torch.no_grad():
        model.heads["sentiment"].weight[ascii_a] = torch.tensor([0.0, 3.0])
    texts = ["a", "b", "aa", "bb", "a"]
    # the last "a" (high score) is unlabelled: counted as a negative it would lower the AUC
    data = learner.encode(texts, {"sentiment": np.array([1, 0, 1, 0, IGNORE_LABEL])})
    multiclass = TextLearner(TEXT)

    aucs = learner.head_aucs(model, data)

    assert aucs == {"sentiment": 1.0}
    assert multiclass.head_aucs(multiclass.new_model(0), multiclass.encode(TEXTS, {})) == {}


def test_text_head_aucs_give_every_labelled_head_its_one_vs_rest_auc() -> None:
    config = TextModelConfig(vocabulary=0, buckets=64, heads={"intent": 3, "urgency": 2})
    learner = TextLearner(config)
    model = learner.new_model(0)
    marks = ["a", "b", "c"]
    with torch.no_grad():
        for c, mark in enumerate(marks):
            (slot,) = config.featurizer.feature_counts(mark)
            model.heads["intent"].weight[slot, c] = 3.0
    texts = marks * 4
    intents = np.array([0, 1, 2] * 4)
    data = learner.encode(texts, {"intent": intents})

    aucs = learner.head_aucs(model, data)

    assert aucs == {"intent": 1.0}  # urgency has no labels: no AUC


def test_text_models_from_seed_and_weights() -> None:
    learner = TextLearner(TEXT)
    weights = get_weights(_random(learner.new_model(0), 2))

    rebuilt = learner.model_from_weights(weights)

    assert isinstance(rebuilt, TextClassifier) and rebuilt.config == TEXT
    assert all(np.array_equal(get_weights(rebuilt)[k], v) for k, v in weights.items())
    with pytest.raises(ValueError, match="shape"):
        TextLearner(TEXT.model_copy(update={"buckets": 33})).model_from_weights(weights)


# ----------------------------------------------------------------------------- run config
@pytest.mark.parametrize(("hidden", "sequence"), [(0, 0), (16, 0), (0, 8), (4, 8)])
def test_behaviour_config_follows_the_run_config(hidden: int, sequence: int) -> None:
    run = RunConfig(behaviour_hidden=hidden, behaviour_sequence=sequence)

    config = behaviour_config(run, num_features=7)

    assert (config.num_features, config.hidden, config.sequence) == (7, hidden, sequence)


@pytest.mark.parametrize(
    ("heads", "expected"),
    [(None, {"intent": 4, "emotion": 3, "urgency": 3}), ({"label": 5}, {"label": 5})],
)
def test_text_config_follows_the_run_config(
    heads: dict[str, int] | None, expected: dict[str, int]
) -> None:
    run = RunConfig(task="text", text_vocabulary=100, text_buckets=10)

    config = text_config(run, heads=heads)

    assert (config.vocabulary, config.buckets, config.heads) == (100, 10, expected)


@pytest.mark.parametrize(
    ("hidden", "sequence", "shapes"),
    [
        (0, 0, {"heads.weight": (11, len(BEHAVIOUR_FEATURES))}),
        (6, 0, {"hidden.weight": (6, len(BEHAVIOUR_FEATURES)), "heads.weight": (11, 6)}),
        (
            0,
            4,
            {"gru.weight_hh_l0": (12, 4), "heads.weight": (11, len(BEHAVIOUR_FEATURES) + 4)},
        ),
    ],
)
def test_initial_weights_of_a_behaviour_run(
    hidden: int, sequence: int, shapes: dict[str, tuple[int, ...]]
) -> None:
    run = RunConfig(seed=3, behaviour_hidden=hidden, behaviour_sequence=sequence)

    weights = initial_weights(run)

    assert {k: weights[k].shape for k in shapes} == shapes
    config = BehaviourModelConfig(hidden=hidden, sequence=sequence)
    assert BehaviourModelConfig.from_weights(weights) == config
    same = get_weights(BehaviourModel.from_seed(3, config))
    other = initial_weights(run.model_copy(update={"seed": 4}))
    assert all(np.array_equal(weights[k], same[k]) for k in same)
    assert any(not np.array_equal(weights[k], other[k]) for k in weights)


def test_initial_weights_of_a_text_run_are_zero_tables_of_the_default_heads() -> None:
    run = RunConfig(task="text", seed=3, text_vocabulary=100, text_buckets=10)

    weights = initial_weights(run)

    rows = VOCABULARY_BASE + 110
    assert {k: v.shape for k, v in weights.items()} == {
        "heads.intent.weight": (rows, 4),
        "heads.emotion.weight": (rows, 3),
        "heads.urgency.weight": (rows, 3),
    }
    assert not any(v.any() for v in weights.values())
    rebuilt = TextClassifier.from_weights(weights, vocabulary=100, buckets=10)
    assert rebuilt.config == text_config(run)
