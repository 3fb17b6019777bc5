"""Deployment credentials: a private CA, the server certificate and SuperNode key pairs.

A real deployment (``docs/deployment.md``) runs ``flower-superlink`` with TLS and SuperNode
authentication, ``fedprofile serve`` behind TLS, and one ``flower-supernode`` per edge. This
module decides what to write and what to keep; the key and certificate mechanics (the
``cryptography`` package, no ``openssl`` binary) are in ``simulations.pki``::

    <out>/ca.crt                 CA certificate: copy to every edge and every `flwr` CLI host
    <out>/ca.key                 CA private key: keep offline, needed only to issue certificates
    <out>/server.crt             server certificate (SAN: localhost, 127.0.0.1 and --host names)
    <out>/server.key             server private key: the server host only
    <out>/supernodes/<name>.key  SuperNode private key (OpenSSH PEM, EC SECP384R1): that edge only
    <out>/supernodes/<name>.pub  SuperNode public key (OpenSSH): `flwr supernode register`

Every file is written with mode 0600 (directories 0700), atomically. An existing CA is reused,
so new SuperNode keys or a reissued server certificate can be added later; existing files are
never replaced unless ``force`` is given, and the CA itself never is (delete it to rotate).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import DeploymentError
from .pki import (
    certificate_hosts,
    issue_ca,
    issue_server_certificate,
    load_ec_private_key,
    new_openssh_key_pair,
    private_key_pem,
    public_key_fingerprint,
    server_certificate_problem,
    write_private_file,
)

logger = logging.getLogger(__name__)

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
SUPERNODE_DIR = "supernodes"
#: Names always in the server certificate unless ``include_loopback=False``.
LOOPBACK_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1")
#: Validity of the CA and of the server certificate, in days.
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 825

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DNS_RE = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True, slots=True)
class SuperNodeKeyPair:
    """One SuperNode's authentication key pair.

    Parameters
    ----------
    name : str
        Name of the SuperNode (file stem), e.g. the edge name.
    private_key : Path
        OpenSSH PEM private key (``flower-supernode --auth-supernode-private-key``).
    public_key : Path
        OpenSSH public key (``flwr supernode register``).
    fingerprint : str
        ``SHA256:<base64>`` of the public key blob, as ``ssh-keygen -l`` prints it.
    """

    name: str
    private_key: Path
    public_key: Path
    fingerprint: str


@dataclass(frozen=True, slots=True)
class DeploymentCredentials:
    """What :func:`generate_credentials` left in its output directory.

    Parameters
    ----------
    out_dir : Path
        The output directory.
    ca_cert, ca_key, server_cert, server_key : Path
        The CA and server certificate files.
    hosts : tuple[str, ...]
        Subject alternative names of the server certificate.
    supernodes : tuple[SuperNodeKeyPair, ...]
        The SuperNode key pairs asked for, in the order asked.
    created : tuple[Path, ...]
        Files written by this call (the others already existed and were kept).
    """

    out_dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    hosts: tuple[str, ...]
    supernodes: tuple[SuperNodeKeyPair, ...] = ()
    created: tuple[Path, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description (paths and fingerprints; no key material)."""
        return {
            "out_dir": str(self.out_dir),
            "ca_cert": str(self.ca_cert),
            "ca_key": str(self.ca_key),
            "server_cert": str(self.server_cert),
            "server_key": str(self.server_key),
            "hosts": list(self.hosts),
            "supernodes": [
                {
                    "name": s.name,
                    "private_key": str(s.private_key),
                    "public_key": str(s.public_key),
                    "fingerprint": s.fingerprint,
                }
                for s in self.supernodes
            ],
            "created": [str(p) for p in self.created],
        }


