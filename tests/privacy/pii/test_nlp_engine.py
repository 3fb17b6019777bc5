import socket

import pytest

from privacy.pii.nlp_engine import OfflineNlpEngine
from privacy.pii.tokenizer import TOKENS_KEY


def test_engine_load_builds_blank_pipelines_without_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    engine = OfflineNlpEngine(languages=("en",))

    engine.load()

    assert engine.get_supported_languages() == ["en"]
    assert engine.nlp["en"].pipe_names == []


def test_engine_zh_artifacts_carry_jieba_tags() -> None:
    engine = OfflineNlpEngine(languages=("zh",))
    engine.load()

    artifacts = engine.process_text("我是张伟", "zh")

    assert artifacts.tokens_indices == [0, 1, 2]
    assert [t.tag_ for t in artifacts.tokens] == ["r", "v", "unk"]
    assert artifacts.tokens.user_data[TOKENS_KEY][2] == (2, "张伟", "unk")


def test_engine_rebuilds_pipelines_after_refresh_every_documents() -> None:
    engine = OfflineNlpEngine(languages=("en",), refresh_every=2)
    engine.load()
    first = engine.nlp["en"]

    for text in ("one", "two"):
        engine.process_text(text, "en")
    assert engine.nlp["en"] is first
    engine.process_text("three", "en")

    assert engine.nlp["en"] is not first


@pytest.mark.parametrize(
    ("word", "punct"), [("，", True), ("...", True), ("a1", False), ("张", False)]
)
def test_engine_is_punct_table(word: str, punct: bool) -> None:
    assert OfflineNlpEngine(languages=("en",)).is_punct(word, "en") is punct


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"languages": ()}, "languages"),
        ({"languages": ("en",), "refresh_every": 0}, "refresh_every"),
    ],
)
def test_engine_when_misconfigured_then_value_error(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OfflineNlpEngine(**kwargs)
