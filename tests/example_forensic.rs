//! The forensic example: the insider incident it seeds is found from the audit trail, rule
//! by rule and row by row, normal users are not flagged, and a tampered trail is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/forensic/main.rs"]
#[allow(dead_code)]
mod forensic;

use forensic::Anomaly::{FailureBurst, MassChange, NoWhereClause, OffHoursDdl};
use forensic::{
    Action, Anomaly, BusinessHours, INSIDER_USER, Investigation, Report, RowCounts, Rules, Scope,
    Seeded,
};
use heliosdb_lite::FjallBackend;
use heliosdb_lite::engine::audit::{AuditEvent, ledger};
use heliosdb_lite::engine::{Durability, StorageBackend, WriteBatch};
use std::collections::BTreeMap;
use std::path::Path;

/// Business hours 08:00-18:00 in a time zone where it is now `hour` o'clock.
fn rules(hour: u32) -> Rules {
    Rules {
        business_hours: BusinessHours::office_where_now_is(hour),
        ..Rules::default()
    }
}

fn investigated(report: Report) -> Investigation {
    match report {
        Report::Investigated(investigation) => *investigation,
        Report::Refused { seq, problem } => panic!("refused at seq {seq}: {problem}"),
    }
}

fn scope(seeded: &Seeded, table: Option<&str>) -> Scope {
    let (from, to) = seeded.window;
    let table = table.map(str::to_owned);
    Scope { from, to, table }
}

/// `(anomaly, user, tables, seqs)` of every finding.
fn found(investigation: &Investigation) -> Vec<(Anomaly, String, Vec<String>, Vec<u64>)> {
    let f = investigation.findings.iter();
    f.map(|f| (f.anomaly, f.user.clone(), f.tables.clone(), f.seqs.clone()))
        .collect()
}

fn counts(inserted: u64, updated: u64, deleted: u64) -> RowCounts {
    RowCounts {
        inserted,
        updated,
        deleted,
    }
}

