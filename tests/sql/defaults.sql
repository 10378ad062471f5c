-- Column defaults, including the ones SQLite schemas use.
CREATE TABLE d (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER DEFAULT 0, flag BOOLEAN DEFAULT 0, on_flag BOOLEAN DEFAULT 1, label TEXT DEFAULT 'none', created_at INTEGER DEFAULT (strftime('%s', 'now')), day TEXT DEFAULT (date('now')), ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
INSERT INTO d (label) VALUES ('x');
INSERT INTO d (n, flag) VALUES (5, TRUE);
SELECT id, n, flag, on_flag, label FROM d ORDER BY id;
-- Time defaults are filled per row at insert time.
SELECT COUNT(*) FROM d WHERE created_at > 1700000000 AND day = date('now') AND ts IS NOT NULL;
-- An explicit value wins over the default.
INSERT INTO d (created_at, day) VALUES (42, 'fixed');
SELECT created_at, day FROM d WHERE id = 3;
