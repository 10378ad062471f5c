//! From sealed audit events to OTLP log records (`docs/OTLP.md` §1 documents every field).
//!
//! One export request holds one `ResourceLogs` per run of consecutive events with the same
//! `service.name`, each with one `ScopeLogs` (`heliosdb.audit`), so the records of a
//! request, read in order, are in seq order.

use heliosdb_engine::audit::{AuditEvent, SealedEvent, StoredCheckpoint};
use heliosdb_engine::classify::EventClass;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Name of the instrumentation scope every record is exported under.
pub const SCOPE_NAME: &str = "heliosdb.audit";

/// `service.name` when neither the configuration nor the event names an application.
pub const DEFAULT_SERVICE_NAME: &str = "heliosdb";

/// What the mapping needs besides the events: who exports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// `service.name` for every record; when empty, each event's `application` (or
    /// [`DEFAULT_SERVICE_NAME`] when that is empty too).
    pub service_name: String,
    /// The followed database's id, hex: `service.instance.id` and the prefix of every
    /// `heliosdb.audit.event_id`.
    pub database_id: String,
}

/// How an event's outcome maps to a severity and an `error.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// INFO, WARN or ERROR.
    pub severity: SeverityNumber,
    /// The error kind (`sql`, `permission`, `storage`, ..., `_OTHER`); `None` on success.
    pub error_type: Option<&'static str>,
}

/// The severity rule: INFO for a success; for a failure, the engine's error kind read
/// from the recorded error text ([`heliosdb_engine::Error::kind_of_message`], kept beside
/// the engine's messages): WARN for the caller's errors (SQL, parameter, transaction,
/// unsupported, constraint, concurrency, permission), ERROR for the engine's own (config,
/// storage, integrity, internal, closed). A failure whose text is no engine error is WARN
/// when it is an action refused to its caller — recorded without an error text, or an AUTH
/// or APP event (a denied login and its reason, a failed application action) — and ERROR
/// otherwise (`error.type` `_OTHER` for both).
pub fn outcome(event: &AuditEvent) -> Outcome {
    if event.success {
        return Outcome {
            severity: SeverityNumber::Info,
            error_type: None,
        };
    }
    let kind = event
        .error
        .as_deref()
        .and_then(heliosdb_engine::Error::kind_of_message);
    let severity = match kind {
        Some(kind) if heliosdb_engine::Error::is_user_kind(kind) => SeverityNumber::Warn,
        Some(_) => SeverityNumber::Error,
        None if event.error.is_none()
            || matches!(event.class, EventClass::Auth | EventClass::App) =>
        {
            SeverityNumber::Warn
        }
        None => SeverityNumber::Error,
    };
    Outcome {
        severity,
        error_type: Some(kind.unwrap_or("_OTHER")),
    }
}

fn severity_text(severity: SeverityNumber) -> &'static str {
    match severity {
        SeverityNumber::Info => "INFO",
        SeverityNumber::Warn => "WARN",
        _ => "ERROR",
    }
}

fn class_name(class: EventClass) -> &'static str {
    match class {
        EventClass::Ddl => "ddl",
        EventClass::Dml => "dml",
        EventClass::Select => "select",
        EventClass::Txn => "txn",
        EventClass::Auth => "auth",
        EventClass::System => "system",
        EventClass::App => "app",
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn string(s: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(s.into())),
    })
}

fn kv(key: impl Into<String>, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
        ..KeyValue::default()
    }
}

fn int(value: u64) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::IntValue(i64::try_from(value).unwrap_or(i64::MAX))),
    })
}

fn unix_nanos(us: i64) -> u64 {
    u64::try_from(us).unwrap_or(0).saturating_mul(1000)
}

impl Mapping {
    /// The `service.name` of `event`'s record.
    pub fn service_name<'a>(&'a self, event: &'a AuditEvent) -> &'a str {
        if !self.service_name.is_empty() {
            &self.service_name
        } else if !event.application.is_empty() {
            &event.application
        } else {
            DEFAULT_SERVICE_NAME
        }
    }

