"""Client-side support for bots: a slixmpp plugin for the chorus-presence extensions."""
