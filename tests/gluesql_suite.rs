//! GlueSQL's own acceptance suite (`gluesql-test-suite` 0.20), run against every backend
//! through one macro.
//!
//! Every `generate_*_tests!` macro runs as published, except `generate_index_tests!`: its
//! cases are declared one by one so that `index/null.sql` can run with two expectations
//! corrected to SQL semantics (see `docs/COMPATIBILITY.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gluesql_core::prelude::Glue;
use heliosdb_lite::{Database, SqlStore};

/// `index/null.sql` expects `WHERE date >= DATE '2040-12-24'` and `WHERE id > 2` to return
/// rows whose column is NULL when an index serves the query. SQL says a comparison with
/// NULL is never true, and without an index GlueSQL itself returns no NULL rows, so an
/// index would change the answer. We return what SQL (and the unindexed plan) returns.
const NULL_FIXTURE_FIXES: &[(&str, &str)] = &[
    (
        "SELECT id, date, flag FROM NullIdx WHERE date >= DATE '2040-12-24';
-- @expect-index: idx_date >= DATE '2040-12-24'
-- @expect:
-- | id     | date | flag       |
-- | ------ | ---- | ---------- |
-- | NULL   | NULL | Bool(true) |
-- | I64(2) | NULL | NULL       |
-- | I64(4) | NULL | Bool(true) |
",
        "SELECT id, date, flag FROM NullIdx WHERE date >= DATE '2040-12-24';
-- @expect-index: idx_date >= DATE '2040-12-24'
-- @expect: count 0
",
    ),
    (
        "SELECT * FROM NullIdx WHERE id > 2;
-- @expect-index: idx_id > 2
-- @expect:
-- | id     | date             | flag        |
-- | ------ | ---------------- | ----------- |
-- | I64(3) | Date(1989-02-01) | Bool(false) |
-- | I64(4) | NULL             | Bool(true)  |
-- | NULL   | NULL             | Bool(true)  |
",
        "SELECT * FROM NullIdx WHERE id > 2;
-- @expect-index: idx_id > 2
-- @expect:
-- | id     | date             | flag        |
-- | ------ | ---------------- | ----------- |
-- | I64(3) | Date(1989-02-01) | Bool(false) |
-- | I64(4) | NULL             | Bool(true)  |
",
    ),
];

macro_rules! backend_suite {
    ($backend:ident, |$dir:ident| $open:expr) => {
        mod $backend {
            use super::*;
            use gluesql_test_suite::*;

            pub struct Suite {
                glue: Glue<SqlStore>,
                // Keeps the database directory alive for the test's duration.
                _dir: tempfile::TempDir,
            }

            impl gluesql_test_suite::Tester<SqlStore> for Suite {
                fn new(_namespace: &str) -> Self {
                    let $dir = tempfile::tempdir().expect("create temp dir");
                    let db: Database = $open.expect("open database");
                    Suite {
                        glue: Glue::new(db.sql_store()),
                        _dir: $dir,
                    }
                }

                fn get_glue(&mut self) -> &mut Glue<SqlStore> {
                    &mut self.glue
                }
            }

            gluesql_test_suite::generate_store_tests!(test, Suite);
            gluesql_test_suite::generate_alter_table_tests!(test, Suite);
            gluesql_test_suite::generate_transaction_tests!(test, Suite);
            gluesql_test_suite::generate_alter_table_index_tests!(test, Suite);
            gluesql_test_suite::generate_transaction_alter_table_tests!(test, Suite);
            gluesql_test_suite::generate_transaction_index_tests!(test, Suite);
            gluesql_test_suite::generate_metadata_table_tests!(test, Suite);
            gluesql_test_suite::generate_metadata_index_tests!(test, Suite);
            gluesql_test_suite::generate_custom_function_tests!(test, Suite);

            // generate_index_tests!, case by case, with index/null.sql corrected below.
            gluesql_test_suite::declare_sql_case!(test, Suite, index::basic);
            gluesql_test_suite::declare_sql_case!(test, Suite, index::and);
            gluesql_test_suite::declare_sql_case!(test, Suite, index::nested);
            gluesql_test_suite::declare_sql_case!(test, Suite, index::expr);
            gluesql_test_suite::declare_sql_case!(test, Suite, index::value);
            gluesql_test_suite::declare_sql_case!(test, Suite, index::order_by);
            gluesql_test_suite::declare_sql_case!(test, Suite, index::order_by::multi);
            gluesql_test_suite::declare_sql_case!(test, Suite, index::showindexes);
            gluesql_test_suite::declare_sql_case!(test, Suite, dictionary_index);

            #[test]
            fn sql_index_null_with_sql_semantics() {
                let path = "index/null.sql";
                let mut source = gluesql_test_suite::fixture::source(path).to_owned();
                for (published, corrected) in NULL_FIXTURE_FIXES {
                    assert!(
                        source.contains(published),
                        "the published fixture changed; review NULL_FIXTURE_FIXES"
                    );
                    source = source.replacen(published, corrected, 1);
                }
                gluesql_test_suite::fixture::run_fixture(Suite::new(path), path, &source);
            }
        }
    };
}

backend_suite!(memory, |dir| {
    let _ = &dir;
    Database::in_memory()
});
backend_suite!(fjall, |dir| Database::open(dir.path()));
