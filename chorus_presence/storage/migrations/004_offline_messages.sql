-- Messages kept for users who were not logged in (XEP-0160), when `[messages] offline = "store"`.
CREATE TABLE offline_messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    owner     TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    stanza    TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX offline_messages_owner ON offline_messages (owner, id);
