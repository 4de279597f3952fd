"""XMPP addresses (JIDs) as RFC 7622 defines them.

This module owns the canonical form of an address: splitting a JID string into localpart,
domainpart and resourcepart (section 3.1), preparing each part with the rules RFC 7622 assigns
to it (sections 3.2 to 3.4), and the immutable value the rest of the server compares, hashes
and routes on. Code elsewhere should never split on '@' or '/' or compare raw address strings.

Domain names are prepared with Python's built-in IDNA2003 codec plus DNS label rules rather
than full IDNA2008; the differences (such as U+00DF 'ß' mapping to "ss") only affect exotic
internationalised domains, which this server does not host.
"""

from __future__ import annotations

import ipaddress
import re
import stringprep
from dataclasses import dataclass
from functools import lru_cache

from precis_i18n import get_profile

__all__ = ["JID", "MAX_PART_BYTES", "JIDError", "nameprep", "nodeprep", "resourceprep"]

# RFC 7622 section 3.1: each part is 1 to 1023 octets of UTF-8 once prepared.
MAX_PART_BYTES = 1023

# Preparation shrinks text by at most a few code points into one (composition, width and
# space mapping), so longer input can never prepare down to MAX_PART_BYTES. Refusing it before
# the Unicode work keeps hostile stanzas cheap; the only casualties are domain labels padded
# with characters IDNA2003 maps to nothing.
_MAX_RAW_PART_CHARS = 4 * MAX_PART_BYTES

# Every stanza's 'to' goes through JID.parse, and a server sees the same few thousand
# addresses over and over. The part caches pay off when one bare JID has many resources.
_PARSE_CACHE_SIZE = 8192
_PART_CACHE_SIZE = 4096

_USERNAME_CASE_MAPPED = get_profile("UsernameCaseMapped")
_OPAQUE_STRING = get_profile("OpaqueString")

# RFC 7622 section 3.3.1. Checked after the PRECIS profile because its width mapping turns
# e.g. FULLWIDTH COMMERCIAL AT into '@'.
_LOCALPART_FORBIDDEN = re.compile("[\"&'/:<>@]")

# IDNA treats these as label separators too (RFC 3490 section 3.1); mapping them before
# splitting keeps a label from smuggling a dot past the label checks.
_DOT_VARIANTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ACE_PREFIX = "xn--"


class JIDError(ValueError):
    """Raised for text that is not a valid JID, or a part that is not valid for its slot."""


def _reason(exc: UnicodeError) -> str:
    return getattr(exc, "reason", None) or str(exc)


def _check_raw(text: str, what: str) -> None:
    if not text:
        raise JIDError(f"empty {what}")
    if len(text) > _MAX_RAW_PART_CHARS:
        raise JIDError(f"{what} is longer than {MAX_PART_BYTES} bytes")


def _check_size(prepared: str, what: str) -> None:
    if len(prepared.encode("utf-8")) > MAX_PART_BYTES:
        raise JIDError(f"{what} is longer than {MAX_PART_BYTES} bytes")


@lru_cache(maxsize=_PART_CACHE_SIZE)
def nodeprep(localpart: str) -> str:
    """Return the canonical form of a localpart (RFC 7622 section 3.3).

    Applies the PRECIS UsernameCaseMapped profile (RFC 8265), then refuses the characters
    section 3.3.1 forbids and anything outside 1..1023 UTF-8 bytes. Raises JIDError.
    """
    _check_raw(localpart, "localpart")
    try:
        prepared: str = _USERNAME_CASE_MAPPED.enforce(localpart)
    except UnicodeError as exc:
        raise JIDError(f"invalid localpart {localpart!r}: {_reason(exc)}") from exc
    forbidden = _LOCALPART_FORBIDDEN.search(prepared)
    if forbidden:
        raise JIDError(f"localpart {localpart!r} contains forbidden {forbidden.group()!r}")
    _check_size(prepared, "localpart")
    return prepared


@lru_cache(maxsize=_PART_CACHE_SIZE)
def resourceprep(resource: str) -> str:
    """Return the canonical form of a resourcepart (RFC 7622 section 3.4).

    Applies the PRECIS OpaqueString profile (RFC 8265), which keeps case and allows spaces,
    '@' and '/', and checks 1..1023 UTF-8 bytes. Raises JIDError.
    """
    _check_raw(resource, "resourcepart")
    try:
        prepared: str = _OPAQUE_STRING.enforce(resource)
    except UnicodeError as exc:
        raise JIDError(f"invalid resourcepart {resource!r}: {_reason(exc)}") from exc
    _check_size(prepared, "resourcepart")
    return prepared


