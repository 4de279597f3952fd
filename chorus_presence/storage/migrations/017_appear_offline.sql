-- Appear offline: contacts see the owner as logged out while the owner goes on using the
-- service, until the owner turns it off, across logins and restarts.
ALTER TABLE user_settings ADD COLUMN appear_offline INTEGER NOT NULL DEFAULT 0
    CHECK (appear_offline IN (0, 1));
