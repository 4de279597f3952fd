-- "Show when I was last seen" switched off: nobody learns since when the owner has been away or
-- offline (XEP-0319 idle, XEP-0012 last activity), and the owner learns nobody's.
ALTER TABLE user_settings ADD COLUMN hide_last_seen INTEGER NOT NULL DEFAULT 0
    CHECK (hide_last_seen IN (0, 1));
