from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from opacus.validators import ModuleValidator

from models import get_weights, set_weights
from models.text import (
    EMOTIONS,
    IGNORE_LABEL,
    INTENTS,
    URGENCIES,
    TextClassifier,
    TextModelConfig,
    label_indices,
    text_loss,
)
from models.text_features import (
    BIAS_ID,
    PAD_ID,
    PLACEHOLDER_SLOTS,
    VOCABULARY_BASE,
    TextFeaturizer,
    normalize_text,
    public_ranking,
)
from models.weights import weights_from_bytes
from privacy.bookkeeping import unsupported_layers

PLACEHOLDER_IDS = range(BIAS_ID + 1, BIAS_ID + 1 + PLACEHOLDER_SLOTS)
ASCII_IDS = range(BIAS_ID + 1 + PLACEHOLDER_SLOTS, VOCABULARY_BASE)
VOCAB = 1100  # holds the characters 退 and 货 (ranks 987 and 1033), not the word 退货
SMALL = TextModelConfig(vocabulary=VOCAB, buckets=64, heads={"intent": 4, "emotion": 3})
MESSAGES = ["我要投诉，快递没到", "请问有货吗？电话<CN_MOBILE>", "", "退货退货 OK"]


def _ids(featurizer: TextFeaturizer, text: str) -> set[int]:
    return set(featurizer.feature_counts(text))


# ----------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full width to half width, lower case
        ("  我  要\t退货 \n", "我 要 退货"),
        ("Return IT", "return it"),
        ("", ""),
        ("<cn_mobile>", "<cn_mobile>"),  # not a placeholder: lower-case entity type
        ("退货", "退货"),
    ],
)
def test_normalize_text_folds_width_case_and_spaces(raw: str, normalized: str) -> None:
    assert normalize_text(raw) == normalized


def test_normalize_text_makes_each_placeholder_one_character_per_entity_type() -> None:
    first = normalize_text("电话<CN_MOBILE>")
    second = normalize_text("手机<CN_MOBILE>")
    full_width = normalize_text("电话＜ＣＮ＿ＭＯＢＩＬＥ＞")
    other = normalize_text("电话<EMAIL_ADDRESS>")

    assert len(first) == 3 and first[-1] == second[-1] == full_width[-1]
    assert first[-1] != other[-1]
    assert "<" not in first and "mobile" not in first


# ----------------------------------------------------------------------------- featurizer
def test_encode_rows_start_with_the_bias_then_sorted_distinct_ids_of_unit_norm() -> None:
    featurizer = SMALL.featurizer

    batch = featurizer.encode(MESSAGES)

    assert batch.ids.dtype == torch.long and batch.weights.dtype == torch.float32
    assert (batch.ids[:, 0] == BIAS_ID).all() and (batch.weights[:, 0] == 1.0).all()
    for row, text in enumerate(MESSAGES):
        ids, weights = batch.ids[row, 1:], batch.weights[row, 1:]
        real = ids[weights > 0]
        assert (ids[weights == 0] == PAD_ID).all()
        assert bool((real[1:] > real[:-1]).all()) and bool((real > BIAS_ID).all())
        assert set(real.tolist()) == _ids(featurizer, text)
        norm = float(torch.linalg.vector_norm(weights))
        assert norm == pytest.approx(0.0 if not text else 1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        (0, [1.0]),  # only the ASCII slot of "a": "aa" and "aaa" have no slot
        (2**16, [1 + math.log(3), 1 + math.log(2), 1.0]),  # a x3, aa x2, aaa x1
    ],
)
def test_encode_weights_are_sublinear_term_frequencies(buckets: int, expected: list[float]) -> None:
    featurizer = TextFeaturizer(vocabulary=0, buckets=buckets)
    norm = math.sqrt(sum(v * v for v in expected))

    weights = featurizer.encode(["aaa"]).weights[0, 1:]

    assert sorted(weights.tolist(), reverse=True) == pytest.approx([v / norm for v in expected])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<CN_MOBILE>", {BIAS_ID + 1 + 40}),  # CRC-32 slot of the entity type, pinned
        ("电话<CN_MOBILE>", {BIAS_ID + 1 + 40}),
        ("<EMAIL_ADDRESS>", {BIAS_ID + 1 + 61}),
        ("a", {ASCII_IDS[0] + ord("a") - 0x20}),
        ("A", {ASCII_IDS[0] + ord("a") - 0x20}),
        ("a b", {ASCII_IDS[0] + ord("a") - 0x20, ASCII_IDS[0], ASCII_IDS[0] + ord("b") - 0x20}),
        ("退货", set()),  # vocabulary 0, buckets 0: nothing but ASCII and placeholders
    ],
)
def test_placeholders_and_ascii_have_slots_of_their_own(text: str, expected: set[int]) -> None:
    featurizer = TextFeaturizer(vocabulary=0, buckets=0)

    assert _ids(featurizer, text) == expected


