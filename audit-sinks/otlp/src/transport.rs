//! Export requests on the wire: OTLP/HTTP protobuf (blocking, `ureq`) and OTLP/gRPC
//! (`tonic` on a current-thread tokio runtime owned by the transport, so the host
//! application needs no async runtime). One call is one request and one answer.

use crate::options::{Compression, Protocol, Resolved};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use std::io::Write;
use std::time::Duration;

/// What the receiver answered to a request it accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    /// `partial_success.rejected_log_records`: how many records it refused.
    pub rejected: i64,
    /// `partial_success.error_message`.
    pub message: String,
}

/// Why a request was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request may pass later: connection errors, timeouts, HTTP 429 and 5xx, gRPC
    /// UNAVAILABLE, and errors a configuration change fixes (401, 403, 404, ...).
    Retryable {
        /// What happened.
        message: String,
        /// The pause the receiver asked for.
        retry_after: Option<Duration>,
    },
    /// The receiver refuses the data itself: HTTP 400, gRPC INVALID_ARGUMENT.
    BadData {
        /// What it said.
        message: String,
    },
    /// The request is larger than the receiver takes: HTTP 413, gRPC RESOURCE_EXHAUSTED
    /// or OUT_OF_RANGE saying the message is too large. Sending it again cannot pass; a
    /// smaller one may.
    TooLarge {
        /// What it said.
        message: String,
    },
}

/// A connection to one OTLP receiver.
pub enum Transport {
    /// OTLP/HTTP protobuf.
    Http(HttpTransport),
    /// OTLP/gRPC.
    #[cfg(feature = "grpc")]
    Grpc(Box<GrpcTransport>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Http(http) => f.debug_tuple("Http").field(&http.url).finish(),
            #[cfg(feature = "grpc")]
            Transport::Grpc(grpc) => f.debug_tuple("Grpc").field(&grpc.endpoint).finish(),
        }
    }
}

impl Transport {
    /// Opens the transport `options` name; gRPC connects lazily, on the first request.
    pub fn new(options: &Resolved) -> Result<Transport, crate::OtlpError> {
        match options.protocol {
            Protocol::HttpProtobuf => Ok(Transport::Http(HttpTransport::new(options)?)),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Ok(Transport::Grpc(Box::new(GrpcTransport::new(options)?))),
            #[cfg(not(feature = "grpc"))]
            Protocol::Grpc => Err(crate::OtlpError::GrpcUnavailable),
        }
    }

    /// Sends one request and waits (at most the configured timeout) for its answer.
    pub fn export(&mut self, request: ExportLogsServiceRequest) -> Result<Ack, Failure> {
        match self {
            Transport::Http(http) => http.export(&request),
            #[cfg(feature = "grpc")]
            Transport::Grpc(grpc) => grpc.export(request),
        }
    }
}

fn ack(response: Option<ExportLogsServiceResponse>) -> Ack {
    match response.and_then(|r| r.partial_success) {
        Some(partial) => Ack {
            rejected: partial.rejected_log_records,
            message: partial.error_message,
        },
        None => Ack::default(),
    }
}

/// `google.rpc.Status`, the error body of OTLP/HTTP and the details of a gRPC status.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The message and `RetryInfo` delay of an encoded `google.rpc.Status`, if it is one.
fn decode_status(bytes: &[u8]) -> Option<(String, Option<Duration>)> {
    let status = RpcStatus::decode(bytes).ok()?;
    let delay = status
        .details
        .iter()
        .filter(|d| d.type_url == RETRY_INFO_TYPE)
        .find_map(|d| RetryInfo::decode(d.value.as_slice()).ok()?.retry_delay)
        .map(|d| {
            Duration::from_secs(u64::try_from(d.seconds).unwrap_or(0))
                + Duration::from_nanos(u64::try_from(d.nanos).unwrap_or(0))
        });
    Some((status.message, delay))
}