    /// `"<database id hex>:<seq>"`: the receiver's de-duplication key.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}:{seq}", self.database_id)
    }

    fn resource(&self, service_name: &str) -> Resource {
        Resource {
            attributes: vec![
                kv("service.name", string(service_name)),
                kv("service.instance.id", string(self.database_id.clone())),
            ],
            ..Resource::default()
        }
    }

    /// The log record of one sealed event; `observed_us` is the export time.
    pub fn log_record(&self, sealed: &SealedEvent, observed_us: i64) -> LogRecord {
        let event = &sealed.event;
        let outcome = outcome(event);
        let mut attributes = vec![
            kv("db.system.name", string("heliosdb")),
            kv("db.operation.name", string(event.operation.clone())),
        ];
        if !event.database.is_empty() {
            attributes.push(kv("db.namespace", string(event.database.clone())));
        }
        if let [target] = event.targets.as_slice() {
            attributes.push(kv("db.collection.name", string(target.clone())));
        }
        if !event.query.is_empty() {
            attributes.push(kv("db.query.text", string(event.query.clone())));
        }
        for (i, param) in event.params.iter().enumerate() {
            attributes.push(kv(format!("db.query.parameter.{i}"), string(param.clone())));
        }
        if let Some(kind) = outcome.error_type {
            attributes.push(kv("db.response.status_code", string(kind)));
            attributes.push(kv("error.type", string(kind)));
        }
        if let Some(error) = &event.error {
            attributes.push(kv("heliosdb.audit.error", string(error.clone())));
        }
        if !event.client_addr.is_empty() {
            attributes.push(kv("client.address", string(event.client_addr.clone())));
        }
        if !event.user.is_empty() {
            attributes.push(kv("user.name", string(event.user.clone())));
            attributes.push(kv("enduser.id", string(event.user.clone())));
        }
        attributes.push(kv("session.id", string(event.session_id.to_string())));
        if !event.application.is_empty() {
            attributes.push(kv(
                "heliosdb.audit.application",
                string(event.application.clone()),
            ));
        }
        attributes.extend([
            kv("heliosdb.audit.event_id", string(self.event_id(event.seq))),
            kv("heliosdb.audit.seq", int(event.seq)),
            kv("heliosdb.audit.class", string(event.class.to_string())),
            kv("heliosdb.audit.success", bool_value(event.success)),
            kv("heliosdb.audit.chain_hash", string(hex(&sealed.chain))),
            kv("heliosdb.audit.leaf_hash", string(hex(&sealed.leaf))),
            kv("heliosdb.audit.affected_rows", int(event.rows)),
            kv("heliosdb.audit.duration_us", int(event.duration_us)),
        ]);
        if !event.targets.is_empty() {
            let targets = event.targets.iter().map(|t| AnyValue {
                value: Some(Value::StringValue(t.clone())),
            });
            attributes.push(kv(
                "heliosdb.audit.targets",
                Some(AnyValue {
                    value: Some(Value::ArrayValue(ArrayValue {
                        values: targets.collect(),
                    })),
                }),
            ));
        }
        if event.query_truncated {
            attributes.push(kv("heliosdb.audit.query_truncated", bool_value(true)));
        }
        for (key, value) in &event.custom {
            attributes.push(kv(
                format!("heliosdb.audit.custom.{key}"),
                string(value.clone()),
            ));
        }
        LogRecord {
            time_unix_nano: unix_nanos(event.timestamp_us),
            observed_time_unix_nano: unix_nanos(observed_us),
            severity_number: outcome.severity as i32,
            severity_text: severity_text(outcome.severity).to_owned(),
            body: string(body(event)),
            attributes,
            event_name: format!("db.audit.{}", class_name(event.class)),
            ..LogRecord::default()
        }
    }

    /// The export request for `events` (in seq order), observed at `observed_us`.
    pub fn request(&self, events: &[SealedEvent], observed_us: i64) -> ExportLogsServiceRequest {
        let mut resource_logs: Vec<ResourceLogs> = Vec::new();
        let mut current: Option<&str> = None;
        for sealed in events {
            let service = self.service_name(&sealed.event);
            let record = self.log_record(sealed, observed_us);
            match resource_logs.last_mut() {
                Some(last) if current == Some(service) => {
                    if let Some(scope) = last.scope_logs.last_mut() {
                        scope.log_records.push(record);
                    }
                }
                _ => {
                    current = Some(service);
                    resource_logs.push(self.resource_logs(service, vec![record]));
                }
            }
        }
        ExportLogsServiceRequest { resource_logs }
    }

    /// One resource (`service`) with one scope holding `records`.
    fn resource_logs(&self, service: &str, records: Vec<LogRecord>) -> ResourceLogs {
        ResourceLogs {
            resource: Some(self.resource(service)),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }
    }

    /// The log record of one signed checkpoint: event name `db.audit.checkpoint`, time =
    /// signing time, body = the signed note as signed (what an auditor verifies).
    pub fn checkpoint_record(&self, checkpoint: &StoredCheckpoint, observed_us: i64) -> LogRecord {
        LogRecord {
            time_unix_nano: unix_nanos(checkpoint.signed_at_us),
            observed_time_unix_nano: unix_nanos(observed_us),
            severity_number: SeverityNumber::Info as i32,
            severity_text: severity_text(SeverityNumber::Info).to_owned(),
            body: string(checkpoint.note.clone()),
            attributes: vec![
                kv("db.system.name", string("heliosdb")),
                kv(
                    "heliosdb.audit.event_id",
                    string(format!(
                        "{}:checkpoint:{}",
                        self.database_id, checkpoint.size
                    )),
                ),
                kv("heliosdb.checkpoint.size", int(checkpoint.size)),
                kv("heliosdb.checkpoint.root", string(hex(&checkpoint.root))),
                kv(
                    "heliosdb.checkpoint.origin",
                    string(checkpoint.origin.clone()),
                ),
                kv(
                    "heliosdb.checkpoint.key_name",
                    string(checkpoint.key_name.clone()),
                ),
                kv(
                    "heliosdb.checkpoint.key_id",
                    string(checkpoint.key_id.clone()),
                ),
            ],
            event_name: "db.audit.checkpoint".to_owned(),
            ..LogRecord::default()
        }
    }

    /// The export request for `checkpoints`, under the configured service name.
    pub fn checkpoint_request(
        &self,
        checkpoints: &[StoredCheckpoint],
        observed_us: i64,
    ) -> ExportLogsServiceRequest {
        let service = if self.service_name.is_empty() {
            DEFAULT_SERVICE_NAME
        } else {
            self.service_name.as_str()
        };
        let records = checkpoints
            .iter()
            .map(|c| self.checkpoint_record(c, observed_us))
            .collect();
        ExportLogsServiceRequest {
            resource_logs: vec![self.resource_logs(service, records)],
        }
    }
}

