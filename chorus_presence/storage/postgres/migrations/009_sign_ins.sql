-- Sign-ins: a client (a browser, an app) that stays logged in with server-issued tokens
-- rather than the password (XEP-0484 FAST, docs/protocol.md). One per account and client.
-- A token is never stored: each slot keeps the SHA-256 of the proof a client presents with
-- it, the proof the server answers with, and when the token expires. 'current' is the token
-- last used, 'next' the one issued after it and not used yet.
CREATE TABLE sign_ins (
    -- The short public name the portal and the command line show and revoke it by.
    id                text             NOT NULL PRIMARY KEY,
    username          text             NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    -- The client's own identifier (the SASL2 user-agent id) and what it says it is.
    client_id         text             NOT NULL,
    label             text             NOT NULL,
    -- The SASL mechanism the tokens are bound to.
    mechanism         text             NOT NULL,
    -- Seconds since the epoch.
    created_at        double precision NOT NULL,
    last_used_at      double precision NOT NULL,
    current_verifier  bytea,
    current_responder bytea,
    current_expires   double precision,
    next_verifier     bytea,
    next_responder    bytea,
    next_expires      double precision,
    UNIQUE (username, client_id)
);