# ------------------------------------------------------------------ names
def subject_alt_names(hosts: Iterable[str], *, include_loopback: bool = True) -> tuple[str, ...]:
    """Return the normalised, de-duplicated SAN entries for ``hosts``.

    Parameters
    ----------
    hosts : Iterable[str]
        DNS names (``flower.example.com``, ``*.example.com``) or IP addresses; no scheme, port
        or path.
    include_loopback : bool
        Put ``localhost`` and ``127.0.0.1`` first (for health checks on the server host).

    Returns
    -------
    tuple[str, ...]
        Lower-case names and canonical IP addresses, first occurrence kept.

    Raises
    ------
    DeploymentError
        If a host is neither an IP address nor a valid DNS name, or nothing remains.
    """
    names: list[str] = list(LOOPBACK_HOSTS) if include_loopback else []
    for raw in hosts:
        host = raw.strip().lower()
        try:
            host = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            if not _DNS_RE.fullmatch(host) or len(host) > 253:
                raise DeploymentError(
                    f"--host {raw!r} is not a DNS name or IP address (give e.g. "
                    "flower.example.com or 10.0.0.5, without scheme, port or path)"
                ) from None
        names.append(host)
    unique = tuple(dict.fromkeys(names))
    if not unique:
        raise DeploymentError("the server certificate needs at least one --host")
    return unique


def _check_supernode_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise DeploymentError(
            f"SuperNode name {name!r} must be 1-64 letters, digits, '_', '.' or '-' and start "
            "with a letter or digit"
        )
    return name


# ------------------------------------------------------------------ SuperNode keys
def generate_supernode_key(*, out_dir: Path, name: str, force: bool = False) -> SuperNodeKeyPair:
    """Write (or keep) ``<out_dir>/<name>.key`` and ``<out_dir>/<name>.pub``.

    Parameters
    ----------
    out_dir : Path
        Directory of SuperNode keys (``<credentials>/supernodes``).
    name : str
        SuperNode name: 1-64 letters, digits, ``_.-``.
    force : bool
        Replace an existing key pair (the old public key must then be unregistered).

    Returns
    -------
    SuperNodeKeyPair
        Paths and the public key's fingerprint.

    Raises
    ------
    DeploymentError
        If the name is invalid or only one half of an existing pair is present.
    """
    _check_supernode_name(name)
    private_path = out_dir / f"{name}.key"
    public_path = out_dir / f"{name}.pub"
    if not force and private_path.exists() and public_path.exists():
        try:
            fingerprint = public_key_fingerprint(public_path.read_bytes())
        except ValueError:
            raise DeploymentError(
                f"{public_path} is not an OpenSSH public key; pass --force to replace the pair"
            ) from None
        return SuperNodeKeyPair(name, private_path, public_path, fingerprint)
    if not force and (private_path.exists() or public_path.exists()):
        raise DeploymentError(
            f"only one half of SuperNode key pair {name!r} exists in {out_dir}; "
            "pass --force to replace it"
        )
    private, public = new_openssh_key_pair(comment=name)
    write_private_file(private_path, private)
    write_private_file(public_path, public)
    logger.info("SuperNode key pair %s written", name)
    return SuperNodeKeyPair(name, private_path, public_path, public_key_fingerprint(public))


