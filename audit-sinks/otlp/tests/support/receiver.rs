//! A real OTLP logs receiver for the tests: the official `LogsService` gRPC server
//! generated from the OTLP protobuf definitions (`opentelemetry-proto`, tonic) and an
//! OTLP/HTTP `POST /v1/logs` handler (HTTP/1.1 over a std listener, protobuf bodies,
//! optional gzip). It writes every record it accepts to a JSON Lines file and can inject
//! failures: UNAVAILABLE / 503 for the next N calls (with a Retry-After), partial success
//! rejecting chosen records, slow answers, and going down (the port closed) and back.

use flate2::read::GzDecoder;
use heliosdb_otlp::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use heliosdb_otlp::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use heliosdb_otlp::proto::common::v1::AnyValue;
use heliosdb_otlp::proto::common::v1::any_value::Value as AnyValueKind;
use prost::Message;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which wire protocol a receiver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Http,
    Grpc,
}

/// Failures to inject.
#[derive(Debug, Default)]
pub struct Faults {
    /// Answer the next N calls with 503 / UNAVAILABLE.
    pub unavailable: u32,
    /// Sent with those answers (Retry-After header / RetryInfo).
    pub retry_after: Option<Duration>,
    /// seq -> how many more times to reject that record (partial success).
    pub reject: HashMap<u64, u32>,
    /// Answer every call this late.
    pub delay: Duration,
    /// Only count the records (for benchmarks): nothing is kept or written.
    pub count_only: bool,
    /// Answer requests of more records than this with 413 / RESOURCE_EXHAUSTED "message
    /// too large".
    pub max_records: Option<usize>,
}

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every accepted record, in arrival order, as flat JSON.
    pub records: Vec<Value>,
    /// Export calls received (including failed ones).
    pub calls: u64,
    /// Calls whose body was gzip-compressed.
    pub gzip_calls: u64,
    /// Headers (gRPC metadata) of the last call, names in lower case.
    pub last_headers: BTreeMap<String, String>,
    /// Records accepted (also in `count_only` mode).
    pub accepted: u64,
    /// Every export call: when it arrived, the seqs of its records, and how it was
    /// answered.
    pub requests: Vec<Request>,
}

/// One export call as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// When it arrived (before any injected delay).
    pub at: Instant,
    /// `heliosdb.audit.seq` of each record, in order (0 for a checkpoint record).
    pub seqs: Vec<u64>,
    /// How it was answered.
    pub answer: Answered,
}

/// How the receiver answered a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// Accepted, possibly rejecting some records (partial success).
    Ok { rejected: i64 },
    /// 503 / UNAVAILABLE.
    Unavailable,
    /// 413 / RESOURCE_EXHAUSTED.
    TooLarge,
}

#[derive(Default)]
struct Shared {
    faults: Mutex<Faults>,
    seen: Mutex<Seen>,
    jsonl: Mutex<Option<std::fs::File>>,
}

enum Answer {
    Ok(ExportLogsServiceResponse),
    Unavailable(Option<Duration>),
    TooLarge(usize),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn any_to_json(value: &Option<AnyValue>) -> Value {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValueKind::StringValue(s)) => json!(s),
        Some(AnyValueKind::BoolValue(b)) => json!(b),
        Some(AnyValueKind::IntValue(i)) => json!(i),
        Some(AnyValueKind::DoubleValue(d)) => json!(d),
        Some(AnyValueKind::ArrayValue(a)) => Value::Array(
            a.values
                .iter()
                .map(|v| any_to_json(&Some(v.clone())))
                .collect(),
        ),
        Some(AnyValueKind::BytesValue(b)) => json!(b),
        Some(AnyValueKind::StringValueStrindex(i)) => json!({ "strindex": i }),
        Some(AnyValueKind::KvlistValue(l)) => Value::Object(
            l.values
                .iter()
                .map(|kv| (kv.key.clone(), any_to_json(&kv.value)))
                .collect(),
        ),
        None => Value::Null,
    }
}