def test_placeholder_and_ascii_slots_lie_below_the_vocabulary() -> None:
    featurizer = TextFeaturizer(vocabulary=0, buckets=0)

    placeholders = _ids(featurizer, "<CN_MOBILE><EMAIL_ADDRESS><PERSON><CN_BANK_CARD>")
    ascii_ids = _ids(featurizer, "".join(chr(c) for c in range(0x21, 0x7F)))

    assert len(placeholders) == 4 and placeholders <= set(PLACEHOLDER_IDS)
    # every printable character but the space, upper case folded to lower case
    assert ascii_ids == {ASCII_IDS[0] + c - 0x20 for c in range(0x21, 0x7F) if not chr(c).isupper()}
    assert len(ASCII_IDS) == 0x7F - 0x20


def test_vocabulary_ngrams_get_their_rank_and_others_a_bucket_or_nothing() -> None:
    ranking = public_ranking()
    rank = {gram: ranking.index(gram) for gram in ("退", "货", "退货")}
    assert rank["退"] < VOCAB and rank["货"] < VOCAB <= rank["退货"]
    in_vocabulary = {VOCABULARY_BASE + rank["退"], VOCABULARY_BASE + rank["货"]}

    dropped = _ids(TextFeaturizer(vocabulary=VOCAB, buckets=0), "退货")
    hashed = _ids(TextFeaturizer(vocabulary=VOCAB, buckets=50), "退货")

    assert dropped == in_vocabulary
    assert len(hashed) == 3 and in_vocabulary < hashed
    (bucket,) = hashed - in_vocabulary
    assert VOCABULARY_BASE + VOCAB <= bucket < VOCABULARY_BASE + VOCAB + 50


def test_vocabulary_larger_than_the_public_ranking_is_refused() -> None:
    featurizer = TextFeaturizer(vocabulary=len(public_ranking()) + 1)

    with pytest.raises(ValueError, match="exceeds"):
        featurizer.encode(["退货"])


