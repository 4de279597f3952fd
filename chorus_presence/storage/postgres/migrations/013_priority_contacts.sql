-- Do Not Disturb with priority access: the people whose messages and calls reach each user as
-- usual while the user is in Do Not Disturb, Busy or In Meeting. Both sides are accounts of
-- this server, so a row goes with either account by cascade.
CREATE TABLE priority_contacts (
    owner   text NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    contact text NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    PRIMARY KEY (owner, contact)
);

-- The cascade from a removed contact's account looks rows up by contact.
CREATE INDEX priority_contacts_contact ON priority_contacts (contact);
