//! SOC 2 for a multi-tenant SaaS service: `customers-api`, an axum service with HeliosDB-Lite
//! embedded. Every request runs in its own session carrying the caller (`X-User`), the
//! tenant (`X-Tenant`), the client address and the correlation id (`X-Request-Id`, or a
//! fresh one), so each audited statement says who, for which tenant, from where and in
//! which request; a request without credentials runs nothing and is recorded as refused.
//! Tenants read their own audit events with SQL over `__audit_log`, and anyone
//! authenticated can check the chain's integrity.
//!
//! `cargo run --example soc2_saas` starts the service on a loopback port, drives a short
//! scripted session against it over HTTP and prints what the audit trail holds;
//! `cargo run --example soc2_saas -- --serve 127.0.0.1:8080` keeps serving.

use axum::extract::{ConnectInfo, FromRequestParts, Path as UrlPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use clap::Parser;
use heliosdb_lite::audit::VerifyReport;
use heliosdb_lite::{
    AppEvent, Config, Database, FromRow, Output, Row, Session, SessionInfo, params,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value as JsonValue, json};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The service's name, recorded as the `application` of every event.
pub const APPLICATION: &str = "customers-api";
/// Header naming the authenticated user.
pub const USER_HEADER: &str = "x-user";
/// Header naming the caller's tenant.
pub const TENANT_HEADER: &str = "x-tenant";
/// Header carrying the correlation id, echoed in every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_customers_tenant ON customers(tenant_id)";

// Every write names the tenant: another tenant's row matches nothing, so the statement
// still runs (and is audited, with 0 rows) but changes nothing.
const INSERT: &str = "INSERT INTO customers (tenant_id, name, email) VALUES ($1, $2, $3)
  RETURNING id, tenant_id, name, email";
const UPDATE: &str = "UPDATE customers SET name = $1, email = $2 WHERE id = $3 AND tenant_id = $4
  RETURNING id, tenant_id, name, email";
const DELETE: &str = "DELETE FROM customers WHERE id = $1 AND tenant_id = $2";

/// The caller's tenant's data changes of the last 30 days. The engine classifies each
/// statement (`class`, `operation`); `custom` is the session's custom fields as a JSON
/// object, read here as a map so that `tenant` is matched exactly.
const TENANT_EVENTS: &str = "
SELECT id, CAST(timestamp AS TEXT) AS at, session_id, user, client_addr, application,
       operation, target, query, params, affected_rows, success, error, custom, checksum
FROM __audit_log
WHERE timestamp >= datetime('now', '-30 days')
  AND class = 'DML' AND operation IN ('INSERT', 'UPDATE', 'DELETE')
  AND CAST(custom AS MAP)['tenant'] = $1
ORDER BY id";

/// Installs the example's `heliosdb.toml` in `workdir`, opens the database it describes
/// (`workdir/data`) and creates the schema.
pub fn open(workdir: &Path) -> anyhow::Result<Database> {
    std::fs::create_dir_all(workdir)?;
    let file = workdir.join("heliosdb.toml");
    std::fs::write(&file, include_str!("heliosdb.toml"))?;
    let config = Config::from_file(&file)?;
    let db = Database::builder().config(&config).open()?;
    let mut migrations = db.session(SessionInfo::new("migrations").application(APPLICATION));
    migrations.execute(SCHEMA, &[])?;
    Ok(db)
}

/// The service's routes over `db`.
pub fn app(db: Database) -> Router {
    Router::new()
        .route("/customers", post(create_customer))
        .route(
            "/customers/{id}",
            put(update_customer).delete(delete_customer),
        )
        .route("/audit/events", get(audit_events))
        .route("/audit/verify", get(audit_verify))
        .layer(middleware::from_fn(correlate))
        .with_state(db)
}

/// Serves [`app`] on `listener` until the task is dropped; handlers see the peer address.
pub async fn serve(listener: tokio::net::TcpListener, db: Database) -> std::io::Result<()> {
    let service = app(db).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).await
}

