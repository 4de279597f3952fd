-- XEP-0191 block lists: `owner` exchanges no stanzas at all with `jid`.
CREATE TABLE blocks (
    owner      TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    jid        TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (owner, jid)
);
