-- Call routing: each user's devices and which device rings in which presence state.

CREATE TABLE devices (
    owner TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    name  TEXT NOT NULL,
    kind  TEXT NOT NULL CHECK (kind IN ('desk-phone', 'mobile', 'softphone', 'voicemail', 'other')),
    PRIMARY KEY (owner, name)
);

CREATE TABLE routing_map (
    owner  TEXT NOT NULL,
    state  TEXT NOT NULL CHECK (state IN
               ('available', 'away', 'brb', 'dnd', 'busy', 'in-meeting', 'offline')),
    device TEXT NOT NULL,
    PRIMARY KEY (owner, state),
    FOREIGN KEY (owner, device) REFERENCES devices (owner, name) ON DELETE CASCADE
);
