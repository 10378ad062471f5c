//! The HIPAA edge example: a patient's accounting holds exactly that patient's events,
//! every read of PHI is audited, no identifier is in the trail in clear, and the signed
//! bundle verifies with the public key alone — and not once a byte inside it changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/hipaa_edge/main.rs"]
#[allow(dead_code)]
mod hipaa_edge;

use hipaa_edge::{
    APPLICATION, Access, DEVICE, DR_PATEL, PATIENTS, RN_KOWALSKI, RN_LEE, Report, identifiers,
    review,
};
use std::io::{Read, Write};
use std::path::Path;

fn run() -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    let report = hipaa_edge::run(dir.path()).unwrap();
    (dir, report)
}

/// `(user, operation, success)` of each event.
fn actions(events: &[Access]) -> Vec<(&str, &str, bool)> {
    let actions = events.iter();
    actions
        .map(|e| (e.user.as_str(), e.operation.as_str(), e.success))
        .collect()
}

fn gunzip(file: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn a_patients_accounting_holds_exactly_that_patients_events() {
    let (_dir, report) = run();
    let maria = &report.patient;
    assert_eq!(maria.patient, PATIENTS[0].id);
    assert_eq!(
        actions(&maria.events),
        [
            (DR_PATEL, "INSERT", true),
            (RN_LEE, "INSERT", true),
            (RN_LEE, "INSERT", true),
            (RN_LEE, "INSERT", true),
            (RN_LEE, "INSERT", true),
            // The sensor dropout: refused by NOT NULL, on record as a failed write.
            (RN_LEE, "INSERT", false),
            (RN_LEE, "SELECT", true),
            (DR_PATEL, "SELECT", true),
            (DR_PATEL, "SELECT", true),
            // Not on her care team: refused before any SQL ran, and on record.
            (RN_KOWALSKI, "ACCESS_DENIED", false),
            (RN_LEE, "UPDATE", true),
        ]
    );
    let tables: Vec<&str> = maria.events.iter().map(|e| e.table.as_str()).collect();
    assert_eq!(
        tables,
        [
            "patients",
            "vital_signs",
            "vital_signs",
            "vital_signs",
            "vital_signs",
            "vital_signs",
            "vital_signs",
            "vital_signs",
            "patients",
            "vital_signs",
            "patients"
        ]
    );
    // The two reads of her vitals returned her four stored measurements.
    assert_eq!(maria.events[6].rows, 4);
    assert_eq!(maria.events[7].rows, 4);
    assert_eq!(maria.events[9].class, "APP");
    for e in &maria.events {
        assert_eq!(
            (e.application.as_str(), e.device.as_str()),
            (APPLICATION, DEVICE)
        );
        assert!(e.when.ends_with('Z'), "{}", e.when);
    }

    let [james, aisha] = &report.others[..] else {
        panic!("two other patients")
    };
    assert_eq!(james.patient, PATIENTS[1].id);
    assert_eq!(
        actions(&james.events),
        [
            (DR_PATEL, "INSERT", true),
            (RN_KOWALSKI, "INSERT", true),
            (RN_KOWALSKI, "INSERT", true),
            (RN_KOWALSKI, "SELECT", true),
            (DR_PATEL, "UPDATE", true),
        ]
    );
    assert_eq!(
        actions(&aisha.events),
        [(DR_PATEL, "INSERT", true), (DR_PATEL, "INSERT", true)]
    );
    // No other patient's event is in Maria's accounting, and the tokens differ.
    for other in &report.others {
        assert_ne!(other.token, maria.token);
        for e in &other.events {
            assert!(maria.events.iter().all(|m| m.seq != e.seq), "#{}", e.seq);
        }
    }
}

#[test]
fn every_read_of_phi_is_audited_and_no_identifier_is_in_clear() {
    let (_dir, report) = run();
    assert_eq!(report.workload.phi_reads, 4);
    assert_eq!(report.workload.denied, 1);
    assert_eq!(report.workload.vitals, (7, 1));
    assert_eq!(report.phi_select_events, report.workload.phi_reads);
    assert_eq!(report.retention_days, 2555);

    assert!(report.events_searched > 20, "{}", report.events_searched);
    assert_eq!(report.identifiers_in_clear, []);
    // What leaves the device holds none either, while it carries every patient's token.
    let bundle = gunzip(&report.bundle.file);
    for (kind, value) in identifiers() {
        assert!(!bundle.contains(value), "{kind} {value} in the bundle");
    }
    assert!(bundle.contains(&report.patient.token));
    for other in &report.others {
        assert!(bundle.contains(&other.token));
    }

    assert_eq!(
        report.verify,
        (report.bundle.events, None),
        "verify is intact"
    );
    let printed = report.to_string();
    assert!(printed.contains("identical to the device's"), "{printed}");
}

#[test]
fn the_bundle_verifies_with_the_public_key_alone_and_a_changed_byte_is_rejected() {
    let (dir, report) = run();
    let (bundle, pubkey) = (&report.bundle.file, &report.bundle.pubkey);
    assert_eq!(pubkey.parent(), bundle.parent(), "handed over together");
    // The whole trail, verified, and the same accounting found in it by the token alone.
    assert_eq!(report.review.events, report.bundle.events);
    assert_eq!(report.review.signed_by, DEVICE);
    assert_eq!(report.review.accounting, report.patient.events);
    let again = review(bundle, pubkey, &report.others[0].token).unwrap();
    assert_eq!(again.accounting, report.others[0].events);

    // One byte of one event changed: who was refused access to Maria's vitals.
    let text = gunzip(bundle);
    let forged: String = text
        .split_inclusive('\n')
        .map(|line| {
            if line.contains("\"ACCESS_DENIED\"") {
                line.replace("\"user\":\"rn.kowalski\"", "\"user\":\"rn.kowalsky\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_eq!(forged.len(), text.len());
    assert_ne!(forged, text);
    let forged_file = dir.path().join("forged.batch.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(forged.as_bytes()).unwrap();
    std::fs::write(&forged_file, gz.finish().unwrap()).unwrap();
    let error = review(&forged_file, pubkey, &report.patient.token).unwrap_err();
    assert!(format!("{error:#}").contains("tampered"), "{error:#}");

    // The genuine bundle against another device's key is rejected too.
    let (_, other) = heliosdb_lite::checkpoint::SignerKey::generate(DEVICE)
        .unwrap()
        .write_files(dir.path().join("other").join(DEVICE))
        .unwrap();
    assert!(review(bundle, &other, &report.patient.token).is_err());
}
