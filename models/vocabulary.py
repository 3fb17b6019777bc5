"""Behaviour vocabulary shared by ingestion, features and the behaviour model.

Event types and canonical product categories are fixed here so the edge's cleaning step and
the model's token space agree. Category aliases (Chinese and English) normalise the names
that channels send.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """Behaviour event types an edge accepts."""

    PAGE_VIEW = "page_view"
    SEARCH = "search"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    REFUND = "refund"
    COUPON_USE = "coupon_use"
    LOGIN = "login"
    CS_MESSAGE = "cs_message"
    COMPLAINT = "complaint"
    RATING = "rating"


#: Canonical categories, in token order. ``other`` collects everything unmapped.
CATEGORIES: tuple[str, ...] = (
    "electronics",
    "apparel",
    "beauty",
    "home",
    "food",
    "baby",
    "sports",
    "books",
    "other",
)

#: Labels for people (Chinese, English).
CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "electronics": ("数码家电", "Electronics"),
    "apparel": ("服饰", "Apparel"),
    "beauty": ("美妆个护", "Beauty"),
    "home": ("家居", "Home"),
    "food": ("食品生鲜", "Food"),
    "baby": ("母婴", "Baby"),
    "sports": ("运动户外", "Sports"),
    "books": ("图书", "Books"),
    "other": ("其他", "Other"),
}

_ALIASES: dict[str, str] = {
    "digital": "electronics",
    "electronic": "electronics",
    "phones": "electronics",
    "数码": "electronics",
    "家电": "electronics",
    "数码家电": "electronics",
    "手机": "electronics",
    "clothing": "apparel",
    "fashion": "apparel",
    "服饰": "apparel",
    "服装": "apparel",
    "女装": "apparel",
    "男装": "apparel",
    "cosmetics": "beauty",
    "美妆": "beauty",
    "美妆个护": "beauty",
    "个护": "beauty",
    "furniture": "home",
    "家居": "home",
    "家具": "home",
    "grocery": "food",
    "食品": "food",
    "生鲜": "food",
    "食品生鲜": "food",
    "母婴": "baby",
    "童装": "baby",
    "sport": "sports",
    "outdoor": "sports",
    "运动": "sports",
    "运动户外": "sports",
    "book": "books",
    "图书": "books",
    "书籍": "books",
}


def normalize_category(name: str | None) -> str | None:
    """Map a channel's category name to a canonical category.

    Parameters
    ----------
    name : str or None
        Category as sent by the channel, in Chinese or English, any case.

    Returns
    -------
    str or None
        A member of ``CATEGORIES``; ``None`` when no category was given; ``"other"`` for
        names that map to nothing known.
    """
    if name is None:
        return None
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if not key:
        return None
    if key in CATEGORIES:
        return key
    return _ALIASES.get(key, _ALIASES.get(name.strip(), "other"))