# ------------------------------------------------------------------ all at once
def _ensure_ca(
    out_dir: Path, *, at: datetime, created: list[Path]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Load the CA in ``out_dir`` or issue one (recorded in ``created``)."""
    cert_path, key_path = out_dir / CA_CERT, out_dir / CA_KEY
    if cert_path.exists() and key_path.exists():
        try:
            ca_key = load_ec_private_key(key_path)
        except (ValueError, TypeError):
            raise DeploymentError(
                f"{key_path} is not an unencrypted EC private key; move {CA_CERT} and {CA_KEY} "
                "away to issue a new CA"
            ) from None
        ca_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if ca_cert.public_key() != ca_key.public_key():
            raise DeploymentError(f"{CA_KEY} does not match {CA_CERT} in {out_dir}")
        return ca_key, ca_cert
    if cert_path.exists() or key_path.exists():
        raise DeploymentError(
            f"only one of {CA_CERT} / {CA_KEY} exists in {out_dir}; restore the other or "
            "move both away to issue a new CA"
        )
    ca_key, ca_cert = issue_ca(at=at, days=CA_VALID_DAYS)
    write_private_file(key_path, private_key_pem(ca_key))
    write_private_file(cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    created += [cert_path, key_path]
    logger.info("new deployment CA written")
    return ca_key, ca_cert


def generate_credentials(
    *,
    out_dir: Path,
    hosts: Iterable[str] = (),
    supernodes: Iterable[str] = (),
    include_loopback: bool = True,
    force: bool = False,
    server_valid_days: int = SERVER_VALID_DAYS,
    at: datetime | None = None,
) -> DeploymentCredentials:
    """Write the CA, the server certificate and SuperNode key pairs under ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Credentials directory (created with mode 0700).
    hosts : Iterable[str]
        Names the SuperLink / API is reached by (DNS names or IP addresses).
    supernodes : Iterable[str]
        SuperNode names to write key pairs for (kept if present).
    include_loopback : bool
        Also name ``localhost`` and ``127.0.0.1`` in the server certificate.
    force : bool
        Reissue the server certificate and replace the named SuperNode key pairs even if
        present; the CA is never replaced.
    server_valid_days : int
        Validity of a newly issued server certificate, in days.
    at : datetime or None
        Issue time (UTC now when ``None``).

    Returns
    -------
    DeploymentCredentials
        The files and which of them this call wrote.

    Raises
    ------
    DeploymentError
        On an invalid host or SuperNode name, a half-present CA or key pair, or an existing
        server certificate that cannot be kept (other CA, expiring, missing a host) without
        ``force``.
    """
    # 1. Validate every input before writing anything.
    if server_valid_days < 1:
        raise ValueError("server_valid_days must be at least 1")
    now = at or datetime.now(UTC)
    names = subject_alt_names(hosts, include_loopback=include_loopback)
    nodes = tuple(dict.fromkeys(_check_supernode_name(n) for n in supernodes))
    created: list[Path] = []
    # 2. The CA: reused when present.
    ca_key, ca_cert = _ensure_ca(out_dir, at=now, created=created)
    # 3. The server certificate: kept only if it still fits.
    cert_path, key_path = out_dir / SERVER_CERT, out_dir / SERVER_KEY
    reissue = force or not (cert_path.exists() and key_path.exists())
    if not reissue:
        problem = server_certificate_problem(cert_path, ca_cert=ca_cert, hosts=names, at=now)
        if problem is not None:
            raise DeploymentError(
                f"{cert_path} {problem}; pass --force to reissue it (edges keep {CA_CERT})"
            )
    if reissue:
        key, cert = issue_server_certificate(
            ca_key=ca_key, ca_cert=ca_cert, hosts=names, at=now, days=server_valid_days
        )
        write_private_file(key_path, private_key_pem(key))
        write_private_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        created += [cert_path, key_path]
        logger.info("server certificate written for %d names", len(names))
    # 4. SuperNode key pairs.
    pairs: list[SuperNodeKeyPair] = []
    for node in nodes:
        present = (out_dir / SUPERNODE_DIR / f"{node}.key").exists()
        pair = generate_supernode_key(out_dir=out_dir / SUPERNODE_DIR, name=node, force=force)
        if force or not present:
            created += [pair.private_key, pair.public_key]
        pairs.append(pair)
    return DeploymentCredentials(
        out_dir=out_dir,
        ca_cert=out_dir / CA_CERT,
        ca_key=out_dir / CA_KEY,
        server_cert=cert_path,
        server_key=key_path,
        hosts=certificate_hosts(cert_path),
        supernodes=tuple(pairs),
        created=tuple(created),
    )


# ------------------------------------------------------------------ flwr CLI connection
def flwr_connection_toml(*, name: str, address: str, root_certificates: Path) -> str:
    """Return a ``$FLWR_HOME/config.toml`` section for a TLS SuperLink connection.

    Parameters
    ----------
    name : str
        Connection name used as ``flwr run . <name>``.
    address : str
        ``host:port`` of the SuperLink (its Control API; one port in flwr 1.41).
    root_certificates : Path
        The CA certificate; written as an absolute path.

    Returns
    -------
    str
        A TOML table ``[superlink.<name>]``, to append to the config file.

    Raises
    ------
    DeploymentError
        If ``name`` or ``address`` is malformed.
    """
    _check_supernode_name(name)
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", address):
        raise DeploymentError(f"SuperLink address {address!r} must be host:port")
    ca = str(root_certificates.resolve()).replace("\\", "\\\\").replace('"', '\\"')
    return f'[superlink.{name}]\naddress = "{address}"\nroot-certificates = "{ca}"\n'
