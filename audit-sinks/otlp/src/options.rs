//! What an [`OtlpSink`](crate::OtlpSink) is told: the receiver, the request shape, where it
//! keeps its cursor; and how the standard `OTEL_EXPORTER_OTLP_*` environment variables
//! fill what the configuration leaves unset.
//!
//! Precedence, highest first: the value set in code or in `heliosdb.toml`, then
//! `OTEL_EXPORTER_OTLP_LOGS_<X>`, then `OTEL_EXPORTER_OTLP_<X>`, then the default.

use crate::error::OtlpError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies, `POST <endpoint>/v1/logs` (the default).
    #[default]
    HttpProtobuf,
    /// OTLP/gRPC, `LogsService/Export` (needs the `grpc` feature).
    Grpc,
}

impl Protocol {
    /// Parses `http/protobuf` or `grpc` (the values of `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn parse(text: &str) -> Option<Protocol> {
        match text.trim() {
            "http/protobuf" | "http" => Some(Protocol::HttpProtobuf),
            "grpc" => Some(Protocol::Grpc),
            _ => None,
        }
    }

    /// The name `parse` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }

    fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http://localhost:4318",
            Protocol::Grpc => "http://localhost:4317",
        }
    }
}

/// Request body compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// None (the default).
    #[default]
    None,
    /// gzip (`Content-Encoding: gzip`, gRPC `grpc-encoding: gzip`).
    Gzip,
}

impl Compression {
    /// Parses `gzip` or `none`.
    pub fn parse(text: &str) -> Option<Compression> {
        match text.trim() {
            "gzip" => Some(Compression::Gzip),
            "none" | "" => Some(Compression::None),
            _ => None,
        }
    }

    /// The name `parse` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }
}

/// Default most events per export request.
pub const DEFAULT_BATCH_SIZE: usize = 512;
/// Default time fewer than `batch_size` waiting events wait for more: under a trickle
/// of commits the sink then sends one request per linger, not one per commit.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(100);
/// Default time an export request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of times in a row the receiver must reject one record alone before it
/// is quarantined.
pub const DEFAULT_REJECT_ATTEMPTS: u32 = 3;

/// How to build an [`OtlpSink`](crate::OtlpSink). `None` and empty values are filled from
/// the environment, then from the defaults (see the module documentation).
///
/// ```
/// use heliosdb_otlp::{OtlpOptions, Protocol};
/// let options = OtlpOptions::new("/var/lib/app/otlp.cursor")
///     .endpoint("http://collector:4318")
///     .header("authorization", "Bearer s3cr3t")
///     .protocol(Protocol::HttpProtobuf);
/// assert_eq!(options.batch_size, 512);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpOptions {
    /// The sink's name in status and errors.
    pub name: String,
    /// Transport; `None` for `OTEL_EXPORTER_OTLP_[LOGS_]PROTOCOL` or HTTP.
    pub protocol: Option<Protocol>,
    /// Receiver URL (`http://host:4318`); for HTTP `/v1/logs` is appended unless the path
    /// already ends with it. `None` for the environment or the protocol's default port on
    /// localhost.
    pub endpoint: Option<String>,
    /// Extra request headers (gRPC metadata), over those of the environment.
    pub headers: BTreeMap<String, String>,
    /// Body compression; `None` for the environment or none.
    pub compression: Option<Compression>,
    /// Longest an export request may take; `None` for the environment or 10 s.
    pub timeout: Option<Duration>,
    /// Most events per export request.
    pub batch_size: usize,
    /// How long a delivery of fewer than `batch_size` events may wait for more (zero to
    /// send at once; default [`DEFAULT_LINGER`]).
    pub linger: Duration,
    /// `service.name`; empty for each event's application.
    pub service_name: String,
    /// The cursor file.
    pub cursor_path: PathBuf,
    /// Where permanently rejected records go; `None` for `<cursor>.quarantine.jsonl`.
    pub quarantine_path: Option<PathBuf>,
    /// Rejections in a row, of a record sent alone, after which it is quarantined.
    pub reject_attempts: u32,
}

impl OtlpOptions {
    /// Defaults, with the cursor kept at `cursor_path`.
    pub fn new(cursor_path: impl Into<PathBuf>) -> Self {
        Self {
            name: "otlp".to_owned(),
            protocol: None,
            endpoint: None,
            headers: BTreeMap::new(),
            compression: None,
            timeout: None,
            batch_size: DEFAULT_BATCH_SIZE,
            linger: DEFAULT_LINGER,
            service_name: String::new(),
            cursor_path: cursor_path.into(),
            quarantine_path: None,
            reject_attempts: DEFAULT_REJECT_ATTEMPTS,
        }
    }

