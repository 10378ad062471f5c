//! Every `heliosdb.toml` key changes what the database does: each test opens a database
//! from a configuration text, runs a workload and checks the effect on the audit trail,
//! the storage or the sinks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::engine::audit::{self, AuditEvent, EventClass};
use heliosdb_lite::{
    AppEvent, AuditSink, Config, Database, DurabilityMode, Error, SealedEvent, SessionInfo,
    SinkContext, SinkError, StorageError, params,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config(text: &str) -> Config {
    Config::from_toml(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn open(text: &str) -> Database {
    Database::builder()
        .config(&config(text))
        .in_memory()
        .open()
        .expect("open")
}

fn events(db: &Database) -> Vec<AuditEvent> {
    audit::tail(db.backend(), usize::MAX)
        .expect("read the ledger")
        .into_iter()
        .map(|r| r.event)
        .collect()
}

fn session(db: &Database) -> heliosdb_lite::Session {
    db.session(
        SessionInfo::new("nurse")
            .application("ward-app")
            .client_addr("10.1.2.3")
            .custom("device", "tablet-9"),
    )
}

/// One event of every class: DDL, DML, SELECT, TXN, AUTH and APP, on tables `patients`
/// and `cache`, as user `nurse` then `probe`.
fn workload(db: &Database) {
    let mut s = session(db);
    s.execute(
        "CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)",
        &[],
    )
    .expect("ddl");
    s.execute("CREATE TABLE cache (k INTEGER PRIMARY KEY)", &[])
        .expect("ddl");
    s.execute(
        "INSERT INTO patients VALUES ($1, $2)",
        &params![1, "Ada Lovelace"],
    )
    .expect("dml");
    s.execute("INSERT INTO cache VALUES (1)", &[]).expect("dml");
    s.query("SELECT name FROM patients", &[]).expect("select");
    s.execute("BEGIN", &[]).expect("begin");
    s.execute("UPDATE patients SET name = 'A. Lovelace' WHERE id = 1", &[])
        .expect("update");
    s.execute("COMMIT", &[]).expect("commit");
    s.login("probe").expect("login");
    s.query("SELECT k FROM cache", &[]).expect("select");
    s.record_event(AppEvent::new("SIGN").target("patients"))
        .expect("app event");
    s.logout().expect("logout");
}

fn classes(events: &[AuditEvent]) -> Vec<EventClass> {
    let mut classes: Vec<EventClass> = events.iter().map(|e| e.class).collect();
    classes.sort_by_key(|c| c.as_str());
    classes.dedup();
    classes
}

#[test]
fn class_switches_drop_exactly_their_class() {
    let all = {
        let db = open("");
        workload(&db);
        classes(&events(&db))
    };
    assert_eq!(all.len(), 6, "the workload has every class: {all:?}");
    for (key, class) in [
        ("log_ddl", EventClass::Ddl),
        ("log_dml", EventClass::Dml),
        ("log_select", EventClass::Select),
        ("log_transactions", EventClass::Txn),
        ("log_auth", EventClass::Auth),
        ("log_app", EventClass::App),
    ] {
        let db = open(&format!("[audit]\n{key} = false\n"));
        workload(&db);
        let got = classes(&events(&db));
        let expected: Vec<EventClass> = all.iter().copied().filter(|c| *c != class).collect();
        assert_eq!(got, expected, "{key} = false");
    }
}

#[test]
fn enabled_false_records_nothing_but_attempts_on_the_log() {
    let db = open("[audit]\nenabled = false\n");
    workload(&db);
    assert!(events(&db).is_empty());
    let mut s = session(&db);
    s.execute("DELETE FROM __audit_log", &[])
        .expect_err("read-only");
    let events = events(&db);
    assert_eq!(events.len(), 1);
    assert!(!events[0].success);
}

#[test]
fn table_and_user_filters() {
    let targets = |text: &str| -> Vec<(String, Vec<String>)> {
        let db = open(text);
        workload(&db);
        events(&db)
            .into_iter()
            .filter(|e| e.class != EventClass::Txn && e.class != EventClass::Auth)
            .map(|e| (e.user, e.targets))
            .collect()
    };
    let excluded = targets("[audit]\nexclude_tables = [\"cache\"]\n");
    assert!(!excluded.is_empty());
    assert!(
        excluded.iter().all(|(_, t)| t != &["cache"]),
        "{excluded:?}"
    );
    let included = targets("[audit]\ninclude_tables = [\"cache\"]\n");
    assert!(!included.is_empty());
    assert!(
        included.iter().all(|(_, t)| t == &["cache"]),
        "{included:?}"
    );
    let probe_only = targets("[audit]\ninclude_users = [\"probe\"]\n");
    assert!(!probe_only.is_empty());
    assert!(
        probe_only.iter().all(|(u, _)| u == "probe"),
        "{probe_only:?}"
    );
    let no_probe = targets("[audit]\nexclude_users = [\"PROBE\"]\n");
    assert!(!no_probe.is_empty());
    assert!(no_probe.iter().all(|(u, _)| u == "nurse"), "{no_probe:?}");
}

#[test]
fn query_length_and_parameter_redaction() {
    let db = open("[audit]\nmax_query_length = 20\nredact_parameters = true\n");
    workload(&db);
    let insert = events(&db)
        .into_iter()
        .find(|e| e.operation == "INSERT" && e.targets == ["patients"])
        .expect("the insert");
    assert_eq!(insert.query, "INSERT INTO patients");
    assert!(insert.query_truncated);
    assert_eq!(insert.params, ["?", "?"]);

    let db = open("");
    workload(&db);
    let insert = events(&db)
        .into_iter()
        .find(|e| e.operation == "INSERT" && e.targets == ["patients"])
        .expect("the insert");
    assert_eq!(insert.query, "INSERT INTO patients VALUES ($1, $2)");
    assert!(!insert.query_truncated);
    assert_eq!(insert.params, ["1", "Ada Lovelace"]);
}

#[test]
fn metadata_capture_switches_empty_their_field() {
    let filled = |e: &AuditEvent| {
        [
            !e.client_addr.is_empty(),
            !e.application.is_empty(),
            !e.database.is_empty(),
            e.duration_us > 0,
            !e.custom.is_empty(),
        ]
    };
    let db = open("[database]\nname = \"ward-db\"\n");
    workload(&db);
    let every = events(&db);
    assert!(every.iter().all(|e| e.database == "ward-db"));
    assert!(every.iter().any(|e| filled(e) == [true; 5]));
    for (i, key) in [
        "capture_client_ip",
        "capture_application_name",
        "capture_database_name",
        "capture_execution_time",
        "capture_custom_fields",
    ]
    .into_iter()
    .enumerate()
    {
        let db = open(&format!("[audit.capture_metadata]\n{key} = false\n"));
        workload(&db);
        let events = events(&db);
        assert!(!events.is_empty());
        for event in &events {
            let fields = filled(event);
            assert!(!fields[i], "{key} = false but recorded: {event:?}");
        }
        assert!(
            events
                .iter()
                .any(|e| (0..5).filter(|j| *j != i).all(|j| filled(e)[j])),
            "{key} = false should leave the other fields"
        );
    }
}

#[test]
fn durability_and_busy_timeout() {
    let db = open("[database]\ndurability = \"sync\"\n");
    assert_eq!(db.options().durability, DurabilityMode::Sync);
    let db = open("[database]\ngroup_commit_ms = 250\nbusy_timeout_ms = 40\n");
    assert_eq!(
        db.options().durability,
        DurabilityMode::Group {
            interval: Duration::from_millis(250)
        }
    );
    let mut a = session(&db);
    let mut b = session(&db);
    a.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .expect("ddl");
    a.execute("BEGIN; INSERT INTO t VALUES (1)", &[])
        .expect("a holds the write lock");
    let started = Instant::now();
    let error = b
        .execute("INSERT INTO t VALUES (2)", &[])
        .expect_err("busy");
    assert!(matches!(error, Error::Busy { waited_ms: 40 }), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(40));
    a.execute("COMMIT", &[]).expect("commit");
}

#[test]
fn memory_limit_bounds_an_in_memory_database() {
    let db = open("[database]\nmemory_limit_mb = 1\n");
    assert_eq!(db.backend().limits(), [("limit_bytes", 1 << 20)]);
    let mut s = session(&db);
    s.execute("CREATE TABLE blob (id INTEGER PRIMARY KEY, body TEXT)", &[])
        .expect("ddl");
    let body = "x".repeat(100_000);
    let mut full = None;
    for id in 0..20 {
        if let Err(error) = s.execute(
            "INSERT INTO blob VALUES ($1, $2)",
            &params![id, body.as_str()],
        ) {
            full = Some((id, error));
            break;
        }
    }
    let (id, error) = full.expect("1 MiB cannot hold 2 MB");
    assert!(
        matches!(error, Error::Storage(StorageError::Full { .. })),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("database.memory_limit_mb"),
        "{error}"
    );
    // The refused commit changed nothing: every earlier row is there, the later one not.
    let rows = s
        .query("SELECT COUNT(*) AS n FROM blob", &[])
        .expect("count");
    assert_eq!(rows.get::<i64>(0, "n").expect("n"), id);
    // Without a limit the same data fits.
    let db = open("");
    assert!(db.backend().limits().is_empty());
}

#[test]
fn storage_sizes_reach_the_on_disk_backend() {
    let dir = tempfile::tempdir().expect("dir");
    let db = Database::builder()
        .config(&config("[database]\ncache_mb = 3\nmemory_limit_mb = 2\n"))
        .path(dir.path())
        .open()
        .expect("open");
    assert_eq!(
        db.backend().limits(),
        [("cache_bytes", 3 << 20), ("max_memtable_bytes", 2 << 20)]
    );
}

/// Records the size of every batch it is handed.
#[derive(Clone, Default)]
struct Recorder {
    batches: Arc<Mutex<Vec<Vec<SealedEvent>>>>,
}

impl AuditSink for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn resume_after(&mut self, _context: &SinkContext) -> Result<u64, SinkError> {
        Ok(self
            .batches
            .lock()
            .unwrap()
            .last()
            .and_then(|b| b.last())
            .map_or(0, |e| e.event.seq))
    }

    fn deliver(&mut self, _prev: &[u8; 32], events: &[SealedEvent]) -> Result<(), SinkError> {
        self.batches.lock().unwrap().push(events.to_vec());
        Ok(())
    }
}

fn caught_up(db: &Database) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = db.sink_status();
        if status.iter().all(|s| s.lag() == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sinks did not catch up: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn async_buffer_size_caps_each_delivery_and_user_sinks_see_every_event() {
    let recorder = Recorder::default();
    let db = Database::builder()
        .config(&config("[audit]\nasync_buffer_size = 2\n"))
        .sink(recorder.clone())
        .in_memory()
        .open()
        .expect("open");
    workload(&db);
    caught_up(&db);
    let batches = recorder.batches.lock().unwrap().clone();
    assert!(
        batches.iter().all(|b| !b.is_empty() && b.len() <= 2),
        "{batches:?}"
    );
    let delivered: Vec<(u64, [u8; 32])> = batches
        .iter()
        .flatten()
        .map(|e| (e.event.seq, e.chain))
        .collect();
    let ledger: Vec<(u64, [u8; 32])> = audit::tail(db.backend(), usize::MAX)
        .expect("ledger")
        .into_iter()
        .map(|r| (r.event.seq, r.chain))
        .collect();
    assert_eq!(
        delivered, ledger,
        "every event, in order, with its chain hash"
    );
    assert_eq!(db.sink_status()[0].delivered_seq, ledger.len() as u64);
}

fn read_export(path: &std::path::Path) -> (String, audit::ExportReport) {
    let text = std::fs::read_to_string(path).expect("read the sink file");
    let report = audit::verify_export(text.as_bytes()).expect("verify");
    (text, report)
}

#[test]
fn a_jsonl_file_sink_from_the_config_follows_the_ledger_across_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("heliosdb.toml"),
        "[audit]\nexclude_tables = [\"cache\"]\n[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"trail/audit.jsonl\"\n",
    )
    .expect("write config");
    let file = dir.path().join("trail/audit.jsonl");
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).expect("db dir");
    std::fs::rename(
        dir.path().join("heliosdb.toml"),
        db_dir.join("heliosdb.toml"),
    )
    .expect("move config next to the database");
    // The file is found next to the database; its relative paths are taken from there.
    let file_in_db = db_dir.join("trail/audit.jsonl");
    {
        let db = Database::open(&db_dir).expect("open");
        assert_eq!(db.sink_status().len(), 1);
        workload(&db);
        caught_up(&db);
        let head = db.audit_head().seq;
        drop(db);
        let (text, report) = read_export(&file_in_db);
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.last_seq, Some(head));
        assert!(!text.contains("\"cache\""), "the config's filters apply");
    }
    assert!(!file.exists());
    // A crash in the middle of a write leaves a torn line: the next open cuts it and
    // carries on with no gap and no duplicate.
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file_in_db)
            .expect("open the sink file");
        std::io::Write::write_all(&mut f, b"{\"seq\":99,\"timest").expect("tear");
    }
    let db = Database::open(&db_dir).expect("reopen");
    let mut s = session(&db);
    s.execute("INSERT INTO patients VALUES (2, 'Grace Hopper')", &[])
        .expect("insert");
    caught_up(&db);
    let head = db.audit_head().seq;
    drop(s);
    drop(db);
    let (text, report) = read_export(&file_in_db);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.first_seq, Some(1));
    assert_eq!(report.last_seq, Some(head));
    assert_eq!(text.lines().count() as u64, head, "no duplicates");
    assert!(text.contains("Grace Hopper"));
}

