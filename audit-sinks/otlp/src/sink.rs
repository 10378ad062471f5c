//! [`OtlpSink`]: the follower that exports the audit trail as OTLP log records.

use crate::cursor::{Cursor, CursorState};
use crate::error::OtlpError;
use crate::mapping::Mapping;
use crate::options::{OtlpOptions, Resolved};
use crate::transport::{Ack, Failure, Transport};
use heliosdb_engine::AppEvent;
use heliosdb_engine::audit::export::ExportLine;
use heliosdb_engine::audit::{
    AuditSink, Hash, RetryAfter, SealedEvent, SinkContext, SinkError, SinkRecorder,
};
use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest the cursor file may stay behind the acknowledged records while events keep
/// coming (it is written at once when the sink goes idle, closes or quarantines). Writing
/// it costs two fsyncs; after a crash at most this much is sent again.
pub const CURSOR_INTERVAL: Duration = Duration::from_secs(1);

/// Operation of the SYSTEM event recorded when a record is quarantined.
pub const QUARANTINE_OPERATION: &str = "OTLP_QUARANTINE";

/// A follower sink exporting every sealed event to an OTLP receiver as a log record
/// (`docs/OTLP.md`). Delivery is at-least-once: the cursor file advances only after the
/// receiver acknowledged every record of a request with none rejected (at most every
/// [`CURSOR_INTERVAL`] while events keep coming); a record the
/// receiver rejects alone `reject_attempts` times in a row is written to the quarantine
/// file, recorded as a SYSTEM event, and passed over.
///
/// ```no_run
/// use heliosdb_otlp::{OtlpOptions, OtlpSink};
/// let sink = OtlpSink::new(
///     OtlpOptions::new("/var/lib/app/otlp.cursor").endpoint("http://collector:4318"),
/// )?;
/// // database.attach_sink(Box::new(sink))?;
/// # Ok::<(), heliosdb_otlp::OtlpError>(())
/// ```
#[derive(Debug)]
pub struct OtlpSink {
    options: Resolved,
    transport: Option<Transport>,
    mapping: Mapping,
    cursor: Cursor,
    /// Seq of the last event acknowledged (or quarantined), whether stored yet or not.
    acked: u64,
    /// Size of the last signed checkpoint acknowledged, whether stored yet or not.
    checkpoint_acked: u64,
    /// The checkpoint size the cursor file holds.
    checkpoint_stored: u64,
    /// The value the cursor file holds.
    stored: u64,
    /// When the cursor file was last written.
    stored_at: Instant,
    recorder: Option<SinkRecorder>,
    /// The first pending seq and when it was first offered, while lingering.
    lingering: Option<(u64, Instant)>,
    /// Events up to this seq were in a request the receiver rejected (in part or whole):
    /// they are sent alone.
    singles_until: u64,
    /// Rejections in a row of the record after `acked`, sent alone.
    rejections: u32,
    /// Most records per request: `batch_size`, halved while the receiver answers that a
    /// request is too large.
    request_cap: usize,
    /// Requests accepted in a row since `request_cap` last changed.
    accepted_in_a_row: u32,
}

/// Requests accepted in a row after which a `request_cap` halved by a "too large" answer
/// doubles again (up to `batch_size`).
const GROW_AFTER: u32 = 64;

impl OtlpSink {
    /// Resolves `options` against the `OTEL_EXPORTER_OTLP_*` environment and checks
    /// them; the connection is made on the sink's own thread, on its first delivery.
    pub fn new(options: OtlpOptions) -> Result<Self, OtlpError> {
        Ok(Self::from_resolved(options.resolve()?))
    }

    /// A sink running with exactly `options`.
    pub fn from_resolved(options: Resolved) -> Self {
        Self {
            mapping: Mapping {
                service_name: options.service_name.clone(),
                database_id: String::new(),
            },
            cursor: Cursor::new(options.cursor_path.clone()),
            transport: None,
            acked: 0,
            stored: 0,
            checkpoint_acked: 0,
            checkpoint_stored: 0,
            stored_at: Instant::now(),
            recorder: None,
            lingering: None,
            singles_until: 0,
            rejections: 0,
            request_cap: options.batch_size.max(1),
            accepted_in_a_row: 0,
            options,
        }
    }

    /// The options the sink runs with.
    pub fn options(&self) -> &Resolved {
        &self.options
    }

    fn transport(&mut self) -> Result<&mut Transport, OtlpError> {
        match &mut self.transport {
            Some(transport) => Ok(transport),
            slot @ None => Ok(slot.insert(Transport::new(&self.options)?)),
        }
    }

    fn send(&mut self, events: &[SealedEvent]) -> Result<Result<Ack, Failure>, OtlpError> {
        let request = self.mapping.request(events, now_us());
        Ok(self.transport()?.export(request))
    }

