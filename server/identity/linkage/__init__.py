"""Probabilistic record linkage on keyed Bloom-filter encodings (CLKs).

``link_encodings`` / ``run_linkage`` take two sides of ``privacy.EncodedRecord`` (or packed
``EncodingMatrix``) and return ``Link`` rows: blocking (``blocking``), per-field Dice
(``similarity``), Fellegi–Sunter fitted by EM (``fellegi_sunter``), one-to-one decisions
with a review band (``assignment``).
"""

from .assignment import LinkDecision
from .blocking import BlockingConfig, candidate_pairs
from .fellegi_sunter import FellegiSunterModel, fit_fellegi_sunter
from .link import (
    DEFAULT_REVIEW_FLOOR,
    DEFAULT_THRESHOLD,
    Link,
    LinkageResult,
    link_encodings,
    run_linkage,
)
from .matrix import EncodingMatrix, aligned_matrices, encoding_matrix
from .similarity import pair_dice, record_dice_rows

__all__ = [
    "BlockingConfig",
    "DEFAULT_REVIEW_FLOOR",
    "DEFAULT_THRESHOLD",
    "EncodingMatrix",
    "FellegiSunterModel",
    "Link",
    "LinkDecision",
    "LinkageResult",
    "aligned_matrices",
    "candidate_pairs",
    "encoding_matrix",
    "fit_fellegi_sunter",
    "link_encodings",
    "pair_dice",
    "record_dice_rows",
    "run_linkage",
]