/// A customer of a tenant, as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Row id.
    pub id: i64,
    /// Owning tenant.
    pub tenant_id: String,
    /// Customer name.
    pub name: String,
    /// Contact email.
    pub email: String,
}

/// Body of `POST /customers` and `PUT /customers/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CustomerInput {
    /// Customer name.
    pub name: String,
    /// Contact email.
    pub email: String,
}

/// One audit event as `GET /audit/events` returns it: a row of `__audit_log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Ledger seq.
    pub id: i64,
    /// UTC time of the statement.
    pub timestamp: String,
    /// Session (one per request).
    pub session_id: i64,
    /// Authenticated user.
    pub user: String,
    /// Client IP address.
    pub client_addr: String,
    /// Service name.
    pub application: String,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub operation: String,
    /// Table(s) written.
    pub target: String,
    /// Statement text.
    pub query: String,
    /// Bound parameters, as recorded.
    pub params: JsonValue,
    /// Rows changed (0 when another tenant's row was named).
    pub affected_rows: i64,
    /// Whether the statement succeeded.
    pub success: bool,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Session custom fields: `tenant` and `correlation_id`.
    pub custom: BTreeMap<String, String>,
    /// Chain hash, hex.
    pub checksum: String,
}

impl AuditEvent {
    /// One row of [`TENANT_EVENTS`]; `params` and `custom` hold JSON, so this is no
    /// [`FromRow`] (whose errors are the database's).
    fn from_row(row: &Row<'_>) -> anyhow::Result<AuditEvent> {
        Ok(AuditEvent {
            id: row.get("id")?,
            timestamp: row.get("at")?,
            session_id: row.get("session_id")?,
            user: row.get("user")?,
            client_addr: row.get("client_addr")?,
            application: row.get("application")?,
            operation: row.get("operation")?,
            target: row.get("target")?,
            query: row.get("query")?,
            params: serde_json::from_str(&row.get::<String>("params")?)?,
            affected_rows: row.get("affected_rows")?,
            success: row.get("success")?,
            error: row.get("error")?,
            custom: serde_json::from_str(&row.get::<String>("custom")?)?,
            checksum: row.get("checksum")?,
        })
    }
}

impl FromRow for Customer {
    fn from_row(row: &Row<'_>) -> heliosdb_lite::Result<Customer> {
        Ok(Customer {
            id: row.get("id")?,
            tenant_id: row.get("tenant_id")?,
            name: row.get("name")?,
            email: row.get("email")?,
        })
    }
}

