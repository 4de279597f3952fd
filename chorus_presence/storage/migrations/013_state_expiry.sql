-- A status that clears itself: each user's latest state set with an expiry, kept while it is in
-- force so that it survives a restart and comes back at the next login; and the user's time
-- zone, in which "today" and "this week" end.
CREATE TABLE state_expiries (
    owner  TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    state  TEXT    NOT NULL,
    status TEXT,
    -- Seconds since the epoch (UTC) at which the user reverts to Available with no text.
    until  INTEGER NOT NULL
);

ALTER TABLE user_settings ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
