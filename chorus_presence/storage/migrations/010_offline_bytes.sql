-- The size of each offline message in bytes (UTF-8), for the per-recipient byte quota
-- (`[messages] max_offline_bytes`): kept with the row so the quota check sums small integers
-- from the index instead of measuring every stored stanza again.
ALTER TABLE offline_messages ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE offline_messages SET bytes = length(CAST(stanza AS BLOB));
-- Covering the quota check (count and sum for one owner) as well as delivery in order.
DROP INDEX offline_messages_owner;
CREATE INDEX offline_messages_owner ON offline_messages (owner, id, bytes);
