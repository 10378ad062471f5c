//! CREATE TABLE, CREATE INDEX and ALTER TABLE: SQLite's types and constraints mapped onto
//! GlueSQL's schema, with the rest kept in the table's [`TableExtras`].

use super::{Context, execute_glue, table_name, time};
use crate::catalog::{ColumnDefault, ForeignKeyRef, TableExtras, UniqueConstraint};
use crate::error::{Error, Result};
use crate::output::Output;
use crate::store::SqlStore;
use gluesql_core::sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, ColumnOptionDef, CreateIndex, CreateTable,
    DataType, ExactNumberInfo, Expr as SqlExpr, GeneratedAs, Ident, ReferentialAction,
    Statement as SqlStatement, TableConstraint, TimezoneInfo, Value as SqlValue, visit_expressions,
};
use gluesql_core::sqlparser::tokenizer::Token;
use std::ops::ControlFlow;

/// The GlueSQL type that stands for a type SQLite (or another common dialect) schemas use;
/// `None` keeps the type as written.
fn map_data_type(data_type: &DataType, column: &str) -> Result<Option<DataType>> {
    Ok(Some(match data_type {
        DataType::Real
        | DataType::Double
        | DataType::DoublePrecision
        | DataType::Float8
        | DataType::Float(Some(25..)) => DataType::Float64,
        DataType::Float4 | DataType::Float(Some(_)) => DataType::Float32,
        DataType::Character(_)
        | DataType::Char(_)
        | DataType::CharacterVarying(_)
        | DataType::CharVarying(_)
        | DataType::Varchar(_)
        | DataType::Nvarchar(_)
        | DataType::CharacterLargeObject(_)
        | DataType::CharLargeObject(_)
        | DataType::Clob(_)
        | DataType::String(_) => DataType::Text,
        DataType::Binary(_) | DataType::Varbinary(_) | DataType::Blob(_) | DataType::Bytes(_) => {
            DataType::Bytea
        }
        DataType::Numeric(_)
        | DataType::Decimal(
            ExactNumberInfo::Precision(_) | ExactNumberInfo::PrecisionAndScale(..),
        )
        | DataType::Dec(_)
        | DataType::BigNumeric(_)
        | DataType::BigDecimal(_) => DataType::Decimal(ExactNumberInfo::None),
        DataType::Datetime(_) | DataType::Timestamp(Some(_), TimezoneInfo::None) => {
            DataType::Timestamp(None, TimezoneInfo::None)
        }
        DataType::Integer(Some(_)) | DataType::Int(Some(_)) | DataType::BigInt(_) => {
            DataType::Int(None)
        }
        DataType::Int4(_) | DataType::MediumInt(_) => DataType::Int32,
        DataType::Int2(_) | DataType::SmallInt(_) => DataType::Int16,
        DataType::TinyInt(_) => DataType::Int8(None),
        DataType::Bool => DataType::Boolean,
        DataType::Unspecified => {
            return Err(Error::Unsupported(format!(
                "column {column} has no type: columns are typed here; add one (e.g. INTEGER, TEXT, REAL, BLOB)"
            )));
        }
        _ => return Ok(None),
    }))
}

/// True for the declared types an integer id can have.
fn is_integer(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int(_) | DataType::Integer(_) | DataType::BigInt(_) | DataType::Int64
    )
}

