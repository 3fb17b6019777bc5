from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.validators import ModuleValidator

from models import get_weights, set_weights
from models.text import (
    EMOTIONS,
    IGNORE_LABEL,
    INTENTS,
    PAD_BUCKET,
    TextClassifier,
    TextModelConfig,
    encode_texts,
    label_indices,
    ngram_buckets,
    normalize_text,
    text_loss,
)
from models.weights import weights_from_bytes
from privacy.bookkeeping import unsupported_layers

SMALL = TextModelConfig(num_buckets=64, embed_dim=4)
MESSAGES = ["我要投诉，快递没到", "请问有货吗？电话<CN_MOBILE>", "", "退货退货"]


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full width to half width, lower case
        ("  我  要\t退货 \n", "我 要 退货"),
        ("Return IT", "return it"),
    ],
)
def test_normalize_text_folds_width_case_and_spaces(raw: str, normalized: str) -> None:
    assert normalize_text(raw) == normalized


def test_normalize_text_makes_each_placeholder_one_character_per_entity_type() -> None:
    first = normalize_text("电话<CN_MOBILE>")
    second = normalize_text("手机<CN_MOBILE>")
    other = normalize_text("电话<EMAIL_ADDRESS>")

    assert len(first) == 3 and first[-1] == second[-1]
    assert first[-1] != other[-1]
    assert "<" not in first and "CN_MOBILE".lower() not in first


def test_ngram_buckets_are_stable_across_processes() -> None:
    # CRC-32 hashing, pinned: a change would make every trained model's weights meaningless.
    assert sorted(ngram_buckets("退货", config=TextModelConfig()).items()) == [
        (39, 1),
        (319, 1),
        (3704, 1),
    ]


@pytest.mark.parametrize(("text", "grams"), [("", 0), ("a", 1), ("ab", 3), ("退货了", 6)])
def test_ngram_buckets_count_every_1_to_3_gram(text: str, grams: int) -> None:
    counts = ngram_buckets(text, config=TextModelConfig(num_buckets=2**20))

    assert sum(counts.values()) == grams
    assert PAD_BUCKET not in counts


def test_ngram_buckets_cut_long_messages() -> None:
    config = TextModelConfig(max_chars=5)

    assert sum(ngram_buckets("x" * 100, config=config).values()) == 5 + 4 + 3


def test_encode_texts_rows_are_sorted_distinct_ids_with_mean_weights() -> None:
    batch = encode_texts(MESSAGES, config=SMALL)

    for row, text in enumerate(MESSAGES):
        ids, weights = batch.ids[row], batch.weights[row]
        real = ids[weights > 0]
        assert torch.equal(real, torch.unique(real))  # sorted and distinct
        assert (ids[weights == 0] == PAD_BUCKET).all()
        expected = 0.0 if not text else 1.0
        assert float(weights.sum()) == pytest.approx(expected, abs=1e-6)


def test_encode_texts_repeated_ngrams_weigh_by_count() -> None:
    config = TextModelConfig(num_buckets=2**20)
    batch = encode_texts(["aaa"], config=config)  # a x3, aa x2, aaa x1

    assert sorted(batch.weights[0].tolist(), reverse=True) == pytest.approx([3 / 6, 2 / 6, 1 / 6])


def test_encode_texts_width_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        encode_texts(["退货退款"], config=SMALL, width=2)


def test_forward_pools_the_masked_mean_of_ngram_embeddings() -> None:
    model = TextClassifier.from_seed(0, SMALL)
    text = "退货退货"
    batch = encode_texts([text], config=SMALL, width=20)
    counts = ngram_buckets(text, config=SMALL)
    mean = sum(model.embedding.weight[b] * c for b, c in counts.items()) / sum(counts.values())

    out = model(batch.ids, batch.weights)

    torch.testing.assert_close(out.intent[0], model.intent_head(mean))
    torch.testing.assert_close(out.emotion[0], model.emotion_head(mean))


def test_forward_shapes_and_padding_width_do_not_change_scores() -> None:
    model = TextClassifier.from_seed(1, SMALL)
    narrow, wide = (
        encode_texts(MESSAGES, config=SMALL),
        encode_texts(MESSAGES, config=SMALL, width=60),
    )

    out_narrow, out_wide = model(*narrow), model(*wide)

    assert out_narrow.intent.shape == (4, len(INTENTS))
    assert out_narrow.emotion.shape == (4, len(EMOTIONS))
    torch.testing.assert_close(out_narrow.intent, out_wide.intent)


