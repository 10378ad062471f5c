//! Scan hints: single-table SELECTs read only what their WHERE, ORDER BY and LIMIT can
//! use — both ends of a range on an indexed column or the primary key, and `ORDER BY
//! <key> LIMIT n` stopping after n matches — and return exactly what a full scan returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::{Database, Param, Session, SessionInfo, Value, params};
use proptest::prelude::*;

fn rows_read(s: &Session) -> u64 {
    s.rows_scanned() + s.rows_read_by_index()
}

/// Runs `sql` and returns its rows and how many rows the scans handed over.
fn run(s: &mut Session, sql: &str, params: &[Param]) -> (Vec<Vec<Value>>, u64) {
    let before = rows_read(s);
    let rows = s
        .query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (rows.rows.clone(), rows_read(s) - before)
}

fn audit_db() -> Database {
    let db = Database::in_memory().unwrap();
    let mut setup = db.session(SessionInfo::new("setup"));
    setup
        .execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v INTEGER)", &[])
        .unwrap();
    for (n, user) in ["u1", "u2", "u3", "u4"].into_iter().enumerate() {
        let mut s = db.session(SessionInfo::new(user));
        for i in 0..50_i64 {
            s.execute(
                "INSERT INTO a VALUES ($1, 1)",
                &params![n as i64 * 1000 + i],
            )
            .unwrap();
        }
    }
    db
}

#[test]
fn audit_log_timestamp_ranges_read_only_the_range() {
    let db = audit_db();
    let mut s = db.session(SessionInfo::new("auditor"));
    let stamp = |s: &mut Session, id: i64| -> Value {
        let rows = s
            .query(
                "SELECT timestamp FROM __audit_log WHERE id = $1",
                &params![id],
            )
            .unwrap();
        rows.rows[0][0].clone()
    };
    let (from, to) = (stamp(&mut s, 60), stamp(&mut s, 110));
    let param = |v: &Value| match v {
        Value::Timestamp(t) => Param::from(*t),
        other => panic!("{other:?}"),
    };
    let params = [param(&from), param(&to)];
    let (rows, read) = run(
        &mut s,
        "SELECT id FROM __audit_log WHERE timestamp >= $1 AND timestamp < $2",
        &params,
    );
    let expected = run(
        &mut s,
        "SELECT id FROM __audit_log WHERE timestamp >= $1",
        &params[..1],
    )
    .0
    .len();
    assert!(rows.len() >= 50, "{}", rows.len());
    assert!(rows.len() < expected, "the upper bound cut the range");
    assert_eq!(read, rows.len() as u64, "read exactly the range");
    // Bounds that exclude each other read nothing.
    let (rows, read) = run(
        &mut s,
        "SELECT id FROM __audit_log WHERE timestamp >= $2 AND timestamp < $1",
        &params,
    );
    assert!(rows.is_empty());
    assert_eq!(read, 0);
}

#[test]
fn last_events_of_a_user_stop_after_the_limit() {
    let db = audit_db();
    let mut s = db.session(SessionInfo::new("auditor"));
    let (rows, read) = run(
        &mut s,
        "SELECT id, user FROM __audit_log WHERE user = $1 ORDER BY id DESC LIMIT 5",
        &params!["u2"],
    );
    assert_eq!(read, 5);
    let ids: Vec<Value> = rows.iter().map(|r| r[0].clone()).collect();
    // The same question without a hint (a function in the WHERE defeats it).
    let (all, _) = run(
        &mut s,
        "SELECT id FROM __audit_log WHERE LOWER(user) = 'u2' ORDER BY id DESC",
        &[],
    );
    let expected: Vec<Value> = all.iter().take(5).map(|r| r[0].clone()).collect();
    assert_eq!(ids, expected);
    assert!(rows.iter().all(|r| r[1] == Value::Str("u2".into())));

    let (rows, read) = run(
        &mut s,
        "SELECT id FROM __audit_log ORDER BY id DESC LIMIT 3 OFFSET 2",
        &[],
    );
    assert_eq!(read, 5, "limit plus offset");
    let head = db.audit_head().seq as i64;
    // The query's own event (the head now) is sealed after it ran: it saw head - 1 last.
    assert_eq!(
        rows,
        vec![
            vec![Value::I64(head - 3)],
            vec![Value::I64(head - 4)],
            vec![Value::I64(head - 5)]
        ]
    );
    let (rows, read) = run(
        &mut s,
        "SELECT COUNT(*) FROM __audit_log WHERE id > 190 AND id <= 200",
        &[],
    );
    assert_eq!(rows, vec![vec![Value::I64(10)]]);
    assert_eq!(read, 10, "an id range reads only the range");
}

#[test]
fn user_tables_use_key_ranges_and_limits_inside_transactions_too() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)", &[])
        .unwrap();
    for id in 0..100_i64 {
        s.execute("INSERT INTO t VALUES ($1, $2)", &params![id, id % 7])
            .unwrap();
    }
    s.execute("CREATE INDEX t_v ON t (v)", &[]).unwrap();
    let (rows, read) = run(&mut s, "SELECT id FROM t WHERE id >= 10 AND id < 20", &[]);
    assert_eq!(rows.len(), 10);
    assert_eq!(read, 10);
    let (rows, read) = run(&mut s, "SELECT id FROM t ORDER BY id DESC LIMIT 3", &[]);
    assert_eq!(
        rows,
        vec![
            vec![Value::I64(99)],
            vec![Value::I64(98)],
            vec![Value::I64(97)]
        ]
    );
    assert_eq!(read, 3);
    let (rows, read) = run(
        &mut s,
        "SELECT id FROM t WHERE v = 3 AND id > 50 ORDER BY id LIMIT 2",
        &[],
    );
    assert_eq!(rows, vec![vec![Value::I64(52)], vec![Value::I64(59)]]);
    assert!(read <= 10, "read {read}");

    s.execute("BEGIN", &[]).unwrap();
    s.execute("INSERT INTO t VALUES (1000, 3)", &[]).unwrap();
    s.execute("DELETE FROM t WHERE id = 99", &[]).unwrap();
    let (rows, _) = run(&mut s, "SELECT id FROM t ORDER BY id DESC LIMIT 2", &[]);
    assert_eq!(rows, vec![vec![Value::I64(1000)], vec![Value::I64(98)]]);
    let (rows, _) = run(
        &mut s,
        "SELECT id FROM t WHERE v = 3 ORDER BY id DESC LIMIT 1",
        &[],
    );
    assert_eq!(rows, vec![vec![Value::I64(1000)]]);
    s.execute("ROLLBACK", &[]).unwrap();
}

