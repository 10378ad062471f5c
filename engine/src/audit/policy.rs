//! Which events are recorded.

use super::event::AuditEvent;
use crate::classify::EventClass;

/// How bound parameter values are captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ParamCapture {
    /// Values are recorded as text.
    #[default]
    Values,
    /// Each value is recorded as `?`: the count is kept, the values are not.
    Redacted,
}

/// How the literal values of [`Redaction::columns`] are kept in the trail
/// (`audit.redaction_mode`; see [`redact`](super::redact)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RedactionMode {
    /// `'hmac:<hex>'`: HMAC-SHA-256 under the database's redaction key. Searchable (the
    /// token of a value can be computed again), not readable, not erasable per subject.
    #[default]
    Hash,
    /// `'enc:<subject hex>:<base64>'`: ChaCha20-Poly1305 under the data subject's own key.
    /// Readable while the key exists; destroying it
    /// ([`forget_subject`](super::redact::forget_subject)) erases the value.
    Encrypt,
}

/// Personal data kept out of the trail in clear (`audit.redact_columns`,
/// `audit.redaction_mode`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Redaction {
    /// Columns whose literal values (compared with or assigned to them) and bound
    /// parameters are replaced by tokens. Matched by name, case-insensitively, in every
    /// table. The first one is the *subject column*: its value names the data subject in
    /// [`RedactionMode::Encrypt`]. Empty: nothing is redacted.
    pub columns: Vec<String>,
    /// How the values are replaced.
    pub mode: RedactionMode,
}

impl Redaction {
    /// True when some column is redacted.
    pub fn is_active(&self) -> bool {
        !self.columns.is_empty()
    }
}

/// Which session metadata goes into each event. A field left out is recorded empty (or
/// zero), so the canonical encoding keeps one layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataCapture {
    /// The client address.
    pub client_addr: bool,
    /// The application name.
    pub application: bool,
    /// The database name.
    pub database: bool,
    /// The statement's duration.
    pub duration: bool,
    /// The session's custom fields.
    pub custom: bool,
}

impl Default for MetadataCapture {
    fn default() -> Self {
        Self {
            client_addr: true,
            application: true,
            database: true,
            duration: true,
            custom: true,
        }
    }
}

/// What the audit pipeline records. A plain struct: the `heliosdb.toml` presets fill it.
///
/// ```
/// use heliosdb_engine::audit::AuditPolicy;
/// let policy = AuditPolicy {
///     log_select: false,
///     exclude_users: vec!["health-check".into()],
///     ..AuditPolicy::default()
/// };
/// assert!(policy.enabled);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPolicy {
    /// Master switch: when false nothing is recorded.
    pub enabled: bool,
    /// Record CREATE/DROP/ALTER statements.
    pub log_ddl: bool,
    /// Record INSERT/UPDATE/DELETE statements.
    pub log_dml: bool,
    /// Record queries (SELECT, SHOW, EXPLAIN).
    pub log_select: bool,
    /// Record BEGIN/COMMIT/ROLLBACK.
    pub log_transactions: bool,
    /// Record logins, logouts, grants and other AUTH events.
    pub log_auth: bool,
    /// Record application events (`Session::record_event`).
    pub log_app: bool,
    /// When non-empty, only events touching one of these tables (or no table) are recorded.
    pub include_tables: Vec<String>,
    /// Events whose every table is listed here are not recorded.
    pub exclude_tables: Vec<String>,
    /// When non-empty, only these users' events are recorded.
    pub include_users: Vec<String>,
    /// These users' events are not recorded.
    pub exclude_users: Vec<String>,
    /// Longest query text recorded, in characters; longer text is cut and marked.
    pub max_query_length: usize,
    /// How bound parameters are captured.
    pub params: ParamCapture,
    /// Which session metadata is recorded.
    pub capture: MetadataCapture,
    /// Personal data replaced by tokens in query text and parameters.
    pub redaction: Redaction,
}

impl Default for AuditPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            log_ddl: true,
            log_dml: true,
            log_select: true,
            log_transactions: true,
            log_auth: true,
            log_app: true,
            include_tables: Vec::new(),
            exclude_tables: Vec::new(),
            include_users: Vec::new(),
            exclude_users: Vec::new(),
            max_query_length: 4096,
            params: ParamCapture::Values,
            capture: MetadataCapture::default(),
            redaction: Redaction::default(),
        }
    }
}