fn bool_value(value: bool) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::BoolValue(value)),
    })
}

/// `"<OPERATION> <target, ...>"`, then `: <error>` for a failure.
fn body(event: &AuditEvent) -> String {
    let mut body = event.operation.clone();
    if !event.targets.is_empty() {
        body.push(' ');
        body.push_str(&event.targets.join(", "));
    }
    match (&event.error, event.success) {
        (Some(error), _) => {
            body.push_str(": ");
            body.push_str(error);
        }
        (None, false) => body.push_str(": failed"),
        (None, true) => {}
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(error: Option<&str>) -> AuditEvent {
        AuditEvent {
            success: false,
            error: error.map(str::to_owned),
            ..AuditEvent::default()
        }
    }

    #[test]
    fn severity_follows_the_documented_rule() {
        let ok = outcome(&AuditEvent {
            success: true,
            ..AuditEvent::default()
        });
        assert_eq!(ok.severity, SeverityNumber::Info);
        assert_eq!(ok.error_type, None);
        for (text, kind) in [
            ("SQL error: no such table", "sql"),
            ("constraint violation: duplicate key", "constraint"),
            (
                "__audit_log is read-only: DELETE is not allowed (the attempt has been recorded)",
                "permission",
            ),
            ("read-only database: INSERT", "permission"),
            ("prune refused: legal hold", "permission"),
            ("database is busy: another session", "concurrency"),
        ] {
            let o = outcome(&failed(Some(text)));
            assert_eq!(o.severity, SeverityNumber::Warn, "{text}");
            assert_eq!(o.error_type, Some(kind), "{text}");
        }
        let denied = outcome(&failed(None));
        assert_eq!(denied.severity, SeverityNumber::Warn);
        // A refused login keeps its reason as error text: still the caller's failure.
        let login = outcome(&AuditEvent {
            class: EventClass::Auth,
            ..failed(Some("wrong password"))
        });
        assert_eq!(
            (login.severity, login.error_type),
            (SeverityNumber::Warn, Some("_OTHER"))
        );
        for (text, kind) in [
            ("internal error: x", "internal"),
            ("corrupt row in keyspace", "storage"),
            ("I/O error: disk full", "storage"),
            ("disk on fire", "_OTHER"),
            ("__audit_whatever happened", "_OTHER"),
        ] {
            let o = outcome(&failed(Some(text)));
            assert_eq!(o.severity, SeverityNumber::Error, "{text}");
            assert_eq!(o.error_type, Some(kind), "{text}");
        }
    }

    /// The severity follows the engine's errors themselves, not copies of their texts:
    /// every caller's error the engine can raise maps to WARN, every other to ERROR.
    #[test]
    fn severity_follows_the_engine_errors() {
        let errors = [
            heliosdb_engine::Error::Param {
                index: 1,
                message: "x".to_owned(),
            },
            heliosdb_engine::Error::Transaction("nested BEGIN".to_owned()),
            heliosdb_engine::Error::AuditLogReadOnly {
                table: "__audit_log".to_owned(),
                operation: "DELETE".to_owned(),
            },
            heliosdb_engine::Error::ReadOnly("INSERT".to_owned()),
            heliosdb_engine::Error::RetentionRefused("hold".to_owned()),
            heliosdb_engine::Error::OutOfRange("seq".to_owned()),
            heliosdb_engine::Error::Unsupported("x".to_owned()),
            heliosdb_engine::Error::Conflict,
            heliosdb_engine::Error::Busy { waited_ms: 1 },
            heliosdb_engine::Error::Closed,
            heliosdb_engine::Error::CheckpointRefused("x".to_owned()),
            heliosdb_engine::Error::Internal("x".to_owned()),
            heliosdb_engine::Error::FormatVersion {
                found: 2,
                supported: 1,
            },
        ];
        for error in errors {
            let o = outcome(&failed(Some(&error.to_string())));
            let severity = if error.is_user_error() {
                SeverityNumber::Warn
            } else {
                SeverityNumber::Error
            };
            assert_eq!(o.severity, severity, "{error}");
            assert_eq!(o.error_type, Some(error.kind()), "{error}");
        }
    }
}