/// Encodes a `google.rpc.Status` with a `RetryInfo` delay: what a receiver sends to ask
/// for a pause (public for test receivers).
pub fn encode_status(code: i32, message: &str, retry_after: Option<Duration>) -> Vec<u8> {
    let details = retry_after
        .map(|d| ProtoAny {
            type_url: RETRY_INFO_TYPE.to_owned(),
            value: RetryInfo {
                retry_delay: Some(ProtoDuration {
                    seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                    nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
                }),
            }
            .encode_to_vec(),
        })
        .into_iter()
        .collect();
    RpcStatus {
        code,
        message: message.to_owned(),
        details,
    }
    .encode_to_vec()
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// `Retry-After` in delta-seconds (the HTTP-date form is not used by OTLP receivers and
/// falls back to the sink's own backoff).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Largest response body read (a partial-success answer or an error status).
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

/// OTLP/HTTP protobuf over a blocking HTTP/1.1 client with keep-alive.
pub struct HttpTransport {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    gzip: bool,
}

/// The ureq TLS settings for a private CA and a client certificate.
#[cfg(feature = "tls")]
fn http_tls(tls: &crate::options::Tls) -> Result<ureq::tls::TlsConfig, crate::OtlpError> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let bad = |pem: &crate::options::Pem, message: String| crate::OtlpError::Config {
        key: "tls".to_owned(),
        message: format!("{}: {message}", pem.path.display()),
    };
    let certificates = |pem: &crate::options::Pem| -> Result<Vec<Certificate<'static>>, _> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem.text) {
            match item {
                Ok(PemItem::Certificate(cert)) => certs.push(cert),
                Ok(_) => {}
                Err(e) => return Err(bad(pem, e.to_string())),
            }
        }
        Ok(certs)
    };
    let mut config = TlsConfig::builder();
    if let Some(ca) = &tls.ca {
        config = config.root_certs(RootCerts::new_with_certs(&certificates(ca)?));
    }
    if let Some((cert, key)) = &tls.client {
        let chain = certificates(cert)?;
        let key = PrivateKey::from_pem(&key.text).map_err(|e| bad(key, e.to_string()))?;
        config = config.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(config.build())
}

impl HttpTransport {
    fn new(options: &Resolved) -> Result<Self, crate::OtlpError> {
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("heliosdb-otlp/", env!("CARGO_PKG_VERSION")));
        #[cfg(feature = "tls")]
        if options.tls != crate::options::Tls::default() {
            config = config.tls_config(http_tls(&options.tls)?);
        }
        let agent = config.build().new_agent();
        Ok(Self {
            agent,
            url: options.endpoint.clone(),
            headers: options
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            gzip: options.compression == Compression::Gzip,
        })
    }

    fn export(&mut self, request: &ExportLogsServiceRequest) -> Result<Ack, Failure> {
        let retryable = |message: String| Failure::Retryable {
            message,
            retry_after: None,
        };
        let mut body = request.encode_to_vec();
        let mut call = self
            .agent
            .post(&self.url)
            .header("content-type", "application/x-protobuf");
        if self.gzip {
            body = gzip(&body).map_err(|e| retryable(format!("gzip: {e}")))?;
            call = call.header("content-encoding", "gzip");
        }
        for (name, value) in &self.headers {
            call = call.header(name.as_str(), value.as_str());
        }
        let mut response = call
            .send(body.as_slice())
            .map_err(|e| retryable(e.to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| retryable(format!("HTTP {status}: cannot read the answer: {e}")))?;
        if (200..300).contains(&status) {
            let decoded = if bytes.is_empty() {
                None
            } else {
                Some(
                    ExportLogsServiceResponse::decode(bytes.as_slice()).map_err(|e| {
                        retryable(format!("HTTP {status}: not an OTLP answer: {e}"))
                    })?,
                )
            };
            return Ok(ack(decoded));
        }
        let said = match decode_status(&bytes) {
            Some((message, _)) if !message.is_empty() => format!("HTTP {status}: {message}"),
            _ => format!("HTTP {status}"),
        };
        match status {
            400 => Err(Failure::BadData { message: said }),
            413 => Err(Failure::TooLarge { message: said }),
            _ => Err(Failure::Retryable {
                message: said,
                retry_after,
            }),
        }
    }
}

#[cfg(feature = "grpc")]
pub use grpc::GrpcTransport;