    /// Sets the receiver URL.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the transport.
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Adds a request header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the body compression.
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Sets the request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the most events per request.
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the linger.
    #[must_use]
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets the sink's name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets `service.name`.
    #[must_use]
    pub fn service_name(mut self, service_name: impl Into<String>) -> Self {
        self.service_name = service_name.into();
        self
    }

    /// Sets the quarantine file.
    #[must_use]
    pub fn quarantine_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.quarantine_path = Some(path.into());
        self
    }

    /// Sets the rejections in a row that quarantine a record.
    #[must_use]
    pub fn reject_attempts(mut self, attempts: u32) -> Self {
        self.reject_attempts = attempts;
        self
    }

    /// Fills unset values from the process environment and checks everything.
    pub fn resolve(&self) -> Result<Resolved, OtlpError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// Fills unset values from `env` (a variable's value by name) and checks everything.
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, OtlpError> {
        // The signal-specific variable first, then the general one; empty counts as unset.
        let var = |suffix: &str| -> Option<(String, String)> {
            [
                format!("OTEL_EXPORTER_OTLP_LOGS_{suffix}"),
                format!("OTEL_EXPORTER_OTLP_{suffix}"),
            ]
            .into_iter()
            .find_map(|name| {
                env(&name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            })
        };
        let config = |key: &str, message: String| OtlpError::Config {
            key: key.to_owned(),
            message,
        };
        let protocol = match self.protocol {
            Some(protocol) => protocol,
            None => match var("PROTOCOL") {
                Some((name, value)) => Protocol::parse(&value).ok_or_else(|| {
                    config(&name, format!("unknown protocol `{value}`; expected `http/protobuf` or `grpc` (http/json is not supported)"))
                })?,
                None => Protocol::HttpProtobuf,
            },
        };
        let endpoint = match self.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            Some(endpoint) => signal_url(protocol, endpoint.trim()),
            None => match (
                env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT").filter(|v| !v.trim().is_empty()),
                env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.trim().is_empty()),
            ) {
                // The signal-specific endpoint is the full URL, used as is.
                (Some(logs), _) => logs.trim().to_owned(),
                (None, Some(base)) => signal_url(protocol, base.trim()),
                (None, None) => signal_url(protocol, protocol.default_endpoint()),
            },
        };
        let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !scheme_ok {
            return Err(config(
                "endpoint",
                format!("`{endpoint}` is not an http:// or https:// URL"),
            ));
        }
        if endpoint.starts_with("https://") && !cfg!(feature = "tls") {
            return Err(OtlpError::TlsUnavailable { endpoint });
        }
        if protocol == Protocol::Grpc && !cfg!(feature = "grpc") {
            return Err(OtlpError::GrpcUnavailable);
        }
        let mut headers = BTreeMap::new();
        if let Some((name, value)) = var("HEADERS") {
            for pair in value.split(',').filter(|p| !p.trim().is_empty()) {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(config(&name, format!("`{pair}` is not key=value")));
                };
                headers.insert(
                    percent_decode(key.trim()).to_ascii_lowercase(),
                    percent_decode(value.trim()),
                );
            }
        }
        for (key, value) in &self.headers {
            headers.insert(key.to_ascii_lowercase(), value.clone());
        }
        for (key, value) in &headers {
            let valid_key = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !valid_key || value.bytes().any(|b| b < 0x20 && b != b'\t') {
                return Err(config("headers", format!("invalid header `{key}`")));
            }
        }
        let compression = match self.compression {
            Some(compression) => compression,
            None => match var("COMPRESSION") {
                Some((name, value)) => Compression::parse(&value).ok_or_else(|| {
                    config(
                        &name,
                        format!("unknown compression `{value}`; expected `gzip` or `none`"),
                    )
                })?,
                None => Compression::None,
            },
        };
        let timeout = match self.timeout {
            Some(timeout) => timeout,
            None => match var("TIMEOUT") {
                Some((name, value)) => value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        config(
                            &name,
                            format!("`{value}` is not a number of milliseconds above 0"),
                        )
                    })?,
                None => DEFAULT_TIMEOUT,
            },
        };
        if timeout.is_zero() {
            return Err(config("timeout", "must be above 0".to_owned()));
        }
        if self.batch_size == 0 {
            return Err(config("batch_size", "must be at least 1".to_owned()));
        }
        if self.reject_attempts == 0 {
            return Err(config("reject_attempts", "must be at least 1".to_owned()));
        }
        if self.cursor_path.as_os_str().is_empty() {
            return Err(config("cursor", "a cursor file path is needed".to_owned()));
        }
        let quarantine_path = self.quarantine_path.clone().unwrap_or_else(|| {
            let mut name = self.cursor_path.as_os_str().to_os_string();
            name.push(".quarantine.jsonl");
            PathBuf::from(name)
        });
        Ok(Resolved {
            name: self.name.clone(),
            protocol,
            endpoint,
            headers,
            compression,
            timeout,
            batch_size: self.batch_size,
            linger: self.linger,
            service_name: self.service_name.clone(),
            cursor_path: self.cursor_path.clone(),
            quarantine_path,
            reject_attempts: self.reject_attempts,
        })
    }
}

