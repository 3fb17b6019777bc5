import logging

from presidio_analyzer import RecognizerResult

from privacy.pii.context import WindowContextEnhancer
from privacy.pii.recognizers.cn_mobile import CnMobileRecognizer


def _result(recognizer, start: int, end: int, score: float) -> RecognizerResult:
    return RecognizerResult(
        entity_type="CN_MOBILE",
        start=start,
        end=end,
        score=score,
        recognition_metadata={RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id},
    )


def test_enhancer_when_context_word_in_window_then_score_raised() -> None:
    recognizer = CnMobileRecognizer()
    text = "我的手机号码是13812345678"
    result = _result(recognizer, 7, 18, 0.6)

    (enhanced,) = WindowContextEnhancer().enhance_using_context(text, [result], None, [recognizer])

    assert enhanced.score == 0.95
    assert enhanced.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY]


def test_enhancer_when_context_word_outside_window_then_unchanged() -> None:
    recognizer = CnMobileRecognizer()
    text = "手机" + "。" * 20 + "13812345678"
    result = _result(recognizer, 22, 33, 0.6)

    (kept,) = WindowContextEnhancer().enhance_using_context(text, [result], None, [recognizer])

    assert kept.score == 0.6


def test_enhancer_applies_caller_context_words() -> None:
    recognizer = CnMobileRecognizer()
    result = _result(recognizer, 3, 14, 0.6)

    (enhanced,) = WindowContextEnhancer().enhance_using_context(
        "联络：13812345678", [result], None, [recognizer], context=["联络"]
    )

    assert enhanced.score == 0.95


def test_enhancer_logs_nothing(caplog) -> None:
    recognizer = CnMobileRecognizer()
    caplog.set_level(logging.DEBUG)

    WindowContextEnhancer().enhance_using_context(
        "张伟的手机13812345678", [_result(recognizer, 5, 16, 0.6)], None, [recognizer]
    )

    assert caplog.records == []