fn by_name<'a>(
    items: impl IntoIterator<Item = (&'a str, RowCounts)>,
) -> BTreeMap<String, RowCounts> {
    items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[test]
fn the_seeded_incident_is_found_and_quantified() {
    let dir = tempfile::tempdir().unwrap();
    let demo = forensic::run(dir.path(), None, &rules(3)).unwrap();
    let seeded = &demo.seeded;
    let seq = |action| seeded.seq(action).unwrap();
    let (tried, ran) = (|sql| seq(Action::Attempt(sql)), |sql| seq(Action::Run(sql)));
    let failures: Vec<u64> = seeded
        .insider
        .iter()
        .filter(|(action, _)| matches!(action, Action::FailedLogin | Action::Attempt(_)))
        .map(|(_, seq)| *seq)
        .collect();
    assert_eq!(failures.len(), 7, "3 failed logins, 4 refused statements");
    let investigation = investigated(demo.report);

    let one = |anomaly, table: &str, seq| {
        let tables = vec![table.to_owned()];
        (anomaly, INSIDER_USER.to_owned(), tables, vec![seq])
    };
    let tables = ["__audit_log", "payroll", "orders"]
        .map(str::to_owned)
        .to_vec();
    let delete_orders = ran("DELETE FROM orders");
    let update_customers = ran("UPDATE customers SET tier = 'free'");
    assert_eq!(
        found(&investigation),
        vec![
            (FailureBurst, INSIDER_USER.to_owned(), tables, failures),
            one(
                NoWhereClause,
                "__audit_log",
                tried("DELETE FROM __audit_log")
            ),
            one(
                NoWhereClause,
                "__audit_log",
                tried("UPDATE __audit_log SET user = 'bob'")
            ),
            one(OffHoursDdl, "orders", tried("TRUNCATE TABLE orders")),
            one(
                OffHoursDdl,
                "customers",
                ran("ALTER TABLE customers ADD COLUMN note TEXT")
            ),
            one(NoWhereClause, "coupons", ran("DELETE FROM coupons")),
            one(OffHoursDdl, "coupons", ran("DROP TABLE coupons")),
            one(MassChange, "customers", update_customers),
            one(NoWhereClause, "customers", update_customers),
            one(
                MassChange,
                "customers",
                ran("DELETE FROM customers WHERE id > 20")
            ),
            one(MassChange, "orders", delete_orders),
            one(NoWhereClause, "orders", delete_orders),
        ]
    );
    assert!(
        investigation.unparsed.is_empty(),
        "{:?}",
        investigation.unparsed
    );

    // bob's typo and carol's mistyped password are single failures; bob's rolled-back
    // delete and 43-row update are below every threshold.
    for user in ["alice", "bob", "carol"] {
        assert!(
            investigation.timeline.iter().any(|e| e.user == user),
            "{user} is in the timeline"
        );
        assert!(
            investigation.findings.iter().all(|f| f.user != user),
            "{user} is not flagged"
        );
    }
    let failed = |user: &str| {
        investigation
            .timeline
            .iter()
            .filter(|e| e.user == user && !e.success)
            .count()
    };
    assert_eq!((failed("bob"), failed("carol")), (1, 1));
    assert_eq!(investigation.rolled_back.len(), 1, "bob's cancelled delete");

    // mallory deleted the 4 coupons, customers 21..=150 and every order: 240 seeded + 5
    // by alice - 2 cancelled by bob. bob's rolled-back delete is not counted.
    assert_eq!(
        investigation.by_user,
        by_name([
            ("alice", counts(5, 3, 0)),
            ("bob", counts(0, 1 + 43, 2)),
            (INSIDER_USER, counts(0, 150, 4 + 130 + 243)),
        ])
    );
    assert_eq!(
        investigation.by_table,
        by_name([
            ("coupons", counts(0, 0, 4)),
            ("customers", counts(0, 1 + 150, 130)),
            ("orders", counts(5, 3 + 43, 2 + 243)),
        ])
    );

    // One table: its timeline, its findings, its rows. The failures on other tables are
    // no longer a burst.
    let orders = Some("orders");
    let report = forensic::run_investigation(dir.path(), &scope(seeded, orders), &rules(3));
    let investigation = investigated(report.unwrap());
    let targets_orders = |e: &forensic::Event| e.targets.iter().any(|t| t == "orders");
    assert!(investigation.timeline.iter().all(targets_orders));
    assert_eq!(
        found(&investigation),
        vec![
            one(OffHoursDdl, "orders", tried("TRUNCATE TABLE orders")),
            one(MassChange, "orders", delete_orders),
            one(NoWhereClause, "orders", delete_orders),
        ]
    );
    assert_eq!(
        investigation.by_table,
        by_name([("orders", counts(5, 46, 245))])
    );

    // During business hours the same DDL is not flagged; everything else is.
    let report = forensic::run_investigation(dir.path(), &scope(seeded, None), &rules(13));
    let daytime = found(&investigated(report.unwrap()));
    assert_eq!(daytime.len(), 9);
    assert!(daytime.iter().all(|(anomaly, ..)| *anomaly != OffHoursDdl));
}

/// Rewrites one stored audit record in place, keeping its chain hash: what someone with
/// access to the files, not to SQL, can do.
fn tamper(data: &Path, seq: u64, change: impl FnOnce(&mut AuditEvent)) {
    let backend = FjallBackend::open(data).unwrap();
    let key = ledger::record_key(seq);
    let value = backend
        .snapshot()
        .unwrap()
        .get(ledger::KS_AUDIT, &key)
        .unwrap()
        .unwrap();
    let (canonical, chain) = ledger::split_record(&value).unwrap();
    let mut event = AuditEvent::from_canonical(canonical).unwrap();
    change(&mut event);
    let mut forged = event.canonical();
    forged.extend(chain);
    let mut batch = WriteBatch::new();
    batch.put(ledger::KS_AUDIT, key, forged);
    backend.commit(&batch, Durability::Sync).unwrap();
}

#[test]
fn a_tampered_trail_is_refused_with_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = forensic::seed(dir.path()).unwrap();
    let before = forensic::run_investigation(dir.path(), &scope(&seeded, None), &rules(3));
    assert!(matches!(before.unwrap(), Report::Investigated(_)));

    // The mass delete of every order, made to look like a one-row delete.
    let delete_orders = seeded.seq(Action::Run("DELETE FROM orders")).unwrap();
    tamper(&dir.path().join("data"), delete_orders, |event| {
        event.rows = 1
    });

    let report = forensic::run_investigation(dir.path(), &scope(&seeded, None), &rules(3));
    match report.unwrap() {
        Report::Refused { seq, problem } => {
            assert_eq!(seq, delete_orders);
            assert!(problem.contains("chain hash mismatch"), "{problem}");
        }
        Report::Investigated(investigation) => {
            panic!("concluded from a tampered trail: {investigation}")
        }
    }
}