def test_from_seed_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)

    first, second = TextClassifier.from_seed(7, SMALL), TextClassifier.from_seed(7, SMALL)
    other = TextClassifier.from_seed(8, SMALL)

    assert torch.equal(torch.rand(1), expected_next)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.embedding.weight, other.embedding.weight)


def test_weights_round_trip_and_architecture_is_inferred() -> None:
    model = TextClassifier.from_seed(2, SMALL)
    weights = get_weights(model)

    rebuilt = TextClassifier.from_weights(weights)
    from_bytes = TextClassifier.from_bytes(model.to_bytes())
    target = TextClassifier(SMALL)
    set_weights(target, weights)

    assert rebuilt.config.num_buckets == 64 and rebuilt.config.embed_dim == 4
    for m in (rebuilt, from_bytes, target):
        np.testing.assert_array_equal(
            np.concatenate([v.ravel() for v in get_weights(m).values()]),
            np.concatenate([v.ravel() for v in weights.values()]),
        )
    assert list(weights_from_bytes(model.to_bytes())) == list(weights)


def test_from_weights_refuses_foreign_weights() -> None:
    with pytest.raises(ValueError, match="TextClassifier"):
        TextClassifier.from_weights({"layers.0.weight": np.zeros((2, 2))})


def test_text_loss_sums_heads_per_example_and_ignores_missing_labels() -> None:
    model = TextClassifier.from_seed(3, SMALL)
    out = model(*encode_texts(MESSAGES, config=SMALL))
    intent = torch.tensor([1, 0, 2, 3])
    emotion = torch.tensor([0, IGNORE_LABEL, 2, 0])

    per_example = text_loss(out, intent=intent, emotion=emotion, reduction="none")

    ce = torch.nn.functional.cross_entropy
    assert per_example.shape == (4,)
    torch.testing.assert_close(per_example[1], ce(out.intent[1:2], intent[1:2]))
    torch.testing.assert_close(
        per_example[0], ce(out.intent[:1], intent[:1]) + ce(out.emotion[:1], emotion[:1])
    )
    torch.testing.assert_close(text_loss(out, intent=intent, emotion=emotion), per_example.mean())
    torch.testing.assert_close(
        text_loss(out, intent=intent, emotion=emotion, reduction="sum"), per_example.sum()
    )


def test_text_loss_of_an_empty_batch_is_zero() -> None:
    model = TextClassifier.from_seed(3, SMALL)
    out = model(torch.zeros((0, 3), dtype=torch.long), torch.zeros((0, 3)))

    loss = text_loss(
        out, intent=torch.zeros(0, dtype=torch.long), emotion=torch.zeros(0, dtype=torch.long)
    )

    assert float(loss.detach()) == 0.0


@pytest.mark.parametrize(
    ("labels", "expected"),
    [(["complaint", None, "inquiry"], [1, IGNORE_LABEL, 0]), ([], [])],
)
def test_label_indices_maps_names_and_missing(
    labels: list[str | None], expected: list[int]
) -> None:
    assert label_indices(labels, names=INTENTS).tolist() == expected


def test_label_indices_unknown_label_lists_known_names() -> None:
    with pytest.raises(ValueError, match="inquiry"):
        label_indices(["angry"], names=INTENTS)


def test_score_returns_probabilities_and_restores_training_mode() -> None:
    model = TextClassifier.from_seed(4, SMALL)
    model.train()

    intent, emotion = model.score(MESSAGES)
    empty_intent, empty_emotion = model.score([])

    assert intent.shape == (4, 4) and emotion.shape == (4, 3)
    np.testing.assert_allclose(intent.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(emotion.sum(1), 1.0, atol=1e-6)
    assert empty_intent.shape == (0, 4) and empty_emotion.shape == (0, 3)
    assert model.training


def test_text_classifier_suits_every_dp_mode() -> None:
    model = TextClassifier()

    assert ModuleValidator.validate(model, strict=False) == []
    assert unsupported_layers(model) == []


@pytest.mark.parametrize("kwargs", [{"min_n": 3, "max_n": 2}, {"num_buckets": 1}, {"embed_dim": 0}])
def test_config_refuses_bad_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TextModelConfig(**kwargs)
