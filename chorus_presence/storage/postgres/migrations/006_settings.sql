-- Per-user product settings, and the presence blocked list of "who may see my presence".

CREATE TABLE user_settings (
    owner              text    NOT NULL PRIMARY KEY
                               REFERENCES accounts (username) ON DELETE CASCADE,
    -- What happens to a request to see the owner's presence: ask the owner, approve it
    -- (unless blocked), or refuse it (unless allowed).
    visibility_policy  text    NOT NULL DEFAULT 'ask'
                               CHECK (visibility_policy IN ('ask', 'everyone', 'nobody')),
    -- Presence automation: show "Away / Not logged in" while no resource is online.
    away_when_offline  boolean NOT NULL DEFAULT false,
    -- "My presence decides how I receive calls".
    routing_enabled    boolean NOT NULL DEFAULT false,
    default_device     text,
    -- May ask which device rings for any user (a PBX or its bot).
    routing_permission boolean NOT NULL DEFAULT false
);

-- Contacts the owner has blocked from seeing their presence.
CREATE TABLE presence_blocks (
    owner      text        NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    contact    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, contact)
);
CREATE INDEX presence_blocks_contact ON presence_blocks (contact);
