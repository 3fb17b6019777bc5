"""The message catalogue: both languages complete, every key a page uses defined."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consent import ConsentStatus, RequestState, RequestType
from server.console import i18n
from server.console.i18n import MESSAGES, choose_lang, translator

CONSOLE = Path(i18n.__file__).parent
_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']\s*\)""")


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]:
        keys |= set(_KEY.findall(path.read_text(encoding="utf-8")))
    # Keys built from data in templates: quality states and error pages.
    keys |= {f"overview.quality.{q}" for q in ("ok", "stale", "never", "flagged", "excluded")}
    keys |= {"error.forbidden", "error.csrf", "error.not_found", "error.conflict"}
    keys |= {f"state.{s.value}" for s in RequestState}
    keys |= {f"type.{k.value}" for k in RequestType}
    keys |= {f"status.{k.value}" for k in ConsentStatus}
    return keys


def test_both_languages_define_the_same_keys() -> None:
    assert set(MESSAGES["en"]) == set(MESSAGES["zh"])


def test_every_key_used_by_pages_is_defined_in_both_languages() -> None:
    used = _used_keys()
    assert len(used) > 50  # the scan really found the templates' keys
    for lang in ("en", "zh"):
        assert used - set(MESSAGES[lang]) == set(), lang


def test_no_message_is_empty_and_chinese_is_really_chinese() -> None:
    for lang in ("en", "zh"):
        assert all(text.strip() for text in MESSAGES[lang].values())
    chinese = [t for t in MESSAGES["zh"].values() if re.search(r"[\u4e00-\u9fff]", t)]
    assert len(chinese) > 0.9 * len(MESSAGES["zh"])


def test_translator_raises_on_missing_key_naming_it() -> None:
    with pytest.raises(KeyError, match="no.such"):
        translator("zh")("no.such")


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("zh", "en", "en-US", "zh"),
        (None, "zh", "en-US", "zh"),
        ("xx", "en", "zh-CN", "en"),
        (None, None, "zh-CN,zh;q=0.9", "zh"),
        (None, None, "en-GB", "en"),
        (None, None, None, "en"),
    ],
)
def test_choose_lang_prefers_query_then_cookie_then_browser(
    query: str | None, cookie: str | None, accept: str | None, expected: str
) -> None:
    assert choose_lang(query=query, cookie=cookie, accept_language=accept) == expected
