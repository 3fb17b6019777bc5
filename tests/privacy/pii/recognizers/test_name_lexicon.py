from privacy.pii.recognizers.name_lexicon import load_name_lexicon


def test_name_lexicon_loads_packaged_lists() -> None:
    lexicon = load_name_lexicon()

    assert {"王", "李", "张"} <= lexicon.surnames
    assert {"欧阳", "司马"} <= lexicon.compound_surnames
    assert "华为" in lexicon.deny
    assert all(len(ch) == 1 for ch in lexicon.given_chars)


def test_name_lexicon_surname_length_prefers_compound() -> None:
    lexicon = load_name_lexicon()

    assert [lexicon.surname_length(w) for w in ("欧阳娜娜", "王伟", "我们")] == [2, 1, 0]


def test_name_lexicon_with_words_extends_deny_without_mutating() -> None:
    lexicon = load_name_lexicon()

    extended = lexicon.with_words(deny=("某某",))

    assert "某某" in extended.deny and "某某" not in lexicon.deny