@pytest.mark.parametrize(
    "kwargs",
    [{"vocabulary": -1}, {"vocabulary": 0, "buckets": -1}, {"vocabulary": 0, "max_chars": 0}],
)
def test_featurizer_refuses_bad_sizes(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TextFeaturizer(**kwargs)


@pytest.mark.parametrize(("vocabulary", "buckets"), [(0, 0), (VOCAB, 0), (VOCAB, 64), (0, 1000)])
def test_num_features_counts_every_slot(vocabulary: int, buckets: int) -> None:
    featurizer = TextFeaturizer(vocabulary=vocabulary, buckets=buckets)

    assert featurizer.num_features == VOCABULARY_BASE + vocabulary + buckets
    ids = featurizer.encode(MESSAGES).ids
    assert int(ids.max()) < featurizer.num_features


def test_hashed_ids_are_pinned_and_deterministic() -> None:
    # CRC-32 hashing, pinned: a change would make every trained model's weights meaningless.
    featurizer = TextFeaturizer(vocabulary=0, buckets=1000)

    first = featurizer.encode(["退货", "投诉"]).ids
    again = TextFeaturizer(vocabulary=0, buckets=1000).encode(["投诉", "退货"]).ids

    assert first[0].tolist() == [BIAS_ID, 454, 464, 759]
    assert torch.equal(first, again.flip(0))


def test_long_messages_are_cut_to_max_chars() -> None:
    featurizer = TextFeaturizer(vocabulary=0, buckets=2**16, max_chars=5)

    assert sum(featurizer.feature_counts("ab" * 50).values()) == 5 + 4 + 3


def test_encode_width_pads_and_a_too_small_width_is_refused() -> None:
    featurizer = SMALL.featurizer
    needed = featurizer.encode(MESSAGES).ids.shape[1]

    wide = featurizer.encode(MESSAGES, width=needed + 5)

    assert wide.ids.shape == (len(MESSAGES), needed + 5)
    assert (wide.ids[:, needed:] == PAD_ID).all() and (wide.weights[:, needed:] == 0).all()
    with pytest.raises(ValueError, match="width"):
        featurizer.encode(MESSAGES, width=needed - 1)


def test_encode_no_messages_gives_an_empty_batch() -> None:
    batch = SMALL.featurizer.encode([])

    assert batch.ids.shape == batch.weights.shape == (0, 1)


# ----------------------------------------------------------------------------- model
def _random_model(seed: int, config: TextModelConfig = SMALL) -> TextClassifier:
    model = TextClassifier(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    return model


def test_tables_start_at_zero_whatever_the_seed_and_scores_are_uniform() -> None:
    first, other = TextClassifier.from_seed(1, SMALL), TextClassifier.from_seed(2, SMALL)

    scores = first.score(MESSAGES)

    for a, b in zip(first.parameters(), other.parameters(), strict=True):
        assert not a.any() and torch.equal(a, b)
    assert list(scores) == ["intent", "emotion"]
    np.testing.assert_allclose(scores["intent"], np.full((len(MESSAGES), 4), 0.25))
    np.testing.assert_allclose(scores["emotion"], np.full((len(MESSAGES), 3), 1 / 3))


def test_heads_are_embedding_tables_of_one_row_per_feature() -> None:
    model = TextClassifier(SMALL)

    shapes = {name: tuple(table.weight.shape) for name, table in model.heads.items()}

    rows = VOCABULARY_BASE + VOCAB + 64
    assert shapes == {"intent": (rows, 4), "emotion": (rows, 3)}
    assert list(get_weights(model)) == ["heads.intent.weight", "heads.emotion.weight"]


def test_forward_is_the_weighted_sum_of_the_features_rows() -> None:
    model = _random_model(0)
    batch = model.encode(MESSAGES)

    out = model(batch.ids, batch.weights)

    for name, table in model.heads.items():
        weight = table.weight.detach()
        for row in range(len(MESSAGES)):
            expected = sum(
                w * weight[i]
                for i, w in zip(batch.ids[row].tolist(), batch.weights[row].tolist(), strict=True)
                if w > 0
            )
            torch.testing.assert_close(out[name][row], expected)
    # the empty message holds only the bias
    torch.testing.assert_close(out["intent"][2], model.heads["intent"].weight[BIAS_ID])


def test_forward_shapes_and_padding_width_do_not_change_scores() -> None:
    model = _random_model(1)
    narrow = model.encode(MESSAGES)
    wide = model.encode(MESSAGES, width=narrow.ids.shape[1] + 7)

    out_narrow, out_wide = model(*narrow), model(*wide)

    assert out_narrow["intent"].shape == (4, len(INTENTS))
    assert out_narrow["emotion"].shape == (4, len(EMOTIONS))
    torch.testing.assert_close(out_narrow["intent"], out_wide["intent"])
    torch.testing.assert_close(out_narrow["emotion"], out_wide["emotion"])


def test_padding_row_never_receives_a_gradient() -> None:
    model = _random_model(2)
    batch = model.encode(MESSAGES, width=40)
    out = model(*batch)

    text_loss(out, {"intent": torch.tensor([1, 0, 2, 3])}).backward()

    grad = model.heads["intent"].weight.grad
    assert grad is not None and not grad[PAD_ID].any() and grad[BIAS_ID].any()


def test_text_loss_sums_heads_per_example_and_ignores_missing_labels() -> None:
    model = _random_model(3)
    out = model(*model.encode(MESSAGES))
    intent = torch.tensor([1, 0, 2, IGNORE_LABEL])
    emotion = torch.tensor([0, IGNORE_LABEL, 2, IGNORE_LABEL])
    targets = {"intent": intent, "emotion": emotion}

    per_example = text_loss(out, targets, reduction="none")

    ce = torch.nn.functional.cross_entropy
    assert per_example.shape == (4,)
    torch.testing.assert_close(per_example[1], ce(out["intent"][1:2], intent[1:2]))
    torch.testing.assert_close(
        per_example[0], ce(out["intent"][:1], intent[:1]) + ce(out["emotion"][:1], emotion[:1])
    )
    assert float(per_example[3].detach()) == 0.0  # no label at all
    torch.testing.assert_close(text_loss(out, targets), per_example.sum() / 4)
    torch.testing.assert_close(text_loss(out, targets, reduction="sum"), per_example.sum())
    torch.testing.assert_close(
        text_loss(out, {"intent": intent}, reduction="none"),
        ce(out["intent"], intent, ignore_index=IGNORE_LABEL, reduction="none"),
    )


def test_text_loss_of_an_empty_batch_is_zero_and_bad_reduction_is_refused() -> None:
    model = TextClassifier(SMALL)
    out = model(torch.zeros((0, 3), dtype=torch.long), torch.zeros((0, 3)))
    targets = {"intent": torch.zeros(0, dtype=torch.long)}

    loss = text_loss(out, targets)

    assert float(loss.detach()) == 0.0
    assert text_loss(out, targets, reduction="none").shape == (0,)
    with pytest.raises(ValueError, match="reduction"):
        text_loss(out, targets, reduction="max")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "names", "expected"),
    [
        (["complaint", None, "inquiry"], INTENTS, [1, IGNORE_LABEL, 0]),
        (["urgent", "low"], URGENCIES, [2, 0]),
        ([], INTENTS, []),
    ],
)
def test_label_indices_maps_names_and_missing(
    labels: list[str | None], names: tuple[str, ...], expected: list[int]
) -> None:
    indices = label_indices(labels, names=names)

    assert indices.dtype == torch.long and indices.tolist() == expected


