"""The HT-SHA-256-NONE SASL mechanism's computations (draft-schmaus-kitten-sasl-ht, the family
XEP-0484 uses): new tokens, the proof each side shows, and what is kept of a token.

Without channel binding the proofs depend on the token alone, so the server needs no copy of
the token to check one: it keeps the SHA-256 of the client's proof, which logs nobody in, and
the proof it answers with. Pure computation, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from chorus_presence.storage.sign_ins import StoredToken

MECHANISM = "HT-SHA-256-NONE"
# 256 bits of randomness in every token.
TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def initiator_proof(token: str) -> bytes:
    """HMAC(token, "Initiator" || cb-data), cb-data empty: what the client sends."""
    return hmac.digest(token.encode(), b"Initiator", "sha256")


def responder_proof(token: str) -> bytes:
    """HMAC(token, "Responder" || cb-data): what the server answers, proving it knew it."""
    return hmac.digest(token.encode(), b"Responder", "sha256")


def verifier(proof: bytes) -> bytes:
    """What a client's proof is looked up and compared by."""
    return hashlib.sha256(proof).digest()


def stored(token: str, expires_at: float) -> StoredToken:
    return StoredToken(verifier(initiator_proof(token)), responder_proof(token), expires_at)