def _prepare_label(label: str) -> str:
    """Return one DNS label in canonical form: LDH lowercase, or a U-label for IDNs."""
    if label.isascii():
        ascii_label = label.lower()
    else:
        try:
            ascii_label = label.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise JIDError(f"invalid domain label {label!r}: {_reason(exc)}") from exc
    # Checking the ASCII form covers IDNs too: nameprep may map a character to an ASCII one
    # that is no letter, digit or hyphen, and punycode copies those into the A-label.
    if not _LDH_LABEL.fullmatch(ascii_label):
        raise JIDError(f"invalid domain label {label!r}")
    if not ascii_label.startswith(_ACE_PREFIX):
        return ascii_label
    # A-labels and U-labels name the same domain; the U-label is the canonical one (RFC 7622
    # section 3.2), and decoding checks the A-label round-trips.
    try:
        unicode_label = ascii_label.encode("ascii").decode("idna")
    except UnicodeError as exc:
        raise JIDError(f"invalid domain label {label!r}: {_reason(exc)}") from exc
    # The codec tolerates code points unassigned in its Unicode 3.2 tables (emoji, for one);
    # IDNA forbids them in stored names, and their meaning could change under us.
    if any(stringprep.in_table_a1(char) for char in unicode_label):
        raise JIDError(f"domain label {label!r} contains unassigned code points")
    return unicode_label


def _prepare_ipv6_literal(address: str) -> str:
    # A zone index only means something on the host that wrote it.
    if "%" in address:
        raise JIDError(f"IPv6 literal [{address}] has a zone index")
    try:
        return f"[{ipaddress.IPv6Address(address).compressed}]"
    except ValueError as exc:
        raise JIDError(f"invalid IPv6 literal [{address}]") from exc


@lru_cache(maxsize=_PART_CACHE_SIZE)
def nameprep(domain: str) -> str:
    """Return the canonical form of a domainpart (RFC 7622 section 3.2).

    Accepts a DNS name (lowercased, one trailing dot dropped, internationalised labels
    checked through IDNA and kept as U-labels), a dotted-quad IPv4 literal or a bracketed
    IPv6 literal, within 1..1023 UTF-8 bytes. Raises JIDError.
    """
    _check_raw(domain, "domainpart")
    if domain.startswith("[") and domain.endswith("]"):
        return _prepare_ipv6_literal(domain[1:-1])
    name = domain if domain.isascii() else domain.translate(_DOT_VARIANTS)
    # RFC 7622 section 3.2: a fully qualified "example.com." names the same domain.
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise JIDError(f"invalid domainpart {domain!r}")
    labels = [_prepare_label(label) for label in name.split(".")]
    last = labels[-1]
    # No top-level domain is all digits, so such a name can only be an IPv4 literal.
    if last.isascii() and last.isdigit():
        try:
            return str(ipaddress.IPv4Address(".".join(labels)))
        except ValueError as exc:
            raise JIDError(f"invalid IPv4 literal {domain!r}") from exc
    prepared = ".".join(labels)
    _check_size(prepared, "domainpart")
    return prepared


def _split(text: str) -> tuple[str | None, str, str | None]:
    """Split a JID string into raw parts following RFC 7622 section 3.1."""
    if not text:
        raise JIDError("empty JID")
    # The resourcepart runs from the first '/' and may itself contain '/' and '@'.
    head, slash, resource = text.partition("/")
    if slash and not resource:
        raise JIDError(f"empty resourcepart in {text!r}")
    local, at, domain = head.partition("@")
    if not at:
        local, domain = "", head
    elif not local:
        raise JIDError(f"empty localpart in {text!r}")
    if not domain:
        raise JIDError(f"empty domainpart in {text!r}")
    return local or None, domain, resource if slash else None


@dataclass(frozen=True, slots=True)
class JID:
    """An XMPP address in canonical form; equal JIDs have equal fields and hashes.

    Constructing one directly prepares each part, so JID("Alice", "EXAMPLE.com") equals
    JID.parse("alice@example.com").
    """

    local: str | None
    domain: str
    resource: str | None = None

    def __post_init__(self) -> None:
        if self.local is not None:
            object.__setattr__(self, "local", nodeprep(self.local))
        object.__setattr__(self, "domain", nameprep(self.domain))
        if self.resource is not None:
            object.__setattr__(self, "resource", resourceprep(self.resource))

    @classmethod
    def _from_prepared(cls, local: str | None, domain: str, resource: str | None) -> JID:
        # Parts taken from an existing JID are canonical already; skip preparing them again.
        jid = object.__new__(cls)
        object.__setattr__(jid, "local", local)
        object.__setattr__(jid, "domain", domain)
        object.__setattr__(jid, "resource", resource)
        return jid

    @classmethod
    @lru_cache(maxsize=_PARSE_CACHE_SIZE)
    def parse(cls, text: str) -> JID:
        """Parse and prepare a JID string; raises JIDError if it is not a valid JID.

        Results are cached (bounded LRU), so parsing the same text twice returns the same
        object; that is safe because JIDs are immutable.
        """
        local, domain, resource = _split(text)
        return cls(local, domain, resource)

    @property
    def bare(self) -> JID:
        """This address without its resourcepart."""
        if self.resource is None:
            return self
        return self._from_prepared(self.local, self.domain, None)

    def with_resource(self, resource: str) -> JID:
        """This address with its resourcepart replaced; raises JIDError for a bad resource."""
        return self._from_prepared(self.local, self.domain, resourceprep(resource))

    @property
    def is_bare(self) -> bool:
        return self.resource is None

    def __str__(self) -> str:
        text = self.domain if self.local is None else f"{self.local}@{self.domain}"
        return text if self.resource is None else f"{text}/{self.resource}"
