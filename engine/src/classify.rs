//! Classification of a parsed SQL statement for the audit trail: its [`EventClass`], an
//! operation name, the tables it touches and the tables it writes.
//!
//! Classification works on the parsed [`Statement`], never on the SQL text, so comments,
//! whitespace, keyword case and quoting cannot disguise a statement.
//!
//! Table names are rendered as written, without quote characters, with every part of a
//! qualified name kept: `"My Table"` is reported as `My Table` and `main.t` as `main.t`.
//!
//! Two rules err on the side of reporting a write, because [`writes_table`] guards the
//! read-only audit table:
//! - a write nested anywhere in the statement counts (`WITH .. INSERT`, the body of
//!   `PREPARE`, `CREATE PROCEDURE` or `EXPLAIN ANALYZE`); only a plain `EXPLAIN` does not
//!   write what it explains;
//! - `DROP INDEX t.i` follows GlueSQL's convention, where the qualifier is the indexed table,
//!   so it writes `t`.

use sqlparser::ast::{
    CommentObject, CopySource, Delete, FromTable, GrantObjects, Ident, ObjectName, ObjectType,
    Query, ShowCreateObject, Statement, TableFactor, TableWithJoins, Visit, Visitor,
};
use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;

/// Audit class of an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventClass {
    /// Schema changes: `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `COMMENT`.
    Ddl,
    /// Data changes: `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `COPY`.
    Dml,
    /// Reads: queries, `SHOW`, `EXPLAIN`, `DESCRIBE`.
    Select,
    /// Transaction control: `BEGIN`, `COMMIT`, `ROLLBACK`, savepoints.
    Txn,
    /// Identity and privileges: roles, `GRANT`, `REVOKE`, logins.
    Auth,
    /// Everything else: session settings, maintenance, prepared statements.
    #[default]
    System,
    /// Events recorded by the application itself.
    App,
}

impl EventClass {
    /// Every class, in declaration order.
    pub const ALL: [EventClass; 7] = [
        EventClass::Ddl,
        EventClass::Dml,
        EventClass::Select,
        EventClass::Txn,
        EventClass::Auth,
        EventClass::System,
        EventClass::App,
    ];

    /// The class's upper-case name: `DDL`, `DML`, `SELECT`, `TXN`, `AUTH`, `SYSTEM` or `APP`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventClass::Ddl => "DDL",
            EventClass::Dml => "DML",
            EventClass::Select => "SELECT",
            EventClass::Txn => "TXN",
            EventClass::Auth => "AUTH",
            EventClass::System => "SYSTEM",
            EventClass::App => "APP",
        }
    }

    /// The class named `s`, compared case-insensitively (`"ddl"` and `"DDL"` are both
    /// [`EventClass::Ddl`]); `None` for any other text.
    ///
    /// ```
    /// use heliosdb_engine::classify::EventClass;
    /// assert_eq!(EventClass::parse("select"), Some(EventClass::Select));
    /// assert_eq!(EventClass::parse("READ"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|class| class.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for EventClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a statement is and which tables it touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    /// The statement's audit class.
    pub class: EventClass,
    /// Upper-case operation name, e.g. "CREATE_TABLE", "INSERT", "SELECT", "BEGIN".
    pub operation: &'static str,
    /// Every table read or written, deduplicated, in first-seen order (unquoted names as
    /// written, case preserved, qualified names kept whole).
    pub targets: Vec<String>,
    /// Tables the statement writes or alters (subset of targets): INSERT/UPDATE/DELETE
    /// target, DDL object table.
    pub written: Vec<String>,
}

/// Classifies a parsed statement: its class, operation, and the tables it reads and writes.
///
/// Common table expressions defined by the statement's `WITH` clauses are not tables and
/// are left out of `targets`, with SQL's scoping rules (a non-recursive CTE is visible to
/// the CTEs after it and to the query body, a recursive one also to itself). Table-valued
/// functions in `FROM` (GlueSQL's `SERIES(n)`) are not tables either.
///
/// ```
/// use heliosdb_engine::classify::{EventClass, classify};
/// use sqlparser::dialect::PostgreSqlDialect;
/// use sqlparser::parser::Parser;
///
/// let sql = "INSERT INTO archive SELECT * FROM orders WHERE closed";
/// let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
/// let c = classify(&statements[0]);
/// assert_eq!((c.class, c.operation), (EventClass::Dml, "INSERT"));
/// assert_eq!(c.targets, ["archive", "orders"]);
/// assert_eq!(c.written, ["archive"]);
/// ```
pub fn classify(statement: &Statement) -> Classification {
    let top = Shape::of(statement);
    let mut collector = Collector::default();
    // The collector never breaks, so the traversal always runs to the end.
    let _ = statement.visit(&mut collector);

    // A query whose body is a write (`WITH .. INSERT ..`, `WITH .. UPDATE ..`) is that write.
    let (class, operation) = match (statement, collector.nested_write) {
        (Statement::Query(_), Some(write)) => write,
        _ => (top.class, top.operation),
    };
    Classification {
        class,
        operation,
        targets: collector.targets,
        written: collector.written,
    }
}

/// True when `statement` writes or alters `table`, compared case-insensitively against the
/// [`Classification::written`] names and against the last part of each qualified one (so
/// `main.__audit_log` writes `__audit_log`).
///
/// Used to refuse every write to the read-only `__audit_log` system table.
pub fn writes_table(statement: &Statement, table: &str) -> bool {
    classify(statement).written.iter().any(|written| {
        written.eq_ignore_ascii_case(table)
            || written
                .rsplit('.')
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case(table))
    })
}

