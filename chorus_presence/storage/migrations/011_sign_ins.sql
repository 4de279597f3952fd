-- Sign-ins: a client (a browser, an app) that stays logged in with server-issued tokens
-- rather than the password (XEP-0484 FAST, docs/protocol.md). One per account and client.
-- A token is never stored: each slot keeps the SHA-256 of the proof a client presents with
-- it, the proof the server answers with, and when the token expires. 'current' is the token
-- last used, 'next' the one issued after it and not used yet.
CREATE TABLE sign_ins (
    -- The short public name the portal and the command line show and revoke it by.
    id                TEXT NOT NULL PRIMARY KEY,
    username          TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    -- The client's own identifier (the SASL2 user-agent id) and what it says it is.
    client_id         TEXT NOT NULL,
    label             TEXT NOT NULL,
    -- The SASL mechanism the tokens are bound to.
    mechanism         TEXT NOT NULL,
    -- Seconds since the epoch.
    created_at        REAL NOT NULL,
    last_used_at      REAL NOT NULL,
    current_verifier  BLOB,
    current_responder BLOB,
    current_expires   REAL,
    next_verifier     BLOB,
    next_responder    BLOB,
    next_expires      REAL,
    UNIQUE (username, client_id)
);
