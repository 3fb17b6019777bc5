from __future__ import annotations

import pytest

from client.identity import IdentityResolver, pseudonym_for, strongest_identifier
from client.schemas import CustomerRef
from privacy import IdentifierError, IdentifierKind, Pseudonymizer

from .edge_factories import EMAIL, ID_NUMBER, KEY, PHONE


@pytest.fixture()
def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(KEY)


@pytest.mark.parametrize(
    ("ref", "kind", "value"),
    [
        ({"phone": PHONE, "email": EMAIL, "account_id": "u1"}, IdentifierKind.PHONE, PHONE),
        ({"email": EMAIL, "id_number": ID_NUMBER}, IdentifierKind.EMAIL, EMAIL),
        ({"id_number": ID_NUMBER, "account_id": "u1"}, IdentifierKind.ID_NUMBER, ID_NUMBER),
        ({"account_id": "u1"}, IdentifierKind.ACCOUNT_ID, "u1"),
        ({"phone": "  ", "account_id": "u1"}, IdentifierKind.ACCOUNT_ID, "u1"),
    ],
)
def test_resolve_when_several_identifiers_then_strongest_wins(
    pseudonymizer: Pseudonymizer, ref: dict[str, str], kind: IdentifierKind, value: str
) -> None:
    # Prepare
    resolver = IdentityResolver(pseudonymizer)

    # Execute
    result = resolver.resolve(CustomerRef(**ref))

    # Assert
    assert result.ok and result.kind is kind
    assert result.subject == pseudonymizer.pseudonym(kind, value)


@pytest.mark.parametrize(
    "variant", [PHONE, "+86 138 1234 5678", "138-1234-5678", "008613812345678"]
)
def test_resolve_when_phone_formats_differ_then_same_pseudonym(
    pseudonymizer: Pseudonymizer, variant: str
) -> None:
    resolver = IdentityResolver(pseudonymizer)

    result = resolver.resolve(CustomerRef(phone=variant))

    assert result.subject == pseudonymizer.pseudonym(IdentifierKind.PHONE, PHONE)


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        ({"phone": "12ab9988776655", "account_id": "u1"}, "customer.phone"),
        ({"email": "not-an-email-13812345678"}, "customer.email"),
        ({"id_number": "1101051949123100"}, "customer.id_number"),
        ({"account_id": "bad id with spaces 13812345678"}, "customer.account_id"),
    ],
)
def test_resolve_when_strongest_identifier_malformed_then_refused_without_value(
    pseudonymizer: Pseudonymizer, ref: dict[str, str], field: str
) -> None:
    resolver = IdentityResolver(pseudonymizer)

    result = resolver.resolve(CustomerRef(**ref))

    assert not result.ok and result.subject is None
    assert result.reason is not None and result.reason.startswith(field)
    for raw in ref.values():
        assert raw not in result.reason
    assert "13812345678" not in result.reason


def test_resolve_when_all_identifiers_blank_then_no_usable_identifier(
    pseudonymizer: Pseudonymizer,
) -> None:
    result = IdentityResolver(pseudonymizer).resolve(CustomerRef(phone=" ", email=" "))

    assert result.reason == "customer: no usable identifier"


@pytest.mark.parametrize("cache_size", [0, 1, 100])
def test_resolve_when_cached_then_results_unchanged(
    pseudonymizer: Pseudonymizer, cache_size: int
) -> None:
    resolver = IdentityResolver(pseudonymizer, cache_size=cache_size)
    refs = [CustomerRef(phone=PHONE), CustomerRef(email=EMAIL), CustomerRef(phone=PHONE)]

    first = [resolver.resolve(r).subject for r in refs]
    second = [resolver.resolve(r).subject for r in refs]

    assert first == second
    assert first[0] == first[2] != first[1]


def test_resolver_when_negative_cache_size_then_value_error(pseudonymizer: Pseudonymizer) -> None:
    with pytest.raises(ValueError, match="cache_size"):
        IdentityResolver(pseudonymizer, cache_size=-1)


def test_resolver_repr_when_used_then_holds_no_identifier(pseudonymizer: Pseudonymizer) -> None:
    resolver = IdentityResolver(pseudonymizer)
    resolver.resolve(CustomerRef(phone=PHONE))

    assert PHONE not in repr(resolver)


def test_pseudonym_for_when_malformed_then_identifier_error_without_value(
    pseudonymizer: Pseudonymizer,
) -> None:
    with pytest.raises(IdentifierError) as info:
        pseudonym_for(CustomerRef(phone="12ab9988776655"), pseudonymizer)

    assert "9988776655" not in str(info.value)


def test_strongest_identifier_when_only_blank_values_then_none() -> None:
    assert strongest_identifier(CustomerRef(account_id="   ")) is None


def test_pseudonym_when_other_tenant_key_then_unlinkable() -> None:
    ref = CustomerRef(phone=PHONE)

    a = IdentityResolver(Pseudonymizer(KEY)).resolve(ref).subject
    b = IdentityResolver(Pseudonymizer(bytes(32))).resolve(ref).subject

    assert a != b


def test_resolve_gives_a_token_per_identifier_and_skips_placeholders_with_reasons(
    pseudonymizer: Pseudonymizer,
) -> None:
    ref = CustomerRef(account_id="u-7781", device_id="00000000-0000-0000-0000-000000000000",
                      member_card="VIP-2024-889")  # fmt: skip
    resolution = IdentityResolver(pseudonymizer).resolve(ref)
    assert resolution.subject is not None
    assert [kind for kind, _ in resolution.tokens] == ["account_id", "member_card"]
    assert len(resolution.refused_tokens) == 1
    assert resolution.refused_tokens[0].startswith("customer.device_id:")
    assert "0000" not in resolution.refused_tokens[0]
    # A channel that knows the same account by itself gets the same account token.
    alone = IdentityResolver(pseudonymizer).resolve(CustomerRef(account_id="u-7781"))
    assert alone.tokens == (resolution.tokens[0],)
