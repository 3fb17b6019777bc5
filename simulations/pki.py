"""Certificate and key mechanics behind ``deployment``: EC P-384, X.509 and OpenSSH formats.

Pure functions over the ``cryptography`` package: issue a CA and a server certificate, make
a SuperNode key pair, read names and fingerprints back, and write private files with mode
0600. Misuse raises ``ValueError``; ``deployment`` turns conditions an operator can fix into
``DeploymentError`` messages.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Curve of every key (SuperNode authentication requires a NIST curve; Flower uses P-384).
CURVE = ec.SECP384R1
#: Certificates within this many days of expiry are not kept.
RENEW_BEFORE_DAYS = 30

_ORGANIZATION = "fedprofile"
_CA_NAME = "fedprofile deployment CA"


# ------------------------------------------------------------------ files
def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (whatever the umask).

    Parameters
    ----------
    path : Path
        Destination; its missing parent folders are created with mode 0700.
    data : bytes
        File content.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return ``key`` as unencrypted PKCS#8 PEM (what TLS servers load)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_ec_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted PEM EC private key.

    Raises
    ------
    ValueError
        If the file holds no unencrypted EC private key.
    """
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path.name} is not an EC private key")
    return key


# ------------------------------------------------------------------ certificates
def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_usage(*, signing_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not signing_certificates,
        key_cert_sign=signing_certificates,
        crl_sign=signing_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def issue_ca(*, at: datetime, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Return a new CA key and its self-signed certificate (path length 0), valid from ``at``."""
    key = ec.generate_private_key(CURVE())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(_CA_NAME))
        .issuer_name(_name(_CA_NAME))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - timedelta(minutes=5))
        .not_valid_after(at + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA384())
    )
    return key, cert


def issue_server_certificate(
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: Sequence[str],
    at: datetime,
    days: int,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Return a new TLS server key and its certificate naming ``hosts``, signed by the CA.

    The certificate never outlives the CA; it carries the extensions strict verifiers ask
    for (server-auth EKU, SAN, subject and authority key identifiers).
    """
    if not hosts:
        raise ValueError("hosts must name at least one DNS name or IP address")
    key = ec.generate_private_key(CURVE())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - timedelta(minutes=5))
        .not_valid_after(min(at + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA384())
    )
    return key, cert


def certificate_hosts(cert_path: Path) -> tuple[str, ...]:
    """Return the DNS names and IP addresses in a certificate's SAN extension, in order.

    Parameters
    ----------
    cert_path : Path
        PEM certificate.

    Returns
    -------
    tuple[str, ...]
        The names; empty without a SAN extension.
    """
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(name.value) for name in san if isinstance(name, x509.DNSName | x509.IPAddress))


def server_certificate_problem(
    cert_path: Path, *, ca_cert: x509.Certificate, hosts: Sequence[str], at: datetime
) -> str | None:
    """Return why the certificate at ``cert_path`` cannot be kept, or ``None`` if it can.

    It must be issued by ``ca_cert``, valid for more than ``RENEW_BEFORE_DAYS`` days after
    ``at`` and name every one of ``hosts``.
    """
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "was not issued by the CA in this directory"
    if cert.not_valid_after_utc <= at + timedelta(days=RENEW_BEFORE_DAYS):
        return f"expires within {RENEW_BEFORE_DAYS} days"
    missing = sorted(set(hosts) - set(certificate_hosts(cert_path)))
    if missing:
        return f"does not name {', '.join(missing)}"
    return None


# ------------------------------------------------------------------ SuperNode keys
def new_openssh_key_pair(comment: str) -> tuple[bytes, bytes]:
    """Return a new P-384 key pair as (OpenSSH PEM private key, OpenSSH public key line).

    These are the formats ``flower-supernode --auth-supernode-private-key`` and
    ``flwr supernode register`` load.
    """
    key = ec.generate_private_key(CURVE())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public + b" " + comment.encode() + b"\n"


def public_key_fingerprint(public_openssh: bytes) -> str:
    """Return ``SHA256:<base64>`` of an OpenSSH public key line, as ``ssh-keygen -l`` does.

    Raises
    ------
    ValueError
        If the line is not ``<type> <base64 blob> [comment]``.
    """
    parts = public_openssh.split()
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key line")
    blob = base64.b64decode(parts[1], validate=True)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
