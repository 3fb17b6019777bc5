import dataclasses
import socket

import pytest

from privacy import DetectedEntity, PIIConfig, PIIDetector, ScrubResult
from privacy.pii.errors import PIIConfigError

TEXT = "您好，我是张伟，手机号13812345678，身份证号11010519900307451X。"


def test_detected_entity_never_holds_the_value() -> None:
    assert [f.name for f in dataclasses.fields(DetectedEntity)] == ["type", "start", "end", "score"]


def test_scrub_masks_every_entity_with_its_placeholder(detector: PIIDetector) -> None:
    result = detector.scrub(TEXT, lang="zh")

    assert result.text == "您好，我是<PERSON>，手机号<CN_MOBILE>，身份证号<CN_ID_CARD>。"
    assert [(e.type, TEXT[e.start : e.end]) for e in result.entities] == [
        ("PERSON", "张伟"),
        ("CN_MOBILE", "13812345678"),
        ("CN_ID_CARD", "11010519900307451X"),
    ]
    assert result.counts() == {"PERSON": 1, "CN_MOBILE": 1, "CN_ID_CARD": 1}


def test_scrub_result_is_frozen(detector: PIIDetector) -> None:
    result = detector.scrub(TEXT, lang="zh")

    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "x"  # type: ignore[misc]


def test_scrub_many_equals_scrub_in_order(detector: PIIDetector) -> None:
    texts = [TEXT, "", "没有个人信息的消息", "邮箱service@example.com.cn"]

    assert detector.scrub_many(texts, lang="zh") == [detector.scrub(t, lang="zh") for t in texts]


@pytest.mark.parametrize("text", ["", "   ", "谢谢", "hello"])
def test_scrub_when_no_pii_then_text_unchanged(detector: PIIDetector, text: str) -> None:
    assert detector.scrub(text, lang="zh") == ScrubResult(text=text, entities=())


def test_analyze_full_width_digits_give_offsets_into_original(detector: PIIDetector) -> None:
    text = "手机：１３８１２３４５６７８"

    (entity,) = detector.analyze(text, lang="zh")

    assert (entity.type, text[entity.start : entity.end]) == ("CN_MOBILE", "１３８１２３４５６７８")


def test_config_when_language_not_served_then_config_error() -> None:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from privacy.pii.nlp_engine import OfflineNlpEngine
    from privacy.pii.registry import create_recognizer

    analyzer = AnalyzerEngine(
        registry=RecognizerRegistry(
            recognizers=[create_recognizer("en_email")], supported_languages=["en"]
        ),
        nlp_engine=OfflineNlpEngine(languages=("en",)),
        supported_languages=["en"],
    )

    with pytest.raises(PIIConfigError, match="language 'zh'"):
        PIIDetector(analyzer=analyzer, config=PIIConfig(languages=("zh", "en")))


def test_analyze_when_lang_not_configured_then_value_error(detector: PIIDetector) -> None:
    only_en = PIIDetector(analyzer=detector._analyzer, config=PIIConfig(languages=("en",)))

    with pytest.raises(ValueError, match="lang"):
        only_en.analyze("手机13812345678", lang="zh")


def test_config_entities_restrict_detection(detector: PIIDetector) -> None:
    mobile_only = PIIDetector(
        analyzer=detector._analyzer, config=PIIConfig(entities=("CN_MOBILE",))
    )

    assert {e.type for e in mobile_only.analyze(TEXT, lang="zh")} == {"CN_MOBILE"}


def test_config_when_entities_unknown_then_all_reported(detector: PIIDetector) -> None:
    with pytest.raises(PIIConfigError) as caught:
        PIIDetector(analyzer=detector._analyzer, config=PIIConfig(entities=("NOPE", "ALSO_NOPE")))

    assert caught.value.problems == (
        "no recognizer for entity 'NOPE'",
        "no recognizer for entity 'ALSO_NOPE'",
    )


def test_config_score_threshold_drops_weak_spans(detector: PIIDetector) -> None:
    strict = PIIDetector(analyzer=detector._analyzer, config=PIIConfig(score_threshold=0.7))

    assert strict.analyze("是13812345678吗", lang="zh") == []
    assert len(strict.analyze("手机13812345678", lang="zh")) == 1


def test_analyze_skips_nlp_when_no_recognizer_needs_tokens(
    detector: PIIDetector, monkeypatch
) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("NLP pipeline ran")

    monkeypatch.setattr(detector._analyzer.nlp_engine, "process_text", fail)

    assert detector.analyze("no digits, no at-sign here", lang="en") == []
    assert [e.type for e in detector.analyze("call 212-555-0199", lang="en")] == ["PHONE_NUMBER"]


def test_create_never_touches_the_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)

    detector = PIIDetector.create(PIIConfig(languages=("zh", "en")))

    assert detector.scrub("邮箱a@example.com.cn", lang="zh").text == "邮箱<EMAIL_ADDRESS>"
    assert detector.scrub("mail a@example.co.uk", lang="en").text == "mail <EMAIL_ADDRESS>"


def test_repr_names_languages_only(detector: PIIDetector) -> None:
    assert repr(detector) == "PIIDetector(languages=('zh', 'en'))"


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("call me at 13912345678 please", {"CN_MOBILE", "PHONE_NUMBER"}),
        ("my number is +86 139-1234-5678.", {"CN_MOBILE", "PHONE_NUMBER"}),
        ("ID 11010519900307451X, thanks", {"CN_ID_CARD"}),
        ("ID 110105 19900307 451X, thanks", {"CN_ID_CARD"}),
        ("ID １１０１０５１９９００３０７４５１Ｘ", {"CN_ID_CARD"}),
    ],
)
def test_english_text_masks_mainland_identifiers(
    detector: PIIDetector, text: str, entity: set[str]
) -> None:
    # Chinese businesses' English messages carry mainland phones and IDs too.
    result = detector.scrub(text, lang="en")

    assert len(result.entities) == 1 and result.entities[0].type in entity
    assert not any(ch.isdigit() for ch in result.text.translate(_FULLWIDTH_TO_ASCII))


_FULLWIDTH_TO_ASCII = str.maketrans("０１２３４５６７８９", "0123456789")
