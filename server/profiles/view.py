"""One merged view of a subject's stored contributions, limited to what a reader may see.

:func:`merged_fields` groups the stored rows by field, drops the rows a reader may not see
(the caller's ``visible`` test: consent for the stated purpose, retention), opens sealed rows,
merges each field by its catalogue rule (:mod:`server.profiles.merge`) and re-derives the
``derived`` tags from the merged fields they name (:mod:`models.merged_tags`). A derived tag
whose inputs are not all visible falls back to the vote of the edges' own tag values; a
derived tag no edge uploaded is shown when the reader may see it and all its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from consent import FieldCatalogue, FieldSpec, MergeRule
from models import MERGED_TAG_DEFINITIONS, ProfileFieldOut, derive_merged_tag
from privacy import FieldCipher

from ..crud.profile_store import to_field_out
from ..tables.profile_field import ProfileField
from .merge import Part, merge_parts

#: ``allowed(name)``: whether the reader may see this field now (consent for the purpose).
Allowed = Callable[[str], bool]
#: ``fresh(row)``: whether a stored contribution is still usable (retention).
Fresh = Callable[[ProfileField], bool]
#: ``open_row(row)``: the cipher that opens a sealed row (None: leave the row out).
CipherFor = Callable[[ProfileField], FieldCipher | None]

_FEATURE_PREFIX = "feature."


@dataclass
class MergedView:
    """The merged fields a reader gets, and the field names held but not shown."""

    fields: list[ProfileFieldOut] = field(default_factory=list)
    withheld: set[str] = field(default_factory=set)


def _parts(rows: Iterable[ProfileField], cipher_for: CipherFor) -> list[Part]:
    parts = []
    for row in rows:
        cipher = cipher_for(row) if row.value_ciphertext is not None else None
        if row.value_ciphertext is not None and cipher is None:
            continue
        out = to_field_out(row, cipher=cipher)
        parts.append(Part(edge_id=row.source_edge_id, field=out, subject=row.subject))
    return parts


def _weights(
    spec: FieldSpec, grouped: Mapping[str, Sequence[Part]]
) -> dict[tuple[str, str | None], float]:
    """Per-edge values of ``spec.merge_weight`` (empty: weigh by confidence)."""
    if spec.merge_weight is None:
        return {}
    out: dict[tuple[str, str | None], float] = {}
    for part in grouped.get(spec.merge_weight, ()):
        value = part.field.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[part.key] = float(value)
    return out


def _derive(
    spec: FieldSpec,
    merged: Mapping[str, ProfileFieldOut],
    tag_parts: Sequence[Part],
    *,
    breakdown: bool,
) -> ProfileFieldOut | None:
    """Recompute a derived tag from merged inputs; None when an input is not visible."""
    definition = MERGED_TAG_DEFINITIONS.get(spec.name.removeprefix("tag."))
    inputs = [merged.get(name) for name in spec.derived_from]
    if definition is None or any(i is None for i in inputs):
        return None
    present = [i for i in inputs if i is not None]
    values = {}
    for item in present:
        if isinstance(item.value, bool) or not isinstance(item.value, int | float):
            return None
        values[item.name.removeprefix(_FEATURE_PREFIX)] = float(item.value)
    provisional = all(i.provisional for i in present)
    result = derive_merged_tag(definition, values, provisional=provisional)
    channels = sorted({c for i in present for c in i.channels})
    return ProfileFieldOut(
        name=spec.name,
        value=result.value,
        confidence=result.confidence,
        explanation=list(result.explanation),
        provisional=provisional,
        computed_at=max(i.computed_at for i in present),
        source_channel=channels[0] if len(channels) == 1 else None,
        merge=MergeRule.DERIVED.value,
        channels=channels,
        contributions=[p.contribution() for p in tag_parts] if breakdown else None,
    )


def merged_fields(
    rows: Iterable[ProfileField],
    *,
    catalogue: FieldCatalogue,
    allowed: Allowed,
    fresh: Fresh,
    cipher_for: CipherFor,
    breakdown: bool = False,
    suppressed: Collection[str] = frozenset(),
) -> MergedView:
    """Merge a subject's (or a person's) stored contributions into one field per name.

    Parameters
    ----------
    rows : Iterable[ProfileField]
        Stored contributions (any order; several edges, several pseudonyms).
    catalogue : FieldCatalogue
        The catalogue in force (merge rules; uncatalogued rows are withheld).
    allowed : Allowed
        Whether the reader may see a field (consent for the purpose at this moment).
    fresh : Fresh
        Whether a row is within retention.
    cipher_for : CipherFor
        Opens sealed rows; rows it cannot open are withheld.
    breakdown : bool
        List each field's contributions with their provenance.
    suppressed : Collection[str]
        Fields rectified or deleted on request: never re-derived (the officer's value, or
        nothing, stands).

    Returns
    -------
    MergedView
        Merged fields sorted by name, and the names held but withheld.
    """
    view = MergedView()
    by_name: dict[str, list[ProfileField]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    grouped: dict[str, list[Part]] = {}
    for name, named in by_name.items():
        shown = [r for r in named if name in catalogue and allowed(name) and fresh(r)]
        parts = _parts(shown, cipher_for)
        if parts:
            grouped[name] = parts
        else:
            view.withheld.add(name)
    merged: dict[str, ProfileFieldOut] = {}
    for name, parts in grouped.items():
        spec = catalogue.by_name[name]
        merged[name] = merge_parts(
            spec, parts, weights=_weights(spec, grouped), breakdown=breakdown
        )
    for spec in catalogue:
        if spec.merge_rule is not MergeRule.DERIVED:
            continue
        if spec.name in suppressed or not allowed(spec.name):
            continue
        derived = _derive(spec, merged, grouped.get(spec.name, ()), breakdown=breakdown)
        if derived is not None:
            merged[spec.name] = derived
            view.withheld.discard(spec.name)
    view.fields = [merged[name] for name in sorted(merged)]
    return view
