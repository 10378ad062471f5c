//! SQLite's date and time functions, checked against SQLite itself (the bundled library
//! of `rusqlite`): the same call, folded by the engine and run by SQLite, must give the
//! same value. Where SQLite returns NULL for malformed input, the engine must refuse
//! the statement with an error instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::{Database, Session, SessionInfo, Value};
use proptest::prelude::*;
use rusqlite::types::Value as Lite;

const TIME_VALUES: &[&str] = &[
    "'2024-05-17'",
    "'2024-05-17 13:45'",
    "'2024-05-17 13:45:10'",
    "'2024-05-17 13:45:10.123'",
    "'2024-05-17T13:45:10.987654'",
    "'2024-05-17 13:45:10Z'",
    "'2024-05-17 13:45:10+05:30'",
    "'2024-05-17 13:45:10-08:00'",
    "'2024-02-29 23:59:59'",
    "'2024-02-31'",
    "'2023-12-31 23:59:59.999'",
    "'2000-01-01'",
    "'1970-01-01 00:00:00'",
    "'0001-01-01'",
    "'9999-12-31 23:59:59'",
    "'13:45'",
    "'13:45:10.5'",
    "'12:00:00.0625'",
    "'2024-05-17 13:45:10.0005'",
    "'2024-05-17 13:45:59.9996'",
    "'24:00:00'",
    "2460447.5",
    "2451545",
    "'2451545.25'",
    "0",
    "1700000000",
    "-86400",
    "'2024-13-01'",
    "'2024-05-17 25:00'",
    "'not a date'",
    "''",
];

const MODIFIERS: &[&str] = &[
    "",
    ", '+1 day'",
    ", '-30 days'",
    ", '+1.5 days'",
    ", '+36 hours'",
    ", '-90 minutes'",
    ", '+45.25 seconds'",
    ", '+1 month'",
    ", '-1 month'",
    ", '+13 months'",
    ", '+1.5 months'",
    ", '+1 year'",
    ", '-2.25 years'",
    ", 'start of day'",
    ", 'start of month'",
    ", 'start of year'",
    ", 'weekday 0'",
    ", 'weekday 3'",
    ", 'unixepoch'",
    ", 'julianday'",
    ", 'auto'",
    ", 'subsec'",
    ", '+01:30'",
    ", '-00:00:30.5'",
    ", '+0001-02-03'",
    ", '-0000-01-00 12:00'",
    ", 'start of month', '+1 month', '-1 day'",
    ", '+1 day', 'start of day', 'subsec'",
    ", '-30 dayz'",
    ", 'weekday 9'",
    ", 'start of week'",
];

const FORMATS: &[&str] = &[
    "'%Y-%m-%d %H:%M:%S'",
    "'%f %j %J'",
    "'%s %w %u %W %U'",
    "'%V %G %g'",
    "'%F %T %R %e %k %I %l %p %P %%'",
];

fn ours(session: &mut Session, sql: &str) -> Result<Value, String> {
    match session.query(sql, &[]) {
        Ok(rows) => Ok(rows.rows[0][0].clone()),
        Err(e) => Err(e.to_string()),
    }
}

fn theirs(sqlite: &rusqlite::Connection, sql: &str) -> Lite {
    sqlite
        .query_row(sql, [], |row| row.get::<_, Lite>(0))
        .unwrap_or(Lite::Null)
}

fn same(ours: &Result<Value, String>, theirs: &Lite) -> bool {
    match (ours, theirs) {
        (Err(_), Lite::Null) => true,
        (Ok(Value::Null), Lite::Null) => true,
        (Ok(Value::Str(a)), Lite::Text(b)) => a == b,
        (Ok(Value::I64(a)), Lite::Integer(b)) => a == b,
        // Folded reals come back through a decimal literal; compare with a relative
        // tolerance far below a millisecond in a Julian day.
        (Ok(Value::F64(a)), Lite::Real(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        _ => false,
    }
}

fn check(session: &mut Session, sqlite: &rusqlite::Connection, call: &str) -> Option<String> {
    let sql = format!("SELECT {call}");
    let a = ours(session, &sql);
    let b = theirs(sqlite, &sql);
    (!same(&a, &b)).then(|| format!("{call}: ours {a:?}, SQLite {b:?}"))
}

#[test]
fn every_function_modifier_and_format_matches_sqlite() {
    let db = Database::in_memory().unwrap();
    let mut session = db.session(SessionInfo::new("t"));
    let sqlite = rusqlite::Connection::open_in_memory().unwrap();
    let mut mismatches = Vec::new();
    let mut cases = 0;
    for value in TIME_VALUES {
        for modifier in MODIFIERS {
            for function in ["date", "time", "datetime", "julianday", "unixepoch"] {
                cases += 1;
                mismatches.extend(check(
                    &mut session,
                    &sqlite,
                    &format!("{function}({value}{modifier})"),
                ));
            }
        }
        for format in FORMATS {
            cases += 1;
            mismatches.extend(check(
                &mut session,
                &sqlite,
                &format!("strftime({format}, {value})"),
            ));
        }
    }
    assert!(cases > 4000);
    assert!(
        mismatches.is_empty(),
        "{} of {cases} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn random_dates_and_shifts_match_sqlite(
        year in 1i32..9999, month in 1u32..13, day in 1u32..32,
        hour in 0u32..24, minute in 0u32..60, second in 0u32..60, millis in 0u32..1000,
        amount in -5000i64..5000, unit in prop::sample::select(vec!["days", "hours", "minutes", "seconds", "months", "years"]),
        start in prop::sample::select(vec!["", ", 'start of day'", ", 'start of month'", ", 'start of year'", ", 'weekday 1'"]),
    ) {
        let db = Database::in_memory().unwrap();
        let mut session = db.session(SessionInfo::new("t"));
        let sqlite = rusqlite::Connection::open_in_memory().unwrap();
        let value = format!("'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{millis:03}'");
        for call in [
            format!("datetime({value}, '{amount:+} {unit}'{start}, 'subsec')"),
            format!("julianday({value}, '{amount:+} {unit}'{start})"),
            format!("strftime('%Y %j %W %U %V %G %s %f', {value}, '{amount:+} {unit}'{start})"),
        ] {
            let mismatch = check(&mut session, &sqlite, &call);
            prop_assert!(mismatch.is_none(), "{}", mismatch.unwrap_or_default());
        }
    }
}
