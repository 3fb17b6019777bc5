import pytest

from privacy import PrivacyError
from privacy.pii import registry
from privacy.pii.errors import RecognizerExistsError, UnknownRecognizerError
from privacy.pii.recognizers.cn_mobile import CnMobileRecognizer


@pytest.fixture
def restore_registry():
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_create_recognizer_returns_a_fresh_instance() -> None:
    first = registry.create_recognizer("cn_mobile")
    second = registry.create_recognizer("cn_mobile")

    assert isinstance(first, CnMobileRecognizer) and first is not second


def test_create_recognizer_passes_options() -> None:
    recognizer = registry.create_recognizer("cn_person", allow_names=("欧阳娜娜",))

    assert recognizer.allow_names == frozenset({"欧阳娜娜"})


def test_create_recognizer_when_unknown_then_error_lists_known_names() -> None:
    with pytest.raises(UnknownRecognizerError) as caught:
        registry.create_recognizer("cn_unknown")

    message = str(caught.value)
    assert "cn_unknown" in message
    assert all(name in message for name in registry.registered_recognizers())
    assert isinstance(caught.value, PrivacyError)


def test_register_recognizer_when_name_taken_then_refused(restore_registry) -> None:
    with pytest.raises(RecognizerExistsError, match="force=True"):
        registry.register_recognizer("cn_mobile", CnMobileRecognizer)


def test_register_recognizer_with_force_replaces(restore_registry) -> None:
    class Custom(CnMobileRecognizer):
        pass

    registry.register_recognizer("cn_mobile", Custom, force=True)

    assert type(registry.create_recognizer("cn_mobile")) is Custom


def test_register_recognizer_new_name_is_listed(restore_registry) -> None:
    registry.register_recognizer("zz_custom", CnMobileRecognizer)

    assert "zz_custom" in registry.registered_recognizers()


def test_register_recognizer_when_empty_name_then_value_error() -> None:
    with pytest.raises(ValueError, match="name"):
        registry.register_recognizer("", CnMobileRecognizer)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_default_recognizers_are_all_registered(lang: str) -> None:
    assert set(registry.DEFAULT_RECOGNIZERS[lang]) <= set(registry.registered_recognizers())
