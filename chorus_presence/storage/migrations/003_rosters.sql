-- Rosters (RFC 6121 section 2) with their subscription states, pending inbound subscription
-- requests and a per-user roster version for RFC 6121 section 2.6 versioning.

CREATE TABLE roster_items (
    owner        TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    -- The contact's bare JID, canonical form.
    contact      TEXT    NOT NULL,
    name         TEXT,
    subscription TEXT    NOT NULL DEFAULT 'none'
                         CHECK (subscription IN ('none', 'to', 'from', 'both')),
    -- ask='subscribe': the owner asked to see the contact's presence and awaits an answer.
    pending_out  INTEGER NOT NULL DEFAULT 0 CHECK (pending_out IN (0, 1)),
    -- RFC 6121 section 3.4 pre-approval of the contact by the owner.
    approved     INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
    -- A JSON array of group names.
    groups       TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (owner, contact)
);

-- Requests from `contact` to see the presence of `owner` that `owner` has not answered yet.
-- The contact need not be in the owner's roster.
CREATE TABLE subscription_requests (
    owner      TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    contact    TEXT NOT NULL,
    status     TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (owner, contact)
);

CREATE TABLE roster_versions (
    owner   TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    version INTEGER NOT NULL
);