    /// Writes the cursor file when it is behind and `force` is set or
    /// [`CURSOR_INTERVAL`] has passed since the last write.
    fn store_cursor(&mut self, force: bool) -> Result<(), OtlpError> {
        let due = force || self.stored_at.elapsed() >= CURSOR_INTERVAL;
        let behind = self.acked != self.stored || self.checkpoint_acked != self.checkpoint_stored;
        if behind && due {
            self.cursor.store(&CursorState {
                database_id: self.mapping.database_id.clone(),
                seq: self.acked,
                checkpoint_size: self.checkpoint_acked,
            })?;
            self.stored = self.acked;
            self.checkpoint_stored = self.checkpoint_acked;
            self.stored_at = Instant::now();
        }
        Ok(())
    }

    /// Exports the signed checkpoints stored since the last one acknowledged, as
    /// `db.audit.checkpoint` records, so the SIEM holds the off-box anchor.
    fn export_checkpoints(&mut self) -> Result<(), OtlpError> {
        let Some(recorder) = &self.recorder else {
            return Ok(());
        };
        let stored = match recorder.checkpoints_after(self.checkpoint_acked) {
            Ok(stored) => stored,
            // The database is gone: nothing more to read.
            Err(heliosdb_engine::Error::Closed) => return Ok(()),
            Err(error) => {
                return Err(
                    self.retryable(format!("cannot read stored checkpoints: {error}"), None)
                );
            }
        };
        for chunk in stored.chunks(self.options.batch_size) {
            let request = self.mapping.checkpoint_request(chunk, now_us());
            match self.transport()?.export(request) {
                Ok(ack) if ack.rejected <= 0 => {
                    if let Some(last) = chunk.last() {
                        self.checkpoint_acked = last.size;
                    }
                }
                // A checkpoint is never quarantined: it is retried until the receiver
                // takes it (its records are small and always well-formed).
                Ok(ack) => {
                    return Err(self.retryable(
                        format!("the receiver rejected {} checkpoint records", ack.rejected),
                        None,
                    ));
                }
                Err(Failure::BadData { message } | Failure::TooLarge { message }) => {
                    return Err(self.retryable(
                        format!("the receiver refused checkpoint records: {message}"),
                        None,
                    ));
                }
                Err(Failure::Retryable {
                    message,
                    retry_after,
                }) => return Err(self.retryable(message, retry_after)),
            }
        }
        Ok(())
    }

    fn retryable(&self, message: String, retry_after: Option<Duration>) -> OtlpError {
        OtlpError::Export {
            endpoint: self.options.endpoint.clone(),
            message,
            retry_after,
        }
    }

    /// Exports `pending` in requests of at most `request_cap` records; records of a
    /// request the receiver rejected are sent alone ([`OtlpSink::single`]). Returns an
    /// error to be offered the rest again after the follower's back-off.
    fn export(&mut self, pending: &[SealedEvent]) -> Result<(), OtlpError> {
        let mut rest = pending;
        while let Some(first) = rest.first() {
            if first.event.seq <= self.singles_until {
                self.single(first)?;
                rest = &rest[1..];
                continue;
            }
            let take = rest.len().min(self.request_cap);
            let chunk = &rest[..take];
            let last = chunk.last().map_or(0, |e| e.event.seq);
            match self.send(chunk)? {
                Ok(ack) if ack.rejected <= 0 => {
                    self.acked = last;
                    rest = &rest[take..];
                    self.accepted_in_a_row += 1;
                    if self.accepted_in_a_row >= GROW_AFTER
                        && self.request_cap < self.options.batch_size
                    {
                        self.request_cap = (self.request_cap * 2).min(self.options.batch_size);
                        self.accepted_in_a_row = 0;
                    }
                }
                // OTLP does not say which records were rejected: each is sent alone, the
                // first at once.
                Ok(_) | Err(Failure::BadData { .. }) => self.singles_until = last,
                Err(Failure::TooLarge { .. }) if take > 1 => {
                    self.request_cap = take / 2;
                    self.accepted_in_a_row = 0;
                }
                // One record alone is too large: the receiver rejects that record.
                Err(Failure::TooLarge { .. }) => self.singles_until = last,
                Err(Failure::Retryable {
                    message,
                    retry_after,
                }) => return Err(self.retryable(message, retry_after)),
            }
        }
        Ok(())
    }

    /// Sends `sealed` alone. Accepted, it is acknowledged; rejected for the
    /// `reject_attempts`-th time in a row, it is quarantined; rejected before that, the
    /// error returned makes the follower offer it again after its back-off.
    fn single(&mut self, sealed: &SealedEvent) -> Result<(), OtlpError> {
        let reason = match self.send(std::slice::from_ref(sealed))? {
            Ok(ack) if ack.rejected <= 0 => {
                self.acked = sealed.event.seq;
                self.rejections = 0;
                return Ok(());
            }
            Ok(ack) => format!("partial success, rejected: {}", ack.message),
            Err(Failure::BadData { message } | Failure::TooLarge { message }) => message,
            Err(Failure::Retryable {
                message,
                retry_after,
            }) => return Err(self.retryable(message, retry_after)),
        };
        self.rejections += 1;
        if self.rejections >= self.options.reject_attempts {
            self.rejections = 0;
            return self.quarantine(sealed, &reason);
        }
        Err(OtlpError::Rejected {
            endpoint: self.options.endpoint.clone(),
            seq: sealed.event.seq,
            rejections: self.rejections,
            attempts: self.options.reject_attempts,
            reason,
        })
    }

