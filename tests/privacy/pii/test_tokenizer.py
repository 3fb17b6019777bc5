import pytest
from spacy.vocab import Vocab

from privacy.pii.tokenizer import (
    LATIN_TAG,
    NUMBER_TAG,
    SYMBOL_TAG,
    TOKENS_KEY,
    UNKNOWN_TAG,
    JiebaSegmenter,
    JiebaTokenizer,
)


@pytest.fixture(scope="module")
def segmenter() -> JiebaSegmenter:
    return JiebaSegmenter(user_words={"欧阳娜娜": "nr"})


@pytest.mark.parametrize(
    "text",
    ["您好，我是张伟，手机号 13812345678  身份证号。Hi  there", "", " ", "a\nb\t c", "  前导空格"],
)
def test_tokenizer_doc_reproduces_text_and_offsets(segmenter: JiebaSegmenter, text: str) -> None:
    doc = JiebaTokenizer(Vocab(), segmenter=segmenter)(text)

    assert doc.text == text
    assert all(text[t.idx : t.idx + len(t.text)] == t.text for t in doc)
    triples = doc.user_data[TOKENS_KEY]
    assert "".join(word for _, word, _ in triples) == text
    assert all(text[start : start + len(word)] == word for start, word, _ in triples)
    assert {(t.idx, t.text, t.tag_) for t in doc} <= set(triples)


@pytest.mark.parametrize(
    ("word", "tag"),
    [
        ("手机", "n"),
        ("13812345678", NUMBER_TAG),
        ("Hello", LATIN_TAG),
        ("，", SYMBOL_TAG),
        ("郝桂英", UNKNOWN_TAG),
        ("欧阳娜娜", "nr"),
    ],
)
def test_segmenter_tag_table(segmenter: JiebaSegmenter, word: str, tag: str) -> None:
    assert segmenter.tag(word) == tag


def test_segmenter_user_words_are_segmented_whole(segmenter: JiebaSegmenter) -> None:
    assert "欧阳娜娜" in list(segmenter.segments("收件人欧阳娜娜"))


def test_segmenter_user_words_do_not_leak_into_global_jieba(segmenter: JiebaSegmenter) -> None:
    import jieba

    assert "欧阳娜娜" not in jieba.lcut("收件人欧阳娜娜", HMM=False)
