"""The HTTP listener: XMPP over WebSocket (RFC 7395) and the portal's static pages."""
