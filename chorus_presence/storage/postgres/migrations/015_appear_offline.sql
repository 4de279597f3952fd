-- Appear offline: contacts see the owner as logged out while the owner goes on using the
-- service, until the owner turns it off, across logins and restarts.
ALTER TABLE user_settings ADD COLUMN appear_offline boolean NOT NULL DEFAULT false;
