-- INSERT ... ON CONFLICT (PostgreSQL / SQLite upserts).
CREATE TABLE counters (name TEXT PRIMARY KEY, hits INTEGER NOT NULL, updated TEXT);
INSERT INTO counters VALUES ('home', 1, 'd1');
INSERT INTO counters VALUES ('home', 1, 'd2') ON CONFLICT (name) DO UPDATE SET hits = counters.hits + excluded.hits, updated = excluded.updated;
INSERT INTO counters VALUES ('about', 1, 'd2') ON CONFLICT (name) DO UPDATE SET hits = hits + 1;
SELECT * FROM counters ORDER BY name;
INSERT INTO counters VALUES ('home', 50, 'd3') ON CONFLICT (name) DO NOTHING;
INSERT INTO counters VALUES ('home', 50, 'd3') ON CONFLICT DO NOTHING;
SELECT * FROM counters ORDER BY name;
-- DO UPDATE ... WHERE: a row that does not match is neither inserted nor updated.
INSERT INTO counters VALUES ('home', 5, 'd4') ON CONFLICT (name) DO UPDATE SET hits = excluded.hits WHERE counters.hits > 100;
SELECT * FROM counters WHERE name = 'home';
-- With RETURNING: inserted and updated rows.
INSERT INTO counters VALUES ('home', 1, 'd5'), ('blog', 1, 'd5') ON CONFLICT (name) DO UPDATE SET hits = hits + 1 RETURNING name, hits;
-- The target must be a PRIMARY KEY or UNIQUE constraint.
INSERT INTO counters VALUES ('home', 1, 'd6') ON CONFLICT (hits) DO NOTHING;
-- Composite targets.
CREATE TABLE stock (shop TEXT, item TEXT, qty INTEGER, PRIMARY KEY (shop, item));
INSERT INTO stock VALUES ('s1', 'apple', 5);
INSERT INTO stock VALUES ('s1', 'apple', 3) ON CONFLICT (shop, item) DO UPDATE SET qty = qty + excluded.qty;
INSERT INTO stock VALUES ('s1', 'pear', 2) ON CONFLICT (item, shop) DO UPDATE SET qty = qty + excluded.qty;
SELECT * FROM stock ORDER BY shop, item;
