//! Crash durability: a child process commits numbered transactions in a loop on fjall and is
//! killed with SIGKILL at random moments. After every kill the database reopens with every
//! acknowledged transaction present, no transaction half-applied, and the stored Merkle
//! tree in step with the ledger's records.
//!
//! The child is this same test binary, re-run with `CRASH_CHILD_DIR` set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use heliosdb_lite::engine::audit::tree;
use heliosdb_lite::{Database, SessionInfo, params};
use rand::Rng;

const CHILD_ENV: &str = "CRASH_CHILD_DIR";
const ITEMS_PER_TXN: i64 = 3;
const KILLS: usize = 20;

/// Runs in the child: commit transactions forever, printing each number once it is
/// acknowledged.
#[test]
fn crash_child_workload() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful as the child of `kill_nine_loses_no_acknowledged_commit`.
    };
    let db = Database::open(&dir).expect("child open");
    let mut s = db.session(SessionInfo::new("crash-child"));
    s.execute(
        "CREATE TABLE IF NOT EXISTS ledger (n INTEGER PRIMARY KEY, note TEXT)",
        &[],
    )
    .expect("create ledger");
    s.execute(
        "CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, n INTEGER, payload TEXT)",
        &[],
    )
    .expect("create item");
    let start = s
        .query("SELECT COUNT(*) AS c FROM ledger", &[])
        .expect("count")
        .get::<i64>(0, "c")
        .expect("c")
        + 1;
    let payload = "x".repeat(200);
    for n in start.. {
        s.execute("BEGIN", &[]).expect("begin");
        s.execute(
            "INSERT INTO ledger VALUES ($1, $2)",
            &params![n, format!("txn {n}")],
        )
        .expect("ledger insert");
        for k in 0..ITEMS_PER_TXN {
            s.execute(
                "INSERT INTO item VALUES ($1, $2, $3)",
                &params![n * 10 + k, n, payload.clone()],
            )
            .expect("item insert");
        }
        s.execute("COMMIT", &[]).expect("commit");
        println!("ack {n}");
    }
}

#[test]
fn kill_nine_loses_no_acknowledged_commit() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut rng = rand::rng();
    let mut acked_total = 0i64;

    for round in 0..KILLS {
        // Let it commit a random number of transactions, then kill it mid-stream.
        let mut last_ack = None;
        common::run_child_and_kill(
            "crash_child_workload",
            CHILD_ENV,
            dir.path(),
            rng.random_range(1..40),
            |line| {
                let ack = common::tagged_number(line, "ack ");
                if ack.is_some() {
                    last_ack = ack;
                }
                ack.is_some()
            },
        );
        let last_ack =
            last_ack.unwrap_or_else(|| panic!("round {round}: child acknowledged nothing"));
        acked_total = acked_total.max(last_ack);

        // Reopen and check: every acknowledged transaction is there, whole.
        let db = Database::open(dir.path()).expect("reopen after kill");
        // The stored Merkle tree is in step with the ledger: the root the database keeps
        // at its size, and the root from stored nodes at a size inside it, equal the roots
        // recomputed from the stored records alone.
        let (size, root) = db.audit_root();
        assert_eq!(
            size,
            db.audit_head().seq,
            "round {round}: tree and ledger sizes"
        );
        let half = size / 2;
        let recomputed = tree::roots_from_records(db.backend(), &[half, size]).expect("records");
        assert_eq!(
            recomputed,
            [
                Some(db.audit_root_at(half).expect("root at half")),
                Some(root)
            ],
            "round {round}: the stored tree is not the tree of the stored records"
        );
        let mut s = db.session(SessionInfo::new("checker"));
        let ledger = s
            .query("SELECT n FROM ledger ORDER BY n", &[])
            .expect("ledger");
        let ns: Vec<i64> = (0..ledger.len())
            .map(|i| ledger.get::<i64>(i, "n").expect("n"))
            .collect();
        let max = ns.last().copied().unwrap_or(0);
        assert!(
            max >= acked_total,
            "round {round}: acknowledged transaction {acked_total} lost (max present {max})"
        );
        assert!(
            max <= acked_total + 1,
            "round {round}: transactions beyond the one in flight appeared"
        );
        assert_eq!(
            ns,
            (1..=max).collect::<Vec<_>>(),
            "round {round}: gap or duplicate in committed transactions"
        );
        let items = s
            .query("SELECT n, COUNT(*) AS c FROM item GROUP BY n", &[])
            .expect("items");
        assert_eq!(
            items.len() as i64,
            max,
            "round {round}: item groups != ledger rows"
        );
        for i in 0..items.len() {
            assert_eq!(
                items.get::<i64>(i, "c").expect("c"),
                ITEMS_PER_TXN,
                "round {round}: transaction {} is partial",
                items.get::<i64>(i, "n").expect("n")
            );
        }
        let report = db.verify().expect("verify after kill");
        assert!(report.is_intact(), "round {round}: {report:?}");
        // The audit trail matches the data exactly: one COMMIT event and one ledger INSERT
        // event per committed transaction, none for the transaction the kill cut short.
        let commits = s
            .query(
                "SELECT COUNT(*) AS c FROM __audit_log WHERE operation = 'COMMIT' AND success = TRUE",
                &[],
            )
            .expect("commit events")
            .get::<i64>(0, "c")
            .expect("c");
        assert_eq!(
            commits, max,
            "round {round}: COMMIT events != committed transactions"
        );
        let ledger_inserts = s
            .query(
                "SELECT COUNT(*) AS c FROM __audit_log WHERE operation = 'INSERT' AND target = 'ledger'",
                &[],
            )
            .expect("insert events")
            .get::<i64>(0, "c")
            .expect("c");
        assert_eq!(
            ledger_inserts, max,
            "round {round}: audit events != ledger rows"
        );
        acked_total = max;
    }
    assert!(acked_total >= KILLS as i64);
}