    /// Appends `sealed` to the quarantine file (fsynced), records a SYSTEM event, and
    /// stores the cursor past it.
    fn quarantine(&mut self, sealed: &SealedEvent, reason: &str) -> Result<(), OtlpError> {
        let path = self.options.quarantine_path.clone();
        let seq = sealed.event.seq;
        let line = serde_json::json!({
            "event_id": self.mapping.event_id(seq),
            "quarantined_at_us": now_us(),
            "endpoint": self.options.endpoint,
            "reason": reason,
            "event": ExportLine::new(sealed.event.clone(), &sealed.leaf, &sealed.chain, None),
        });
        let mut text = line.to_string();
        text.push('\n');
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(OtlpError::file(dir, "cannot create the directory"))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(OtlpError::file(&path, "cannot open the quarantine file"))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(OtlpError::file(&path, "cannot write the quarantine file"))?;
        if let Some(recorder) = &self.recorder {
            let event = AppEvent::new(QUARANTINE_OPERATION)
                .target("__audit_log")
                .detail(format!(
                    "sink {}: {} rejected the record of seq {seq} {} times in a row ({reason}); it is kept in {}",
                    self.options.name,
                    self.options.endpoint,
                    self.options.reject_attempts,
                    path.display()
                ))
                .custom("sink", self.options.name.clone())
                .custom("quarantined_seq", seq.to_string())
                .custom("quarantine_file", path.display().to_string())
                .failed();
            recorder
                .record_system_event(event)
                .map_err(|source| OtlpError::Record { seq, source })?;
        }
        self.acked = seq;
        self.store_cursor(true)
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl AuditSink for OtlpSink {
    fn name(&self) -> &str {
        &self.options.name
    }

    fn resume_after(&mut self, context: &SinkContext) -> Result<u64, SinkError> {
        self.mapping.database_id = hex(&context.database_id);
        self.recorder = Some(context.recorder.clone());
        let state = self.cursor.load(&self.mapping.database_id)?;
        self.acked = state.seq;
        self.stored = state.seq;
        self.checkpoint_acked = state.checkpoint_size;
        self.checkpoint_stored = state.checkpoint_size;
        // The transport (and for gRPC its runtime) lives on this thread from now on.
        self.transport()?;
        Ok(self.acked)
    }

    fn deliver(&mut self, _prev_chain: &Hash, events: &[SealedEvent]) -> Result<(), SinkError> {
        if self.mapping.database_id.is_empty() {
            return Err(OtlpError::NotStarted.into());
        }
        // After a partial delivery the follower offers from its own cursor again.
        let done = events
            .iter()
            .take_while(|e| e.event.seq <= self.acked)
            .count();
        let pending = &events[done..];
        let Some(first) = pending.first().map(|e| e.event.seq) else {
            return Ok(());
        };
        let linger = self.options.linger;
        if !linger.is_zero() && pending.len() < self.options.batch_size {
            let since = match self.lingering {
                Some((seq, since)) if seq == first => since,
                _ => self.lingering.insert((first, Instant::now())).1,
            };
            if let Some(left) = linger.checked_sub(since.elapsed()).filter(|l| !l.is_zero()) {
                return Err(Box::new(RetryAfter::wait(left)));
            }
        }
        self.lingering = None;
        // Checkpoints go out on every pass too, not only when the sink is idle: under
        // constant load it never is.
        let exported = self
            .export(pending)
            .and_then(|()| self.export_checkpoints());
        // Progress made before a failure is kept: it is not offered again.
        let stored = self.store_cursor(false);
        match exported {
            Err(OtlpError::Export {
                endpoint,
                message,
                retry_after: Some(pause),
            }) => Err(Box::new(RetryAfter::error(
                pause,
                OtlpError::Export {
                    endpoint,
                    message,
                    retry_after: Some(pause),
                },
            ))),
            Err(error) => Err(error.into()),
            Ok(()) => Ok(stored?),
        }
    }

    fn idle(&mut self) -> Result<(), SinkError> {
        let exported = self.export_checkpoints();
        self.store_cursor(true)?;
        Ok(exported?)
    }

    fn close(&mut self) -> Result<(), SinkError> {
        // Checkpoints signed on close are stored before this sink closes only when the
        // checkpoint sink was attached first; the others go out on the next run.
        let exported = self.export_checkpoints();
        self.transport = None;
        self.store_cursor(true)?;
        Ok(exported?)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