/// An error response: a status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn not_found() -> Self {
        ApiError(StatusCode::NOT_FOUND, "no such customer".into())
    }

    /// Logs the detail; the client learns only that the service failed.
    fn internal(detail: impl Display) -> Self {
        eprintln!("{APPLICATION}: internal error: {detail}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// The request's correlation id, set by [`correlate`].
#[derive(Clone, Debug)]
struct CorrelationId(String);

/// Takes the correlation id from `X-Request-Id` (or makes a fresh one), hands it to the
/// handlers and echoes it in the response, errors included.
async fn correlate(mut request: Request, next: Next) -> Response {
    let given = request.headers().get(REQUEST_ID_HEADER);
    let id = match given.and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() && id.len() <= 128 => id.to_owned(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    request.extensions_mut().insert(CorrelationId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Who is calling: taken from the request, recorded with every statement it runs.
#[derive(Clone, Debug)]
pub struct Caller {
    user: String,
    tenant: String,
    client_addr: Option<String>,
    correlation_id: String,
}

impl FromRequestParts<Database> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, db: &Database) -> Result<Self, ApiError> {
        let header = |name: &str| {
            let value = parts.headers.get(name).and_then(|v| v.to_str().ok());
            value.map(str::trim).unwrap_or_default().to_owned()
        };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        let correlation = parts.extensions.get::<CorrelationId>();
        let caller = Caller {
            user: header(USER_HEADER),
            tenant: header(TENANT_HEADER),
            client_addr: peer.map(|ConnectInfo(addr)| addr.ip().to_string()),
            correlation_id: correlation
                .map(|c| c.0.clone())
                .ok_or_else(|| ApiError::internal("no correlation id"))?,
        };
        let missing = [(USER_HEADER, &caller.user), (TENANT_HEADER, &caller.tenant)]
            .into_iter()
            .find_map(|(name, value)| value.is_empty().then_some(name));
        match missing {
            None => Ok(caller),
            Some(name) => Err(caller.deny(db, name, parts.uri.path()).await),
        }
    }
}

impl Caller {
    fn session_info(&self) -> SessionInfo {
        let user = if self.user.is_empty() {
            "anonymous"
        } else {
            &self.user
        };
        let mut info = SessionInfo::new(user)
            .application(APPLICATION)
            .custom("correlation_id", &self.correlation_id);
        if !self.tenant.is_empty() {
            info = info.custom("tenant", &self.tenant);
        }
        match &self.client_addr {
            Some(addr) => info.client_addr(addr),
            None => info,
        }
    }

    /// Records the refused request (an APP `ACCESS_DENIED` event, failed) and answers 401.
    async fn deny(&self, db: &Database, missing: &str, path: &str) -> ApiError {
        let reason = format!("missing {missing} header");
        let event = AppEvent::new("ACCESS_DENIED")
            .detail(&reason)
            .target(path)
            .failed();
        match self.run(db, move |s| s.record_event(event)).await {
            Ok(()) => ApiError(StatusCode::UNAUTHORIZED, reason),
            Err(error) => error,
        }
    }

    /// Runs `work` in a session of its own on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        db: &Database,
        work: impl FnOnce(&mut Session) -> heliosdb_lite::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (db, info) = (db.clone(), self.session_info());
        blocking(move || work(&mut db.session(info))).await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> heliosdb_lite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::internal),
        Err(join) => Err(ApiError::internal(join)),
    }
}

// Handlers with a body take the caller as a `Result`: the body is read before a refusal
// is answered, so the client is not cut off while it is still sending it.
async fn create_customer(
    State(db): State<Database>,
    caller: Result<Caller, ApiError>,
    Json(input): Json<CustomerInput>,
) -> Result<(StatusCode, Json<Customer>), ApiError> {
    let caller = caller?;
    let tenant = caller.tenant.clone();
    let customer = caller
        .run(&db, move |s| {
            s.query_opt::<Customer>(INSERT, &params![tenant, input.name, input.email])
        })
        .await?;
    let customer = customer.ok_or_else(|| ApiError::internal("INSERT returned no row"))?;
    Ok((StatusCode::CREATED, Json(customer)))
}

async fn update_customer(
    State(db): State<Database>,
    caller: Result<Caller, ApiError>,
    UrlPath(id): UrlPath<i64>,
    Json(input): Json<CustomerInput>,
) -> Result<Json<Customer>, ApiError> {
    let caller = caller?;
    let tenant = caller.tenant.clone();
    let customer = caller
        .run(&db, move |s| {
            s.query_opt::<Customer>(UPDATE, &params![input.name, input.email, id, tenant])
        })
        .await?;
    customer.map(Json).ok_or_else(ApiError::not_found)
}

async fn delete_customer(
    State(db): State<Database>,
    caller: Caller,
    UrlPath(id): UrlPath<i64>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant.clone();
    let outputs = caller
        .run(&db, move |s| s.execute(DELETE, &params![id, tenant]))
        .await?;
    match outputs.first().and_then(Output::affected) {
        Some(deleted) if deleted > 0 => Ok(StatusCode::NO_CONTENT),
        _ => Err(ApiError::not_found()),
    }
}

async fn audit_events(
    State(db): State<Database>,
    caller: Caller,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let tenant = caller.tenant.clone();
    let rows = caller
        .run(&db, move |s| s.query(TENANT_EVENTS, &params![tenant]))
        .await?;
    let events = rows.iter().map(|row| AuditEvent::from_row(&row));
    events
        .collect::<anyhow::Result<_>>()
        .map(Json)
        .map_err(ApiError::internal)
}

async fn audit_verify(
    State(db): State<Database>,
    _caller: Caller,
) -> Result<Json<VerifyReport>, ApiError> {
    blocking(move || db.verify()).await.map(Json)
}

/// The service running on a loopback port, on a runtime of its own; dropping it stops it.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Starts [`serve`] on `127.0.0.1` at a free port.
    pub fn start(db: Database) -> anyhow::Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            if let Err(error) = serve(listener, db).await {
                eprintln!("{APPLICATION}: server stopped: {error}");
            }
        });
        Ok(Server {
            addr,
            _runtime: runtime,
        })
    }
}

