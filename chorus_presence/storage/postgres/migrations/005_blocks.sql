-- XEP-0191 block lists: `owner` exchanges no stanzas at all with `jid`.
CREATE TABLE blocks (
    owner      text        NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    jid        text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, jid)
);
CREATE INDEX blocks_jid ON blocks (jid);
