-- Account removal finds every row on other users' side that names the account; without these
-- indexes each of those lookups would scan its whole table.
CREATE INDEX roster_items_contact ON roster_items (contact);
CREATE INDEX subscription_requests_contact ON subscription_requests (contact);
CREATE INDEX presence_blocks_contact ON presence_blocks (contact);
CREATE INDEX blocks_jid ON blocks (jid);