fn listed(list: &[String], name: &str) -> bool {
    list.iter().any(|item| item.eq_ignore_ascii_case(name))
}

impl AuditPolicy {
    /// A policy that records nothing.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Whether `event` is recorded. The class switches (`log_select`, ...) leave out
    /// successful events only: a failure — a denied or broken read, a rejected login — is
    /// recorded whatever its class, as long as the user and table filters keep it.
    pub fn records(&self, event: &AuditEvent) -> bool {
        if !self.enabled {
            return false;
        }
        let class_on = match event.class {
            EventClass::Ddl => self.log_ddl,
            EventClass::Dml => self.log_dml,
            EventClass::Select => self.log_select,
            EventClass::Txn => self.log_transactions,
            EventClass::Auth => self.log_auth,
            EventClass::App => self.log_app,
            EventClass::System => true,
        };
        if !class_on && event.success {
            return false;
        }
        if !self.include_users.is_empty() && !listed(&self.include_users, &event.user) {
            return false;
        }
        if listed(&self.exclude_users, &event.user) {
            return false;
        }
        if event.targets.is_empty() {
            return true;
        }
        if !self.include_tables.is_empty()
            && !event
                .targets
                .iter()
                .any(|t| listed(&self.include_tables, t))
        {
            return false;
        }
        !event
            .targets
            .iter()
            .all(|t| listed(&self.exclude_tables, t))
    }

    /// Cuts `query` to `max_query_length` characters; returns the text and whether it was cut.
    pub fn truncate(&self, query: &str) -> (String, bool) {
        match query.char_indices().nth(self.max_query_length) {
            Some((cut, _)) => (query[..cut].to_owned(), true),
            None => (query.to_owned(), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(class: EventClass, user: &str, targets: &[&str]) -> AuditEvent {
        AuditEvent {
            class,
            user: user.to_owned(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            success: true,
            ..AuditEvent::default()
        }
    }

    #[test]
    fn class_switches_and_master_switch() {
        let policy = AuditPolicy {
            log_select: false,
            ..AuditPolicy::default()
        };
        assert!(!policy.records(&event(EventClass::Select, "a", &["t"])));
        let failed = AuditEvent {
            success: false,
            ..event(EventClass::Select, "a", &["t"])
        };
        assert!(policy.records(&failed), "failures are always recorded");
        assert!(policy.records(&event(EventClass::Dml, "a", &["t"])));
        assert!(!AuditPolicy::disabled().records(&event(EventClass::Dml, "a", &["t"])));
    }

    #[test]
    fn user_and_table_rules() {
        let policy = AuditPolicy {
            include_tables: vec!["patients".into(), "vitals".into()],
            exclude_tables: vec!["vitals".into()],
            exclude_users: vec!["Monitor".into()],
            ..AuditPolicy::default()
        };
        assert!(policy.records(&event(EventClass::Dml, "a", &["PATIENTS"])));
        assert!(!policy.records(&event(EventClass::Dml, "a", &["other"])));
        assert!(!policy.records(&event(EventClass::Dml, "a", &["vitals"])));
        assert!(policy.records(&event(EventClass::Dml, "a", &["vitals", "patients"])));
        assert!(!policy.records(&event(EventClass::Dml, "monitor", &["patients"])));
        assert!(policy.records(&event(EventClass::Txn, "a", &[])));
        let only = AuditPolicy {
            include_users: vec!["alice".into()],
            ..AuditPolicy::default()
        };
        assert!(only.records(&event(EventClass::Dml, "alice", &[])));
        assert!(!only.records(&event(EventClass::Dml, "bob", &[])));
    }

    #[test]
    fn truncation_counts_characters() {
        let policy = AuditPolicy {
            max_query_length: 3,
            ..AuditPolicy::default()
        };
        assert_eq!(policy.truncate("héllo"), ("hél".to_owned(), true));
        assert_eq!(policy.truncate("hé"), ("hé".to_owned(), false));
    }
}
