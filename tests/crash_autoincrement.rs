//! AUTOINCREMENT across crashes: a child process inserts rows with generated ids (and
//! deletes the newest now and then) on fjall and is killed with SIGKILL at random moments.
//! After every kill the database reopens with every acknowledged row present, and no id
//! is ever handed out twice — not even the id of a deleted row.
//!
//! The child is this same test binary, re-run with `AUTOINC_CHILD_DIR` set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use heliosdb_lite::{Database, SessionInfo, params};
use rand::Rng;
use std::collections::BTreeSet;

const CHILD_ENV: &str = "AUTOINC_CHILD_DIR";
const KILLS: usize = 12;

/// Runs in the child: insert forever, printing `ack <id>` once an insert returned and
/// `del <id>` once a delete did.
#[test]
fn autoincrement_child_workload() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful as the child of `ids_never_repeat_after_kill_nine`.
    };
    let db = Database::open(&dir).expect("child open");
    let mut s = db.session(SessionInfo::new("autoinc-child"));
    s.execute(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)",
        &[],
    )
    .expect("create");
    for n in 0u64.. {
        let rows = s
            .query(
                "INSERT INTO events (body) VALUES (?) RETURNING id",
                &params![format!("event {n}")],
            )
            .expect("insert");
        let id = rows.get::<i64>(0, "id").expect("id");
        assert_eq!(s.last_insert_id(), Some(id));
        println!("ack {id}");
        if n % 5 == 4 {
            // Delete the newest row: its id must still never come back.
            s.execute("DELETE FROM events WHERE id = ?1", &params![id])
                .expect("delete");
            println!("del {id}");
        }
    }
}

#[test]
fn ids_never_repeat_after_kill_nine() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut rng = rand::rng();
    let mut handed_out: BTreeSet<i64> = BTreeSet::new();
    let mut deleted: BTreeSet<i64> = BTreeSet::new();

    for round in 0..KILLS {
        let floor = handed_out.last().copied().unwrap_or(0);
        common::run_child_and_kill(
            "autoincrement_child_workload",
            CHILD_ENV,
            dir.path(),
            rng.random_range(1..60),
            |line| {
                if let Some(id) = common::tagged_number(line, "ack ") {
                    assert!(
                        id > floor,
                        "round {round}: id {id} handed out again (ids up to {floor} were taken)"
                    );
                    assert!(handed_out.insert(id), "round {round}: id {id} repeated");
                    true
                } else {
                    if let Some(id) = common::tagged_number(line, "del ") {
                        deleted.insert(id);
                    }
                    false
                }
            },
        );
        assert!(
            !handed_out.is_empty(),
            "round {round}: child inserted nothing"
        );

        let db = Database::open(dir.path()).expect("reopen after kill");
        let mut s = db.session(SessionInfo::new("checker"));
        let rows = s
            .query("SELECT id FROM events ORDER BY id", &[])
            .expect("ids");
        let present: BTreeSet<i64> = (0..rows.len())
            .map(|i| rows.get::<i64>(i, "id").expect("id"))
            .collect();
        let newest = handed_out.last().copied();
        for id in &handed_out {
            if !deleted.contains(id) && !present.contains(id) {
                // The newest acknowledged row may have been deleted just before the kill,
                // with its `del` line lost; every other acknowledged row must be there.
                assert_eq!(
                    Some(*id),
                    newest,
                    "round {round}: acknowledged id {id} lost"
                );
            }
        }
        if let Some(newest) = newest
            && !present.contains(&newest)
        {
            deleted.insert(newest);
        }
        for id in &present {
            assert!(
                handed_out.contains(id) || Some(id) > handed_out.last(),
                "round {round}: id {id} present but never acknowledged nor in flight"
            );
        }
        // A row whose INSERT was in flight at the kill may have committed: its id is
        // taken from now on.
        handed_out.extend(present.iter().copied());
        // The next id is above every id ever handed out, deleted or not.
        let next = s
            .query(
                "INSERT INTO events (body) VALUES ('checker') RETURNING id",
                &[],
            )
            .expect("checker insert")
            .get::<i64>(0, "id")
            .expect("id");
        let highest = present
            .last()
            .copied()
            .into_iter()
            .chain(handed_out.last().copied())
            .max()
            .unwrap_or(0);
        assert!(
            next > highest,
            "round {round}: next id {next} is not above {highest}"
        );
        handed_out.insert(next);
        s.execute("DELETE FROM events WHERE id = ?1", &params![next])
            .expect("checker delete");
        deleted.insert(next);
        assert!(db.verify().expect("verify").is_intact());
    }
    assert!(handed_out.len() > KILLS);
}
