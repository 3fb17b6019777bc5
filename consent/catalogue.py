"""The field catalogue: which profile fields exist, what they mean and who may use them.

The catalogue is data (``consent/data/catalogue.yaml``), validated into frozen pydantic
models when it is loaded. Validation reports every problem at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from functools import cached_property
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import CatalogueError, FieldNotCataloguedError
from .purposes import Purpose


class Sensitivity(StrEnum):
    """Sensitivity class of a field (PIPL Art. 28)."""

    NORMAL = "normal"
    SENSITIVE = "sensitive"


class ValueType(StrEnum):
    """Shape of a field's value."""

    TAG = "tag"
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"


class MergeRule(StrEnum):
    """How the server combines the contributions of several edges to one field.

    ``sum``, ``max``, ``min`` and ``mean`` apply to numbers (``mean`` is weighted by each
    contribution's ``merge_weight`` field, else its confidence, else equally); ``any`` and
    ``all`` to booleans; ``latest`` to every type (the most recently computed contribution);
    ``union`` to strings (the sorted distinct values); ``vote`` to tags (the
    confidence-weighted mean probability of the contributions); ``derived`` to tags the server
    recomputes from the merged fields named in ``derived_from``.
    """

    SUM = "sum"
    MAX = "max"
    MIN = "min"
    MEAN = "mean"
    LATEST = "latest"
    ANY = "any"
    ALL = "all"
    UNION = "union"
    VOTE = "vote"
    DERIVED = "derived"


#: Merge rules each value type admits.
MERGE_RULES_FOR: Mapping[ValueType, frozenset[MergeRule]] = MappingProxyType(
    {
        ValueType.NUMBER: frozenset(
            {MergeRule.SUM, MergeRule.MAX, MergeRule.MIN, MergeRule.MEAN, MergeRule.LATEST}
        ),
        ValueType.BOOLEAN: frozenset({MergeRule.ANY, MergeRule.ALL, MergeRule.LATEST}),
        ValueType.STRING: frozenset({MergeRule.LATEST, MergeRule.UNION}),
        ValueType.TAG: frozenset({MergeRule.VOTE, MergeRule.DERIVED, MergeRule.LATEST}),
    }
)
#: The merge rule of a field whose catalogue entry names none.
DEFAULT_MERGE: Mapping[ValueType, MergeRule] = MappingProxyType(
    {
        ValueType.NUMBER: MergeRule.LATEST,
        ValueType.BOOLEAN: MergeRule.LATEST,
        ValueType.STRING: MergeRule.LATEST,
        ValueType.TAG: MergeRule.VOTE,
    }
)


