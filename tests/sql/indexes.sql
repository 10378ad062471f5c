-- CREATE INDEX IF NOT EXISTS, indexes over several columns, unique indexes.
CREATE TABLE vital_signs (id INTEGER PRIMARY KEY AUTOINCREMENT, patient_id TEXT NOT NULL, measured_at TIMESTAMP NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idx_vitals_patient_time ON vital_signs(patient_id, measured_at DESC);
CREATE INDEX IF NOT EXISTS idx_vitals_patient_time ON vital_signs(patient_id, measured_at DESC);
CREATE INDEX idx_vitals_patient_time ON vital_signs(patient_id);
INSERT INTO vital_signs (patient_id, measured_at, value) VALUES ('p1', '2024-05-17 10:00:00', 70.5), ('p1', '2024-05-17 11:00:00', 72.0), ('p2', '2024-05-17 10:30:00', 64.25);
SELECT id, value FROM vital_signs WHERE patient_id = 'p1' ORDER BY measured_at DESC;
CREATE UNIQUE INDEX idx_device ON vital_signs(patient_id, measured_at);
INSERT INTO vital_signs (patient_id, measured_at, value) VALUES ('p1', '2024-05-17 10:00:00', 1.0);
DROP INDEX vital_signs.idx_device;
INSERT INTO vital_signs (patient_id, measured_at, value) VALUES ('p1', '2024-05-17 10:00:00', 1.0);
SELECT COUNT(*) FROM vital_signs;
-- A unique index over rows that already repeat is refused.
CREATE UNIQUE INDEX idx_again ON vital_signs(patient_id, measured_at);
-- Partial indexes are not supported.
CREATE INDEX idx_partial ON vital_signs(value) WHERE value > 0;