/// True when a default must be evaluated by the engine: it calls one of SQLite's date and
/// time functions, which GlueSQL cannot evaluate.
fn needs_engine_default(expr: &SqlExpr) -> bool {
    let flow = visit_expressions(expr, |e| {
        if time::is_engine_function(e) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    flow.is_break()
}

fn is_autoincrement(option: &ColumnOption) -> bool {
    matches!(option, ColumnOption::DialectSpecific(tokens)
        if tokens.iter().any(|t| matches!(t, Token::Word(w)
            if w.value.eq_ignore_ascii_case("AUTOINCREMENT")
                || w.value.eq_ignore_ascii_case("AUTO_INCREMENT"))))
}

pub(super) fn create_table(
    store: &mut SqlStore,
    create: &mut CreateTable,
    context: &Context<'_>,
) -> Result<Output> {
    let name = table_name(&create.name)?;
    if store.table_record(&name)?.is_some() {
        if create.if_not_exists {
            return Ok(Output::Done {
                statement: "CREATE TABLE",
            });
        }
        return Err(Error::Sql(Box::new(
            gluesql_core::executor::AlterError::TableAlreadyExists(name).into(),
        )));
    }
    if create.query.is_some() {
        // `AS SELECT` copies a query's columns, which carry nothing to rewrite.
        return execute_glue(
            store,
            &SqlStatement::CreateTable(create.clone()),
            context.params,
        )
        .map(Output::from_payload);
    }
    if create.or_replace {
        return Err(Error::Unsupported(
            "CREATE OR REPLACE TABLE: drop the table first".to_owned(),
        ));
    }
    if create.collation.is_some() || create.default_charset.is_some() {
        return Err(Error::Unsupported(
            "table-level COLLATE / CHARSET: text compares byte-wise".to_owned(),
        ));
    }
    // WITHOUT ROWID and STRICT are accepted: rows are always stored by key, and column
    // types are always enforced.
    let mut extras = TableExtras::default();
    let mut foreign_keys = Vec::new();

    // Table constraints over one column become column options; over several, engine
    // constraints.
    let mut kept = Vec::new();
    for constraint in std::mem::take(&mut create.constraints) {
        match constraint {
            TableConstraint::PrimaryKey {
                name: constraint_name,
                columns,
                ..
            } => {
                if columns.len() == 1 {
                    add_option(
                        create,
                        &columns[0],
                        ColumnOption::Unique {
                            is_primary: true,
                            characteristics: None,
                        },
                    )?;
                } else {
                    for column in &columns {
                        add_option(create, column, ColumnOption::NotNull)?;
                    }
                    extras.uniques.push(UniqueConstraint {
                        name: constraint_name
                            .map(|n| n.value)
                            .unwrap_or_else(|| format!("{name}_pkey")),
                        columns: columns.iter().map(|c| c.value.clone()).collect(),
                        primary: true,
                    });
                }
            }
            TableConstraint::Unique {
                name: constraint_name,
                columns,
                ..
            } => {
                for column in &columns {
                    find_column(create, column)?;
                }
                let label: Vec<&str> = columns.iter().map(|c| c.value.as_str()).collect();
                extras.uniques.push(UniqueConstraint {
                    name: constraint_name
                        .map(|n| n.value)
                        .unwrap_or_else(|| format!("{name}_{}_key", label.join("_"))),
                    columns: columns.iter().map(|c| c.value.clone()).collect(),
                    primary: false,
                });
            }
            TableConstraint::ForeignKey {
                name: constraint_name,
                columns,
                foreign_table,
                referred_columns,
                on_delete,
                on_update,
                ..
            } => {
                let [column] = columns.as_slice() else {
                    return Err(Error::Unsupported(
                        "FOREIGN KEY over several columns is not supported".to_owned(),
                    ));
                };
                let foreign_key = foreign_key(
                    &name,
                    constraint_name.map(|n| n.value),
                    column,
                    &foreign_table,
                    &referred_columns,
                    (on_delete, on_update),
                )?;
                find_column(create, column)?;
                foreign_keys.push(foreign_key);
            }
            other => kept.push(other),
        }
    }
    create.constraints = kept;
    for column in &mut create.columns {
        let mut options = Vec::with_capacity(column.options.len());
        for def in std::mem::take(&mut column.options) {
            match def.option {
                ColumnOption::ForeignKey {
                    foreign_table,
                    referred_columns,
                    on_delete,
                    on_update,
                    ..
                } => foreign_keys.push(foreign_key(
                    &name,
                    def.name.map(|n| n.value),
                    &column.name,
                    &foreign_table,
                    &referred_columns,
                    (on_delete, on_update),
                )?),
                option => options.push(ColumnOptionDef {
                    name: def.name,
                    option,
                }),
            }
        }
        column.options = options;
    }

    for column in &mut create.columns {
        rewrite_column(&name, column, &mut extras)?;
    }
    let has_primary = create.columns.iter().any(|c| {
        c.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::Unique {
                    is_primary: true,
                    ..
                }
            )
        })
    });
    if has_primary && extras.uniques.iter().any(|u| u.primary) {
        return Err(Error::Sql(Box::new(gluesql_core::error::Error::Parser(
            format!("table {name} has more than one primary key"),
        ))));
    }

    // Every foreign key must point at a primary key or UNIQUE column.
    for foreign_key in &foreign_keys {
        let referable = if foreign_key.parent == name {
            let primary = create.columns.iter().any(|c| {
                c.name.value == foreign_key.parent_column
                    && c.options.iter().any(|o| {
                        matches!(
                            o.option,
                            ColumnOption::Unique {
                                is_primary: true,
                                ..
                            }
                        )
                    })
            });
            primary
                || extras
                    .uniques
                    .iter()
                    .any(|u| u.columns == [foreign_key.parent_column.clone()])
        } else {
            match store.table_record(&foreign_key.parent)? {
                None => {
                    return Err(Error::Unsupported(format!(
                        "FOREIGN KEY {}: table {} does not exist",
                        foreign_key.name, foreign_key.parent
                    )));
                }
                Some(parent) => {
                    let primary = parent.schema.column_defs.iter().flatten().any(|c| {
                        c.name == foreign_key.parent_column
                            && c.unique.is_some_and(|u| u.is_primary)
                    });
                    primary
                        || parent
                            .extras
                            .uniques
                            .iter()
                            .any(|u| u.columns == [foreign_key.parent_column.clone()])
                }
            }
        };
        if !referable {
            return Err(Error::Unsupported(format!(
                "FOREIGN KEY {}: {}.{} is neither the primary key nor a UNIQUE column",
                foreign_key.name, foreign_key.parent, foreign_key.parent_column
            )));
        }
    }
    extras.foreign_keys = foreign_keys;
    if extras.foreign_keys.iter().any(|f| f.parent == name) {
        extras.referenced_by.push(name.clone());
    }

    let output = execute_glue(
        store,
        &SqlStatement::CreateTable(create.clone()),
        context.params,
    )
    .map(Output::from_payload)?;
    let parents: Vec<String> = extras
        .foreign_keys
        .iter()
        .map(|f| f.parent.clone())
        .filter(|p| *p != name)
        .collect();
    if !extras.is_empty() {
        store.set_extras(&name, extras)?;
    }
    for parent in parents {
        if let Some(record) = store.table_record(&parent)?
            && !record.extras.referenced_by.contains(&name)
        {
            let mut parent_extras = record.extras.clone();
            parent_extras.referenced_by.push(name.clone());
            store.set_extras(&parent, parent_extras)?;
        }
    }
    Ok(output)
}

