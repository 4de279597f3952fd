-- Rosters (RFC 6121 section 2) with their subscription states, pending inbound subscription
-- requests and a per-user roster version for RFC 6121 section 2.6 versioning.

CREATE TABLE roster_items (
    owner        text    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    -- The contact's bare JID, canonical form.
    contact      text    NOT NULL,
    name         text,
    subscription text    NOT NULL DEFAULT 'none'
                         CHECK (subscription IN ('none', 'to', 'from', 'both')),
    -- ask='subscribe': the owner asked to see the contact's presence and awaits an answer.
    pending_out  boolean NOT NULL DEFAULT false,
    -- RFC 6121 section 3.4 pre-approval of the contact by the owner.
    approved     boolean NOT NULL DEFAULT false,
    -- Group names, in the order the client gave them.
    groups       text[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (owner, contact)
);
-- Account removal finds every item naming the account in others' rosters.
CREATE INDEX roster_items_contact ON roster_items (contact);

-- Requests from `contact` to see the presence of `owner` that `owner` has not answered yet.
-- The contact need not be in the owner's roster.
CREATE TABLE subscription_requests (
    owner      text        NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    contact    text        NOT NULL,
    status     text,
    created_at timestamptz NOT NULL DEFAULT date_trunc('second', now()),
    PRIMARY KEY (owner, contact)
);
CREATE INDEX subscription_requests_contact ON subscription_requests (contact);

CREATE TABLE roster_versions (
    owner   text   NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    version bigint NOT NULL
);