/// An authenticated caller, as the client sends it.
#[derive(Clone, Copy, Debug)]
pub struct Login<'a> {
    /// `X-User`.
    pub user: &'a str,
    /// `X-Tenant`.
    pub tenant: &'a str,
}

/// What the service answered.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The echoed `X-Request-Id`.
    pub request_id: String,
    /// The JSON body (`null` when empty).
    pub body: JsonValue,
}

/// A blocking HTTP client for the service (ureq).
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client for the service at `addr`.
    pub fn new(addr: SocketAddr) -> Client {
        let config = ureq::Agent::config_builder().http_status_as_error(false);
        Client {
            agent: config.build().into(),
            base: format!("http://{addr}"),
        }
    }

    /// Sends `method path` as `login` (none: unauthenticated) with `request_id` (none: the
    /// service makes one) and an optional JSON body.
    pub fn send(
        &self,
        login: Option<Login<'_>>,
        request_id: Option<&str>,
        method: &str,
        path: &str,
        body: Option<JsonValue>,
    ) -> anyhow::Result<Reply> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(login) = login {
            request = request
                .header(USER_HEADER, login.user)
                .header(TENANT_HEADER, login.tenant);
        }
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID_HEADER, id);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut response = self.agent.run(request.body(body)?)?;
        let request_id = response.headers().get(REQUEST_ID_HEADER);
        let request_id = request_id.and_then(|v| v.to_str().ok()).unwrap_or_default();
        let (status, request_id) = (response.status().as_u16(), request_id.to_owned());
        let text = response.body_mut().read_to_string()?;
        let body = if text.is_empty() {
            JsonValue::Null
        } else {
            serde_json::from_str(&text)?
        };
        Ok(Reply {
            status,
            request_id,
            body,
        })
    }
}

/// One request of the scripted session.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// `user@tenant`, or `anonymous`.
    pub caller: String,
    /// `METHOD /path`.
    pub request: String,
    /// The correlation id the service used (echoed).
    pub request_id: String,
    /// HTTP status.
    pub status: u16,
}

/// What the scripted session observed.
#[derive(Debug)]
pub struct Report {
    /// Every request, in order.
    pub exchanges: Vec<Exchange>,
    /// Each tenant's `GET /audit/events`: (tenant, events).
    pub events: Vec<(String, Vec<AuditEvent>)>,
    /// `GET /audit/verify`.
    pub integrity: Integrity,
}

/// The part of `GET /audit/verify` (a [`VerifyReport`]) a reader checks first.
#[derive(Clone, Debug, Deserialize)]
pub struct Integrity {
    /// No problem found.
    pub intact: bool,
    /// Events re-hashed and chained.
    pub events_checked: u64,
    /// The first problem (its seq, kind and detail), if any.
    pub problem: Option<JsonValue>,
}

struct Script {
    client: Client,
    exchanges: Vec<Exchange>,
}

impl Script {
    fn send(
        &mut self,
        login: Option<Login<'_>>,
        request_id: Option<&str>,
        (method, path): (&str, &str),
        body: Option<JsonValue>,
    ) -> anyhow::Result<Reply> {
        let reply = self.client.send(login, request_id, method, path, body)?;
        self.exchanges.push(Exchange {
            caller: login.map_or("anonymous".into(), |l| format!("{}@{}", l.user, l.tenant)),
            request: format!("{method} {path}"),
            request_id: reply.request_id.clone(),
            status: reply.status,
        });
        Ok(reply)
    }
}