/// A single-column foreign key with `NO ACTION` / `RESTRICT` semantics.
fn foreign_key(
    table: &str,
    name: Option<String>,
    column: &Ident,
    foreign_table: &gluesql_core::sqlparser::ast::ObjectName,
    referred_columns: &[Ident],
    actions: (Option<ReferentialAction>, Option<ReferentialAction>),
) -> Result<ForeignKeyRef> {
    for action in [actions.0, actions.1].into_iter().flatten() {
        if !matches!(
            action,
            ReferentialAction::NoAction | ReferentialAction::Restrict
        ) {
            return Err(Error::Unsupported(format!(
                "FOREIGN KEY on {table}.{column}: ON DELETE/UPDATE {action} is not supported (NO ACTION and RESTRICT are)"
            )));
        }
    }
    let parent = table_name(foreign_table)?;
    let parent_column = match referred_columns {
        [single] => single.value.clone(),
        [] => {
            return Err(Error::Unsupported(format!(
                "FOREIGN KEY on {table}.{column}: name the referenced column, e.g. REFERENCES {parent}(id)"
            )));
        }
        _ => {
            return Err(Error::Unsupported(
                "FOREIGN KEY over several columns is not supported".to_owned(),
            ));
        }
    };
    Ok(ForeignKeyRef {
        name: name.unwrap_or_else(|| format!("{table}_{column}_fkey")),
        column: column.value.clone(),
        parent,
        parent_column,
    })
}