def test_label_indices_unknown_label_lists_known_names() -> None:
    with pytest.raises(ValueError, match="inquiry"):
        label_indices(["angry"], names=INTENTS)


def test_weights_round_trip_and_heads_are_inferred() -> None:
    model = _random_model(4)
    weights = get_weights(model)

    rebuilt = TextClassifier.from_weights(weights, vocabulary=VOCAB, buckets=64)
    from_bytes = TextClassifier.from_bytes(model.to_bytes(), vocabulary=VOCAB, buckets=64)
    target = TextClassifier(SMALL)
    set_weights(target, weights)

    assert rebuilt.config == SMALL and from_bytes.config == SMALL
    assert list(rebuilt.config.heads) == ["intent", "emotion"]
    for m in (rebuilt, from_bytes, target):
        got = get_weights(m)
        assert all(np.array_equal(got[k], v) for k, v in weights.items())
    assert list(weights_from_bytes(model.to_bytes())) == list(weights)
    np.testing.assert_array_equal(
        rebuilt.score(MESSAGES)["intent"], model.score(MESSAGES)["intent"]
    )


@pytest.mark.parametrize(("vocabulary", "buckets"), [(VOCAB, 0), (0, 64), (VOCAB, 65), (0, 0)])
def test_from_weights_layout_not_matching_the_rows_is_refused(
    vocabulary: int, buckets: int
) -> None:
    weights = get_weights(TextClassifier(SMALL))
    rows = VOCABULARY_BASE + VOCAB + 64

    with pytest.raises(
        ValueError, match=rf"\[{rows}\] rows; vocabulary {vocabulary} and buckets {buckets} need"
    ):
        TextClassifier.from_weights(weights, vocabulary=vocabulary, buckets=buckets)


def test_from_weights_takes_the_split_of_the_rows_from_the_caller() -> None:
    weights = get_weights(_random_model(6))

    model = TextClassifier.from_weights(weights, vocabulary=VOCAB + 14, buckets=50)

    assert (model.config.vocabulary, model.config.buckets) == (VOCAB + 14, 50)
    np.testing.assert_array_equal(
        get_weights(model)["heads.intent.weight"], weights["heads.intent.weight"]
    )


@pytest.mark.parametrize(
    "weights",
    [
        {"layers.0.weight": np.zeros((2, 2))},
        {"heads.intent.bias": np.zeros(4)},
        {"heads.intent.weight": np.zeros(4)},
        {"heads.intent.weight": np.zeros((200, 4)), "heads.emotion.weight": np.zeros((201, 3))},
        {},
    ],
    ids=["foreign", "bias", "one-dimensional", "ragged rows", "empty"],
)
def test_from_weights_refuses_foreign_weights(weights: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError):
        TextClassifier.from_weights(weights, vocabulary=0, buckets=0)


def test_score_returns_probabilities_and_restores_training_mode() -> None:
    model = _random_model(5)
    model.train()

    scores = model.score(MESSAGES)
    empty = model.score([])

    assert scores["intent"].shape == (4, 4) and scores["emotion"].shape == (4, 3)
    np.testing.assert_allclose(scores["intent"].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(scores["emotion"].sum(1), 1.0, atol=1e-6)
    assert empty["intent"].shape == (0, 4) and empty["emotion"].shape == (0, 3)
    assert model.training


@pytest.mark.parametrize(
    "config", [SMALL, TextModelConfig(vocabulary=0, buckets=0, heads={"label": 2})]
)
def test_text_classifier_suits_every_dp_mode(config: TextModelConfig) -> None:
    model = TextClassifier(config)

    assert ModuleValidator.validate(model, strict=False) == []
    assert unsupported_layers(model) == []


def test_default_config_has_the_three_heads() -> None:
    config = TextModelConfig()

    assert config.heads == {
        "intent": len(INTENTS),
        "emotion": len(EMOTIONS),
        "urgency": len(URGENCIES),
    }
    assert config.num_features == VOCABULARY_BASE + config.vocabulary + config.buckets


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heads": {}},
        {"heads": {"intent": 1}},
        {"heads": {"not a name": 2}},
        {"vocabulary": -1},
        {"buckets": -1},
        {"max_chars": 0},
        {"embed_dim": 4},
    ],
)
def test_config_refuses_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TextModelConfig(**kwargs)  # type: ignore[arg-type]
