"""SCRAM credentials (RFC 5802, RFC 7677): deriving them from a password and checking one.

Only salted, derived keys are ever kept; the password itself never leaves this module. Pure
computation, no I/O: callers that must not block the event loop run it in a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from scramp import ScramException, ScramMechanism
from scramp.utils import saslprep

from chorus_presence.storage.accounts import ScramCredentials

# Strongest first: the order mechanisms are offered in.
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1")
MAX_PASSWORD_LENGTH = 1024
SALT_BYTES = 16

_DIGEST_SIZES = {
    "SCRAM-SHA-256": hashlib.sha256().digest_size,
    "SCRAM-SHA-1": hashlib.sha1().digest_size,
}


def prepare_password(password: str) -> str:
    """The SASLprep form of a new password; ValueError if it is empty, too long or invalid."""
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password is longer than {MAX_PASSWORD_LENGTH} characters")
    try:
        prepared = saslprep(password)
    except ScramException as exc:
        raise ValueError(f"password is not allowed: {exc.args[0]}") from None
    if not prepared:
        raise ValueError("password is empty")
    return prepared


def derive_credentials(password: str, iterations: int) -> dict[str, ScramCredentials]:
    """Credentials for every mechanism in MECHANISMS, each with its own random salt."""
    prepared = prepare_password(password)
    return {
        mechanism: _derive(mechanism, prepared, secrets.token_bytes(SALT_BYTES), iterations)
        for mechanism in MECHANISMS
    }


def verify_password(password: str, credentials: ScramCredentials, mechanism: str) -> bool:
    """Whether `password` is the one `credentials` were derived from (for SASL PLAIN)."""
    try:
        candidate = _derive(mechanism, password, credentials.salt, credentials.iterations)
    except ScramException:
        # A password SASLprep refuses cannot be the stored one.
        return False
    return hmac.compare_digest(candidate.stored_key, credentials.stored_key)


def fake_credentials(
    secret: bytes, username: str, mechanism: str, iterations: int
) -> ScramCredentials:
    """Stand-in credentials for a user that does not exist, indistinguishable from outside.

    The salt is a keyed hash of the username, so asking twice for the same unknown user
    gives the same salt, as a real account would. The keys are keyed hashes too; finding a
    password that matches them would mean inverting the hash.
    """

    def tag(label: str, size: int) -> bytes:
        message = f"{label}\0{mechanism}\0{username}".encode()
        return hmac.digest(secret, message, "sha256")[:size]

    _check_mechanism(mechanism)
    size = _DIGEST_SIZES[mechanism]
    return ScramCredentials(
        salt=tag("salt", SALT_BYTES),
        iterations=iterations,
        stored_key=tag("stored-key", size),
        server_key=tag("server-key", size),
    )


def _check_mechanism(mechanism: str) -> None:
    # scramp knows more mechanisms than are stored; asking for another is a caller's bug.
    if mechanism not in MECHANISMS:
        raise ValueError(f"unsupported mechanism {mechanism!r}")


def _derive(mechanism: str, password: str, salt: bytes, iterations: int) -> ScramCredentials:
    _check_mechanism(mechanism)
    salt, stored_key, server_key, iterations = ScramMechanism(mechanism).make_auth_info(
        password, iteration_count=iterations, salt=salt
    )
    return ScramCredentials(salt, iterations, stored_key, server_key)
