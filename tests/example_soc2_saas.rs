//! The soc2_saas example over HTTP: every audited statement carries the caller, the tenant
//! and the request's correlation id; tenants see only their own audit events; another
//! tenant's customer can be neither changed nor deleted, and the attempt is on record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/soc2_saas/main.rs"]
#[allow(dead_code)]
mod soc2_saas;

use heliosdb_lite::{Database, SessionInfo, Value};
use serde_json::{Value as JsonValue, json};
use soc2_saas::{AuditEvent, Client, Login, Reply, Server};

const ALICE: Login<'static> = Login {
    user: "alice",
    tenant: "acme",
};
const BOB: Login<'static> = Login {
    user: "bob",
    tenant: "globex",
};

/// `columns` of the `__audit_log` rows matching `filter`, in seq order, as JSON objects
/// (`custom` parsed), read straight from the database.
fn recorded(db: &Database, columns: &str, filter: &str) -> Vec<JsonValue> {
    let sql = format!("SELECT {columns} FROM __audit_log WHERE {filter} ORDER BY id");
    let rows = db
        .session(SessionInfo::new("auditor"))
        .query(&sql, &[])
        .unwrap();
    let field = |column: &str, value: &Value| match value {
        Value::Str(s) if column == "custom" => serde_json::from_str(s).unwrap(),
        Value::Str(s) => json!(s),
        Value::I64(n) => json!(n),
        Value::Bool(b) => json!(b),
        other => panic!("{column}: {other:?}"),
    };
    let object = |row: &Vec<Value>| {
        let pairs = rows.columns.iter().zip(row);
        JsonValue::Object(pairs.map(|(c, v)| (c.clone(), field(c, v))).collect())
    };
    rows.rows.iter().map(object).collect()
}

fn count(db: &Database, sql: &str) -> i64 {
    let mut s = db.session(SessionInfo::new("auditor"));
    s.query(sql, &[]).unwrap().get(0, "n").unwrap()
}