#[derive(Clone, Debug)]
struct Conjunct {
    column: &'static str,
    op: &'static str,
    value: i64,
}

fn holds(row: &(i64, Option<i64>, String), c: &Conjunct) -> bool {
    let value = match c.column {
        "id" => Some(row.0),
        "v" => row.1,
        _ => return false,
    };
    let Some(value) = value else {
        return false;
    };
    match c.op {
        "=" => value == c.value,
        "<" => value < c.value,
        "<=" => value <= c.value,
        ">" => value > c.value,
        _ => value >= c.value,
    }
}

fn conjunct() -> impl Strategy<Value = Conjunct> {
    (
        prop::sample::select(vec!["id", "v"]),
        prop::sample::select(vec!["=", "<", "<=", ">", ">="]),
        -3i64..45,
    )
        .prop_map(|(column, op, value)| Conjunct { column, op, value })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the conjuncts, order and limit, a hinted query returns what the rows
    /// say it must.
    #[test]
    fn hinted_queries_return_what_a_full_scan_returns(
        rows in proptest::collection::btree_map(0i64..40, proptest::option::of(0i64..8), 0..30),
        conjuncts in proptest::collection::vec(conjunct(), 0..3),
        order in proptest::option::of(any::<bool>()),
        limit in proptest::option::of((0usize..6, 0usize..3)),
        indexed in any::<bool>(),
        flipped in any::<bool>(),
    ) {
        let db = Database::in_memory().unwrap();
        let mut s = db.session(SessionInfo::new("p"));
        s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NULL, w TEXT)", &[]).unwrap();
        if indexed {
            s.execute("CREATE INDEX t_v ON t (v)", &[]).unwrap();
        }
        let rows: Vec<(i64, Option<i64>, String)> =
            rows.into_iter().map(|(id, v)| (id, v, format!("w{id}"))).collect();
        for (id, v, w) in &rows {
            s.execute("INSERT INTO t VALUES ($1, $2, $3)", &params![*id, *v, w.clone()]).unwrap();
        }
        let mut sql = "SELECT id FROM t".to_owned();
        for (i, c) in conjuncts.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            if flipped {
                let op = match c.op { "<" => ">", "<=" => ">=", ">" => "<", ">=" => "<=", o => o };
                sql.push_str(&format!("{} {op} {}", c.value, c.column));
            } else {
                sql.push_str(&format!("{} {} {}", c.column, c.op, c.value));
            }
        }
        let mut expected: Vec<i64> = rows
            .iter()
            .filter(|row| conjuncts.iter().all(|c| holds(row, c)))
            .map(|row| row.0)
            .collect();
        if let Some(descending) = order {
            sql.push_str(if descending { " ORDER BY id DESC" } else { " ORDER BY id" });
            if descending {
                expected.reverse();
            }
            if let Some((limit, offset)) = limit {
                sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
                expected = expected.into_iter().skip(offset).take(limit).collect();
            }
        }
        let got = s.query(&sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut got: Vec<i64> = got.rows.iter().map(|r| match r[0] {
            Value::I64(id) => id,
            ref other => panic!("{other:?}"),
        }).collect();
        if order.is_none() {
            got.sort_unstable();
        }
        prop_assert_eq!(got, expected, "{}", sql);
    }
}

#[test]
fn audit_rows_carry_every_column_a_query_names() {
    let db = audit_db();
    let mut s = db.session(SessionInfo::new("auditor"));
    let (all, _) = run(
        &mut s,
        "SELECT * FROM __audit_log WHERE user = 'u3' AND success = TRUE ORDER BY id DESC LIMIT 2",
        &[],
    );
    let (some, _) = run(
        &mut s,
        "SELECT params, checksum, user, query FROM __audit_log WHERE user = 'u3' AND success = TRUE ORDER BY id DESC LIMIT 2",
        &[],
    );
    assert_eq!(all.len(), 2);
    for (full, named) in all.iter().zip(&some) {
        // __audit_log columns: params 11, checksum 17, user 3, query 10.
        assert_eq!(
            named,
            &vec![
                full[11].clone(),
                full[17].clone(),
                full[3].clone(),
                full[10].clone()
            ]
        );
        assert!(matches!(&named[1], Value::Str(h) if h.len() == 64));
        assert!(matches!(&named[0], Value::Str(p) if p.starts_with('[')));
    }
    // A column named only in the WHERE or ORDER BY is there to be tested.
    let (rows, _) = run(
        &mut s,
        "SELECT COUNT(*) FROM __audit_log WHERE operation = 'INSERT' AND affected_rows = 1 AND session_id > 0",
        &[],
    );
    assert_eq!(rows, vec![vec![Value::I64(200)]]);
}
