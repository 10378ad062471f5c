-- PRIMARY KEY (a, b) and UNIQUE (a, b).
CREATE TABLE enrol (student INTEGER, course TEXT, grade TEXT, PRIMARY KEY (student, course));
INSERT INTO enrol VALUES (1, 'math', 'A'), (1, 'art', 'B'), (2, 'math', 'C');
INSERT INTO enrol VALUES (1, 'math', 'F');
INSERT INTO enrol VALUES (NULL, 'math', 'F');
SELECT * FROM enrol ORDER BY student, course;
UPDATE enrol SET course = 'math' WHERE student = 1 AND course = 'art';
DELETE FROM enrol WHERE student = 1 AND course = 'math';
INSERT INTO enrol VALUES (1, 'math', 'A+');
SELECT * FROM enrol ORDER BY student, course;
CREATE TABLE pairs (a INTEGER, b INTEGER, UNIQUE (a, b));
INSERT INTO pairs VALUES (1, 1), (1, 2), (NULL, 1), (NULL, 1);
INSERT INTO pairs VALUES (1, 2);
SELECT COUNT(*) FROM pairs;
-- Single-column table constraints become column constraints.
CREATE TABLE single (a INTEGER, b TEXT, PRIMARY KEY (a), UNIQUE (b));
INSERT INTO single VALUES (1, 'x');
INSERT INTO single VALUES (2, 'x');
INSERT INTO single VALUES (1, 'y');
SELECT * FROM single;
-- Columns in a constraint cannot be dropped or renamed.
ALTER TABLE enrol DROP COLUMN course;
ALTER TABLE enrol RENAME COLUMN grade TO mark;
SELECT mark FROM enrol WHERE student = 2;
