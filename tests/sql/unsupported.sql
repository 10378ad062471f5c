-- Constructs the parser accepts but the engine does not implement are refused, never
-- silently ignored.
CREATE TABLE t (a INTEGER CHECK (a > 0));
CREATE TABLE t (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2));
CREATE TEMPORARY TABLE tmp (a INTEGER);
CREATE TABLE base (a INTEGER PRIMARY KEY, b TEXT);
INSERT INTO base VALUES (1, 'x');
UPDATE base SET b = 'y' FROM base AS other WHERE base.a = other.a;
DELETE FROM base WHERE a = 1 LIMIT 1;
INSERT INTO base VALUES (2, 'z') ON DUPLICATE KEY UPDATE b = 'w';
SELECT * FROM base WHERE a = :a;
WITH x AS (SELECT 1) SELECT * FROM x;
SELECT 1 UNION SELECT 2;
SELECT * FROM base;
-- Clauses other dialects have, which GlueSQL would skip, are refused too.
SELECT TOP 1 * FROM base;
SELECT * FROM base ORDER BY a NULLS FIRST;
SELECT * FROM base WHERE a IN (SELECT TOP 1 a FROM base);
