from __future__ import annotations

import random
import re

import pytest

from simulations.messages import (
    _MOODS,
    _URGENCY_CUES,
    DEFAULT_NOISE,
    NO_NOISE,
    PATTERNS,
    PII_SLOTS,
    Emotion,
    Intent,
    Lang,
    MessageNoise,
    Urgency,
    render_labeled_message,
    render_message,
)

PERSON = {
    "name": "张伟",
    "phone": "13812345678",
    "id_number": "11010519900307451X",
    "email": "zhang.wei@example.com",
    "bank_card": "6222021234567890128",
}
#: Noise that writes every number differently and adds PII clauses everywhere.
LOUD = MessageNoise(
    typo_rate=0.05,
    emoji_rate=0.5,
    mixed_rate=0.5,
    punctuation_rate=0.5,
    format_rate=0.9,
    fullwidth_rate=0.3,
    pii_rate=1.0,
)
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
LANGS: tuple[Lang, ...] = ("zh", "en")


def _digits_only(written: str) -> str:
    plain = written.translate(_FULLWIDTH).replace(" ", "").replace("-", "")
    return plain.removeprefix("+86")


def _render_many(lang: Lang, intent: Intent, n: int, noise: MessageNoise, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [
        render_labeled_message(
            rng=rng, lang=lang, intent=intent, category="electronics", person=PERSON, noise=noise
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("intent", list(Intent))
def test_labels_follow_the_requested_intent_and_allowed_emotions(
    lang: Lang, intent: Intent
) -> None:
    allowed = {
        (p.text, e) for p in PATTERNS if p.lang == lang and p.intent is intent for e in p.emotions
    }

    rendered = _render_many(lang, intent, 120, LOUD)

    assert all(r.template.intent is intent for r in rendered)
    assert all((r.template.text, r.template.emotion) in allowed for r in rendered)
    if intent is Intent.COMPLAINT:
        assert all(r.template.emotion is not Emotion.POSITIVE for r in rendered)


@pytest.mark.parametrize("lang", LANGS)
def test_pii_spans_point_at_the_persons_values_under_noise(lang: Lang) -> None:
    rendered = [m for intent in Intent for m in _render_many(lang, intent, 80, LOUD, seed=3)]

    spans = [(m.text, s) for m in rendered for s in m.pii]
    assert {s.slot for _, s in spans} == set(PII_SLOTS)
    reformatted = 0
    for text, span in spans:
        written = text[span.start : span.end]
        assert span.value == PERSON[span.slot]
        if span.slot in ("phone", "id_number", "bank_card"):
            assert _digits_only(written) == span.value
            reformatted += written != span.value
        else:
            assert written == span.value
    assert reformatted > 0  # the noise did reformat numbers


@pytest.mark.parametrize("lang", LANGS)
def test_noise_free_text_is_the_pattern_with_exact_values(lang: Lang) -> None:
    moods = {m for (lg, _), phrases in _MOODS.items() if lg == lang for m in phrases if m}
    cues = {c for (lg, _), phrases in _URGENCY_CUES.items() if lg == lang for c in phrases}
    rendered = [m for intent in Intent for m in _render_many(lang, intent, 60, NO_NOISE, seed=5)]

    for message in rendered:
        parts = re.split(r"(\{[a-z_]+\})", message.template.text.replace("{pii}", "").strip())
        body = "".join(
            (
                re.escape(PERSON[p[1:-1]])
                if p[1:-1] in PERSON
                else ".+?"
                if p.startswith("{")
                else re.escape(p)
            )
            for p in parts
        )
        mood = "|".join(re.escape(m) for m in sorted(moods))
        cue = "|".join(re.escape(c) for c in sorted(cues))
        space = "" if lang == "zh" else " "
        pattern = (
            rf"(?:(?:{cue}){space})?(?:(?:{mood}){space})?{body}"
            rf"(?:{space}(?:{mood}))?(?:{space}(?:{cue}))?"
        )
        assert re.fullmatch(pattern, message.text), message.template.text
        for span in message.pii:
            assert message.text[span.start : span.end] == span.value


def test_rendering_is_deterministic_and_seed_dependent() -> None:
    first = _render_many("zh", Intent.RETURN, 50, LOUD, seed=11)
    again = _render_many("zh", Intent.RETURN, 50, LOUD, seed=11)
    other = _render_many("zh", Intent.RETURN, 50, LOUD, seed=12)

    assert first == again
    assert [m.text for m in first] != [m.text for m in other]


def test_render_message_matches_the_labeled_renderer() -> None:
    a, b = random.Random(21), random.Random(21)
    for intent in Intent:
        text, template = render_message(
            rng=a, lang="zh", intent=intent, category="food", person=PERSON
        )
        labeled = render_labeled_message(
            rng=b, lang="zh", intent=intent, category="food", person=PERSON
        )
        assert (text, template) == (labeled.text, labeled.template)


def test_render_message_honours_a_requested_emotion() -> None:
    rng = random.Random(2)
    for _ in range(30):
        _, template = render_message(
            rng=rng,
            lang="en",
            intent=Intent.PURCHASE,
            category="books",
            person=PERSON,
            emotion=Emotion.POSITIVE,
        )
        assert template.emotion is Emotion.POSITIVE


def test_render_message_rejects_an_unknown_language() -> None:
    with pytest.raises(ValueError, match="unknown language"):
        render_message(
            rng=random.Random(0),
            lang="fr",  # type: ignore[arg-type]
            intent=Intent.INQUIRY,
            category="home",
            person=PERSON,
        )


def test_noise_rejects_probabilities_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="typo_rate"):
        MessageNoise(typo_rate=1.5)


def test_urgency_follows_tone_and_is_sometimes_said_in_words() -> None:
    rendered = [
        m
        for lang in LANGS
        for intent in Intent
        for m in _render_many(lang, intent, 300, DEFAULT_NOISE)
    ]
    by_tone: dict[str, list[Urgency]] = {}
    for m in rendered:
        by_tone.setdefault(m.template.tone, []).append(m.template.urgency)

    def share(tone: str, level: Urgency) -> float:
        return by_tone[tone].count(level) / len(by_tone[tone])

    assert share("anxious", Urgency.URGENT) > 0.7
    assert share("calm", Urgency.URGENT) < 0.3
    assert share("calm", Urgency.LOW) > 0.15
    assert share("anxious", Urgency.LOW) == 0.0
    said = [
        any(c in m.text for (lg, u), cs in _URGENCY_CUES.items() if u is Urgency.URGENT for c in cs)
        for m in rendered
        if m.template.urgency is Urgency.URGENT
    ]
    assert 0.5 < sum(said) / len(said) < 0.95  # words say it often, not always