#[test]
fn every_statement_carries_caller_tenant_and_correlation_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = soc2_saas::open(dir.path()).unwrap();
    let server = Server::start(db.clone()).unwrap();
    let client = Client::new(server.addr);
    let send = |login, id: &str, method, path: &str, body| -> Reply {
        let reply = client.send(Some(login), Some(id), method, path, body);
        let reply = reply.unwrap();
        assert_eq!(reply.request_id, id, "the correlation id is echoed");
        reply
    };
    let person = |name: &str| Some(json!({ "name": name, "email": format!("{name}@x.test") }));

    let ada = send(ALICE, "a-1", "POST", "/customers", person("ada"));
    assert_eq!((ada.status, &ada.body["tenant_id"]), (201, &json!("acme")));
    let ada = format!("/customers/{}", ada.body["id"]);
    let grace = send(BOB, "b-1", "POST", "/customers", person("grace"));
    assert_eq!(grace.status, 201);
    let renamed = send(ALICE, "a-2", "PUT", &ada, person("lovelace"));
    assert_eq!(
        (renamed.status, &renamed.body["name"]),
        (200, &json!("lovelace"))
    );

    // Bob names acme's customer: refused, nothing changed, the statements are on record.
    assert_eq!(send(BOB, "b-2", "DELETE", &ada, None).status, 404);
    assert_eq!(send(BOB, "b-3", "PUT", &ada, person("mallory")).status, 404);
    let n = "SELECT COUNT(*) AS n FROM customers WHERE name = 'lovelace' AND tenant_id = 'acme'";
    assert_eq!(count(&db, n), 1, "the cross-tenant DELETE deleted nothing");
    assert_eq!(send(ALICE, "a-3", "DELETE", &ada, None).status, 204);
    assert_eq!(send(ALICE, "a-4", "DELETE", &ada, None).status, 404);

    // Each request's id is in the custom field of exactly its own statement, with the
    // caller's user and tenant.
    let writes = [
        ("a-1", "alice", "acme", "INSERT", 1),
        ("b-1", "bob", "globex", "INSERT", 1),
        ("a-2", "alice", "acme", "UPDATE", 1),
        ("b-2", "bob", "globex", "DELETE", 0),
        ("b-3", "bob", "globex", "UPDATE", 0),
        ("a-3", "alice", "acme", "DELETE", 1),
        ("a-4", "alice", "acme", "DELETE", 0),
    ]
    .map(|(id, user, tenant, operation, rows)| {
        json!({ "user": user, "application": "customers-api", "client_addr": "127.0.0.1",
            "operation": operation, "target": "customers", "affected_rows": rows,
            "success": true, "custom": { "correlation_id": id, "tenant": tenant } })
    });
    let columns =
        "user, application, client_addr, operation, target, affected_rows, success, custom";
    assert_eq!(recorded(&db, columns, "class = 'DML'"), writes);

    // Without credentials: 401 and a JSON error; no statement runs, but the refusal is
    // recorded (APP ACCESS_DENIED, failed) under the fresh correlation id it answers with.
    let mut refusals = Vec::new();
    for (login, method, path, missing) in [
        (None, "POST", "/customers", "x-user"),
        (
            Some(Login { user: "", ..ALICE }),
            "POST",
            "/customers",
            "x-user",
        ),
        (
            Some(Login { tenant: " ", ..BOB }),
            "GET",
            "/audit/events",
            "x-tenant",
        ),
    ] {
        let body = (method == "POST").then(|| json!({ "name": "eve", "email": "eve@x.test" }));
        let reply = client.send(login, None, method, path, body).unwrap();
        let error = format!("missing {missing} header");
        assert_eq!(
            (reply.status, &reply.body),
            (401, &json!({ "error": error }))
        );
        assert!(
            uuid::Uuid::parse_str(&reply.request_id).is_ok(),
            "{reply:?}"
        );
        let mut custom = json!({ "correlation_id": reply.request_id });
        let user = match login {
            Some(Login { user: "", tenant }) => {
                custom["tenant"] = json!(tenant);
                "anonymous"
            }
            Some(Login { user, .. }) => user,
            None => "anonymous",
        };
        refusals.push(json!({ "user": user, "query": error, "target": path,
            "success": false, "custom": custom }));
    }
    let denied = "class = 'APP' AND operation = 'ACCESS_DENIED'";
    let columns = "user, query, target, success, custom";
    assert_eq!(recorded(&db, columns, denied), refusals);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) AS n FROM customers WHERE name = 'eve'"
        ),
        0
    );

    // Each tenant's /audit/events: its own writes only, with the full metadata.
    for (login, ids) in [
        (ALICE, ["a-1", "a-2", "a-3", "a-4"].as_slice()),
        (BOB, &["b-1", "b-2", "b-3"]),
    ] {
        let reply = send(login, "audit", "GET", "/audit/events", None);
        assert_eq!(reply.status, 200);
        let events: Vec<AuditEvent> = serde_json::from_value(reply.body).unwrap();
        let seen: Vec<&str> = events
            .iter()
            .map(|e| e.custom["correlation_id"].as_str())
            .collect();
        assert_eq!(seen, ids, "{} sees exactly its own writes", login.tenant);
        for e in &events {
            assert_eq!(
                (e.user.as_str(), e.custom["tenant"].as_str()),
                (login.user, login.tenant)
            );
            assert_eq!(
                (e.client_addr.as_str(), e.checksum.len()),
                ("127.0.0.1", 64)
            );
            assert!(e.query.contains("tenant_id"), "{}", e.query);
        }
    }

    // The chain is intact and covers every event: the schema's 2 DDL, the 7 writes and
    // the 3 refusals.
    let report = send(BOB, "verify", "GET", "/audit/verify", None);
    assert_eq!(report.status, 200);
    assert_eq!(report.body["intact"], true, "{}", report.body);
    assert_eq!(report.body["problem"], JsonValue::Null);
    assert_eq!(report.body["events_checked"], 12);
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM __audit_log"), 12);
}

#[test]
fn scripted_session_reports_refusals_and_an_intact_chain() {
    let dir = tempfile::tempdir().unwrap();
    let report = soc2_saas::run(dir.path()).unwrap();
    let statuses: Vec<u16> = report.exchanges.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [201, 201, 200, 404, 404, 204, 401, 200, 200, 200]);
    let writes = |tenant: &str| -> Vec<(String, i64)> {
        let (_, events) = report.events.iter().find(|(t, _)| t == tenant).unwrap();
        events
            .iter()
            .map(|e| (e.operation.clone(), e.affected_rows))
            .collect()
    };
    let op = |o: &str, n| (o.to_owned(), n);
    assert_eq!(
        writes("acme"),
        [op("INSERT", 1), op("UPDATE", 1), op("DELETE", 1)]
    );
    assert_eq!(
        writes("globex"),
        [op("INSERT", 1), op("DELETE", 0), op("UPDATE", 0)]
    );
    assert!(report.integrity.intact, "{:?}", report.integrity);
    assert!(report.integrity.problem.is_none());
    // 2 DDL, 6 writes and the refused anonymous request.
    assert_eq!(report.integrity.events_checked, 9);
}
