-- Quiet hours: each user's weekly schedule of states (weekdays 18:00-08:00 in Do Not
-- Disturb), in the user's time zone, one row per slot in the order the user gave them.
CREATE TABLE quiet_hours (
    owner        text    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    position     integer NOT NULL,
    -- The weekdays the slot starts on: Monday is bit 0, Sunday bit 6.
    days         integer NOT NULL,
    -- Local wall time in minutes after midnight; an end at or before the start is the next
    -- day's, 1440 the midnight that ends the day.
    start_minute integer NOT NULL,
    end_minute   integer NOT NULL,
    state        text    NOT NULL,
    status       text,
    PRIMARY KEY (owner, position)
);