/// Maps one column's type and options, moving what GlueSQL cannot hold into `extras`.
fn rewrite_column(table: &str, column: &mut ColumnDef, extras: &mut TableExtras) -> Result<()> {
    let name = column.name.value.clone();
    if column.collation.is_some() {
        return Err(Error::Unsupported(format!(
            "column {name}: COLLATE is not supported; text compares byte-wise"
        )));
    }
    let declared = column.data_type.clone();
    if let Some(mapped) = map_data_type(&column.data_type, &name)? {
        column.data_type = mapped;
    }
    let primary = column.options.iter().any(|o| {
        matches!(
            o.option,
            ColumnOption::Unique {
                is_primary: true,
                ..
            }
        )
    });
    let mut options = Vec::with_capacity(column.options.len());
    let mut auto = false;
    for def in std::mem::take(&mut column.options) {
        match &def.option {
            option if is_autoincrement(option) => {
                if !(primary && is_integer(&declared)) {
                    return Err(Error::Unsupported(format!(
                        "column {name}: AUTOINCREMENT is only allowed on an INTEGER PRIMARY KEY"
                    )));
                }
                auto = true;
            }
            ColumnOption::Generated {
                generated_as,
                generation_expr: None,
                ..
            } => {
                if !is_integer(&declared) {
                    return Err(Error::Unsupported(format!(
                        "column {name}: an identity column must be an integer"
                    )));
                }
                if matches!(generated_as, GeneratedAs::Always) {
                    extras.generated_always = true;
                }
                auto = true;
            }
            ColumnOption::Generated { .. } => {
                return Err(Error::Unsupported(format!(
                    "column {name}: generated (computed) columns are not supported"
                )));
            }
            ColumnOption::Default(expr) if needs_engine_default(expr) => {
                extras.defaults.push(ColumnDefault {
                    column: name.clone(),
                    sql: expr.to_string(),
                });
            }
            ColumnOption::Default(SqlExpr::Value(SqlValue::Number(n, _)))
                if column.data_type == DataType::Boolean
                    && (n.to_string() == "0" || n.to_string() == "1") =>
            {
                // SQLite spells booleans 0 and 1.
                let value = n.to_string() == "1";
                options.push(ColumnOptionDef {
                    name: def.name.clone(),
                    option: ColumnOption::Default(SqlExpr::Value(SqlValue::Boolean(value))),
                });
            }
            ColumnOption::Unique {
                is_primary: false, ..
            } => {
                // Engine-enforced: an index lookup per row instead of GlueSQL's table scan.
                extras.uniques.push(UniqueConstraint {
                    name: format!("{table}_{name}_key"),
                    columns: vec![name.clone()],
                    primary: false,
                });
            }
            _ => options.push(def),
        }
    }
    // SQLite: a column declared exactly `INTEGER PRIMARY KEY` is the rowid, and takes the
    // next id when the value is omitted or NULL.
    if primary && matches!(declared, DataType::Integer(None)) {
        auto = true;
    }
    if auto {
        if extras.autoincrement.is_some() {
            return Err(Error::Unsupported(format!(
                "table {table}: only one auto-increment column is allowed"
            )));
        }
        extras.autoincrement = Some(name);
    }
    column.options = options;
    Ok(())
}

fn find_column<'c>(create: &'c mut CreateTable, column: &Ident) -> Result<&'c mut ColumnDef> {
    create
        .columns
        .iter_mut()
        .find(|c| c.name.value == column.value)
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "constraint names column {column}, which the table does not have"
            ))
        })
}

