from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import IdentifierKind, KeyFileError, Pseudonymizer, create_key_file, load_key_file
from privacy.placeholders import account_placeholder
from privacy.rekey import (
    ChainedPseudonymizer,
    Rekeyer,
    TenantKeyChain,
    create_tenant_key_chain_file,
    load_tenant_key_chain,
    repseudonymize,
    rotate_tenant_key_file,
    save_tenant_key_chain_file,
    tenant_key_id,
)

K1 = bytes(range(32))
K2 = bytes(range(40, 72))
K3 = bytes(range(100, 132))
PHONE = "13812345678"


def test_chain_of_one_generation_equals_pseudonymizer() -> None:
    chained = TenantKeyChain([K1]).pseudonymizer()

    assert chained.pseudonym(IdentifierKind.PHONE, PHONE) == \
        Pseudonymizer(K1).pseudonym(IdentifierKind.PHONE, PHONE)


def test_rekeyed_stored_pseudonym_equals_chained_pseudonym_of_identifier() -> None:
    old = Pseudonymizer(K1).pseudonym(IdentifierKind.PHONE, PHONE)
    chain = TenantKeyChain([K1, K2])

    rekeyed = chain.rekeyer().rekey(old)

    assert rekeyed == chain.pseudonymizer().pseudonym(IdentifierKind.PHONE, "+86 138-1234-5678")
    assert rekeyed != old and rekeyed.startswith("ps_") and len(rekeyed) == 67


def test_third_generation_maps_second_generation_pseudonyms() -> None:
    two, three = TenantKeyChain([K1, K2]), TenantKeyChain([K1, K2, K3])
    second = two.pseudonymizer().pseudonym(IdentifierKind.EMAIL, "Wang.Wei@example.com")

    assert three.rekeyer().rekey(second) == \
        three.pseudonymizer().pseudonym(IdentifierKind.EMAIL, "wang.wei@example.com")
    assert three.rekeyer().from_kid == tenant_key_id(K2)


def test_rekeyer_needs_only_the_new_key() -> None:
    old = Pseudonymizer(K1).pseudonym(IdentifierKind.ACCOUNT_ID, "acct-42")

    assert Rekeyer(K2, from_kid=tenant_key_id(K1)).rekey(old) == repseudonymize(key=K2,
                                                                                 pseudonym=old)


def test_mapping_is_sorted_deduplicated_and_deterministic() -> None:
    olds = [Pseudonymizer(K1).pseudonym(IdentifierKind.ACCOUNT_ID, f"acct-{i}") for i in range(5)]
    rekeyer = TenantKeyChain([K1, K2]).rekeyer()

    mapping = rekeyer.mapping([*olds, olds[0]])

    assert [old for old, _ in mapping.pairs] == sorted(olds)
    assert mapping == TenantKeyChain([K1, K2]).rekeyer().mapping(reversed(olds))
    assert (mapping.from_kid, mapping.to_kid) == (tenant_key_id(K1), tenant_key_id(K2))
    assert len(set(mapping.as_dict().values())) == 5


def test_rekey_does_not_collide_with_identifier_pseudonyms() -> None:
    # The re-key input label keeps HMAC inputs of the two uses disjoint, even with one key.
    old = Pseudonymizer(K1).pseudonym(IdentifierKind.ACCOUNT_ID, "acct-1")

    assert repseudonymize(key=K1, pseudonym=old) != \
        Pseudonymizer(K1).pseudonym(IdentifierKind.ACCOUNT_ID, old)


@pytest.mark.parametrize(
    "value",
    ["13812345678", "ps_" + "A" * 64, "ps_" + "a" * 63, "xx_" + "a" * 64],
)
def test_repseudonymize_rejects_non_pseudonyms_without_echo(value: str) -> None:
    with pytest.raises(ValueError) as info:
        repseudonymize(key=K2, pseudonym=value)

    assert value not in str(info.value)


