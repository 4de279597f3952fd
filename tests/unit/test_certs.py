"""Self-signed certificate creation, checked the way a client would use it."""

from __future__ import annotations

import hashlib
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509

from chorus_presence.certs import (
    CertificateError,
    certificate_fingerprint,
    ensure_certificate,
    is_self_signed,
)

DOMAIN = "localhost"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    cert = tmp_path / "tls" / "cert.pem"
    key = tmp_path / "tls" / "private" / "key.pem"
    assert ensure_certificate(cert, key, DOMAIN) is True
    return cert, key


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[int]:
    """A one-connection TLS server on loopback; yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.settimeout(10)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(16))
        except (ssl.SSLError, OSError):
            # The client refusing the certificate surfaces here too; the client side asserts.
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=10)


def client_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cert)
    # Strict mode is the default from Python 3.13 on; the certificate must pass it already.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def test_creates_files_with_private_key_mode(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    assert cert.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_certificate_names_domain_and_subdomains(pair: tuple[Path, Path]) -> None:
    certificate = x509.load_pem_x509_certificate(pair[0].read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DOMAIN, f"*.{DOMAIN}"]
    assert is_self_signed(pair[0])
    common_name = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert common_name[0].value == DOMAIN
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.days >= 3650


def test_existing_pair_is_kept(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    before = cert.read_bytes(), key.read_bytes()
    assert ensure_certificate(cert, key, DOMAIN) is False
    assert (cert.read_bytes(), key.read_bytes()) == before


@pytest.mark.parametrize("lost", [0, 1], ids=["cert", "key"])
def test_half_a_pair_is_left_alone(pair: tuple[Path, Path], lost: int) -> None:
    missing, kept = pair[lost], pair[1 - lost]
    missing.unlink()
    before = kept.read_bytes()
    with pytest.raises(CertificateError, match="does not"):
        ensure_certificate(*pair, DOMAIN)
    assert kept.read_bytes() == before
    assert not missing.exists()


def test_handshake_verifies_hostname(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    with (
        tls_server(cert, key) as port,
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_context(cert).wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        tls.sendall(b"ping")
        assert tls.recv(16) == b"ping"
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    digest = hashlib.sha256(der).hexdigest()
    assert certificate_fingerprint(cert).replace(":", "").lower() == digest


def test_handshake_rejects_other_hostname(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    with (
        tls_server(cert, key) as port,
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client_context(cert).wrap_socket(raw, server_hostname="example.org")


def test_fingerprint_format(pair: tuple[Path, Path]) -> None:
    fingerprint = certificate_fingerprint(pair[0])
    parts = fingerprint.split(":")
    assert len(parts) == 32
    assert all(len(p) == 2 and p == p.upper() for p in parts)
