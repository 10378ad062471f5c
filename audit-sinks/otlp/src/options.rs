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
    /// A PEM file of the certificate authorities trusted for `https://` endpoints instead
    /// of the public (webpki) roots; `None` for `OTEL_EXPORTER_OTLP_[LOGS_]CERTIFICATE` or
    /// the public roots.
    pub ca_file: Option<PathBuf>,
    /// A PEM certificate chain the sink presents to the receiver (mutual TLS); `None` for
    /// `OTEL_EXPORTER_OTLP_[LOGS_]CLIENT_CERTIFICATE` or none. Needs `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`; `None` for
    /// `OTEL_EXPORTER_OTLP_[LOGS_]CLIENT_KEY` or none.
    pub client_key_file: Option<PathBuf>,
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
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }

    /// Trusts the certificate authorities of PEM file `path` (instead of the public roots)
    /// for `https://` endpoints.
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents the PEM certificate chain `cert` with its PEM private key `key` to the
    /// receiver (mutual TLS).
    #[must_use]
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert_file = Some(cert.into());
        self.client_key_file = Some(key.into());
        self
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
        // TLS files: the configured path (named by its key), else the variable's.
        let file = |set: &Option<PathBuf>, key: &str, suffix: &str| -> Option<(String, PathBuf)> {
            match set.as_ref().filter(|p| !p.as_os_str().is_empty()) {
                Some(path) => Some((key.to_owned(), path.clone())),
                None => var(suffix).map(|(name, value)| (name, PathBuf::from(value.trim()))),
            }
        };
        let ca = file(&self.ca_file, "ca_file", "CERTIFICATE");
        let client_cert = file(
            &self.client_cert_file,
            "client_cert_file",
            "CLIENT_CERTIFICATE",
        );
        let client_key = file(&self.client_key_file, "client_key_file", "CLIENT_KEY");
        let tls = Tls {
            ca: ca
                .map(|(key, path)| Pem::read(&key, path, PemKind::Certificates))
                .transpose()?,
            client: match (client_cert, client_key) {
                (None, None) => None,
                (Some((key, path)), Some((key_key, key_path))) => Some((
                    Pem::read(&key, path, PemKind::Certificates)?,
                    Pem::read(&key_key, key_path, PemKind::PrivateKey)?,
                )),
                (Some((key, _)), None) => {
                    return Err(config(
                        &key,
                        "a client certificate needs its private key (client_key_file or OTEL_EXPORTER_OTLP_CLIENT_KEY)".to_owned(),
                    ));
                }
                (None, Some((key, _))) => {
                    return Err(config(
                        &key,
                        "a client key needs its certificate (client_cert_file or OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)".to_owned(),
                    ));
                }
            },
        };
        if (tls.ca.is_some() || tls.client.is_some()) && !cfg!(feature = "tls") {
            return Err(OtlpError::TlsUnavailable { endpoint });
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
            tls,
        })
    }
}

/// TLS material beyond the public roots, read and checked when the options are resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// Certificate authorities trusted instead of the public roots.
    pub ca: Option<Pem>,
    /// The client certificate chain and its private key (mutual TLS).
    pub client: Option<(Pem, Pem)>,
}

/// What a PEM file must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PemKind {
    Certificates,
    PrivateKey,
}

/// A PEM file's text, read when the options were resolved. Its `Debug` shows the path
/// only: a private key never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem {
    /// The file.
    pub path: PathBuf,
    /// Its contents.
    pub text: Vec<u8>,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pem").field(&self.path).finish()
    }
}

impl Pem {
    /// Reads `path` (setting or variable `key`) and checks it holds `kind`.
    fn read(key: &str, path: PathBuf, kind: PemKind) -> Result<Pem, OtlpError> {
        let fail = |message: String| OtlpError::Config {
            key: key.to_owned(),
            message: format!("{}: {message}", path.display()),
        };
        let text = std::fs::read(&path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let labels: Vec<&str> = pem_labels(&text);
        let found = match kind {
            PemKind::Certificates => labels.contains(&"CERTIFICATE"),
            PemKind::PrivateKey => labels.iter().any(|l| l.ends_with("PRIVATE KEY")),
        };
        if !found {
            return Err(fail(match kind {
                PemKind::Certificates => {
                    "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".to_owned()
                }
                PemKind::PrivateKey => {
                    "no PEM private key (-----BEGIN PRIVATE KEY-----) in the file".to_owned()
                }
            }));
        }
        Ok(Pem { path, text })
    }
}

/// The labels of the `-----BEGIN <label>-----` lines of a PEM text.
fn pem_labels(text: &[u8]) -> Vec<&str> {
    std::str::from_utf8(text)
        .unwrap_or("")
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
        })
        .collect()
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
    /// A private CA and a client certificate, when set.
    pub tls: Tls,
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

    #[test]
    fn tls_files_come_from_the_configuration_or_the_environment() -> Result<(), OtlpError> {
        let dir =
            tempfile::tempdir().map_err(OtlpError::file(std::path::Path::new("."), "tempdir"))?;
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map(|()| path.display().to_string())
        };
        let (ca, client, client_key) = (
            write("ca.pem", cert).map_err(OtlpError::file(dir.path(), "w"))?,
            write("client.pem", cert).map_err(OtlpError::file(dir.path(), "w"))?,
            write("client.key", key).map_err(OtlpError::file(dir.path(), "w"))?,
        );
        let vars = [
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str()),
            (
                "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
                client.as_str(),
            ),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", client_key.as_str()),
        ];
        let resolved = OtlpOptions::new("c").resolve_with(env(&vars))?;
        let ca_pem = resolved
            .tls
            .ca
            .as_ref()
            .map(|p| p.path.display().to_string());
        assert_eq!(ca_pem.as_deref(), Some(ca.as_str()));
        let (cert_pem, key_pem) = resolved.tls.client.clone().ok_or(OtlpError::NotStarted)?;
        assert_eq!(cert_pem.text, cert.as_bytes());
        assert_eq!(key_pem.path.display().to_string(), client_key);
        // A private key never shows in Debug output.
        assert!(!format!("{resolved:?}").contains("AAAA"));
        // The configuration wins and names its key in errors; so does a variable.
        let error = OtlpOptions::new("c")
            .ca_file(dir.path().join("missing.pem"))
            .resolve_with(env(&vars))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(error.is_err_and(|e| e.starts_with("ca_file: ") && e.contains("cannot read")));
        let error = OtlpOptions::new("c")
            .resolve_with(env(&[("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", &client_key)]))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            error.is_err_and(|e| e.starts_with("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: ")
                && e.contains("no PEM certificate"))
        );
        let error = OtlpOptions::new("c")
            .resolve_with(env(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", &client_key)]))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(error.is_err_and(|e| e.contains("needs its certificate")));
        Ok(())
    }
}
