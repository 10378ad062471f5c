-- The column types SQLite schemas use, mapped to the nearest type here.
CREATE TABLE t (r REAL, d DOUBLE, dp DOUBLE PRECISION, f FLOAT, vc VARCHAR(3), c CHAR(2), dt DATETIME, da DATE, b BLOB, num NUMERIC, dec DECIMAL(10, 2), bi BIGINT, si SMALLINT, ti TINYINT, bo BOOL, tx TEXT);
SHOW COLUMNS FROM t;
INSERT INTO t VALUES (1.5, 2.5, 3.5, 4.5, 'longer than three', 'xy', '2024-05-17 13:45:10', '2024-05-17', X'DEADBEEF', 12.25, 99.5, 9000000000, 300, 7, TRUE, 'text');
SELECT * FROM t;
-- A column without a type is refused: columns are typed.
CREATE TABLE untyped (a);
CREATE TABLE collated (a TEXT COLLATE NOCASE);
-- ALTER TABLE ADD COLUMN maps types the same way.
ALTER TABLE t ADD COLUMN added REAL;
ALTER TABLE t ADD COLUMN later_id INTEGER AUTOINCREMENT;
SELECT added FROM t;
ALTER TABLE t ADD COLUMN stamped INTEGER DEFAULT (strftime('%s', 'now'));
-- A string holding a number compares as a number with a folded function too.
SELECT COUNT(*) FROM t WHERE bi > strftime('%s', '2024-01-01');
