-- Per-user product settings, and the presence blocked list of "who may see my presence".

CREATE TABLE user_settings (
    owner             TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    -- What happens to a request to see the owner's presence: ask the owner, approve it
    -- (unless blocked), or refuse it (unless allowed).
    visibility_policy TEXT    NOT NULL DEFAULT 'ask'
                              CHECK (visibility_policy IN ('ask', 'everyone', 'nobody')),
    -- Presence automation: show "Away / Not logged in" while no resource is online.
    away_when_offline INTEGER NOT NULL DEFAULT 0 CHECK (away_when_offline IN (0, 1)),
    -- "My presence decides how I receive calls".
    routing_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (routing_enabled IN (0, 1)),
    default_device    TEXT,
    -- May ask which device rings for any user (a PBX or its bot).
    routing_permission INTEGER NOT NULL DEFAULT 0 CHECK (routing_permission IN (0, 1))
);

-- Contacts the owner has blocked from seeing their presence.
CREATE TABLE presence_blocks (
    owner      TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    contact    TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (owner, contact)
);
