from __future__ import annotations

from pathlib import Path

import pytest

from client.edge import init_edge, open_tenant_key, validate_edge_name
from client.errors import EdgeConfigError
from client.store import EdgeStore
from models import Channel
from privacy import KeyFileError, create_key_file


def test_init_edge_creates_store_and_owner_only_key(tmp_path: Path) -> None:
    info = init_edge(edge_dir=tmp_path / "e", name="desk-1", channel=Channel.DESK)

    assert info.tenant_key_created and not info.already_initialised
    assert (tmp_path / "e" / "edge.sqlite").is_file()
    assert info.tenant_key.stat().st_mode & 0o077 == 0


def test_init_edge_twice_same_identity_is_idempotent(tmp_path: Path) -> None:
    init_edge(edge_dir=tmp_path / "e", name="desk-1", channel=Channel.DESK)

    again = init_edge(edge_dir=tmp_path / "e", name="desk-1", channel=Channel.DESK)

    assert again.already_initialised and not again.tenant_key_created


def test_init_edge_other_identity_in_same_dir_is_refused(tmp_path: Path) -> None:
    init_edge(edge_dir=tmp_path / "e", name="desk-1", channel=Channel.DESK)

    with pytest.raises(EdgeConfigError, match="already holds edge"):
        init_edge(edge_dir=tmp_path / "e", name="desk-1", channel=Channel.SMS)


def test_init_edge_with_another_key_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "k1.key", tmp_path / "k2.key"
    create_key_file(first)
    create_key_file(second)
    init_edge(edge_dir=tmp_path / "e", name="w", channel=Channel.WEB, tenant_key=first)

    with pytest.raises(EdgeConfigError, match="another tenant key"):
        init_edge(edge_dir=tmp_path / "e", name="w", channel=Channel.WEB, tenant_key=second)


def test_init_edge_shared_key_must_exist(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        init_edge(
            edge_dir=tmp_path / "e",
            name="w",
            channel=Channel.WEB,
            tenant_key=tmp_path / "missing.key",
        )


def test_open_tenant_key_returns_recorded_key_and_refuses_swapped_one(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    raw = create_key_file(key)
    other = tmp_path / "other.key"
    create_key_file(other)
    init_edge(edge_dir=tmp_path / "e", name="w", channel=Channel.WEB, tenant_key=key)

    with EdgeStore.for_edge_dir(tmp_path / "e") as store:
        assert open_tenant_key(store) == raw
        with pytest.raises(EdgeConfigError, match="not the key"):
            open_tenant_key(store, override=other)


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "名字"])
def test_validate_edge_name_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="edge names"):
        validate_edge_name(name)
