//! # heliosdb-otlp
//!
//! The OTLP export sink of HeliosDB-Lite: a follower sink that tails the audit ledger from
//! a durable cursor and exports every sealed event as an OpenTelemetry log record to any
//! OTLP receiver (an OpenTelemetry Collector, a SIEM), over OTLP/HTTP protobuf or, with
//! the `grpc` feature, OTLP/gRPC.
//!
//! Delivery is at-least-once and survives outages and crashes: the backlog is the ledger
//! itself, the cursor file advances only after the receiver acknowledged a whole request,
//! and every record carries `heliosdb.audit.event_id = "<database id>:<seq>"` for the
//! receiver to de-duplicate. The mapping, the delivery rules and the settings are
//! documented in `docs/OTLP.md`.
//!
//! ```no_run
//! use heliosdb_otlp::{OtlpOptions, OtlpSink, Protocol};
//! let sink = OtlpSink::new(
//!     OtlpOptions::new("otlp.cursor")
//!         .endpoint("http://collector:4318")
//!         .protocol(Protocol::HttpProtobuf)
//!         .header("authorization", "Bearer token"),
//! )?;
//! # let _ = sink;
//! # Ok::<(), heliosdb_otlp::OtlpError>(())
//! ```
#![deny(unsafe_code)]

mod cursor;
mod error;
pub mod mapping;
mod options;
mod sink;
pub mod transport;

pub use cursor::{Cursor, CursorState};
pub use error::OtlpError;
pub use mapping::Mapping;
pub use options::{
    Compression, DEFAULT_BATCH_SIZE, DEFAULT_LINGER, DEFAULT_REJECT_ATTEMPTS, DEFAULT_TIMEOUT,
    OtlpOptions, Pem, Protocol, Resolved, Tls,
};
pub use sink::{CURSOR_INTERVAL, OtlpSink, QUARANTINE_OPERATION};

/// The OTLP protobuf messages the sink sends (re-exported for receivers and tests).
pub use opentelemetry_proto::tonic as proto;