fn add_option(create: &mut CreateTable, column: &Ident, option: ColumnOption) -> Result<()> {
    let column = find_column(create, column)?;
    if !column.options.iter().any(|o| o.option == option) {
        column.options.push(ColumnOptionDef { name: None, option });
    }
    Ok(())
}

pub(super) fn create_index(
    store: &mut SqlStore,
    create: &mut CreateIndex,
    context: &Context<'_>,
) -> Result<Output> {
    let done = Output::Done {
        statement: "CREATE INDEX",
    };
    let table = table_name(&create.table_name)?;
    let index_name = match &create.name {
        Some(name) => table_name(name)?,
        None => {
            return Err(Error::Unsupported(
                "CREATE INDEX needs an index name".to_owned(),
            ));
        }
    };
    let record = store.table_record(&table)?;
    if create.if_not_exists
        && let Some(record) = &record
        && (record.schema.indexes.iter().any(|i| i.name == index_name)
            || record.extras.uniques.iter().any(|u| u.name == index_name))
    {
        return Ok(done);
    }
    create.if_not_exists = false;
    let unique = std::mem::take(&mut create.unique);
    let columns: Vec<String> = create
        .columns
        .iter()
        .map(|c| match &c.expr {
            SqlExpr::Identifier(ident) => Ok(ident.value.clone()),
            other if !unique && create.columns.len() == 1 => Ok(other.to_string()),
            other => Err(Error::Unsupported(format!(
                "index on {other}: indexes over several columns and unique indexes take column names"
            ))),
        })
        .collect::<Result<_>>()?;
    // The index is kept on its leading column: queries on that column (and ORDER BY it) use
    // it; later columns are not part of the key.
    create.columns.truncate(1);
    let output = execute_glue(
        store,
        &SqlStatement::CreateIndex(create.clone()),
        context.params,
    )?;
    if unique {
        let Some(record) = store.table_record(&table)? else {
            return Err(Error::Internal(format!("table {table} vanished")));
        };
        let mut extras = record.extras.clone();
        extras.uniques.push(UniqueConstraint {
            name: index_name,
            columns,
            primary: false,
        });
        store.set_extras(&table, extras)?;
    }
    let _ = output;
    Ok(done)
}

/// Maps an added column's type as CREATE TABLE does, and refuses to drop or rename a
/// column that the table's extras depend on.
pub(super) fn check_alter(store: &SqlStore, statement: &mut SqlStatement) -> Result<()> {
    let SqlStatement::AlterTable {
        name, operations, ..
    } = statement
    else {
        return Ok(());
    };
    let table = table_name(name)?;
    let record = store.table_record(&table)?;
    for operation in operations {
        let column = match operation {
            AlterTableOperation::AddColumn { column_def, .. } => {
                let column = column_def.name.value.clone();
                if let Some(mapped) = map_data_type(&column_def.data_type, &column)? {
                    column_def.data_type = mapped;
                }
                for def in &column_def.options {
                    let engine_only = match &def.option {
                        ColumnOption::Default(expr) => needs_engine_default(expr),
                        ColumnOption::ForeignKey { .. } | ColumnOption::Generated { .. } => true,
                        option => is_autoincrement(option),
                    };
                    if engine_only {
                        return Err(Error::Unsupported(format!(
                            "ALTER TABLE {table} ADD COLUMN {column}: {} can only be declared in CREATE TABLE",
                            def.option
                        )));
                    }
                }
                continue;
            }
            AlterTableOperation::DropColumn { column_name, .. } => column_name,
            AlterTableOperation::RenameColumn {
                old_column_name, ..
            } => old_column_name,
            _ => continue,
        };
        if let Some(record) = &record
            && record.extras.columns().any(|c| c == column.value)
        {
            return Err(Error::Unsupported(format!(
                "ALTER TABLE {table}: column {column} is part of a constraint, generated id or default; recreate the table instead"
            )));
        }
    }
    Ok(())
}