/// What one statement node is, without looking into nested statements or queries: its
/// class and operation, and the table names it holds outside the relations that the
/// sqlparser visitor reports (`DROP` names, `COPY` tables, ...).
struct Shape {
    class: EventClass,
    operation: &'static str,
    /// Tables written or altered.
    written: Vec<String>,
    /// Tables read that the visitor does not report.
    read: Vec<String>,
}

impl Shape {
    fn new(class: EventClass, operation: &'static str) -> Self {
        Shape {
            class,
            operation,
            written: Vec::new(),
            read: Vec::new(),
        }
    }

    fn writes<'a>(mut self, names: impl IntoIterator<Item = &'a ObjectName>) -> Self {
        self.written.extend(names.into_iter().map(render));
        self
    }

    fn writes_names(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.written.extend(names);
        self
    }

    fn reads<'a>(mut self, names: impl IntoIterator<Item = &'a ObjectName>) -> Self {
        self.read.extend(names.into_iter().map(render));
        self
    }

    fn reads_names(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.read.extend(names);
        self
    }

    // One arm per `Statement` variant, deliberately without a catch-all: a sqlparser upgrade
    // that adds a statement fails to compile here until someone decides how to audit it.
    fn of(statement: &Statement) -> Self {
        use EventClass::{Auth, Ddl, Dml, Select, System, Txn};
        match statement {
            // DDL
            Statement::CreateTable(create) => Shape::new(Ddl, "CREATE_TABLE")
                .writes([&create.name])
                .reads(create.like.iter().chain(&create.clone)),
            Statement::CreateVirtualTable { name, .. } => {
                Shape::new(Ddl, "CREATE_TABLE").writes([name])
            }
            Statement::AlterTable { name, .. } => Shape::new(Ddl, "ALTER_TABLE").writes([name]),
            Statement::CreateIndex(index) => {
                Shape::new(Ddl, "CREATE_INDEX").writes([&index.table_name])
            }
            Statement::AlterIndex { .. } => Shape::new(Ddl, "ALTER_INDEX"),
            Statement::Drop {
                object_type, names, ..
            } => match object_type {
                ObjectType::Table => Shape::new(Ddl, "DROP_TABLE").writes(names),
                ObjectType::View => Shape::new(Ddl, "DROP_VIEW").writes(names),
                ObjectType::Index => {
                    Shape::new(Ddl, "DROP_INDEX").writes_names(names.iter().filter_map(qualifier))
                }
                ObjectType::Role => Shape::new(Auth, "DROP_ROLE"),
                ObjectType::Schema
                | ObjectType::Database
                | ObjectType::Sequence
                | ObjectType::Stage
                | ObjectType::Type => Shape::new(Ddl, "DROP"),
            },
            Statement::CreateView { name, to, .. } => {
                Shape::new(Ddl, "CREATE_VIEW").writes(std::iter::once(name).chain(to))
            }
            Statement::AlterView { name, .. } => Shape::new(Ddl, "ALTER_VIEW").writes([name]),
            Statement::Truncate { table_names, .. } => {
                Shape::new(Ddl, "TRUNCATE").writes(table_names.iter().map(|t| &t.name))
            }
            Statement::CreateFunction { .. } => Shape::new(Ddl, "CREATE_FUNCTION"),
            Statement::DropFunction { .. } => Shape::new(Ddl, "DROP_FUNCTION"),
            Statement::CreateProcedure { .. } => Shape::new(Ddl, "CREATE_PROCEDURE"),
            Statement::DropProcedure { .. } => Shape::new(Ddl, "DROP_PROCEDURE"),
            Statement::CreateMacro { .. } => Shape::new(Ddl, "CREATE_MACRO"),
            Statement::CreateTrigger {
                table_name,
                referenced_table_name,
                ..
            } => Shape::new(Ddl, "CREATE_TRIGGER")
                .writes([table_name])
                .reads(referenced_table_name),
            Statement::DropTrigger { table_name, .. } => {
                Shape::new(Ddl, "DROP_TRIGGER").writes([table_name])
            }
            Statement::CreatePolicy { table_name, .. } => {
                Shape::new(Ddl, "CREATE_POLICY").writes([table_name])
            }
            Statement::AlterPolicy { table_name, .. } => {
                Shape::new(Ddl, "ALTER_POLICY").writes([table_name])
            }
            Statement::DropPolicy { table_name, .. } => {
                Shape::new(Ddl, "DROP_POLICY").writes([table_name])
            }
            Statement::CreateSchema { .. } => Shape::new(Ddl, "CREATE_SCHEMA"),
            Statement::CreateDatabase { .. } => Shape::new(Ddl, "CREATE_DATABASE"),
            Statement::CreateSequence { .. } => Shape::new(Ddl, "CREATE_SEQUENCE"),
            Statement::CreateType { .. } => Shape::new(Ddl, "CREATE_TYPE"),
            Statement::CreateExtension { .. } => Shape::new(Ddl, "CREATE_EXTENSION"),
            Statement::CreateStage { .. } => Shape::new(Ddl, "CREATE_STAGE"),
            Statement::Comment {
                object_type,
                object_name,
                ..
            } => {
                let shape = Shape::new(Ddl, "COMMENT");
                match object_type {
                    CommentObject::Table => shape.writes([object_name]),
                    CommentObject::Column => shape.writes_names(qualifier(object_name)),
                    CommentObject::Extension => shape,
                }
            }

            // DML
            Statement::Insert(insert) => Shape::new(Dml, "INSERT").writes([&insert.table_name]),
            Statement::Update { table, .. } => {
                Shape::new(Dml, "UPDATE").writes_names(update_targets(table))
            }
            Statement::Delete(delete) => {
                Shape::new(Dml, "DELETE").writes_names(delete_targets(delete))
            }
            Statement::Merge { table, .. } => {
                Shape::new(Dml, "MERGE").writes_names(table_factor_name(table))
            }
            Statement::Copy { source, to, .. } => {
                let shape = Shape::new(Dml, "COPY");
                match source {
                    // `COPY t TO ..` reads `t`; `COPY t FROM ..` writes it.
                    CopySource::Table { table_name, .. } if *to => shape.reads([table_name]),
                    CopySource::Table { table_name, .. } => shape.writes([table_name]),
                    CopySource::Query(_) => shape,
                }
            }
            Statement::CopyIntoSnowflake { into, .. } => Shape::new(Dml, "COPY").writes([into]),
            Statement::Directory { .. } => Shape::new(Dml, "INSERT_DIRECTORY"),

            // Reads
            Statement::Query(_) => Shape::new(Select, "SELECT"),
            Statement::ShowTables { .. } => Shape::new(Select, "SHOW_TABLES"),
            Statement::ShowColumns { .. } => Shape::new(Select, "SHOW_COLUMNS"),
            Statement::ShowFunctions { .. } => Shape::new(Select, "SHOW_FUNCTIONS"),
            Statement::ShowCreate { obj_type, obj_name } => {
                let shape = Shape::new(Select, "SHOW");
                match obj_type {
                    ShowCreateObject::Table | ShowCreateObject::View => shape.reads([obj_name]),
                    ShowCreateObject::Event
                    | ShowCreateObject::Function
                    | ShowCreateObject::Procedure
                    | ShowCreateObject::Trigger => shape,
                }
            }
            // GlueSQL reads `SHOW INDEXES FROM t` as this three-word variable.
            Statement::ShowVariable { variable } => match variable.as_slice() {
                [indexes, _, table] if indexes.value.eq_ignore_ascii_case("INDEXES") => {
                    Shape::new(Select, "SHOW_INDEXES").reads_names([table.value.clone()])
                }
                _ => Shape::new(Select, "SHOW"),
            },
            Statement::ShowVariables { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. } => Shape::new(Select, "SHOW"),
            Statement::Explain { .. } => Shape::new(Select, "EXPLAIN"),
            Statement::ExplainTable { .. } => Shape::new(Select, "DESCRIBE"),
            Statement::Declare { .. } => Shape::new(Select, "DECLARE"),
            Statement::Fetch { into, .. } => Shape::new(Select, "FETCH").writes(into),
            Statement::Unload { .. } => Shape::new(Select, "UNLOAD"),

            // Transactions
            Statement::StartTransaction { .. } => Shape::new(Txn, "BEGIN"),
            Statement::SetTransaction { .. } => Shape::new(Txn, "SET_TRANSACTION"),
            Statement::Commit { .. } => Shape::new(Txn, "COMMIT"),
            Statement::Rollback {
                savepoint: None, ..
            } => Shape::new(Txn, "ROLLBACK"),
            Statement::Rollback {
                savepoint: Some(_), ..
            } => Shape::new(Txn, "ROLLBACK_TO_SAVEPOINT"),
            Statement::Savepoint { .. } => Shape::new(Txn, "SAVEPOINT"),
            Statement::ReleaseSavepoint { .. } => Shape::new(Txn, "RELEASE_SAVEPOINT"),

            // Identity and privileges
            Statement::CreateRole { .. } => Shape::new(Auth, "CREATE_ROLE"),
            Statement::AlterRole { .. } => Shape::new(Auth, "ALTER_ROLE"),
            Statement::SetRole { .. } => Shape::new(Auth, "SET_ROLE"),
            Statement::Grant { objects, .. } => {
                Shape::new(Auth, "GRANT").reads(granted_tables(objects))
            }
            Statement::Revoke { objects, .. } => {
                Shape::new(Auth, "REVOKE").reads(granted_tables(objects))
            }
            Statement::CreateSecret { .. } => Shape::new(Auth, "CREATE_SECRET"),
            Statement::DropSecret { .. } => Shape::new(Auth, "DROP_SECRET"),

            // Everything else
            Statement::SetVariable { .. }
            | Statement::SetTimeZone { .. }
            | Statement::SetNames { .. }
            | Statement::SetNamesDefault {} => Shape::new(System, "SET"),
            Statement::Use(_) => Shape::new(System, "USE"),
            Statement::Analyze { .. } => Shape::new(System, "ANALYZE"),
            Statement::Msck { .. } => Shape::new(System, "MSCK"),
            Statement::Cache { .. } => Shape::new(System, "CACHE"),
            Statement::UNCache { .. } => Shape::new(System, "UNCACHE"),
            Statement::OptimizeTable { name, .. } => Shape::new(System, "OPTIMIZE").reads([name]),
            Statement::Flush { tables, .. } => Shape::new(System, "FLUSH").reads(tables),
            Statement::LockTables { tables } => Shape::new(System, "LOCK_TABLES")
                .reads_names(tables.iter().map(|lock| lock.table.value.clone())),
            Statement::UnlockTables => Shape::new(System, "UNLOCK_TABLES"),
            Statement::Pragma { .. } => Shape::new(System, "PRAGMA"),
            Statement::AttachDatabase { .. } | Statement::AttachDuckDBDatabase { .. } => {
                Shape::new(System, "ATTACH")
            }
            Statement::DetachDuckDBDatabase { .. } => Shape::new(System, "DETACH"),
            Statement::Install { .. } => Shape::new(System, "INSTALL"),
            Statement::Load { .. } => Shape::new(System, "LOAD"),
            Statement::Call(_) => Shape::new(System, "CALL"),
            Statement::Close { .. } => Shape::new(System, "CLOSE"),
            Statement::Discard { .. } => Shape::new(System, "DISCARD"),
            Statement::Prepare { .. } => Shape::new(System, "PREPARE"),
            Statement::Execute { .. } => Shape::new(System, "EXECUTE"),
            Statement::Deallocate { .. } => Shape::new(System, "DEALLOCATE"),
            Statement::Kill { .. } => Shape::new(System, "KILL"),
            Statement::Assert { .. } => Shape::new(System, "ASSERT"),
            Statement::LISTEN { .. } => Shape::new(System, "LISTEN"),
            Statement::NOTIFY { .. } => Shape::new(System, "NOTIFY"),
        }
    }
}