impl Shared {
    fn handle(
        &self,
        wire: Wire,
        request: ExportLogsServiceRequest,
        gzip: bool,
        headers: BTreeMap<String, String>,
    ) -> Answer {
        let at = Instant::now();
        let delay = lock(&self.faults).delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        {
            let mut seen = lock(&self.seen);
            seen.calls += 1;
            seen.gzip_calls += u64::from(gzip);
            seen.last_headers = headers;
        }
        let answer = self.answer(wire, &request);
        if !lock(&self.faults).count_only {
            let seqs = request
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .map(|record| {
                    record
                        .attributes
                        .iter()
                        .find(|kv| kv.key == "heliosdb.audit.seq")
                        .map_or(0, |kv| any_to_json(&kv.value).as_u64().unwrap_or(0))
                })
                .collect();
            let answered = match &answer {
                Answer::Ok(response) => Answered::Ok {
                    rejected: response
                        .partial_success
                        .as_ref()
                        .map_or(0, |p| p.rejected_log_records),
                },
                Answer::Unavailable(_) => Answered::Unavailable,
                Answer::TooLarge(_) => Answered::TooLarge,
            };
            lock(&self.seen).requests.push(Request {
                at,
                seqs,
                answer: answered,
            });
        }
        answer
    }

    fn answer(&self, wire: Wire, request: &ExportLogsServiceRequest) -> Answer {
        let mut faults = lock(&self.faults);
        if faults.count_only {
            let records = request
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len() as u64)
                .sum::<u64>();
            lock(&self.seen).accepted += records;
            return Answer::Ok(ExportLogsServiceResponse::default());
        }
        if faults.unavailable > 0 {
            faults.unavailable -= 1;
            return Answer::Unavailable(faults.retry_after);
        }
        let records = request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum::<usize>();
        if let Some(max) = faults.max_records
            && records > max
        {
            return Answer::TooLarge(records);
        }
        let mut rejected = 0i64;
        let mut accepted = Vec::new();
        for resource in &request.resource_logs {
            let resource_attrs: Map<String, Value> = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .map(|kv| (kv.key.clone(), any_to_json(&kv.value)))
                .collect();
            for scope in &resource.scope_logs {
                for record in &scope.log_records {
                    let attributes: Map<String, Value> = record
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), any_to_json(&kv.value)))
                        .collect();
                    let seq = attributes
                        .get("heliosdb.audit.seq")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    if let Some(left) = faults.reject.get_mut(&seq)
                        && *left > 0
                    {
                        *left -= 1;
                        rejected += 1;
                        continue;
                    }
                    accepted.push(json!({
                        "wire": format!("{wire:?}"),
                        "seq": seq,
                        "event_id": attributes.get("heliosdb.audit.event_id"),
                        "event_name": record.event_name,
                        "severity_number": record.severity_number,
                        "severity_text": record.severity_text,
                        "time_unix_nano": record.time_unix_nano,
                        "observed_time_unix_nano": record.observed_time_unix_nano,
                        "body": any_to_json(&record.body),
                        "resource": resource_attrs,
                        "scope": scope.scope.as_ref().map(|s| s.name.clone()),
                        "attributes": attributes,
                    }));
                }
            }
        }
        drop(faults);
        if let Some(file) = lock(&self.jsonl).as_mut() {
            for record in &accepted {
                let _ = writeln!(file, "{record}");
            }
        }
        let mut seen = lock(&self.seen);
        seen.accepted += accepted.len() as u64;
        seen.records.extend(accepted);
        Answer::Ok(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: format!("{rejected} records refused by the test receiver"),
            }),
        })
    }
}

/// An accepted connection, plain or wrapped in TLS.
pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

/// Wraps an accepted TCP connection (in TLS).
pub type Wrap = Arc<dyn Fn(TcpStream) -> std::io::Result<Box<dyn Conn>> + Send + Sync>;

/// TLS for a receiver: how an accepted HTTP connection is wrapped, and tonic's server TLS.
#[derive(Clone)]
pub struct ServerTls {
    pub http: Wrap,
    pub grpc: tonic::transport::ServerTlsConfig,
}

