"""XMPP protocol primitives: JIDs, namespaces, errors, stanza builders and the stream parser."""
