-- Local user accounts and the SCRAM credentials they authenticate with.
-- Only salted, derived keys are stored (RFC 5802 section 3); never a password.

CREATE TABLE accounts (
    -- The nodeprep-normalised localpart of the account's bare JID.
    username   text        NOT NULL PRIMARY KEY,
    disabled   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT date_trunc('second', now())
);

CREATE TABLE scram_credentials (
    username   text    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    mechanism  text    NOT NULL CHECK (mechanism IN ('SCRAM-SHA-1', 'SCRAM-SHA-256')),
    salt       bytea   NOT NULL,
    iterations integer NOT NULL CHECK (iterations > 0),
    stored_key bytea   NOT NULL,
    server_key bytea   NOT NULL,
    PRIMARY KEY (username, mechanism)
);