/// A running receiver.
pub struct Receiver {
    pub wire: Wire,
    pub addr: SocketAddr,
    tls: Option<ServerTls>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    grpc_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    /// Starts a receiver on an ephemeral loopback port, writing to `jsonl`.
    pub fn start(wire: Wire, jsonl: &Path) -> Receiver {
        Self::start_shared(
            wire,
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            jsonl_shared(jsonl),
            None,
        )
    }

    /// Starts a receiver speaking TLS (`https://`).
    pub fn start_tls(wire: Wire, jsonl: &Path, tls: ServerTls) -> Receiver {
        Self::start_shared(
            wire,
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            jsonl_shared(jsonl),
            Some(tls),
        )
    }

    fn start_shared(
        wire: Wire,
        addr: SocketAddr,
        shared: Arc<Shared>,
        tls: Option<ServerTls>,
    ) -> Receiver {
        let stop = Arc::new(AtomicBool::new(false));
        // The port may be in TIME_WAIT from the previous run on it: retry the bind.
        let listener = (0..200)
            .find_map(|_| {
                TcpListener::bind(addr).ok().or_else(|| {
                    std::thread::sleep(Duration::from_millis(50));
                    None
                })
            })
            .unwrap_or_else(|| panic!("cannot bind {addr}"));
        let addr = listener.local_addr().unwrap_or(addr);
        let mut receiver = Receiver {
            wire,
            addr,
            tls: tls.clone(),
            shared: Arc::clone(&shared),
            stop: Arc::clone(&stop),
            threads: Vec::new(),
            grpc_shutdown: None,
        };
        match wire {
            Wire::Http => {
                let wrap = tls.map(|t| t.http);
                let thread = std::thread::spawn(move || http_accept(listener, shared, stop, wrap));
                receiver.threads.push(thread);
            }
            Wire::Grpc => {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                receiver.grpc_shutdown = Some(tx);
                let grpc_tls = tls.map(|t| t.grpc);
                let thread = std::thread::spawn(move || grpc_serve(listener, shared, rx, grpc_tls));
                receiver.threads.push(thread);
            }
        }
        receiver
    }

    /// The endpoint a sink is given.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Changes the injected failures.
    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut lock(&self.shared.faults));
    }

    /// Looks at what was received.
    pub fn seen<T>(&self, look: impl FnOnce(&Seen) -> T) -> T {
        look(&lock(&self.shared.seen))
    }

    /// Closes the port and every connection; what was received is kept.
    pub fn stop(mut self) -> StoppedReceiver {
        self.halt();
        StoppedReceiver {
            wire: self.wire,
            addr: self.addr,
            tls: self.tls.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(tx) = self.grpc_shutdown.take() {
            let _ = tx.send(());
        }
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A receiver that is down: its port closed, its records kept.
pub struct StoppedReceiver {
    wire: Wire,
    addr: SocketAddr,
    tls: Option<ServerTls>,
    shared: Arc<Shared>,
}

impl StoppedReceiver {
    /// The port it listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts again on the same port.
    pub fn restart(self) -> Receiver {
        Receiver::start_shared(self.wire, self.addr, self.shared, self.tls)
    }
}

fn jsonl_shared(path: &Path) -> Arc<Shared> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok();
    Arc::new(Shared {
        jsonl: Mutex::new(file),
        ..Shared::default()
    })
}

/// A free loopback port with nothing listening on it (for "receiver down from the start").
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"))
}

/// The JSONL file a receiver writes.
pub fn jsonl_path(dir: &Path) -> PathBuf {
    dir.join("received.jsonl")
}

// ----- OTLP/HTTP -----------------------------------------------------------------------

fn http_accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    wrap: Option<Wrap>,
) {
    let mut connections = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let (shared, stop, wrap) = (Arc::clone(&shared), Arc::clone(&stop), wrap.clone());
        connections.push(std::thread::spawn(move || {
            let _ = http_connection(stream, &shared, &stop, wrap.as_ref());
        }));
    }
    drop(listener);
    for connection in connections {
        let _ = connection.join();
    }
}

