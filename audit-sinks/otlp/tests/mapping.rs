//! The OTLP mapping of `docs/OTLP.md`, as snapshots: a successful statement, a refused
//! one, an engine error, an application event with custom fields, and two applications
//! in one request (two resources).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_engine::audit::{AuditEvent, EventClass, SealedEvent};
use heliosdb_otlp::Mapping;
use std::collections::BTreeMap;

fn sealed(seq: u64, change: impl FnOnce(&mut AuditEvent)) -> SealedEvent {
    let mut event = AuditEvent {
        seq,
        timestamp_us: 1_767_225_600_000_000 + seq as i64 * 1_500,
        database_id: [0xab; 16],
        session_id: 7,
        user: "alice".into(),
        client_addr: "10.0.0.7:5000".into(),
        application: "billing".into(),
        database: "main".into(),
        class: EventClass::Dml,
        operation: "INSERT".into(),
        targets: vec!["items".into()],
        query: "INSERT INTO items VALUES (?, ?)".into(),
        query_truncated: false,
        params: vec!["1".into(), "'pen'".into()],
        rows: 1,
        success: true,
        error: None,
        duration_us: 42,
        custom: BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]),
    };
    change(&mut event);
    SealedEvent {
        event,
        leaf: [seq as u8; 32],
        chain: [0x10 + seq as u8; 32],
    }
}

fn mapping() -> Mapping {
    Mapping {
        service_name: String::new(),
        database_id: "ab".repeat(16),
    }
}

/// The export time every snapshot uses.
const OBSERVED_US: i64 = 1_767_225_700_000_000;

#[test]
fn a_successful_statement() {
    let request = mapping().request(&[sealed(1, |_| {})], OBSERVED_US);
    insta::assert_json_snapshot!(request);
}

#[test]
fn a_refused_statement_and_an_engine_error() {
    let events = [
        sealed(2, |e| {
            e.class = EventClass::Select;
            e.operation = "SELECT".into();
            e.targets = vec!["no_such_table".into()];
            e.query = "SELECT * FROM no_such_table".into();
            e.params.clear();
            e.rows = 0;
            e.success = false;
            e.error = Some("SQL error: table 'no_such_table' not found".into());
        }),
        sealed(3, |e| {
            e.success = false;
            e.rows = 0;
            e.error = Some("corrupt row in keyspace \"data\" (key 00): truncated".into());
        }),
    ];
    insta::assert_json_snapshot!(mapping().request(&events, OBSERVED_US));
}

#[test]
fn an_application_event_and_two_services() {
    let events = [
        sealed(4, |e| {
            e.class = EventClass::App;
            e.operation = "ESIGN".into();
            e.query = "approved".into();
            e.params.clear();
            e.rows = 0;
            e.custom.insert("reason".into(), "review".into());
        }),
        sealed(5, |e| {
            e.application = String::new();
            e.class = EventClass::Auth;
            e.operation = "LOGIN".into();
            e.targets.clear();
            e.query.clear();
            e.params.clear();
            e.rows = 0;
            e.success = false;
            e.custom.clear();
        }),
    ];
    insta::assert_json_snapshot!(mapping().request(&events, OBSERVED_US));
}

#[test]
fn a_configured_service_name_wins() {
    let mapping = Mapping {
        service_name: "ledger-svc".into(),
        ..mapping()
    };
    let request = mapping.request(
        &[sealed(6, |_| {}), sealed(7, |e| e.application = "x".into())],
        OBSERVED_US,
    );
    assert_eq!(request.resource_logs.len(), 1, "one service, one resource");
    let attrs = &request.resource_logs[0]
        .resource
        .as_ref()
        .expect("resource")
        .attributes;
    let service = attrs
        .iter()
        .find(|kv| kv.key == "service.name")
        .expect("service.name");
    insta::assert_json_snapshot!(service);
}

#[test]
fn a_signed_checkpoint() {
    let checkpoint = heliosdb_engine::audit::StoredCheckpoint {
        size: 1000,
        root: [0x5a; 32],
        signed_at_us: 1_767_225_660_000_000,
        origin: format!("heliosdb/{}", "ab".repeat(16)),
        key_name: "ward-7".into(),
        key_id: "0a1b2c3d".into(),
        note: "heliosdb/abab\n1000\nWlpa\n\n\u{2014} ward-7 CgsMDQ==\n".into(),
    };
    let request = mapping().checkpoint_request(&[checkpoint], OBSERVED_US);
    insta::assert_json_snapshot!(request);
}
