-- Small server-wide values that must survive restarts, such as the secret behind SCRAM fake salts.
CREATE TABLE server_state (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
