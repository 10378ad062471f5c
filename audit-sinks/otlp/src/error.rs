//! The OTLP sink's errors, grouped by who is at fault: the configuration, the local files
//! the sink keeps (cursor, quarantine), the receiver, the database.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong building or running an [`OtlpSink`](crate::OtlpSink).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    // ----- configuration ----------------------------------------------------------------
    /// A setting is invalid; `key` names it (`endpoint`, `OTEL_EXPORTER_OTLP_HEADERS`, ...).
    #[error("{key}: {message}")]
    Config {
        /// The setting or environment variable.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The endpoint uses `https://` but this build has no TLS (the `tls` feature).
    #[error(
        "{endpoint}: https endpoints need the `tls` feature of heliosdb-otlp; use http:// or rebuild with it"
    )]
    TlsUnavailable {
        /// The endpoint.
        endpoint: String,
    },
    /// The configuration asks for OTLP/gRPC but this build has no gRPC (the `grpc` feature).
    #[error(
        "protocol grpc needs the `grpc` feature of heliosdb-otlp; use http/protobuf or rebuild with it"
    )]
    GrpcUnavailable,

    // ----- local files ------------------------------------------------------------------
    /// The cursor or quarantine file could not be read or written.
    #[error("{}: {what}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The cursor file does not hold a cursor of this database.
    #[error("{}: {message}", path.display())]
    Cursor {
        /// The file.
        path: PathBuf,
        /// What is wrong, and how to fix it.
        message: String,
    },

    // ----- the receiver -----------------------------------------------------------------
    /// An export request failed in a way that may pass on a later try (connection refused,
    /// timeout, HTTP 429/5xx, gRPC UNAVAILABLE, ...).
    #[error("export to {endpoint} failed: {message}")]
    Export {
        /// The endpoint.
        endpoint: String,
        /// What the transport or the receiver said.
        message: String,
        /// The pause the receiver asked for (`Retry-After`, gRPC `RetryInfo`).
        retry_after: Option<Duration>,
    },

    /// The receiver rejected a record sent alone, fewer than `attempts` times in a row so
    /// far: it is sent again after the follower's back-off, and quarantined at the
    /// `attempts`-th rejection.
    #[error(
        "{endpoint} rejected the record of seq {seq} ({rejections} of {attempts} rejections before it is quarantined): {reason}"
    )]
    Rejected {
        /// The endpoint.
        endpoint: String,
        /// The rejected event.
        seq: u64,
        /// Rejections in a row so far.
        rejections: u32,
        /// `reject_attempts`.
        attempts: u32,
        /// What the receiver said.
        reason: String,
    },

    // ----- the database -----------------------------------------------------------------
    /// Recording the SYSTEM event of a quarantined record failed.
    #[error("cannot record the quarantine of seq {seq} as a SYSTEM event: {source}")]
    Record {
        /// The quarantined event.
        seq: u64,
        /// Why.
        #[source]
        source: heliosdb_engine::Error,
    },
    /// `deliver` was called before `resume_after`.
    #[error("the sink was offered events before it resumed (an engine bug; please report it)")]
    NotStarted,
}

impl OtlpError {
    pub(crate) fn file(
        path: &std::path::Path,
        what: &'static str,
    ) -> impl FnOnce(std::io::Error) -> OtlpError {
        let path = path.to_path_buf();
        move |source| OtlpError::File { path, what, source }
    }
}
