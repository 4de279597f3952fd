"""The c2s listener, the stream state machine, sessions and the stanza router."""