class LegalBasis(StrEnum):
    """Legal basis for processing (PIPL Art. 13; there is no legitimate-interest basis)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"


class FieldSpec(BaseModel):
    """One catalogued profile field.

    Parameters
    ----------
    name : str
        Dotted field name, e.g. ``tag.high_purchasing_power``.
    category : str
        Data category in dotted form (fideslang style).
    sensitivity : Sensitivity
        ``sensitive`` fields need separate consent and encryption at rest.
    value_type : ValueType
        Shape of the value.
    purposes : tuple[Purpose, ...]
        Purposes for which the field may be stored and read.
    legal_basis : LegalBasis
        Basis relied on for processing.
    retention_days : int
        Days after which the server deletes the field.
    meaning_zh, meaning_en : str
        What the field means, in Chinese and English.
    merge : MergeRule or None
        How edges' contributions combine on the server (``None``: the value type's default,
        ``DEFAULT_MERGE``).
    merge_weight : str or None
        For ``mean``: the number field whose value, from the same edge, weighs each
        contribution (e.g. a complaint *rate* weighted by the contact *count* gives the exact
        pooled rate).
    derived_from : tuple[str, ...]
        For ``derived``: the catalogued fields the server's rule reads; each must be usable
        for every purpose of this field.
    values : tuple[str, ...]
        For ``string`` fields, required: the allowed values (an enum of short lowercase
        tokens such as ``electronics``), so no free text can ever be stored.
    minimum, maximum : float or None
        For ``number`` fields, required (YAML ``min`` / ``max``): the value's bounds. They
        keep an identifier typed as a number (a phone, a card) out of a count or an amount.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=80)
    category: str
    sensitivity: Sensitivity
    value_type: ValueType
    purposes: tuple[Purpose, ...] = Field(min_length=1)
    legal_basis: LegalBasis
    retention_days: int = Field(gt=0)
    meaning_zh: str = Field(min_length=1)
    meaning_en: str = Field(min_length=1)
    merge: MergeRule | None = None
    merge_weight: str | None = None
    derived_from: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    minimum: float | None = Field(default=None, alias="min", allow_inf_nan=False)
    maximum: float | None = Field(default=None, alias="max", allow_inf_nan=False)

    @model_validator(mode="after")
    def _typed(self) -> FieldSpec:
        string = self.value_type is ValueType.STRING
        number = self.value_type is ValueType.NUMBER
        if string != bool(self.values):
            raise ValueError("values (the allowed strings) are required for string fields only")
        bad = [v for v in self.values if not _ENUM_VALUE.fullmatch(v)]
        if bad:
            raise ValueError(
                f"values must be lowercase tokens starting with a letter (1-32 of a-z, 0-9, _); "
                f"{len(bad)} are not"
            )
        bounded = self.minimum is not None and self.maximum is not None
        if number != bounded or (not number and (self.minimum, self.maximum) != (None, None)):
            raise ValueError("min and max are required for number fields only")
        if bounded and self.minimum > self.maximum:  # type: ignore[operator]
            raise ValueError("min must not exceed max")
        return self

    @model_validator(mode="after")
    def _merge_fits_type(self) -> FieldSpec:
        rule = self.merge_rule
        if rule not in MERGE_RULES_FOR[self.value_type]:
            allowed = ", ".join(sorted(MERGE_RULES_FOR[self.value_type]))
            raise ValueError(
                f"merge {rule.value!r} does not fit value_type {self.value_type.value!r} "
                f"(use one of: {allowed})"
            )
        if self.merge_weight is not None and rule is not MergeRule.MEAN:
            raise ValueError("merge_weight applies only to merge 'mean'")
        if (rule is MergeRule.DERIVED) != bool(self.derived_from):
            raise ValueError("derived_from is required with merge 'derived' and only with it")
        return self

    @property
    def merge_rule(self) -> MergeRule:
        """The merge rule in force (declared, else the value type's default)."""
        return self.merge if self.merge is not None else DEFAULT_MERGE[self.value_type]

    @property
    def needs_separate_consent(self) -> bool:
        """Whether storing this field needs separate consent (PIPL Art. 29)."""
        return self.sensitivity is Sensitivity.SENSITIVE

    def value_problems(self, value: Any) -> list[str]:
        """Return why ``value`` does not fit this field (empty when it fits).

        Parameters
        ----------
        value : Any
            A decoded JSON value.

        Returns
        -------
        list[str]
            Problems naming the field and the expected shape, never the value itself.
        """
        ok: bool
        if self.value_type is ValueType.TAG:
            ok = isinstance(value, bool)
        elif self.value_type is ValueType.NUMBER:
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and _finite(value)
                and self.minimum is not None
                and self.maximum is not None
                and self.minimum <= value <= self.maximum
            )
        elif self.value_type is ValueType.STRING:
            ok = isinstance(value, str) and value in self.values
        else:
            ok = isinstance(value, bool)
        if ok:
            return []
        expected = {
            ValueType.TAG: "a boolean tag value",
            ValueType.NUMBER: f"a finite number from {self.minimum:g} to {self.maximum:g}"
            if self.minimum is not None and self.maximum is not None
            else "a finite number",
            ValueType.STRING: f"one of its {len(self.values)} catalogued values",
            ValueType.BOOLEAN: "a boolean",
        }[self.value_type]
        return [f"field {self.name!r} expects {expected}"]


#: An allowed string value: a short lowercase token that cannot hold a name or a number.
_ENUM_VALUE = re.compile(r"(?!.*[0-9]{5})[a-z][a-z0-9_]{0,31}")


