-- LIKE: `%` matches any run of characters, line breaks included; `_` one character;
-- ESCAPE makes the next character literal. Case-sensitive (ILIKE is not).
CREATE TABLE q (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO q VALUES (1, 'UPDATE customers
SET name = 1'), (2, '100% sure'), (3, 'a_b (c) [d] {e} $f ^g | h. i* j+ k? l\m'), (4, 'Customers');
SELECT id FROM q WHERE body LIKE '%customers%' ORDER BY id;
SELECT id FROM q WHERE body ILIKE '%customers%' ORDER BY id;
SELECT id FROM q WHERE body NOT LIKE '%customers%' ORDER BY id;
SELECT id FROM q WHERE body LIKE '100!% %' ESCAPE '!';
SELECT id FROM q WHERE body LIKE 'a!_b%' ESCAPE '!';
SELECT id FROM q WHERE body LIKE 'a_b (c) [d] {e} $f ^g | h. i* j+ k? l\m';
SELECT id FROM q WHERE body LIKE '_00%';
SELECT id FROM q WHERE body LIKE 'x' ESCAPE 'ab';
