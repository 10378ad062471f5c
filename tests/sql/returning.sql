-- RETURNING on INSERT, UPDATE and DELETE: columns, *, expressions and aliases, one row
-- per affected row.
CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, email TEXT, tenant_id TEXT NOT NULL);
INSERT INTO customers (name, email, tenant_id) VALUES ('Ada', 'ada@example.com', 't1') RETURNING id, name, email, tenant_id;
INSERT INTO customers (name, tenant_id) VALUES ('Bob', 't1'), ('Cy', 't2') RETURNING id, upper(name) AS shout;
UPDATE customers SET email = 'bob@example.com' WHERE name = 'Bob' RETURNING *;
UPDATE customers SET tenant_id = 't9' WHERE tenant_id = 't1' RETURNING id, tenant_id;
UPDATE customers SET name = 'nobody' WHERE id = 99 RETURNING id;
DELETE FROM customers WHERE tenant_id = 't9' RETURNING id, name;
SELECT * FROM customers;
-- A table without a primary key.
CREATE TABLE notes (body TEXT, n INTEGER);
INSERT INTO notes VALUES ('x', 1), ('y', 2) RETURNING n * 10 AS tens, body;
DELETE FROM notes WHERE n = 1 RETURNING *;
-- A failing statement returns nothing and changes nothing.
INSERT INTO customers (id, name, tenant_id) VALUES (3, 'clash', 't1') RETURNING id;
SELECT COUNT(*) FROM customers;