/// Opens the database in `workdir`, starts the service and drives a scripted session
/// against it: two tenants create, update and delete customers, one tries to change the
/// other's customer, one request comes without credentials. Then each tenant reads its
/// audit events and the chain is verified.
pub fn run(workdir: &Path) -> anyhow::Result<Report> {
    let server = Server::start(open(workdir)?)?;
    let mut script = Script {
        client: Client::new(server.addr),
        exchanges: Vec::new(),
    };
    let alice = Login {
        user: "alice",
        tenant: "acme",
    };
    let bob = Login {
        user: "bob",
        tenant: "globex",
    };
    let person = |name: &str, email: &str| Some(json!({ "name": name, "email": email }));

    let created = script.send(
        Some(alice),
        Some("req-acme-1"),
        ("POST", "/customers"),
        person("Ada", "ada@acme.test"),
    )?;
    let ada = format!("/customers/{}", created.body["id"]);
    script.send(
        Some(bob),
        Some("req-globex-1"),
        ("POST", "/customers"),
        person("Grace", "grace@globex.test"),
    )?;
    let renamed = person("Ada Lovelace", "ada@acme.test");
    script.send(Some(alice), Some("req-acme-2"), ("PUT", &ada), renamed)?;
    // Bob names acme's customer: 404 for him, but both statements ran and are audited.
    script.send(Some(bob), Some("req-globex-2"), ("DELETE", &ada), None)?;
    let stolen = person("Mallory", "mallory@globex.test");
    script.send(Some(bob), Some("req-globex-3"), ("PUT", &ada), stolen)?;
    script.send(Some(alice), None, ("DELETE", &ada), None)?;
    script.send(
        None,
        None,
        ("POST", "/customers"),
        person("Eve", "eve@x.test"),
    )?;

    let mut events = Vec::new();
    for login in [alice, bob] {
        let reply = script.send(Some(login), None, ("GET", "/audit/events"), None)?;
        events.push((login.tenant.to_owned(), serde_json::from_value(reply.body)?));
    }
    let verify = script.send(Some(alice), None, ("GET", "/audit/verify"), None)?;
    let integrity = serde_json::from_value(verify.body)?;
    Ok(Report {
        exchanges: script.exchanges,
        events,
        integrity,
    })
}

/// `cargo run --example soc2_saas [-- --dir DIR] [--serve ADDR]`
#[derive(Parser)]
struct Args {
    /// Working directory (heliosdb.toml and the database); default: a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Serve on ADDR (e.g. 127.0.0.1:8080) until interrupted, instead of the script.
    #[arg(long)]
    serve: Option<SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let workdir = args.dir.unwrap_or_else(|| temp.path().to_path_buf());
    if let Some(addr) = args.serve {
        let db = open(&workdir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_io()
            .build()?;
        return runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!(
                "{APPLICATION} listening on http://{}",
                listener.local_addr()?
            );
            println!("database in {}", workdir.join("data").display());
            Ok(serve(listener, db).await?)
        });
    }

    let report = run(&workdir)?;
    println!("{APPLICATION} (working directory {})", workdir.display());
    println!("requests (caller, request, status, correlation id):");
    for e in &report.exchanges {
        let (caller, request) = (&e.caller, &e.request);
        println!("  {caller:<13} {request:<22} {} {}", e.status, e.request_id);
    }
    for (tenant, events) in &report.events {
        println!("GET /audit/events for tenant {tenant}:");
        for e in events {
            println!(
                "  #{} {} {} rows={} user={} client={} correlation_id={}",
                e.id,
                e.operation,
                e.target,
                e.affected_rows,
                e.user,
                e.client_addr,
                e.custom.get("correlation_id").map_or("-", String::as_str),
            );
        }
    }
    let Integrity {
        intact,
        events_checked,
        problem,
    } = &report.integrity;
    let problem = problem.as_ref().map_or("none".into(), JsonValue::to_string);
    println!(
        "GET /audit/verify: intact={intact} events_checked={events_checked} problem={problem}"
    );
    Ok(())
}
