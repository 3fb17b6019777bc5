"""The purpose list as data: DPV term, labels, descriptions and flags of every purpose.

``consent/data/purposes.yaml`` describes each member of :class:`~consent.purposes.Purpose`:
its W3C DPV 2.x purpose IRI, Chinese and English labels and descriptions, the legal basis
relied on, whether it is *necessary* for the service (PIPL Art. 16) and whether the subject's
"personalization off" switch turns it off (PIPL Art. 24). The file is validated when loaded,
reporting every problem at once, and must describe exactly the members of the enum: code
refers to the members, so adding a purpose means adding it to both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .catalogue import FieldCatalogue, LegalBasis
from .errors import PurposeListError, PurposeNotRegisteredError
from .purposes import Purpose

#: Namespace of DPV terms; a purpose's ``dpv`` is this followed by the term name.
DPV_NAMESPACE = "https://w3id.org/dpv#"


class PurposeSpec(BaseModel):
    """One registered purpose.

    Parameters
    ----------
    name : Purpose
        The purpose.
    dpv : str
        Its DPV 2.x purpose IRI, e.g. ``https://w3id.org/dpv#ServicePersonalisation``.
    label_zh, label_en : str
        Short labels shown to people (console, receipts, self-service).
    description_zh, description_en : str
        One sentence on what the purpose is used for.
    legal_basis : LegalBasis
        Basis relied on (PIPL Art. 13). Documentary: the server checks consent for every
        purpose.
    necessary : bool
        Whether the purpose is needed to provide the service asked for (PIPL Art. 16): a
        subject refusing any *other* purpose must still be served.
    personalization : bool
        Whether the subject's "personalization off" switch withdraws it (PIPL Art. 24).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Purpose
    dpv: str = Field(pattern=r"^https://w3id\.org/dpv#[A-Z][A-Za-z]+$")
    label_zh: str = Field(min_length=1, max_length=40)
    label_en: str = Field(min_length=1, max_length=60)
    description_zh: str = Field(min_length=1)
    description_en: str = Field(min_length=1)
    legal_basis: LegalBasis
    necessary: bool
    personalization: bool

    @property
    def dpv_curie(self) -> str:
        """The DPV term in prefixed form, e.g. ``dpv:ServicePersonalisation``."""
        return "dpv:" + self.dpv.removeprefix(DPV_NAMESPACE)