def _finite(value: float) -> bool:
    """Whether a number is finite as a float (an integer past float range is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class FieldCatalogue(BaseModel):
    """The validated set of catalogued fields.

    Parameters
    ----------
    version : str
        Version label of the catalogue document.
    fields : tuple[FieldSpec, ...]
        Field specifications; names are unique.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    fields: tuple[FieldSpec, ...]

    def __iter__(self) -> Iterator[FieldSpec]:  # type: ignore[override]
        return iter(self.fields)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    @cached_property
    def by_name(self) -> Mapping[str, FieldSpec]:
        """Field specifications keyed by name (built once; the catalogue is immutable)."""
        return MappingProxyType({f.name: f for f in self.fields})

    def get(self, name: str) -> FieldSpec:
        """Return the specification of field ``name``.

        Parameters
        ----------
        name : str
            Field name.

        Returns
        -------
        FieldSpec
            The catalogued specification.

        Raises
        ------
        FieldNotCataloguedError
            If the field is not catalogued.
        """
        spec = self.by_name.get(name)
        if spec is None:
            raise FieldNotCataloguedError(name)
        return spec

    def fields_for(self, purpose: Purpose) -> tuple[FieldSpec, ...]:
        """Return the fields that may be used for ``purpose``."""
        return tuple(f for f in self.fields if purpose in f.purposes)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FieldCatalogue:
        """Validate a decoded catalogue document, reporting every problem at once.

        Parameters
        ----------
        data : Mapping[str, Any]
            The decoded YAML or JSON document.

        Returns
        -------
        FieldCatalogue
            The validated catalogue.

        Raises
        ------
        CatalogueError
            Listing every invalid entry and every duplicated name.
        """
        problems: list[str] = []
        raw_fields = data.get("fields") if isinstance(data, Mapping) else None
        if not isinstance(raw_fields, list) or not raw_fields:
            raise CatalogueError(["'fields' must be a non-empty list"])
        specs: list[FieldSpec] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_fields):
            try:
                spec = FieldSpec.model_validate(raw)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"])
                    problems.append(f"fields[{index}].{loc}: {err['msg']}")
                continue
            if spec.name in seen:
                problems.append(f"fields[{index}]: duplicate field name {spec.name!r}")
            seen.add(spec.name)
            specs.append(spec)
        problems.extend(_reference_problems({s.name: s for s in specs}))
        if problems:
            raise CatalogueError(problems)
        return cls(version=str(data.get("version", "unversioned")), fields=tuple(specs))

    @classmethod
    def load(cls, path: Path) -> FieldCatalogue:
        """Load and validate a catalogue from a YAML or JSON file.

        Parameters
        ----------
        path : Path
            File to read.

        Returns
        -------
        FieldCatalogue
            The validated catalogue.

        Raises
        ------
        CatalogueError
            If the file cannot be read or parsed, or any entry is invalid.
        """
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CatalogueError([f"cannot read catalogue {path}: {type(exc).__name__}"]) from exc
        return cls.from_mapping(data if isinstance(data, Mapping) else {})


def _reference_problems(specs: Mapping[str, FieldSpec]) -> list[str]:
    """Check ``merge_weight`` and ``derived_from`` name fields that can serve them."""
    problems: list[str] = []
    for spec in specs.values():
        weight = specs.get(spec.merge_weight) if spec.merge_weight else None
        if spec.merge_weight and (weight is None or weight.value_type is not ValueType.NUMBER):
            problems.append(
                f"{spec.name}: merge_weight {spec.merge_weight!r} is not a catalogued number field"
            )
        for source in spec.derived_from:
            used = specs.get(source)
            if used is None or used.value_type is not ValueType.NUMBER:
                problems.append(
                    f"{spec.name}: derived_from {source!r} is not a catalogued number field"
                )
                continue
            missing = sorted(set(spec.purposes) - set(used.purposes))
            if missing:
                problems.append(
                    f"{spec.name}: derived_from {source!r} is not catalogued for "
                    f"purpose(s) {', '.join(p.value for p in missing)}"
                )
            if used.sensitivity is Sensitivity.SENSITIVE:
                problems.append(f"{spec.name}: derived_from {source!r} is a sensitive field")
    return problems


def load_default_catalogue() -> FieldCatalogue:
    """Return the catalogue shipped with fedprofile (``consent/data/catalogue.yaml``).

    Returns
    -------
    FieldCatalogue
        The validated default catalogue.
    """
    text = resources.files("consent").joinpath("data/catalogue.yaml").read_text(encoding="utf-8")
    return FieldCatalogue.from_mapping(yaml.safe_load(text))