#[cfg(feature = "grpc")]
mod grpc {
    use super::{Ack, Failure, ack, decode_status};
    use crate::options::{Compression, Resolved};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use std::time::Duration;
    use tonic::codec::CompressionEncoding;
    use tonic::metadata::{MetadataKey, MetadataValue};
    use tonic::transport::{Channel, Endpoint};

    /// OTLP/gRPC on a private current-thread runtime.
    pub struct GrpcTransport {
        pub(super) endpoint: String,
        runtime: tokio::runtime::Runtime,
        client: LogsServiceClient<Channel>,
        metadata: tonic::metadata::MetadataMap,
        timeout: Duration,
    }

    impl GrpcTransport {
        pub(super) fn new(options: &Resolved) -> Result<Self, crate::OtlpError> {
            let config = |message: String| crate::OtlpError::Config {
                key: "endpoint".to_owned(),
                message,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| config(format!("cannot start the gRPC runtime: {e}")))?;
            #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
            let mut endpoint = Endpoint::from_shared(options.endpoint.clone())
                .map_err(|e| config(format!("`{}`: {e}", options.endpoint)))?
                .connect_timeout(options.timeout)
                .timeout(options.timeout);
            #[cfg(feature = "tls")]
            if options.endpoint.starts_with("https://") {
                use tonic::transport::{Certificate, ClientTlsConfig, Identity};
                let mut tls = ClientTlsConfig::new();
                tls = match &options.tls.ca {
                    // A private CA is trusted instead of the public roots.
                    Some(ca) => tls.ca_certificate(Certificate::from_pem(&ca.text)),
                    None => tls.with_webpki_roots(),
                };
                if let Some((cert, key)) = &options.tls.client {
                    tls = tls.identity(Identity::from_pem(&cert.text, &key.text));
                }
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|e| config(format!("TLS: {e}")))?;
            }
            // A lazy channel connects (and reconnects) on use, inside the runtime.
            let channel = {
                let _entered = runtime.enter();
                endpoint.connect_lazy()
            };
            let mut client = LogsServiceClient::new(channel);
            if options.compression == Compression::Gzip {
                client = client
                    .send_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Gzip);
            }
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (name, value) in &options.headers {
                let key = MetadataKey::from_bytes(name.as_bytes())
                    .map_err(|e| config(format!("header `{name}`: {e}")))?;
                let value = MetadataValue::try_from(value.as_str())
                    .map_err(|e| config(format!("header `{name}`: {e}")))?;
                metadata.insert(key, value);
            }
            Ok(Self {
                endpoint: options.endpoint.clone(),
                runtime,
                client,
                metadata,
                timeout: options.timeout,
            })
        }

        pub(super) fn export(&mut self, request: ExportLogsServiceRequest) -> Result<Ack, Failure> {
            let mut call = tonic::Request::new(request);
            *call.metadata_mut() = self.metadata.clone();
            call.set_timeout(self.timeout);
            let client = &mut self.client;
            let timeout = self.timeout;
            let answer = self.runtime.block_on(async {
                // The endpoint timeout covers the call; this one also bounds connecting.
                tokio::time::timeout(timeout + timeout, client.export(call)).await
            });
            let status = match answer {
                Ok(Ok(response)) => return Ok(ack(Some(response.into_inner()))),
                Ok(Err(status)) => status,
                Err(_) => {
                    return Err(Failure::Retryable {
                        message: format!("no answer within {timeout:?}"),
                        retry_after: None,
                    });
                }
            };
            let retry_after = decode_status(status.details()).and_then(|(_, delay)| delay);
            let message = format!("gRPC {:?}: {}", status.code(), status.message());
            let too_large = {
                let said = status.message().to_ascii_lowercase();
                said.contains("too large") || said.contains("larger than")
            };
            match status.code() {
                tonic::Code::InvalidArgument => Err(Failure::BadData { message }),
                tonic::Code::ResourceExhausted | tonic::Code::OutOfRange if too_large => {
                    Err(Failure::TooLarge { message })
                }
                _ => Err(Failure::Retryable {
                    message,
                    retry_after,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips() {
        let bytes = encode_status(14, "busy", Some(Duration::from_millis(1500)));
        assert_eq!(
            decode_status(&bytes),
            Some(("busy".to_owned(), Some(Duration::from_millis(1500))))
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
