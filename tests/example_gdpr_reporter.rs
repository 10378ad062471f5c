//! The `gdpr_reporter` example, checked the way an auditor reads its report: exactly the
//! subject's events per service and category, an erasure that passes and one that fails,
//! the Art. 30 record, no e-mail in clear in any trail, and a tampered chain reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/gdpr_reporter/main.rs"]
#[allow(dead_code)]
mod gdpr_reporter;

mod common;

use gdpr_reporter::{ALICE, BOB, CAROL, CUSTOMERS, Report, SERVICES, ServiceReport};
use heliosdb_lite::engine::audit::ledger::KS_AUDIT;
use heliosdb_lite::engine::{Durability, WriteBatch};
use heliosdb_lite::{FjallBackend, StorageBackend};
use std::collections::BTreeMap;
use std::path::Path;

fn service<'a>(report: &'a Report, name: &str) -> &'a ServiceReport {
    report
        .services
        .iter()
        .find(|s| s.service == name)
        .unwrap_or_else(|| panic!("no service {name} in the report"))
}

#[test]
fn access_record_and_trail_hold_exactly_what_the_services_did() {
    let dir = tempfile::tempdir().unwrap();
    let report = gdpr_reporter::run(dir.path()).unwrap();
    let names: Vec<&str> = report.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["accounts", "orders", "support"]);

    // Art. 15: Alice's events, per service and category, as the workloads issued them.
    let expected: [(&str, &[(&str, usize)]); 3] = [
        (
            "accounts",
            &[
                ("DML INSERT customer", 1),
                ("DML UPDATE customer", 1),
                ("SELECT SELECT customer", 1),
            ],
        ),
        (
            "orders",
            &[("DML INSERT purchase", 2), ("SELECT SELECT purchase", 1)],
        ),
        (
            "support",
            &[("DML INSERT ticket", 1), ("DML UPDATE ticket", 1)],
        ),
    ];
    for ((name, categories), svc) in expected.iter().zip(&SERVICES) {
        let s = service(&report, name);
        let want: BTreeMap<String, usize> = categories
            .iter()
            .map(|(c, n)| ((*c).to_owned(), *n))
            .collect();
        assert_eq!(s.access.categories, want, "{name}");
        for e in &s.access.events {
            assert_eq!(e.by, format!("{} ({})", svc.user, svc.application));
            assert!(e.success && e.timestamp.ends_with('Z'), "{e:?}");
            // Her own values read back; no other subject's value leaks in.
            assert!(e.params.iter().any(|p| p == ALICE), "{e:?}");
            let text = format!("{:?}", e.params);
            assert!(!text.contains(BOB) && !text.contains(CAROL), "{text}");
        }
        // The copy of the data held is hers alone.
        assert!(!s.access.held.is_empty());
        for (_, values) in &s.access.held {
            assert!(values.contains(&format!("email={ALICE}")), "{values:?}");
        }
    }
    let phone = &service(&report, "accounts").access.held[0].1;
    assert!(phone.contains(&"phone=+49 30 5550199".to_owned()));

    // Art. 17: Carol is gone everywhere: from the tables, readable trail and every file
    // of every service's database, journals included.
    assert_eq!(
        common::files_containing(&dir.path().join("services"), CAROL.as_bytes()),
        Vec::<String>::new()
    );
    for s in &report.services {
        let e = &s.erasure;
        assert!(e.passed, "{}: {e:?}", s.service);
        assert_eq!(
            (e.deletes, e.rows_left, e.readable),
            (1, 0, 0),
            "{}",
            s.service
        );
        assert!(
            e.forgotten_at.is_some() && e.events >= 2,
            "{}: {e:?}",
            s.service
        );
    }

    // Art. 30: each service's table and personal columns, its processors, the preset's
    // retention, redaction on.
    let tables = [
        ("accounts", "customer", &["email", "name", "phone"][..]),
        ("orders", "purchase", &["email", "ship_to"][..]),
        ("support", "ticket", &["email", "body"][..]),
    ];
    for ((name, table, columns), svc) in tables.iter().zip(&SERVICES) {
        let r = &service(&report, name).record;
        assert_eq!(r.tables.len(), 1, "{name}");
        assert_eq!(r.tables[0].table, *table);
        assert_eq!(r.tables[0].columns, *columns);
        let by = format!("{} ({})", svc.user, svc.application);
        assert!(r.tables[0].processors.contains(&by), "{name}");
        assert!(r.tables[0].operations["INSERT"] >= 3);
        assert_eq!(r.tables[0].operations["DELETE"], 1);
        assert_eq!(
            (r.retention_days, r.retention_source.as_str()),
            (365, "preset gdpr")
        );
        assert!(r.redaction.starts_with("encrypt") && r.redacted_columns[0] == "email");
    }

    // The chains verify; the reporter's own statements are on record, and are reads.
    for s in &report.services {
        assert!(s.chain.intact && s.chain.problem.is_none(), "{}", s.service);
        assert!(s.own_reads.len() >= 3, "{}", s.service);
        assert!(s.own_reads.iter().all(|(_, class, _)| class == "SELECT"));
        let table = &service(&report, &s.service).record.tables[0].table;
        assert!(s.own_reads.iter().any(|(_, _, t)| t == table));
    }

    // No e-mail, name or phone in clear in any trail, but encrypted tokens in place. The
    // columns are read whole and searched here: a `LIKE '%alice@...%'` would itself put
    // the address into the trail.
    for svc in &SERVICES {
        let (_, db) =
            gdpr_reporter::open(&dir.path().join("services").join(svc.name), true).unwrap();
        let mut s = db.session(heliosdb_lite::SessionInfo::new("test"));
        let rows = s
            .query("SELECT query, params FROM __audit_log", &[])
            .unwrap();
        let trail: Vec<String> = (0..rows.len())
            .map(|i| {
                let query: String = rows.get(i, "query").unwrap();
                let params: String = rows.get(i, "params").unwrap();
                format!("{query} {params}")
            })
            .collect();
        for value in CUSTOMERS.iter().flat_map(|c| &c[..3]) {
            assert!(
                trail.iter().all(|t| !t.contains(value)),
                "{value} in clear in {}",
                svc.name
            );
        }
        assert!(trail.iter().filter(|t| t.contains("enc:")).count() >= 4);
        // The Art. 15 lookup is itself on record, by the reporter, the subject by token.
        let lookups = s
            .query(
                "SELECT custom FROM __audit_log WHERE operation = 'SUBJECT_ACCESS'",
                &[],
            )
            .unwrap();
        assert_eq!(lookups.len(), 1, "{}", svc.name);
        let custom: String = lookups.get(0, "custom").unwrap();
        assert!(custom.contains(r#""by":"gdpr-reporter""#), "{custom}");
        assert!(
            custom.contains("hmac:") && !custom.contains(ALICE),
            "{custom}"
        );
    }
}

#[test]
fn erasure_fails_for_a_subject_left_in_one_service() {
    let dir = tempfile::tempdir().unwrap();
    gdpr_reporter::run(dir.path()).unwrap();
    let root = dir.path().join("services");
    // Bob is erased in accounts and orders; his ticket is left in support.
    gdpr_reporter::erase(&root, BOB, &["accounts", "orders"]).unwrap();
    let report = gdpr_reporter::report(&root, ALICE, BOB).unwrap();
    for name in ["accounts", "orders"] {
        let e = &service(&report, name).erasure;
        assert!(e.passed, "{name}: {e:?}");
    }
    let e = &service(&report, "support").erasure;
    assert!(!e.passed, "{e:?}");
    assert_eq!((e.deletes, e.rows_left, e.forgotten_at), (0, 1, None));
    assert_eq!(e.readable, e.events, "his ticket still reads in clear");
    assert!(
        report
            .to_string()
            .contains("right to erasure: bob@example.com FAILED")
    );
    // Carol's erasure still holds, checked again.
    let again = gdpr_reporter::report(&root, ALICE, CAROL).unwrap();
    assert!(again.services.iter().all(|s| s.erasure.passed));
}

/// Deletes event `seq` from the stored ledger of the service in `dir`, below the engine.
fn delete_event(dir: &Path, seq: u64) {
    let backend = FjallBackend::open(dir.join("data")).unwrap();
    let mut batch = WriteBatch::new();
    batch.delete(KS_AUDIT, seq.to_be_bytes());
    backend.commit(&batch, Durability::Sync).unwrap();
}

#[test]
fn a_tampered_service_is_reported_as_not_intact() {
    let dir = tempfile::tempdir().unwrap();
    gdpr_reporter::run(dir.path()).unwrap();
    let root = dir.path().join("services");
    delete_event(&root.join("orders"), 3);
    let report = gdpr_reporter::report(&root, ALICE, CAROL).unwrap();
    for s in &report.services {
        assert_eq!(s.chain.intact, s.service != "orders", "{}", s.service);
    }
    let orders = &service(&report, "orders").chain;
    assert!(
        orders.problem.as_deref().unwrap().starts_with("seq 3"),
        "{orders:?}"
    );
    assert!(report.to_string().contains("orders: NOT INTACT: seq 3"));
}