@pytest.mark.parametrize(
    ("keys", "message"),
    [([], "at least one"), ([K1, K1], "twice"), ([b"short"], "32 bytes")],
)
def test_chain_rejects_misuse(keys: list[bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TenantKeyChain(keys)


def test_chain_of_one_has_no_rekeyer() -> None:
    with pytest.raises(ValueError, match="previous generation"):
        TenantKeyChain([K1]).rekeyer()


def test_one_line_tenant_key_file_is_a_generation_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "tenant.key"
    key = create_key_file(path)

    chain = load_tenant_key_chain(path)

    assert chain.generation == 1 and chain.current_kid == tenant_key_id(key)


def test_rotate_file_appends_generation_and_old_loader_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "tenant.key"
    key = create_key_file(path)
    old = Pseudonymizer(key).pseudonym(IdentifierKind.PHONE, PHONE)

    rotated = rotate_tenant_key_file(path)
    reloaded = load_tenant_key_chain(path)

    assert reloaded.kids == rotated.kids and reloaded.generation == 2
    assert reloaded.kids[0] == tenant_key_id(key)
    assert reloaded.rekeyer().rekey(old) == reloaded.pseudonymizer().pseudonym(
        IdentifierKind.PHONE, PHONE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyFileError):
        load_key_file(path)


def test_create_chain_file_then_load(tmp_path: Path) -> None:
    path = tmp_path / "chain.key"

    created = create_tenant_key_chain_file(path)

    assert load_tenant_key_chain(path).kids == created.kids


def test_reprs_hide_keys() -> None:
    chain = TenantKeyChain([K1, K2])
    texts = [repr(chain), repr(chain.rekeyer()), repr(chain.pseudonymizer())]

    for text in texts:
        assert K1.hex() not in text and K2.hex() not in text and str(K2) not in text


def test_chained_pseudonymizer_rejects_short_later_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ChainedPseudonymizer([K1, b"short"])


@settings(max_examples=40, deadline=None)
@given(
    account=st.from_regex(r"[A-Za-z0-9_.:@-]{1,40}", fullmatch=True).filter(
        lambda a: account_placeholder(a) is None  # placeholders never get a pseudonym
    )
)
def test_rekey_commutes_with_chained_pseudonymisation(account: str) -> None:
    chain = TenantKeyChain([K1, K2, K3])
    previous = TenantKeyChain([K1, K2]).pseudonymizer().pseudonym(IdentifierKind.ACCOUNT_ID,
                                                                  account)

    assert chain.rekeyer().rekey(previous) == chain.pseudonymizer().pseudonym(
        IdentifierKind.ACCOUNT_ID, account)


def test_rekeyer_since_first_generation_maps_straight_to_the_newest() -> None:
    chain = TenantKeyChain([K1, K2, K3])
    first = Pseudonymizer(K1).pseudonym(IdentifierKind.PHONE, PHONE)

    rekeyer = chain.rekeyer(since_kid=tenant_key_id(K1))

    assert rekeyer.rekey(first) == chain.pseudonymizer().pseudonym(IdentifierKind.PHONE, PHONE)
    assert (rekeyer.from_kid, rekeyer.to_kid) == (tenant_key_id(K1), tenant_key_id(K3))


@pytest.mark.parametrize("kid", [tenant_key_id(K3), tenant_key_id(bytes(range(7, 39)))])
def test_rekeyer_since_current_or_foreign_kid_is_refused(kid: str) -> None:
    with pytest.raises(ValueError, match="earlier generation"):
        TenantKeyChain([K1, K2, K3]).rekeyer(since_kid=kid)


def test_extends_and_upto_relate_chains_by_their_generations() -> None:
    one, two, other = TenantKeyChain([K1]), TenantKeyChain([K1, K2]), TenantKeyChain([K3, K2])

    assert two.extends(one) and not one.extends(two) and not two.extends(two)
    assert not other.extends(one)
    assert two.upto(tenant_key_id(K1)).kids == one.kids
    with pytest.raises(ValueError):
        one.upto(tenant_key_id(K2))


def test_chained_pseudonymizer_is_a_pseudonymizer() -> None:
    assert isinstance(TenantKeyChain([K1, K2]).pseudonymizer(), Pseudonymizer)


def test_save_chain_file_is_0600_round_trips_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "chain.key"
    chain = TenantKeyChain([K1, K2])

    save_tenant_key_chain_file(path, chain)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_tenant_key_chain(path).kids == chain.kids
    assert load_tenant_key_chain(path).generation_key(0) == K1
    with pytest.raises(KeyFileError):
        save_tenant_key_chain_file(path, chain.rotated())
