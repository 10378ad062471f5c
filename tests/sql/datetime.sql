-- SQLite's date and time functions on constants fold to the values SQLite returns.
SELECT date('2024-05-17 13:45:10');
SELECT time('2024-05-17 13:45:10');
SELECT datetime('2024-05-17 13:45:10', '+1 day');
SELECT datetime('2024-01-31', '+1 month');
SELECT datetime('2024-05-17 13:45:10', '-30 days', 'start of day');
SELECT datetime('2024-05-17 13:45:10', '+1 hour', '+30 minutes');
SELECT date('2024-05-17', 'start of month'), date('2024-05-17', 'start of year');
SELECT date('2024-05-17', 'weekday 0');
SELECT datetime(1700000000, 'unixepoch');
SELECT unixepoch('2024-01-01 00:00:00');
SELECT julianday('2000-01-01 12:00:00');
SELECT strftime('%Y-%m-%d %H:%M', '2024-05-17 13:45:10'), strftime('%s', '2024-01-01');
SELECT strftime('%j %w %W', '2024-12-31');
SELECT date(NULL);
SELECT datetime('2024-05-17', '-30 dayz');
SELECT datetime('not a date');
-- On a DATE or TIMESTAMP column, without modifiers.
CREATE TABLE ev (at TIMESTAMP, day DATE);
INSERT INTO ev VALUES ('2024-05-17 13:45:10', '2024-05-17');
SELECT date(at), datetime(at), strftime('%Y/%m', day) FROM ev;
SELECT datetime(at, '+1 day') FROM ev;
-- Comparisons against timestamps.
SELECT COUNT(*) FROM ev WHERE at >= datetime('2024-05-17', '-30 days');
SELECT COUNT(*) FROM ev WHERE at >= datetime('2024-05-17', '+30 days');
SELECT CURRENT_DATE = date('now');
