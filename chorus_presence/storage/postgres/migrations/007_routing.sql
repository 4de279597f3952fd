-- Call routing: each user's devices and which device rings in which presence state.

CREATE TABLE devices (
    owner    text    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    name     text    NOT NULL,
    kind     text    NOT NULL
                     CHECK (kind IN ('desk-phone', 'mobile', 'softphone', 'voicemail', 'other')),
    -- The device's place in the order the user gave them.
    position integer NOT NULL,
    PRIMARY KEY (owner, name)
);

CREATE TABLE routing_map (
    owner  text NOT NULL,
    state  text NOT NULL CHECK (state IN
               ('available', 'away', 'brb', 'dnd', 'busy', 'in-meeting', 'offline')),
    device text NOT NULL,
    PRIMARY KEY (owner, state),
    FOREIGN KEY (owner, device) REFERENCES devices (owner, name) ON DELETE CASCADE
);
