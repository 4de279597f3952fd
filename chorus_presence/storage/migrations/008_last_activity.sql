-- When each user last went offline, and the status text they left with (XEP-0012).
CREATE TABLE last_activity (
    owner     TEXT NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    logout_at REAL NOT NULL,
    status    TEXT
);