fn http_connection(
    stream: TcpStream,
    shared: &Shared,
    stop: &AtomicBool,
    wrap: Option<&Wrap>,
) -> std::io::Result<()> {
    // Answers go out at once (no Nagle delay against the client's delayed ACK).
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    // The socket's read timeout is set through this handle whatever wraps the stream.
    let control = stream.try_clone()?;
    let conn: Box<dyn Conn> = match wrap {
        Some(wrap) => wrap(stream)?,
        None => Box::new(stream),
    };
    let mut reader = BufReader::new(conn);
    loop {
        // Wait for the next request line, watching for a stop.
        let mut line = String::new();
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        control.set_read_timeout(Some(Duration::from_secs(10)))?;
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        control.set_read_timeout(Some(Duration::from_millis(50)))?;
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        let gzip = headers.get("content-encoding").is_some_and(|e| e == "gzip");
        if gzip {
            let mut plain = Vec::new();
            GzDecoder::new(body.as_slice()).read_to_end(&mut plain)?;
            body = plain;
        }
        let (status, extra, answer) = if path != "/v1/logs" {
            (404, String::new(), Vec::new())
        } else if headers.get("content-type").map(String::as_str) != Some("application/x-protobuf")
        {
            (415, String::new(), Vec::new())
        } else {
            match ExportLogsServiceRequest::decode(body.as_slice()) {
                Err(_) => (400, String::new(), Vec::new()),
                Ok(request) => match shared.handle(Wire::Http, request, gzip, headers) {
                    Answer::Ok(response) => (200, String::new(), response.encode_to_vec()),
                    Answer::TooLarge(records) => (
                        413,
                        String::new(),
                        heliosdb_otlp::transport::encode_status(
                            8,
                            &format!("request of {records} records too large"),
                            None,
                        ),
                    ),
                    Answer::Unavailable(retry) => (
                        503,
                        retry
                            .map(|d| format!("retry-after: {}\r\n", d.as_secs()))
                            .unwrap_or_default(),
                        heliosdb_otlp::transport::encode_status(
                            14,
                            "test receiver unavailable",
                            None,
                        ),
                    ),
                },
            }
        };
        let mut out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n{extra}\r\n",
            answer.len()
        )
        .into_bytes();
        out.extend_from_slice(&answer);
        reader.get_mut().write_all(&out)?;
        reader.get_mut().flush()?;
    }
}

// ----- OTLP/gRPC -----------------------------------------------------------------------

struct Grpc {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let gzip = request
            .metadata()
            .get("grpc-encoding")
            .is_some_and(|e| e == "gzip");
        let headers = request
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let shared = Arc::clone(&self.shared);
        let request = request.into_inner();
        // The handler may sleep (slow answers): keep it off the runtime's only thread.
        let answer =
            tokio::task::spawn_blocking(move || shared.handle(Wire::Grpc, request, gzip, headers))
                .await
                .map_err(|e| tonic::Status::internal(e.to_string()))?;
        match answer {
            Answer::Ok(response) => Ok(tonic::Response::new(response)),
            Answer::TooLarge(records) => Err(tonic::Status::resource_exhausted(format!(
                "grpc: received message larger than max ({records} records)"
            ))),
            Answer::Unavailable(retry) => Err(tonic::Status::with_details(
                tonic::Code::Unavailable,
                "test receiver unavailable",
                heliosdb_otlp::transport::encode_status(14, "test receiver unavailable", retry)
                    .into(),
            )),
        }
    }
}

fn grpc_serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: tokio::sync::oneshot::Receiver<()>,
    tls: Option<tonic::transport::ServerTlsConfig>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let service = LogsServiceServer::new(Grpc { shared })
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let (drain, drained) = tokio::sync::oneshot::channel::<()>();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).expect("server TLS");
        }
        let server = builder.serve_with_incoming_shutdown(service, incoming, async {
            let _ = drained.await;
        });
        // On shutdown, give the server a moment to close, then drop whatever connections
        // the client keeps open together with the runtime.
        tokio::select! {
            _ = server => {}
            _ = async {
                let _ = shutdown.await;
                let _ = drain.send(());
                tokio::time::sleep(Duration::from_millis(300)).await;
            } => {}
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
}
