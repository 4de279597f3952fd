-- Each account's display name (XEP-0292 vCard4 'fn', or set by the admin): what lists show
-- instead of the bare JID. Goes with the account, so a reused username starts without one.
CREATE TABLE display_names (
    owner TEXT NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    name  TEXT NOT NULL
);