/// `name` as written, without quote characters: the identifiers' values joined by dots.
fn render(name: &ObjectName) -> String {
    render_idents(&name.0)
}

fn render_idents(idents: &[Ident]) -> String {
    let mut out = String::new();
    for (i, ident) in idents.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&ident.value);
    }
    out
}

/// Everything before the last part of a qualified name (`t` of `t.i`), if it has one: the
/// table of a GlueSQL `DROP INDEX t.i` or of a `COMMENT ON COLUMN t.c`.
fn qualifier(name: &ObjectName) -> Option<String> {
    match name.0.split_last() {
        Some((_, parents)) if !parents.is_empty() => Some(render_idents(parents)),
        _ => None,
    }
}

/// The name of a plain table in `FROM`; `None` for subqueries, functions and the like.
fn table_factor_name(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Table {
            name, args: None, ..
        } => Some(render(name)),
        _ => None,
    }
}

/// The tables an `UPDATE` writes: its table, and (MySQL's multi-table form) the tables
/// joined to it, any of which the `SET` list may assign.
fn update_targets(table: &TableWithJoins) -> Vec<String> {
    std::iter::once(&table.relation)
        .chain(table.joins.iter().map(|join| &join.relation))
        .filter_map(table_factor_name)
        .collect()
}

/// The tables a `DELETE` removes rows from: the tables it names before `FROM` (MySQL's
/// multi-table form), otherwise the table after `FROM` (not the ones it joins or `USING`).
fn delete_targets(delete: &Delete) -> Vec<String> {
    if !delete.tables.is_empty() {
        return delete.tables.iter().map(render).collect();
    }
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
    from.iter()
        .filter_map(|table| table_factor_name(&table.relation))
        .collect()
}

