"""Self-signed TLS certificates for a fresh install.

Owns creating the server's certificate and key when none exist yet, and the fingerprints an
operator compares with what a client shows when it first meets that certificate.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)
# The fingerprints clients show: most SHA-256, some (profanity, older Psi) only SHA-1.
FINGERPRINTS = {"SHA-256": hashes.SHA256, "SHA-1": hashes.SHA1}
# Clients and servers disagree a little about clocks; backdating avoids "not yet valid".
BACKDATE = datetime.timedelta(hours=1)


class CertificateError(Exception):
    """Only one of the certificate and key exists, so neither can be used or replaced."""


def ensure_certificate(cert: Path, key: Path, domain: str) -> bool:
    """Create a self-signed certificate and key for `domain` unless both files exist.

    Returns True when new files were written. Raises CertificateError when only one exists:
    it may be an operator's real certificate or key, which must not be overwritten.
    """
    if cert.exists() and key.exists():
        return False
    for present, missing in ((cert, key), (key, cert)):
        if present.exists():
            raise CertificateError(
                f"{present} exists but {missing} does not: add {missing}, or move {present}"
                " away for a new self-signed pair"
            )
    private_key = ec.generate_private_key(ec.SECP256R1())
    certificate = _build_certificate(private_key, domain)
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key, key_pem)
    cert.parent.mkdir(parents=True, exist_ok=True)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return True


def certificate_fingerprint(cert: Path, algorithm: str = "SHA-256") -> str:
    """A fingerprint of a PEM certificate (an algorithm of FINGERPRINTS), as colon-separated
    upper-case hex."""
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    return certificate.fingerprint(FINGERPRINTS[algorithm]()).hex(":").upper()


def is_self_signed(cert: Path) -> bool:
    """Whether the PEM certificate names itself as issuer, so no client trusts it by default."""
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    return certificate.issuer == certificate.subject


def _build_certificate(private_key: ec.EllipticCurvePrivateKey, domain: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    public_key = private_key.public_key()
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(domain), x509.DNSName(f"*.{domain}")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)