#[test]
fn a_jsonl_file_of_another_database_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("trail.jsonl");
    let toml = format!(
        "[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"{}\"\n",
        file.display()
    );
    {
        let db = open(&toml);
        workload(&db);
        caught_up(&db);
    }
    let lines = std::fs::read_to_string(&file)
        .expect("read")
        .lines()
        .count();
    let db = open(&toml);
    workload(&db);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = db.sink_status().remove(0);
        if status.last_error.is_some() || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let error = status.last_error.expect("the sink reports the refusal");
    assert!(
        error.contains("holds the audit trail of database"),
        "{error}"
    );
    assert_eq!(status.delivered_seq, 0);
    drop(db);
    assert_eq!(
        std::fs::read_to_string(&file)
            .expect("read")
            .lines()
            .count(),
        lines,
        "nothing appended to the other database's file"
    );
}

#[test]
fn a_bad_file_next_to_the_database_stops_the_open() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("heliosdb.toml");
    std::fs::write(&file, "[audit]\nlog_selct = false\n").expect("write");
    let error = Database::open(dir.path()).expect_err("invalid config");
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&format!("{}:2:1", file.display())), "{text}");
    assert!(text.contains("did you mean `log_select`?"), "{text}");
}

#[test]
fn open_with_config_uses_database_path_or_memory() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("heliosdb.toml");
    std::fs::write(
        &file,
        "[database]\npath = \"data\"\n[audit]\npreset = \"soc2\"\n",
    )
    .expect("write");
    let loaded = Config::load(Some(&file), &[]).expect("valid");
    let db = Database::open_with_config(&loaded).expect("open");
    assert_eq!(db.backend().location(), Some(dir.path().join("data")));
    assert!(!db.options().audit.log_select, "the preset applies");
    drop(db);
    let db = Database::open_with_config(&config("")).expect("memory");
    assert_eq!(db.backend().kind(), "memory");
}