class PurposeRegistry(BaseModel):
    """The validated purpose list: one :class:`PurposeSpec` per member of ``Purpose``.

    Build it with :meth:`from_mapping`, :meth:`load` or :func:`load_default_purposes`; those
    check agreement with the enum.

    Parameters
    ----------
    version : str
        Version label of the purpose-list document.
    purposes : tuple[PurposeSpec, ...]
        The specifications, in document order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    purposes: tuple[PurposeSpec, ...]

    def __iter__(self) -> Iterator[PurposeSpec]:  # type: ignore[override]
        return iter(self.purposes)

    @cached_property
    def by_purpose(self) -> Mapping[Purpose, PurposeSpec]:
        """Specifications keyed by purpose."""
        return MappingProxyType({spec.name: spec for spec in self.purposes})

    def get(self, purpose: Purpose | str) -> PurposeSpec:
        """Return the specification of ``purpose``.

        Parameters
        ----------
        purpose : Purpose or str
            A purpose or its name.

        Returns
        -------
        PurposeSpec
            The registered specification.

        Raises
        ------
        PurposeNotRegisteredError
            If the purpose is not registered; the message lists the registered ones.
        """
        known = [spec.name.value for spec in self.purposes]
        try:
            spec = self.by_purpose.get(Purpose(purpose))
        except ValueError:
            spec = None
        if spec is None:
            raise PurposeNotRegisteredError(str(purpose), known=known)
        return spec

    @property
    def personalization_purposes(self) -> frozenset[Purpose]:
        """Purposes the "personalization off" switch withdraws."""
        return frozenset(spec.name for spec in self.purposes if spec.personalization)

    @property
    def necessary_purposes(self) -> frozenset[Purpose]:
        """Purposes needed to provide the service (PIPL Art. 16)."""
        return frozenset(spec.name for spec in self.purposes if spec.necessary)

    @property
    def dpv_terms(self) -> dict[Purpose, str]:
        """DPV terms in prefixed form (``dpv:...``), by purpose."""
        return {spec.name: spec.dpv_curie for spec in self.purposes}

    @property
    def labels(self) -> dict[Purpose, tuple[str, str]]:
        """Labels ``(Chinese, English)``, by purpose."""
        return {spec.name: (spec.label_zh, spec.label_en) for spec in self.purposes}

    def check_catalogue(self, catalogue: FieldCatalogue) -> None:
        """Check that every purpose the catalogue names is registered.

        Parameters
        ----------
        catalogue : FieldCatalogue
            The field catalogue in force.

        Raises
        ------
        PurposeListError
            Listing every field that names an unregistered purpose.
        """
        problems = [
            f"field {spec.name!r} names purpose {purpose.value!r}, which the purpose list "
            "does not register"
            for spec in catalogue.fields
            for purpose in spec.purposes
            if purpose not in self.by_purpose
        ]
        if problems:
            raise PurposeListError(problems)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PurposeRegistry:
        """Validate a decoded purpose-list document, reporting every problem at once.

        Parameters
        ----------
        data : Mapping[str, Any]
            The decoded YAML or JSON document.

        Returns
        -------
        PurposeRegistry
            The validated registry.

        Raises
        ------
        PurposeListError
            Listing every invalid entry, every duplicate, every name that is not a member of
            ``Purpose`` and every member of ``Purpose`` the document does not describe.
        """
        raw = data.get("purposes") if isinstance(data, Mapping) else None
        if not isinstance(raw, list) or not raw:
            raise PurposeListError(["'purposes' must be a non-empty list"])
        problems: list[str] = []
        specs = list(_validate_entries(raw, problems))
        described = {spec.name for spec in specs}
        problems.extend(
            f"Purpose.{member.name} ({member.value!r}) is not described in the purpose list"
            for member in Purpose
            if member not in described
        )
        if problems:
            raise PurposeListError(problems)
        return cls(version=str(data.get("version", "unversioned")), purposes=tuple(specs))

    @classmethod
    def load(cls, path: Path) -> PurposeRegistry:
        """Load and validate a purpose list from a YAML or JSON file.

        Parameters
        ----------
        path : Path
            File to read.

        Returns
        -------
        PurposeRegistry
            The validated registry.

        Raises
        ------
        PurposeListError
            If the file cannot be read or parsed, or any entry is invalid.
        """
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            problem = f"cannot read purpose list {path}: {type(exc).__name__}"
            raise PurposeListError([problem]) from exc
        return cls.from_mapping(data if isinstance(data, Mapping) else {})


def _validate_entries(raw: Iterable[Any], problems: list[str]) -> Iterator[PurposeSpec]:
    """Yield the valid entries; append one line per problem to ``problems``."""
    members = {member.value for member in Purpose}
    seen: set[Purpose] = set()
    for index, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if isinstance(name, str) and name not in members:
            problems.append(
                f"purposes[{index}].name: {name!r} is not a member of consent.Purpose; adding a "
                "purpose means adding it to the Purpose enum too"
            )
            continue
        try:
            spec = PurposeSpec.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors(include_input=False, include_url=False):
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"purposes[{index}].{loc}: {err['msg']}")
            continue
        if spec.name in seen:
            problems.append(f"purposes[{index}]: duplicate purpose {spec.name.value!r}")
            continue
        seen.add(spec.name)
        yield spec


@functools.lru_cache(maxsize=1)
def load_default_purposes() -> PurposeRegistry:
    """Return the purpose list shipped with fedprofile (``consent/data/purposes.yaml``).

    Loaded once per process (the registry is immutable).

    Returns
    -------
    PurposeRegistry
        The validated default purpose list.

    Raises
    ------
    PurposeListError
        If the shipped file disagrees with the ``Purpose`` enum or is otherwise invalid.
    """
    text = resources.files("consent").joinpath("data/purposes.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return PurposeRegistry.from_mapping(data if isinstance(data, Mapping) else {})


def check_consent_data(catalogue: FieldCatalogue, purposes: PurposeRegistry) -> None:
    """Startup check: the catalogue's purposes are all registered in the purpose list.

    The purpose list's agreement with the ``Purpose`` enum is checked when it is loaded.

    Parameters
    ----------
    catalogue : FieldCatalogue
        The field catalogue in force.
    purposes : PurposeRegistry
        The purpose list in force.

    Raises
    ------
    PurposeListError
        Listing every catalogue field that names an unregistered purpose.
    """
    purposes.check_catalogue(catalogue)