/// The tables a `GRANT` or `REVOKE` names (none for schema-wide grants).
fn granted_tables(objects: &GrantObjects) -> &[ObjectName] {
    match objects {
        GrantObjects::Tables(tables) => tables,
        GrantObjects::AllSequencesInSchema { .. }
        | GrantObjects::AllTablesInSchema { .. }
        | GrantObjects::Schemas(_)
        | GrantObjects::Sequences(_) => &[],
    }
}

/// How PostgreSQL compares identifiers: unquoted ones fold to lower case.
fn normalize(ident: &Ident) -> String {
    if ident.quote_style.is_none() {
        ident.value.to_lowercase()
    } else {
        ident.value.clone()
    }
}

/// The CTE names in scope within one query.
struct Frame {
    /// The query's own CTEs: normalized name, and the CTE's query (compared by address only,
    /// to recognize the CTE bodies as the visitor enters them).
    ctes: Vec<(String, *const Query)>,
    recursive: bool,
    /// Names visible to the query from its enclosing queries.
    outer: Vec<String>,
}

impl Frame {
    fn sees(&self, name: &str) -> bool {
        self.outer.iter().any(|n| n == name) || self.ctes.iter().any(|(n, _)| n == name)
    }

    /// Names visible inside `query` when it is nested directly in this frame's query.
    fn scope_for(&self, query: &Query) -> Vec<String> {
        let visible = match self.ctes.iter().position(|(_, q)| std::ptr::eq(*q, query)) {
            // A CTE body sees the CTEs before it, and itself when recursive.
            Some(_) if self.recursive => self.ctes.len(),
            Some(i) => i,
            None => self.ctes.len(),
        };
        let mut names = self.outer.clone();
        names.extend(self.ctes[..visible].iter().map(|(n, _)| n.clone()));
        names
    }
}

/// Walks a statement, collecting the tables it touches.
#[derive(Default)]
struct Collector {
    targets: Vec<String>,
    written: Vec<String>,
    /// One frame per query being visited, innermost last.
    frames: Vec<Frame>,
    /// Names of table-valued functions in `FROM`, by address: not tables.
    functions: Vec<*const ObjectName>,
    /// Statements being visited (the top-level one included).
    depth: usize,
    /// Plain `EXPLAIN`s being visited: what they explain is not run, so it writes nothing.
    explained: usize,
    /// Class and operation of the first data change nested in the statement.
    nested_write: Option<(EventClass, &'static str)>,
}

impl Collector {
    fn target(&mut self, name: String) {
        if !self.targets.contains(&name) {
            self.targets.push(name);
        }
    }

