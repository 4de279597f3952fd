"""The stream layer: the c2s stream state machine (features, STARTTLS, SASL, binding), stream
management and client state, the metrics endpoint, and the assembled server's components."""
