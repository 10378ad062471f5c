-- FOREIGN KEY (single column, NO ACTION / RESTRICT) to a primary key or a UNIQUE column.
CREATE TABLE patients (id INTEGER PRIMARY KEY AUTOINCREMENT, patient_id TEXT UNIQUE NOT NULL, name TEXT);
CREATE TABLE vitals (id INTEGER PRIMARY KEY AUTOINCREMENT, patient_id TEXT NOT NULL, value REAL, FOREIGN KEY (patient_id) REFERENCES patients(patient_id));
CREATE TABLE notes (id INTEGER PRIMARY KEY, patient INTEGER REFERENCES patients(id), body TEXT);
INSERT INTO patients (patient_id, name) VALUES ('P-1', 'Grace'), ('P-2', 'Alan');
INSERT INTO vitals (patient_id, value) VALUES ('P-1', 70.5);
INSERT INTO vitals (patient_id, value) VALUES ('P-9', 1.0);
INSERT INTO notes VALUES (1, 1, 'ok'), (2, NULL, 'no patient');
INSERT INTO notes VALUES (3, 42, 'dangling');
UPDATE vitals SET patient_id = 'P-9';
UPDATE vitals SET patient_id = 'P-2';
DELETE FROM patients WHERE patient_id = 'P-2';
UPDATE patients SET patient_id = 'P-22' WHERE patient_id = 'P-2';
UPDATE patients SET name = 'Alan T.' WHERE patient_id = 'P-2';
DELETE FROM patients WHERE patient_id = 'P-1';
DELETE FROM notes WHERE id = 1;
DELETE FROM patients WHERE patient_id = 'P-1';
SELECT patient_id, name FROM patients;
DROP TABLE patients;
-- What is not supported is refused.
CREATE TABLE c1 (p TEXT REFERENCES patients(name));
CREATE TABLE c2 (p INTEGER REFERENCES patients(id) ON DELETE CASCADE);
CREATE TABLE c3 (a INTEGER, b INTEGER, FOREIGN KEY (a, b) REFERENCES patients(id, id));
CREATE TABLE c4 (p INTEGER REFERENCES missing(id));
ALTER TABLE vitals RENAME TO vital_signs;
DROP TABLE vitals;
DROP TABLE notes;
DROP TABLE patients;
