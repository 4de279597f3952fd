-- When each user last went offline, and the status text they left with (XEP-0012).
CREATE TABLE last_activity (
    owner     text             NOT NULL PRIMARY KEY
                               REFERENCES accounts (username) ON DELETE CASCADE,
    -- Seconds since the epoch.
    logout_at double precision NOT NULL,
    status    text
);
