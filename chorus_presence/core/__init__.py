"""The middle of the server that every service builds on: the event bus, the session protocol,
the registry of bound sessions, the stanza router and the metrics."""
