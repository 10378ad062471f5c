-- SQLite's conflict clauses: INSERT OR IGNORE, INSERT OR REPLACE, REPLACE INTO.
CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER, note TEXT UNIQUE);
INSERT INTO kv VALUES ('a', 1, 'first'), ('b', 2, 'second');
INSERT OR IGNORE INTO kv VALUES ('a', 100, 'ignored'), ('c', 3, 'third');
SELECT * FROM kv ORDER BY k;
INSERT OR REPLACE INTO kv VALUES ('a', 10, 'replaced');
SELECT * FROM kv ORDER BY k;
REPLACE INTO kv (k, v, note) VALUES ('d', 4, 'second');
SELECT * FROM kv ORDER BY k;
-- The same key twice in one statement: the second row wins (REPLACE) or is skipped
-- (IGNORE).
INSERT OR REPLACE INTO kv VALUES ('e', 5, 'e1'), ('e', 6, 'e2');
INSERT OR IGNORE INTO kv VALUES ('f', 7, 'f1'), ('f', 8, 'f2');
SELECT * FROM kv WHERE k IN ('e', 'f') ORDER BY k;
INSERT OR ABORT INTO kv VALUES ('a', 0, 'abort');
INSERT OR FAIL INTO kv VALUES ('z', 0, 'fail');
INSERT OR ROLLBACK INTO kv VALUES ('z', 0, 'rollback');
SELECT COUNT(*) FROM kv;