/// Options with every value decided: what the sink runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The sink's name.
    pub name: String,
    /// Transport.
    pub protocol: Protocol,
    /// The full URL requests go to (for HTTP, ending in `/v1/logs`).
    pub endpoint: String,
    /// Request headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Body compression.
    pub compression: Compression,
    /// Longest an export request may take.
    pub timeout: Duration,
    /// Most events per request.
    pub batch_size: usize,
    /// How long a small delivery may wait for more events.
    pub linger: Duration,
    /// `service.name`, empty for each event's application.
    pub service_name: String,
    /// The cursor file.
    pub cursor_path: PathBuf,
    /// The quarantine file.
    pub quarantine_path: PathBuf,
    /// Rejections in a row that quarantine a record.
    pub reject_attempts: u32,
}

/// For HTTP, `base` with `/v1/logs` appended to its path (unless already there); for
/// gRPC, `base` unchanged.
fn signal_url(protocol: Protocol, base: &str) -> String {
    match protocol {
        Protocol::Grpc => base.to_owned(),
        Protocol::HttpProtobuf if base.trim_end_matches('/').ends_with("/v1/logs") => {
            base.to_owned()
        }
        Protocol::HttpProtobuf => format!("{}/v1/logs", base.trim_end_matches('/')),
    }
}

/// Decodes `%XX` escapes (W3C baggage style, as `OTEL_EXPORTER_OTLP_HEADERS` uses).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits make at most 255.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn configuration_wins_over_the_environment() -> Result<(), OtlpError> {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318/"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20env,x-tenant=a",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "1500"),
        ];
        let from_env = OtlpOptions::new("c").resolve_with(env(&vars))?;
        assert_eq!(from_env.endpoint, "http://env:4318/v1/logs");
        assert_eq!(from_env.headers["authorization"], "Bearer env");
        assert_eq!(from_env.compression, Compression::Gzip);
        assert_eq!(from_env.timeout, Duration::from_millis(1500));
        assert_eq!(
            from_env.quarantine_path,
            PathBuf::from("c.quarantine.jsonl")
        );

        let configured = OtlpOptions::new("c")
            .endpoint("http://conf:1234")
            .header("x-tenant", "b")
            .compression(Compression::None)
            .timeout(Duration::from_secs(3))
            .resolve_with(env(&vars))?;
        assert_eq!(configured.endpoint, "http://conf:1234/v1/logs");
        assert_eq!(configured.headers["x-tenant"], "b");
        assert_eq!(configured.headers["authorization"], "Bearer env");
        assert_eq!(configured.compression, Compression::None);
        assert_eq!(configured.timeout, Duration::from_secs(3));

        let logs = [("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://x:1/custom")];
        assert_eq!(
            OtlpOptions::new("c").resolve_with(env(&logs))?.endpoint,
            "http://x:1/custom"
        );
        let none = OtlpOptions::new("c").resolve_with(env(&[]))?;
        assert_eq!(none.endpoint, "http://localhost:4318/v1/logs");
        assert_eq!(none.timeout, DEFAULT_TIMEOUT);
        Ok(())
    }

    #[test]
    fn bad_values_name_their_source() {
        let bad = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")];
        let error = OtlpOptions::new("c")
            .resolve_with(env(&bad))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            error.is_err_and(|e| e.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol"))
        );
        let error = OtlpOptions::new("c")
            .endpoint("collector:4318")
            .resolve_with(env(&[]));
        assert!(error.is_err());
        let error = OtlpOptions::new("c").batch_size(0).resolve_with(env(&[]));
        assert!(error.is_err());
    }
}
