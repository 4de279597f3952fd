-- Messages kept for users who were not logged in (XEP-0160), when `[messages] offline = "store"`.
CREATE TABLE offline_messages (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner     text        NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    stanza    text        NOT NULL,
    -- The stanza's size in UTF-8 bytes, for the per-recipient byte quota.
    bytes     integer     NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT date_trunc('second', now())
);
-- Covering the quota check (count and sum for one owner) as well as delivery in order.
CREATE INDEX offline_messages_owner ON offline_messages (owner, id) INCLUDE (bytes);
