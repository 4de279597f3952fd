"""Display names: what lists show for an account instead of its bare JID, one per account,
set by the user with vCard4 (XEP-0292) and by the admin, and checked here for both.

This server has no PEP, so the vCard is the IQ form XEP-0292 section 3 describes: a set of
`<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>` at the user's own bare JID stores the
`fn` text (else the `nickname` text) as the name, and a vCard with neither clears it; a get at
any account's bare JID answers with the name as `fn`. Every account of the server may read
every name (a company directory). Anyone the owner blocks (XEP-0191) is refused by the block
filter with a bare `forbidden` before the request gets here, and a nonexistent account is
answered with that same bare `forbidden`, as discovery and last activity answer: nobody can
tell a block from an account that does not exist.

Two more ways carry names, under the same rule. A roster of hundreds would take as many vCard
IQs at each login, so a get of `<names xmlns='urn:chorus:names:0'>` at the user's own account
answers for up to MAX_ITEMS addresses in one IQ, leaving out whoever has no name, does not
exist, or is across an XEP-0191 block either way. And a subscription request carries a
nickname (XEP-0172); `checked_nick` is what is kept of the one a requester sends.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import DiscoFeatures, IqRequest
from chorus_presence.services.accounts import AccountService
from chorus_presence.storage.interfaces import DisplayNameStore
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, child, element

VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"
VCARD = ns.qname(VCARD4, "vcard")
# What disco#info at an account lists where the vCard4 IQs are answered (XEP-0292 section 3).
FEATURE = "urn:xmpp:vcard4"
MAX_CHARS = 64
_FN_TEXT = f"{{{VCARD4}}}fn/{{{VCARD4}}}text"
_NICKNAME_TEXT = f"{{{VCARD4}}}nickname/{{{VCARD4}}}text"
NAMES = ns.qname(ns.CHORUS_NAMES, "names")
_ITEM = ns.qname(ns.CHORUS_NAMES, "item")
# The addresses one names query may ask about: a company roster fits, a stanza stays small.
MAX_ITEMS = 500

# Whether either of two bare JIDs blocks the other (XEP-0191).
BlockCheck = Callable[[JID, JID], bool]


class InvalidName(ValueError):
    """A display name that cannot be stored; the message is fit to show as it is."""


def checked_name(text: str) -> str:
    """The name to store for `text`: trimmed, 1 to MAX_CHARS characters, none of them a
    control character; InvalidName otherwise."""
    name = text.strip()
    if not name:
        raise InvalidName("The display name is empty")
    if len(name) > MAX_CHARS:
        raise InvalidName(f"The display name is longer than {MAX_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidName("The display name contains a control character")
    return name


def checked_nick(text: str) -> str | None:
    """What is kept of the nickname (XEP-0172) a subscription request carries: its control
    characters dropped and trimmed, None when nothing is left; InvalidName when longer than a
    display name may be."""
    nick = "".join(char for char in text if unicodedata.category(char) != "Cc").strip()
    if len(nick) > MAX_CHARS:
        raise InvalidName(f"The nickname is longer than {MAX_CHARS} characters")
    return nick or None


class DisplayNameService:
    def __init__(
        self, repo: DisplayNameStore, accounts: AccountService, blocked_either: BlockCheck
    ) -> None:
        self.repo = repo
        self._accounts = accounts
        self._blocked_either = blocked_either

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.iq("get", "bare", VCARD), self.get_vcard)
        bus.on(topics.iq("set", "bare", VCARD), self.set_vcard)
        bus.on(topics.iq("get", "bare", NAMES), self.get_names)
        bus.on(topics.DISCO_ACCOUNT_FEATURES, _feature)
        bus.on(topics.DISCO_FEATURES, _names_feature)

    async def get_vcard(self, request: IqRequest) -> Element:
        target = request.target or request.user
        owner = target.local
        if owner is None or (
            target.bare != request.user and not await self._accounts.exists(owner)
        ):
            # No text: the block filter's refusal has none, and the two must not differ.
            raise StanzaError("forbidden")
        vcard = element("vcard", namespace=VCARD4)
        name = await self.repo.get(owner)
        if name is not None:
            child(child(vcard, "fn"), "text", text=name)
        return request.reply(vcard)

    async def set_vcard(self, request: IqRequest) -> Element:
        if request.target is not None and request.target.bare != request.user:
            # No text, as a block's refusal of the same set has none.
            raise StanzaError("forbidden")
        text = request.payload.findtext(_FN_TEXT)
        if text is None:
            text = request.payload.findtext(_NICKNAME_TEXT)
        if text is None:
            await self.repo.clear(request.username)
            return request.reply()
        try:
            name = checked_name(text)
        except InvalidName as error:
            raise StanzaError("bad-request", str(error)) from None
        if not await self.repo.set(request.username, name):
            # Removed while this was handled; the router answers so for a retired session.
            raise StanzaError("not-authorized", "The account was removed")
        return request.reply()

    async def get_names(self, request: IqRequest) -> Element:
        if request.target is not None and request.target.bare != request.user:
            raise StanzaError("forbidden", "Ask your own account for names")
        items = request.payload.findall(_ITEM)
        if len(items) > MAX_ITEMS:
            raise StanzaError("bad-request", f"At most {MAX_ITEMS} addresses in one request")
        wanted: dict[str, str] = {}
        for item in items:
            text = item.get("jid") or ""
            try:
                jid = JID.parse(text).bare
            except JIDError:
                raise StanzaError("jid-malformed", f"'{text}' is not a valid JID") from None
            if (
                jid.local is not None
                and jid.domain == request.user.domain
                and not self._blocked_either(request.user, jid)
            ):
                wanted[jid.local] = str(jid)
        names = await self.repo.get_many(list(wanted))
        answer = element("names", namespace=ns.CHORUS_NAMES)
        for owner, name in sorted(names.items()):
            child(answer, "item", {"jid": wanted[owner], "name": name})
        return request.reply(answer)


def _feature(event: DiscoFeatures) -> None:
    event.features.add(FEATURE)


def _names_feature(event: DiscoFeatures) -> None:
    event.features.add(ns.CHORUS_NAMES)