    fn written(&mut self, name: String) {
        if !self.written.contains(&name) {
            self.written.push(name);
        }
    }
}

impl Visitor for Collector {
    type Break = Infallible;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Infallible> {
        let shape = Shape::of(statement);
        let runs = self.explained == 0;
        if runs && self.depth > 0 && shape.class == EventClass::Dml && self.nested_write.is_none() {
            self.nested_write = Some((shape.class, shape.operation));
        }
        for name in shape.written {
            self.target(name.clone());
            if runs {
                self.written(name);
            }
        }
        for name in shape.read {
            self.target(name);
        }
        self.depth += 1;
        if matches!(statement, Statement::Explain { analyze: false, .. }) {
            self.explained += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Infallible> {
        self.depth = self.depth.saturating_sub(1);
        if matches!(statement, Statement::Explain { analyze: false, .. }) {
            self.explained = self.explained.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Infallible> {
        let outer = self
            .frames
            .last()
            .map(|parent| parent.scope_for(query))
            .unwrap_or_default();
        let (ctes, recursive) = match &query.with {
            Some(with) => (
                with.cte_tables
                    .iter()
                    .map(|cte| (normalize(&cte.alias.name), &*cte.query as *const Query))
                    .collect(),
                with.recursive,
            ),
            None => (Vec::new(), false),
        };
        self.frames.push(Frame {
            ctes,
            recursive,
            outer,
        });
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<Infallible> {
        self.frames.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Infallible> {
        if let TableFactor::Table {
            name,
            args: Some(_),
            ..
        } = factor
        {
            self.functions.push(name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Infallible> {
        if self.functions.iter().any(|f| std::ptr::eq(*f, relation)) {
            return ControlFlow::Continue(());
        }
        if let ([ident], Some(frame)) = (relation.0.as_slice(), self.frames.last())
            && frame.sees(&normalize(ident))
        {
            return ControlFlow::Continue(());
        }
        self.target(render(relation));
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn parse(sql: &str) -> Vec<Statement> {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap_or_else(|e| panic!("{sql:?} does not parse: {e}"))
    }

    fn one(sql: &str) -> Classification {
        let statements = parse(sql);
        assert_eq!(statements.len(), 1, "{sql:?}");
        classify(&statements[0])
    }

    /// Asserts class, operation, targets and written of `sql`.
    #[track_caller]
    fn check(sql: &str, class: EventClass, operation: &str, targets: &[&str], written: &[&str]) {
        let c = one(sql);
        assert_eq!((c.class, c.operation), (class, operation), "{sql:?}");
        assert_eq!(c.targets, targets, "targets of {sql:?}");
        assert_eq!(c.written, written, "written of {sql:?}");
    }

    #[test]
    fn class_names_round_trip() {
        for class in EventClass::ALL {
            assert_eq!(EventClass::parse(class.as_str()), Some(class));
            assert_eq!(
                EventClass::parse(&class.as_str().to_lowercase()),
                Some(class)
            );
            assert_eq!(class.to_string(), class.as_str());
        }
        assert_eq!(EventClass::parse("DQL"), None);
        assert_eq!(EventClass::parse(""), None);
    }

    #[test]
    fn ddl() {
        use EventClass::Ddl;
        check(
            "CREATE TABLE t (id INT)",
            Ddl,
            "CREATE_TABLE",
            &["t"],
            &["t"],
        );
        check(
            "CREATE TABLE t AS SELECT * FROM s",
            Ddl,
            "CREATE_TABLE",
            &["t", "s"],
            &["t"],
        );
        check(
            "DROP TABLE a, b",
            Ddl,
            "DROP_TABLE",
            &["a", "b"],
            &["a", "b"],
        );
        check("DROP TABLE IF EXISTS a", Ddl, "DROP_TABLE", &["a"], &["a"]);
        check(
            "ALTER TABLE t ADD COLUMN c INT",
            Ddl,
            "ALTER_TABLE",
            &["t"],
            &["t"],
        );
        check(
            "ALTER TABLE t RENAME TO u",
            Ddl,
            "ALTER_TABLE",
            &["t"],
            &["t"],
        );
        check(
            "CREATE INDEX i ON t (c)",
            Ddl,
            "CREATE_INDEX",
            &["t"],
            &["t"],
        );
        // GlueSQL's form names the table; a bare index name names none.
        check("DROP INDEX t.i", Ddl, "DROP_INDEX", &["t"], &["t"]);
        check("DROP INDEX i", Ddl, "DROP_INDEX", &[], &[]);
        check(
            "CREATE FUNCTION add_one(x INT) RETURNS INT AS 'select x + 1' LANGUAGE SQL",
            Ddl,
            "CREATE_FUNCTION",
            &[],
            &[],
        );
        check("DROP FUNCTION add_one", Ddl, "DROP_FUNCTION", &[], &[]);
        check(
            "CREATE VIEW v AS SELECT * FROM t",
            Ddl,
            "CREATE_VIEW",
            &["v", "t"],
            &["v"],
        );
        check("DROP VIEW v", Ddl, "DROP_VIEW", &["v"], &["v"]);
        check("TRUNCATE a, b", Ddl, "TRUNCATE", &["a", "b"], &["a", "b"]);
        check("TRUNCATE TABLE a", Ddl, "TRUNCATE", &["a"], &["a"]);
        check("DROP SCHEMA s", Ddl, "DROP", &[], &[]);
        check("DROP SEQUENCE q", Ddl, "DROP", &[], &[]);
        check("CREATE SCHEMA s", Ddl, "CREATE_SCHEMA", &[], &[]);
        check("CREATE DATABASE d", Ddl, "CREATE_DATABASE", &[], &[]);
        check("CREATE SEQUENCE q", Ddl, "CREATE_SEQUENCE", &[], &[]);
        check("COMMENT ON TABLE t IS 'x'", Ddl, "COMMENT", &["t"], &["t"]);
        check(
            "COMMENT ON COLUMN t.c IS 'x'",
            Ddl,
            "COMMENT",
            &["t"],
            &["t"],
        );
    }

    #[test]
    fn dml() {
        use EventClass::Dml;
        check(
            "INSERT INTO t VALUES (1, 'a')",
            Dml,
            "INSERT",
            &["t"],
            &["t"],
        );
        check(
            "INSERT INTO t SELECT * FROM s",
            Dml,
            "INSERT",
            &["t", "s"],
            &["t"],
        );
        check(
            "UPDATE t SET x = (SELECT max(y) FROM u)",
            Dml,
            "UPDATE",
            &["t", "u"],
            &["t"],
        );
        check(
            "UPDATE t SET x = u.y FROM u WHERE t.id = u.id",
            Dml,
            "UPDATE",
            &["t", "u"],
            &["t"],
        );
        check(
            "DELETE FROM t WHERE id IN (SELECT id FROM u)",
            Dml,
            "DELETE",
            &["t", "u"],
            &["t"],
        );
        check(
            "DELETE FROM t USING u WHERE t.id = u.id",
            Dml,
            "DELETE",
            &["t", "u"],
            &["t"],
        );
        check(
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            Dml,
            "MERGE",
            &["t", "s"],
            &["t"],
        );
        check("COPY t FROM '/tmp/t.csv'", Dml, "COPY", &["t"], &["t"]);
        check("COPY t TO STDOUT", Dml, "COPY", &["t"], &[]);
        check("COPY (SELECT * FROM t) TO STDOUT", Dml, "COPY", &["t"], &[]);
    }

    #[test]
    fn reads() {
        use EventClass::Select;
        check("SELECT 1", Select, "SELECT", &[], &[]);
        check("VALUES (1), (2)", Select, "SELECT", &[], &[]);
        check(
            "SELECT * FROM a UNION SELECT * FROM b",
            Select,
            "SELECT",
            &["a", "b"],
            &[],
        );
        check(
            "SELECT * FROM a JOIN b ON a.id = b.id WHERE x IN (SELECT y FROM c)",
            Select,
            "SELECT",
            &["a", "b", "c"],
            &[],
        );
        check(
            "SELECT * FROM (SELECT * FROM a) AS d, b WHERE EXISTS (SELECT 1 FROM a)",
            Select,
            "SELECT",
            &["a", "b"],
            &[],
        );
        check("SHOW TABLES", Select, "SHOW_TABLES", &[], &[]);
        check("SHOW COLUMNS FROM t", Select, "SHOW_COLUMNS", &["t"], &[]);
        check("SHOW FUNCTIONS", Select, "SHOW_FUNCTIONS", &[], &[]);
        check("SHOW VERSION", Select, "SHOW", &[], &[]);
        check("SHOW search_path", Select, "SHOW", &[], &[]);
        check("SHOW INDEXES FROM t", Select, "SHOW_INDEXES", &["t"], &[]);
        check("DESCRIBE t", Select, "DESCRIBE", &["t"], &[]);
        check("EXPLAIN SELECT * FROM t", Select, "EXPLAIN", &["t"], &[]);
    }

    #[test]
    fn table_functions_are_not_tables() {
        check(
            "SELECT * FROM SERIES(3) JOIN t ON true",
            EventClass::Select,
            "SELECT",
            &["t"],
            &[],
        );
    }

    #[test]
    fn names_are_unquoted_and_kept_whole() {
        check(
            r#"SELECT * FROM "My Table", main.t, "S"."U""#,
            EventClass::Select,
            "SELECT",
            &["My Table", "main.t", "S.U"],
            &[],
        );
        // Case is preserved and names differing in case are different tables.
        check(
            "SELECT * FROM Foo JOIN foo ON true JOIN Foo AS f ON true",
            EventClass::Select,
            "SELECT",
            &["Foo", "foo"],
            &[],
        );
    }

    #[test]
    fn ctes_are_not_tables() {
        use EventClass::{Dml, Select};
        check(
            "WITH w AS (SELECT * FROM t) SELECT * FROM w",
            Select,
            "SELECT",
            &["t"],
            &[],
        );
        // A later CTE sees an earlier one.
        check(
            "WITH a AS (SELECT * FROM t), b AS (SELECT * FROM a) SELECT * FROM b JOIN u ON true",
            Select,
            "SELECT",
            &["t", "u"],
            &[],
        );
        // A non-recursive CTE's body does not see itself: `t` there is the table.
        check(
            "WITH t AS (SELECT * FROM t) SELECT * FROM t",
            Select,
            "SELECT",
            &["t"],
            &[],
        );
        check(
            "WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT * FROM r) SELECT * FROM r",
            Select,
            "SELECT",
            &[],
            &[],
        );
        // A CTE name is not visible outside the query that defines it.
        check(
            "SELECT * FROM (WITH w AS (SELECT * FROM t) SELECT * FROM w) AS x JOIN w ON true",
            Select,
            "SELECT",
            &["t", "w"],
            &[],
        );
        // Unquoted names fold to lower case, as in PostgreSQL.
        check(
            "WITH W AS (SELECT * FROM t) SELECT * FROM w",
            Select,
            "SELECT",
            &["t"],
            &[],
        );
        // A query whose body is a write is that write.
        check(
            "WITH w AS (SELECT * FROM s) INSERT INTO t SELECT * FROM w",
            Dml,
            "INSERT",
            &["s", "t"],
            &["t"],
        );
        check(
            "WITH w AS (SELECT 1) UPDATE t SET x = 1",
            Dml,
            "UPDATE",
            &["t"],
            &["t"],
        );
    }

    #[test]
    fn txn() {
        use EventClass::Txn;
        for (sql, operation) in [
            ("BEGIN", "BEGIN"),
            ("START TRANSACTION", "BEGIN"),
            ("COMMIT", "COMMIT"),
            ("END", "COMMIT"),
            ("ROLLBACK", "ROLLBACK"),
            ("ROLLBACK TO SAVEPOINT s", "ROLLBACK_TO_SAVEPOINT"),
            ("SAVEPOINT s", "SAVEPOINT"),
            ("RELEASE SAVEPOINT s", "RELEASE_SAVEPOINT"),
            (
                "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                "SET_TRANSACTION",
            ),
        ] {
            check(sql, Txn, operation, &[], &[]);
        }
    }

    #[test]
    fn auth() {
        use EventClass::Auth;
        check("CREATE ROLE r LOGIN", Auth, "CREATE_ROLE", &[], &[]);
        check("DROP ROLE r", Auth, "DROP_ROLE", &[], &[]);
        check("ALTER ROLE r RENAME TO s", Auth, "ALTER_ROLE", &[], &[]);
        check("SET ROLE r", Auth, "SET_ROLE", &[], &[]);
        check("GRANT SELECT ON t TO r", Auth, "GRANT", &["t"], &[]);
        check("REVOKE ALL ON t FROM r", Auth, "REVOKE", &["t"], &[]);
        check(
            "GRANT SELECT ON ALL TABLES IN SCHEMA s TO r",
            Auth,
            "GRANT",
            &[],
            &[],
        );
    }

    #[test]
    fn system() {
        use EventClass::System;
        check("SET search_path = x", System, "SET", &[], &[]);
        check("SET TIME ZONE 'UTC'", System, "SET", &[], &[]);
        check("DISCARD ALL", System, "DISCARD", &[], &[]);
        check("DEALLOCATE p", System, "DEALLOCATE", &[], &[]);
        check("EXECUTE p(1)", System, "EXECUTE", &[], &[]);
        check("LISTEN c", System, "LISTEN", &[], &[]);
        check("CALL f()", System, "CALL", &[], &[]);
        // What a prepared statement would write counts: it runs on EXECUTE, unseen.
        check(
            "PREPARE p AS DELETE FROM t WHERE id = $1",
            System,
            "PREPARE",
            &["t"],
            &["t"],
        );
    }

    #[test]
    fn nested_writes_count() {
        use EventClass::Dml;
        // sqlparser accepts INSERT and UPDATE wherever it parses a query.
        check(
            "SELECT * FROM (INSERT INTO t VALUES (1) RETURNING *) AS x JOIN u ON true",
            Dml,
            "INSERT",
            &["t", "u"],
            &["t"],
        );
        check(
            "WITH d AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d",
            Dml,
            "INSERT",
            &["t"],
            &["t"],
        );
        check(
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = (SELECT 1 FROM u)",
            Dml,
            "INSERT",
            &["t", "u"],
            &["t"],
        );
    }

    #[test]
    fn glue_sql_forms() {
        use EventClass::{Ddl, Select};
        check(
            "CREATE FUNCTION add_one(x INT) RETURN x + 1",
            Ddl,
            "CREATE_FUNCTION",
            &[],
            &[],
        );
        check(
            "DROP INDEX a.i, b.j",
            Ddl,
            "DROP_INDEX",
            &["a", "b"],
            &["a", "b"],
        );
        check(
            "SELECT * FROM GLUE_TABLES JOIN generate_series(1, 3) AS g ON true",
            Select,
            "SELECT",
            &["GLUE_TABLES"],
            &[],
        );
    }

    #[test]
    fn explain_writes_only_when_it_runs() {
        check(
            "EXPLAIN DELETE FROM t",
            EventClass::Select,
            "EXPLAIN",
            &["t"],
            &[],
        );
        check(
            "EXPLAIN ANALYZE DELETE FROM t",
            EventClass::Select,
            "EXPLAIN",
            &["t"],
            &["t"],
        );
    }

    #[test]
    fn comments_whitespace_and_case_do_not_matter() {
        let plain = one("select 1");
        assert_eq!(one("/* hi */ -- c\n  select\t1"), plain);
        assert_eq!(one("SELECT 1"), plain);
        assert_eq!(one("  SeLeCt\n\n1  ;"), plain);

        let plain = one("insert into t select * from s where x in (select y from u)");
        assert_eq!(
            one("INSERT /* x */ INTO t\n\tSELECT * FROM s -- y\n WHERE x IN (SELECT y FROM u)"),
            plain
        );
        assert_eq!(plain.targets, ["t", "s", "u"]);
    }

    #[test]
    fn one_classification_per_statement() {
        let statements = parse(
            "CREATE TABLE t (id INT); BEGIN; INSERT INTO t VALUES (1); SELECT * FROM t; COMMIT",
        );
        let got: Vec<_> = statements
            .iter()
            .map(|s| {
                let c = classify(s);
                (c.class, c.operation, c.targets)
            })
            .collect();
        let t = || vec!["t".to_owned()];
        assert_eq!(
            got,
            [
                (EventClass::Ddl, "CREATE_TABLE", t()),
                (EventClass::Txn, "BEGIN", vec![]),
                (EventClass::Dml, "INSERT", t()),
                (EventClass::Select, "SELECT", t()),
                (EventClass::Txn, "COMMIT", vec![]),
            ]
        );
    }

    #[test]
    fn writes_to_the_audit_table() {
        let writes = |sql: &str| writes_table(&parse(sql)[0], "__audit_log");
        for sql in [
            "DROP TABLE __audit_log",
            "DROP TABLE IF EXISTS x, __audit_log",
            "INSERT INTO __AUDIT_LOG VALUES (1)",
            r#"INSERT INTO "__audit_log" SELECT * FROM t"#,
            "CREATE INDEX i ON __audit_log (user)",
            "DROP INDEX __audit_log.i",
            "ALTER TABLE __audit_log ADD COLUMN x INT",
            "ALTER TABLE __audit_log RENAME TO y",
            "DELETE FROM __audit_log",
            "UPDATE __audit_log SET success = true",
            "TRUNCATE __audit_log",
            "CREATE TABLE __audit_log (id INT)",
            "WITH w AS (SELECT 1) INSERT INTO __audit_log SELECT * FROM w",
            "COPY __audit_log FROM '/tmp/t.csv'",
            "DROP TABLE main.__audit_log",
        ] {
            assert!(writes(sql), "{sql:?} writes __audit_log");
        }
        for sql in [
            "SELECT * FROM __audit_log",
            "SELECT * FROM __audit_log JOIN t ON true",
            "INSERT INTO t SELECT * FROM __audit_log",
            "DELETE FROM t WHERE id IN (SELECT id FROM __audit_log)",
            "COPY __audit_log TO STDOUT",
            "EXPLAIN DELETE FROM __audit_log",
            "DROP TABLE __audit_log_copy",
        ] {
            assert!(!writes(sql), "{sql:?} does not write __audit_log");
        }
    }

    /// A table name that PostgreSQL's dialect reads as an identifier, not a keyword.
    fn table_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_]{0,8}".prop_filter("keywords are not table names", |name| {
            let upper = name.to_uppercase();
            !sqlparser::keywords::ALL_KEYWORDS.contains(&upper.as_str())
        })
    }

    fn dedup(names: &[&String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in names {
            if !out.contains(name) {
                out.push((*name).clone());
            }
        }
        out
    }

    proptest! {
        #[test]
        fn reports_exactly_the_tables(a in table_name(), b in table_name(), c in table_name()) {
            // (sql, targets in order, written)
            let cases = [
                (
                    format!("SELECT * FROM {a} JOIN {b} ON {a}.id = {b}.id WHERE x IN (SELECT y FROM {c})"),
                    dedup(&[&a, &b, &c]),
                    vec![],
                ),
                (format!("INSERT INTO {a} SELECT * FROM {b}"), dedup(&[&a, &b]), dedup(&[&a])),
                (
                    format!("UPDATE {a} SET x = (SELECT max(y) FROM {b} WHERE z IN (SELECT z FROM {c}))"),
                    dedup(&[&a, &b, &c]),
                    dedup(&[&a]),
                ),
                (
                    format!("DELETE FROM {a} WHERE id IN (SELECT id FROM {b} JOIN {c} ON true)"),
                    dedup(&[&a, &b, &c]),
                    dedup(&[&a]),
                ),
                (format!("CREATE TABLE {a} (id INT)"), dedup(&[&a]), dedup(&[&a])),
                (format!("CREATE TABLE {a} AS SELECT * FROM {b}"), dedup(&[&a, &b]), dedup(&[&a])),
                (format!("DROP TABLE {a}, {b}"), dedup(&[&a, &b]), dedup(&[&a, &b])),
                (format!("CREATE INDEX idx ON {a} (col)"), dedup(&[&a]), dedup(&[&a])),
                (format!("ALTER TABLE {a} ADD COLUMN z INT"), dedup(&[&a]), dedup(&[&a])),
                (
                    format!("WITH cte_name_long AS (SELECT * FROM {a}) SELECT * FROM cte_name_long JOIN {b} ON true"),
                    dedup(&[&a, &b]),
                    vec![],
                ),
            ];
            for (sql, targets, written) in cases {
                let statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
                    .map_err(|e| TestCaseError::fail(format!("{sql:?}: {e}")))?;
                prop_assert_eq!(statements.len(), 1);
                let got = classify(&statements[0]);
                prop_assert_eq!(&got.targets, &targets, "targets of {:?}", sql);
                prop_assert_eq!(&got.written, &written, "written of {:?}", sql);
                for table in &written {
                    prop_assert!(writes_table(&statements[0], &table.to_uppercase()));
                }
            }
        }
    }
}
