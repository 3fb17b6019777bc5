"""Labelled customer-message files for the text task, generated from the synthetic messages.

``generate_labeled_messages`` writes JSON lines ``{"text", "label", "emotion", "urgency",
"user", "channel", "lang"}``: ``label`` is the intent (inquiry 咨询 / complaint 投诉 /
purchase 购买 / return 退换), the text comes from ``simulations.messages.render_message``
for a synthetic user (Faker zh_CN identifiers, so messages embed raw synthetic PII that the
simulation masks as an edge would). Seeded: equal arguments give byte-identical files.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path

from models import CATEGORIES

from .messages import Intent, Lang, render_message
from .synthetic import CHANNELS, PopulationConfig, make_users

logger = logging.getLogger(__name__)

#: Intent mix of generated messages (inquiries dominate customer service).
INTENT_WEIGHTS: dict[Intent, float] = {
    Intent.INQUIRY: 0.4,
    Intent.COMPLAINT: 0.2,
    Intent.PURCHASE: 0.25,
    Intent.RETURN: 0.15,
}


def generate_labeled_messages(
    path: Path,
    *,
    lines: int,
    users: int = 2000,
    seed: int = 0,
    english_share: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``lines`` labelled messages from ``users`` synthetic users to ``path``.

    Parameters
    ----------
    path : Path
        Output JSONL file (parents created).
    lines : int
        Number of messages (>= 1).
    users : int
        Synthetic users the messages are spread over (the ``user`` field).
    seed : int
        Seed of users, intents, languages and texts.
    english_share : float
        Share of English messages (0 = all Chinese).
    progress : Callable[[int, int], None] or None
        Called with ``(lines written, lines)`` every 1,000 lines.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``lines`` or ``users`` is below 1 or ``english_share`` is outside [0, 1].
    """
    if lines < 1 or users < 1:
        raise ValueError("lines and users must be at least 1")
    if not 0.0 <= english_share <= 1.0:
        raise ValueError("english_share must be within [0, 1]")
    people = make_users(PopulationConfig(users=users, seed=seed))
    rng = random.Random(seed * 1_000_003 + 17)
    intents = list(INTENT_WEIGHTS)
    weights = list(INTENT_WEIGHTS.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for number in range(lines):
            user = people[rng.randrange(len(people))]
            intent = rng.choices(intents, weights=weights)[0]
            lang: Lang = "en" if rng.random() < english_share else "zh"
            category = rng.choices(CATEGORIES, weights=user.category_weights)[0]
            person = {
                "name": user.name,
                "phone": user.phone,
                "id_number": user.id_number,
                "email": user.email,
                "bank_card": user.bank_card,
            }
            text, template = render_message(
                rng=rng, lang=lang, intent=intent, category=category, person=person
            )
            row = {
                "text": text,
                "label": template.intent.value,
                "emotion": template.emotion.value,
                "urgency": template.urgency.value,
                "user": f"u{user.index:06d}",
                "channel": rng.choices(CHANNELS, weights=user.channel_weights)[0],
                "lang": lang,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            if progress is not None and (number + 1) % 1000 == 0:
                progress(number + 1, lines)
    logger.info("wrote %d labelled messages", lines)
    return path


#: Placeholders the edge's masking leaves where a person's identifiers were.
MASKED_PERSON: dict[str, str] = {
    "name": "<PERSON>",
    "phone": "<CN_MOBILE>",
    "id_number": "<CN_ID_CARD>",
    "email": "<EMAIL_ADDRESS>",
    "bank_card": "<CN_BANK_CARD>",
}


def masked_messages(
    n: int, *, seed: int, english_share: float = 0.15
) -> tuple[list[str], dict[str, list[str]]]:
    """Generate ``n`` masked messages with their intent, emotion and urgency labels (in memory).

    For benchmarks and tests that need already-masked text: every identifier slot holds
    its placeholder, as after the edge's masking.

    Parameters
    ----------
    n : int
        Number of messages.
    seed : int
        Seed of intents, languages and texts.
    english_share : float
        Share of English messages.

    Returns
    -------
    tuple[list[str], dict[str, list[str]]]
        The texts, and ``{"intent": [...], "emotion": [...], "urgency": [...]}`` label
        names per text.
    """
    rng = random.Random(seed)
    texts: list[str] = []
    labels: dict[str, list[str]] = {"intent": [], "emotion": [], "urgency": []}
    for _ in range(n):
        lang: Lang = "en" if rng.random() < english_share else "zh"
        text, template = render_message(
            rng=rng,
            lang=lang,
            intent=rng.choice(list(Intent)),
            category=rng.choice(CATEGORIES),
            person=MASKED_PERSON,
        )
        texts.append(text)
        labels["intent"].append(template.intent.value)
        labels["emotion"].append(template.emotion.value)
        labels["urgency"].append(template.urgency.value)
    return texts, labels
