"""Registry of PII recognizers chosen by name, and the default set per language.

``register_recognizer`` refuses to overwrite a name silently; ``create_recognizer`` builds
a fresh instance and its unknown-name error lists every known name.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Literal

from presidio_analyzer import EntityRecognizer

from .errors import RecognizerExistsError, UnknownRecognizerError
from .recognizers.cn_address import CnAddressRecognizer
from .recognizers.cn_bank_card import CnBankCardRecognizer
from .recognizers.cn_id_card import CnIdCardRecognizer
from .recognizers.cn_landline import CnLandlineRecognizer
from .recognizers.cn_license_plate import CnLicensePlateRecognizer
from .recognizers.cn_mobile import CnMobileRecognizer
from .recognizers.cn_passport import CnPassportRecognizer
from .recognizers.cn_person import CnPersonRecognizer
from .recognizers.cn_uscc import CnUsccRecognizer
from .recognizers.credit_card import CreditCardNumberRecognizer
from .recognizers.email import EmailAddressRecognizer
from .recognizers.ip_address import IpAddressRecognizer
from .recognizers.phone_number import PhoneNumberRecognizer

logger = logging.getLogger(__name__)

#: Anything that builds a recognizer from keyword options: a class or a factory.
RecognizerFactory = Callable[..., EntityRecognizer]

_REGISTRY: dict[str, RecognizerFactory] = {
    "cn_mobile": CnMobileRecognizer,
    "cn_landline": CnLandlineRecognizer,
    "cn_id_card": CnIdCardRecognizer,
    "cn_bank_card": CnBankCardRecognizer,
    "cn_uscc": CnUsccRecognizer,
    "cn_passport": CnPassportRecognizer,
    "cn_license_plate": CnLicensePlateRecognizer,
    "cn_person": CnPersonRecognizer,
    "cn_address": CnAddressRecognizer,
    "zh_email": functools.partial(EmailAddressRecognizer, supported_language="zh"),
    "zh_ip": functools.partial(IpAddressRecognizer, supported_language="zh"),
    "en_email": functools.partial(EmailAddressRecognizer, supported_language="en"),
    "en_phone": functools.partial(PhoneNumberRecognizer, supported_language="en"),
    "en_credit_card": functools.partial(CreditCardNumberRecognizer, supported_language="en"),
    "en_ip": functools.partial(IpAddressRecognizer, supported_language="en"),
    # Chinese businesses' English messages still carry mainland identifiers.
    "en_cn_mobile": functools.partial(
        CnMobileRecognizer, supported_language="en", name="CnMobileRecognizer_en"
    ),
    "en_cn_landline": functools.partial(
        CnLandlineRecognizer, supported_language="en", name="CnLandlineRecognizer_en"
    ),
    "en_cn_id_card": functools.partial(
        CnIdCardRecognizer, supported_language="en", name="CnIdCardRecognizer_en"
    ),
    "en_cn_uscc": functools.partial(
        CnUsccRecognizer, supported_language="en", name="CnUsccRecognizer_en"
    ),
}

#: Recognizers a detector loads per language unless told otherwise.
DEFAULT_RECOGNIZERS: dict[Literal["zh", "en"], tuple[str, ...]] = {
    "zh": (
        "cn_mobile",
        "cn_landline",
        "cn_id_card",
        "cn_bank_card",
        "cn_uscc",
        "cn_passport",
        "cn_license_plate",
        "cn_person",
        "cn_address",
        "zh_email",
        "zh_ip",
    ),
    "en": (
        "en_email",
        "en_phone",
        "en_credit_card",
        "en_ip",
        "en_cn_mobile",
        "en_cn_landline",
        "en_cn_id_card",
        "en_cn_uscc",
    ),
}

#: Names whose factories accept the ``deny_names`` / ``allow_names`` options.
NAME_RECOGNIZERS = frozenset({"cn_person"})


def register_recognizer(name: str, cls: RecognizerFactory, *, force: bool = False) -> None:
    """Register a recognizer class (or factory) under ``name``.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``cn_mobile``.
    cls : callable
        Class or factory returning a Presidio ``EntityRecognizer``; called with keyword
        options by :func:`create_recognizer`.
    force : bool
        Replace an existing registration instead of refusing.

    Raises
    ------
    RecognizerExistsError
        If ``name`` is taken and ``force`` is False.
    ValueError
        If ``name`` is empty.
    """
    if not name:
        raise ValueError("name must be a non-empty string")
    if name in _REGISTRY and not force:
        raise RecognizerExistsError(name)
    if name in _REGISTRY:
        logger.info("replacing PII recognizer %s", name)
    _REGISTRY[name] = cls


def create_recognizer(name: str, **options: Any) -> EntityRecognizer:
    """Build a new instance of the recognizer registered under ``name``.

    Parameters
    ----------
    name : str
        Registry key.
    **options
        Keyword options passed to the class or factory.

    Returns
    -------
    EntityRecognizer
        A fresh recognizer.

    Raises
    ------
    UnknownRecognizerError
        If nothing is registered under ``name``; the message lists the known names.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownRecognizerError(name, tuple(_REGISTRY))
    return factory(**options)


def registered_recognizers() -> tuple[str, ...]:
    """Return the registered names, sorted."""
    return tuple(sorted(_REGISTRY))
