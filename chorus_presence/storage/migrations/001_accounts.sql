-- Local user accounts and the SCRAM credentials they authenticate with.
-- Only salted, derived keys are stored (RFC 5802 section 3); never a password.

CREATE TABLE accounts (
    -- The nodeprep-normalised localpart of the account's bare JID.
    username   TEXT    NOT NULL PRIMARY KEY,
    disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE scram_credentials (
    username   TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    mechanism  TEXT    NOT NULL CHECK (mechanism IN ('SCRAM-SHA-1', 'SCRAM-SHA-256')),
    salt       BLOB    NOT NULL,
    iterations INTEGER NOT NULL CHECK (iterations > 0),
    stored_key BLOB    NOT NULL,
    server_key BLOB    NOT NULL,
    PRIMARY KEY (username, mechanism)
);
