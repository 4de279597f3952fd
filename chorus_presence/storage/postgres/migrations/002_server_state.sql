-- Small server-wide values that must survive restarts, such as the secret behind SCRAM fake salts.
CREATE TABLE server_state (
    key   text  NOT NULL PRIMARY KEY,
    value bytea NOT NULL
);
