//! Audit sinks: consumers of sealed events that *follow* the ledger.
//!
//! The ledger itself is the in-commit sink: every event is sealed in the same atomic commit
//! as the data it describes. Everything else — a JSON Lines file, a SIEM exporter, a
//! checkpoint signer, a user's own sink — is a *follower*: it reads the ledger after its
//! own durable cursor, on its own thread, and never slows a commit. Delivery is
//! at-least-once: a sink tells the follower where it stands ([`AuditSink::resume_after`]),
//! and the follower offers it every later event, in seq order, until it accepts them; a
//! sink that fails is offered the same events again after a pause. The backlog lives in the
//! ledger, not in memory, so an outage or a crash loses nothing.
//!
//! ```
//! use heliosdb_engine::audit::{AuditSink, SealedEvent, SinkContext, SinkError};
//!
//! /// Counts delivered events, in memory (a real sink would store its cursor durably).
//! struct Counter {
//!     delivered: u64,
//! }
//!
//! impl AuditSink for Counter {
//!     fn name(&self) -> &str {
//!         "counter"
//!     }
//!     fn resume_after(&mut self, _context: &SinkContext) -> Result<u64, SinkError> {
//!         Ok(self.delivered)
//!     }
//!     fn deliver(&mut self, _prev: &[u8; 32], events: &[SealedEvent]) -> Result<(), SinkError> {
//!         self.delivered += events.len() as u64;
//!         Ok(())
//!     }
//! }
//! ```

use super::AppEvent;
use super::checkpoints::StoredCheckpoint;
use super::event::AuditEvent;
use super::export::chain_before;
use super::ledger::{Hash, KS_AUDIT, leaf_hash, record_key, split_record};
use crate::backend::{Direction, StorageBackend, StorageError};
use crate::catalog::corrupt;
use crate::codec::DecodeError;
use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a sink's hooks return on failure: any error, kept with its source chain.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// A delivery error that says when to offer the events again, instead of the follower's
/// own backoff: a receiver's `Retry-After` (HTTP) or `RetryInfo` (gRPC). Return it boxed
/// from [`AuditSink::deliver`]; the follower finds it by downcasting.
///
/// Without a `source` it is no error at all: the sink asks to be offered the same events
/// (and any newer ones) after `pause`, to fill a larger batch (a linger). Such a wait is
/// not shown as the sink's last error, and is honoured even while the database closes,
/// up to [`MAX_WAIT`] — so a lingering sink still delivers everything on close.
///
/// ```
/// use heliosdb_engine::audit::{RetryAfter, SinkError};
/// use std::time::Duration;
/// let busy: SinkError = Box::new(RetryAfter::error(Duration::from_secs(2), "HTTP 429"));
/// assert!(busy.to_string().contains("HTTP 429"));
/// let linger: SinkError = Box::new(RetryAfter::wait(Duration::from_millis(5)));
/// assert!(busy.downcast_ref::<RetryAfter>().is_some() && linger.is::<RetryAfter>());
/// ```
#[derive(Debug)]
pub struct RetryAfter {
    /// The least time to wait before the next offer.
    pub pause: Duration,
    /// The error, or `None` for a wait that is not one.
    pub source: Option<SinkError>,
}

/// Longest pause a [`RetryAfter`] may ask for; longer requests are cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Longest wait without an error ([`RetryAfter::wait`]) the follower honours.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

impl RetryAfter {
    /// A failure: offer the events again after `pause` at the earliest.
    pub fn error(pause: Duration, source: impl Into<SinkError>) -> Self {
        Self {
            pause,
            source: Some(source.into()),
        }
    }

    /// No failure: offer the events again after `pause` (at most [`MAX_WAIT`]).
    pub fn wait(pause: Duration) -> Self {
        Self {
            pause,
            source: None,
        }
    }
}

impl std::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{source} (retry in {:?})", self.pause),
            None => write!(f, "waiting {:?} for more events", self.pause),
        }
    }
}

impl std::error::Error for RetryAfter {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A sealed event as the ledger holds it: the event (with its seq), its leaf hash and its
/// chain hash — everything a receiver needs to de-duplicate and verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedEvent {
    /// The event.
    pub event: AuditEvent,
    /// `SHA-256(0x00 || canonical)`.
    pub leaf: Hash,
    /// The chain hash after this event.
    pub chain: Hash,
}

/// What a sink learns about the database it follows, when it starts.
#[derive(Clone, Debug)]
pub struct SinkContext {
    /// The database's id: a sink's destination must not mix two databases' trails.
    pub database_id: [u8; 16],
    /// The ledger's Merkle tree, for sinks that sign or prove (checkpoints).
    pub tree: super::tree::TreeReader,
    /// The way back into the database: SYSTEM events and signed checkpoints.
    pub recorder: SinkRecorder,
}

/// What a sink may write into the database it follows: SYSTEM events (a record it had to
/// quarantine) and signed checkpoints (`__audit_checkpoints`). Keep a clone from
/// [`AuditSink::resume_after`]. It holds the database weakly: once the database is gone,
/// every call fails with [`Error::Closed`]; while it closes (a sink's last delivery and
/// `close`), calls still work.
#[derive(Clone)]
pub struct SinkRecorder {
    core: Weak<dyn SinkLedger>,
}

/// What a [`SinkRecorder`] asks of the database it records into; the commit path
/// implements it, so that sinks sit below it and know nothing of it.
pub(crate) trait SinkLedger: Send + Sync {
    /// Seals a SYSTEM event in its own commit; its seq.
    fn record_system(&self, event: AppEvent) -> Result<u64>;
    /// The storage.
    fn backend(&self) -> &dyn StorageBackend;
    /// See [`Database::checkpoint_root`](crate::Database::checkpoint_root).
    fn checkpoint_root(&self, size: u64) -> Result<Hash>;
    /// See [`Database::record_checkpoint`](crate::Database::record_checkpoint).
    fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool>;
}

impl std::fmt::Debug for SinkRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkRecorder")
            .field("open", &(self.core.strong_count() > 0))
            .finish()
    }
}

impl SinkRecorder {
    pub(crate) fn new(core: Weak<dyn SinkLedger>) -> Self {
        Self { core }
    }

    fn core(&self) -> Result<Arc<dyn SinkLedger>> {
        self.core.upgrade().ok_or(Error::Closed)
    }

    /// Seals a SYSTEM event (user `heliosdb`) in its own commit; returns its seq. The
    /// follower will offer it to every sink, this one included.
    pub fn record_system_event(&self, event: AppEvent) -> Result<u64> {
        self.core()?.record_system(event)
    }

    /// The signed checkpoints stored in the database (`__audit_checkpoints`) larger than
    /// `size`, by increasing size: for sinks that carry them off the device too.
    pub fn checkpoints_after(&self, size: u64) -> Result<Vec<StoredCheckpoint>> {
        let core = self.core()?;
        let snapshot = core.backend().snapshot()?;
        super::checkpoints::after(&*snapshot, size)
    }

    /// The root a checkpoint of the first `size` events must sign, once it is known to
    /// extend the newest stored checkpoint: see
    /// [`Database::checkpoint_root`](crate::Database::checkpoint_root).
    pub fn checkpoint_root(&self, size: u64) -> Result<Hash> {
        self.core()?.checkpoint_root(size)
    }

    /// Stores a signed checkpoint: see
    /// [`Database::record_checkpoint`](crate::Database::record_checkpoint).
    pub fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool> {
        self.core()?.store_checkpoint(checkpoint)
    }
}

/// A follower sink. Implement it for your own destination and attach it with
/// [`Database::attach_sink`](crate::Database::attach_sink).
///
/// The follower calls [`resume_after`](AuditSink::resume_after) once, then
/// [`deliver`](AuditSink::deliver) with batches that follow each other without gaps, and
/// [`close`](AuditSink::close) when the database closes.
pub trait AuditSink: Send {
    /// A short name, shown in sink status and errors.
    fn name(&self) -> &str;

    /// True for a sink that signs checkpoints of the ledger (and stores them with
    /// [`SinkRecorder::record_checkpoint`]): while one is attached, pruning removes only
    /// events under the newest stored signed checkpoint, and nothing before the first.
    fn signs_checkpoints(&self) -> bool {
        false
    }

    /// The seq of the last event this sink holds durably (0 for none): delivery resumes
    /// right after it. A sink that cannot tell (it keeps nothing) may return the current
    /// head to skip history.
    fn resume_after(&mut self, context: &SinkContext) -> std::result::Result<u64, SinkError>;

    /// Takes `events`, in seq order, directly following the last delivered one;
    /// `prev_chain` is the chain hash before the first of them. Return `Ok` only once
    /// they are durable at the destination: they will not be offered again. On `Err` the
    /// same events are offered again after a pause. Bound the time a delivery may take
    /// (network timeouts): closing the database waits for a delivery in progress.
    fn deliver(
        &mut self,
        prev_chain: &Hash,
        events: &[SealedEvent],
    ) -> std::result::Result<(), SinkError>;

    /// Called about twice a second while no new events arrive (for sinks that act on
    /// time, like a checkpoint signer with events waiting). Errors are reported like
    /// delivery errors.
    fn idle(&mut self) -> std::result::Result<(), SinkError> {
        Ok(())
    }

    /// Called once when the database closes, after the last delivery.
    fn close(&mut self) -> std::result::Result<(), SinkError> {
        Ok(())
    }
}

/// Where one follower sink stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// Seq of the last event the sink accepted (0 for none).
    pub delivered_seq: u64,
    /// Seq of the last event sealed in the ledger.
    pub head_seq: u64,
    /// The last delivery error, cleared by the next successful delivery.
    pub last_error: Option<String>,
    /// Event time (microseconds since the Unix epoch) of the oldest event sealed but not
    /// yet accepted; `None` when the sink is caught up.
    pub oldest_pending_us: Option<i64>,
}

impl SinkStatus {
    /// Events sealed but not yet accepted by the sink.
    pub fn lag(&self) -> u64 {
        self.head_seq.saturating_sub(self.delivered_seq)
    }

    /// How far behind the sink is in time: from the oldest event it has not accepted to
    /// now (zero when caught up).
    pub fn lag_time(&self) -> Duration {
        let Some(oldest) = self.oldest_pending_us else {
            return Duration::ZERO;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Duration::from_micros(u64::try_from(now.saturating_sub(oldest)).unwrap_or(0))
    }
}

/// The ledger head as commits advance it, for followers to wait on.
#[derive(Debug, Default)]
pub(crate) struct HeadSignal {
    head_seq: Mutex<u64>,
    advanced: Condvar,
}

impl HeadSignal {
    pub(crate) fn new(head_seq: u64) -> Self {
        Self {
            head_seq: Mutex::new(head_seq),
            advanced: Condvar::new(),
        }
    }

    pub(crate) fn advance(&self, seq: u64) {
        let mut head = self.head_seq.lock();
        if seq > *head {
            *head = seq;
            self.advanced.notify_all();
        }
    }

    fn get(&self) -> u64 {
        *self.head_seq.lock()
    }

    /// Wakes every waiter (to see a stop request).
    fn wake(&self) {
        let _head = self.head_seq.lock();
        self.advanced.notify_all();
    }

    /// Waits until the head passes `seq`, `stop` is set, or `timeout` passes.
    fn wait_past(&self, seq: u64, stop: &AtomicBool, timeout: Duration) -> u64 {
        let mut head = self.head_seq.lock();
        if *head <= seq && !stop.load(Ordering::Acquire) {
            let _ = self.advanced.wait_for(&mut head, timeout);
        }
        *head
    }
}

/// Reads up to `max` sealed events after `after`, with the chain hash before the first.
pub fn read_after(
    backend: &dyn StorageBackend,
    after: u64,
    max: usize,
) -> Result<(Hash, Vec<SealedEvent>)> {
    let snapshot = backend.snapshot()?;
    let first = after.saturating_add(1);
    let prev = chain_before(&*snapshot, first)?;
    let lower = record_key(first);
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Included(lower.as_slice()),
        Bound::Unbounded,
        Direction::Forward,
    )?;
    let mut events = Vec::new();
    for item in records.take(max) {
        let (key, value) = item?;
        let bad = |e: DecodeError| corrupt(KS_AUDIT, "audit record", &key, e);
        let (canonical, chain) = split_record(&value).map_err(bad)?;
        let event = AuditEvent::from_canonical(canonical).map_err(bad)?;
        let expected = first + events.len() as u64;
        if event.seq != expected {
            return Err(bad(DecodeError {
                what: "the ledger has a gap here (run verify)",
                offset: 0,
            }));
        }
        events.push(SealedEvent {
            leaf: leaf_hash(canonical),
            chain,
            event,
        });
    }
    Ok((prev, events))
}

/// A running follower: its thread, its status and how to stop it.
pub(crate) struct Follower {
    backend: Arc<dyn StorageBackend>,
    /// Set once the sink has said where it stands (`resume_after`).
    resumed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    signal: Arc<HeadSignal>,
    status: Arc<Mutex<SinkStatus>>,
    thread: Option<JoinHandle<()>>,
}

/// Pause after the first failed delivery; doubles up to [`MAX_RETRY_PAUSE`]. Each sleep
/// is jittered to between half and all of the pause, so sinks failing together (one
/// receiver down for many databases) do not retry in lockstep.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The follower's retry pauses after failures (`docs/CONFIG.md`, sinks): each sleep is the
/// current pause jittered to between half and all of it, but at least the pause the sink
/// asked for ([`RetryAfter`], cut to [`MAX_RETRY_AFTER`]); after each sleep the pause
/// doubles, from [`FIRST_RETRY_PAUSE`] up to [`MAX_RETRY_PAUSE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Backoff {
    pause: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            pause: FIRST_RETRY_PAUSE,
        }
    }

    /// The next sleep, with a fresh jitter; see [`Backoff::next_with`].
    fn next(&mut self, floor: Duration) -> Duration {
        self.next_with(floor, jitter())
    }

    /// The next sleep for `jitter` in `[0, 1)`: `pause × (0.5 + 0.5 × jitter)`, at least
    /// `floor` (cut to [`MAX_RETRY_AFTER`]); then doubles the pause up to the cap.
    fn next_with(&mut self, floor: Duration, jitter: f64) -> Duration {
        let sleep = self
            .pause
            .mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
            .max(floor.min(MAX_RETRY_AFTER));
        self.pause = (self.pause * 2).min(MAX_RETRY_PAUSE);
        sleep
    }
}
/// How long a follower sleeps without news before it looks at the head again.
const IDLE_WAIT: Duration = Duration::from_millis(500);

impl Follower {
    /// Starts a thread that feeds `sink` from the ledger in batches of at most
    /// `batch_size` events.
    pub(crate) fn start(
        mut sink: Box<dyn AuditSink>,
        backend: Arc<dyn StorageBackend>,
        signal: Arc<HeadSignal>,
        context: SinkContext,
        batch_size: usize,
    ) -> Result<Follower> {
        let name = sink.name().to_owned();
        let status = Arc::new(Mutex::new(SinkStatus {
            name: name.clone(),
            delivered_seq: 0,
            head_seq: signal.get(),
            last_error: None,
            oldest_pending_us: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let resumed = Arc::new(AtomicBool::new(false));
        let batch_size = batch_size.max(1);
        let thread = {
            let (stop, signal, status, backend, resumed) = (
                Arc::clone(&stop),
                Arc::clone(&signal),
                Arc::clone(&status),
                Arc::clone(&backend),
                Arc::clone(&resumed),
            );
            std::thread::Builder::new()
                .name(format!("heliosdb-sink-{name}"))
                .spawn(move || {
                    let run = Run {
                        backend: &*backend,
                        signal: &signal,
                        stop: &stop,
                        status: &status,
                        resumed: &resumed,
                        batch_size,
                    };
                    run.follow(&mut *sink, &context);
                })
                .map_err(|e| Error::Storage(StorageError::Io(e)))?
        };
        Ok(Follower {
            backend,
            resumed,
            stop,
            signal,
            status,
            thread: Some(thread),
        })
    }

    pub(crate) fn status(&self) -> SinkStatus {
        let mut status = self.status.lock().clone();
        status.head_seq = self.signal.get();
        if status.lag() > 0 {
            // The oldest waiting event's time, read from the ledger (the backlog is never
            // held in memory); unknown when the read fails.
            status.oldest_pending_us = read_after(&*self.backend, status.delivered_seq, 1)
                .ok()
                .and_then(|(_, events)| events.first().map(|e| e.event.timestamp_us));
        }
        status
    }

    /// The seq the sink has accepted up to, once it has said where it stands; `None`
    /// before that.
    pub(crate) fn delivered(&self) -> Option<u64> {
        self.resumed
            .load(Ordering::Acquire)
            .then(|| self.status.lock().delivered_seq)
    }

    /// Asks the thread to deliver what is sealed, close the sink and stop; waits for it.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.signal.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Run<'a> {
    backend: &'a dyn StorageBackend,
    signal: &'a HeadSignal,
    stop: &'a AtomicBool,
    status: &'a Mutex<SinkStatus>,
    resumed: &'a AtomicBool,
    batch_size: usize,
}

impl Run<'_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.status.lock().last_error = Some(format!("{what}: {error}"));
    }

    /// Sleeps the next pause of `backoff`, at least `floor` (a sink's [`RetryAfter`]),
    /// unless asked to stop. Returns false when stopping.
    fn back_off(&self, backoff: &mut Backoff, floor: Duration) -> bool {
        let sleep = backoff.next(floor);
        let deadline = std::time::Instant::now() + sleep;
        while std::time::Instant::now() < deadline {
            if self.stopping() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10).min(sleep));
        }
        true
    }

    /// Handles a failed delivery; returns false when the follower should stop.
    fn delivery_failed(&self, error: &SinkError, pause: &mut Backoff) -> bool {
        match error.downcast_ref::<RetryAfter>() {
            // Not an error: the sink waits for more events, even while closing.
            Some(RetryAfter {
                pause: wait,
                source: None,
            }) => {
                std::thread::sleep((*wait).min(MAX_WAIT));
                true
            }
            Some(retry) => {
                self.failed("deliver", error);
                self.back_off(pause, retry.pause)
            }
            None => {
                self.failed("deliver", error);
                self.back_off(pause, Duration::ZERO)
            }
        }
    }

    fn follow(&self, sink: &mut dyn AuditSink, context: &SinkContext) {
        let mut pause = Backoff::new();
        let mut cursor = loop {
            match sink.resume_after(context) {
                Ok(cursor) => break cursor,
                Err(error) => {
                    self.failed("resume", &error);
                    if !self.back_off(&mut pause, Duration::ZERO) {
                        return;
                    }
                }
            }
        };
        self.status.lock().delivered_seq = cursor;
        self.resumed.store(true, Ordering::Release);
        pause = Backoff::new();
        loop {
            let head = self.signal.wait_past(cursor, self.stop, IDLE_WAIT);
            if head <= cursor {
                if self.stopping() {
                    break;
                }
                if let Err(error) = sink.idle() {
                    self.failed("idle", &error);
                }
                continue;
            }
            let (prev, events) = match read_after(self.backend, cursor, self.batch_size) {
                Ok(read) => read,
                Err(error) => {
                    self.failed("read ledger", &error);
                    if !self.back_off(&mut pause, Duration::ZERO) {
                        break;
                    }
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.event.seq) else {
                // The head moved past what this snapshot holds: look again.
                continue;
            };
            match sink.deliver(&prev, &events) {
                Ok(()) => {
                    cursor = last;
                    pause = Backoff::new();
                    let mut status = self.status.lock();
                    status.delivered_seq = cursor;
                    status.last_error = None;
                }
                Err(error) => {
                    if !self.delivery_failed(&error, &mut pause) {
                        break;
                    }
                }
            }
        }
        if let Err(error) = sink.close() {
            self.failed("close", &error);
        }
    }
}

/// A pseudo-random number in `[0, 1)`, different on every call: SipHash of the clock under
/// the fresh random keys `RandomState` draws (good enough to spread retries).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    // The top 53 bits make an exactly representable fraction.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new();
        // With the largest jitter the sleep is the whole pause.
        let sleeps: Vec<Duration> = (0..10)
            .map(|_| backoff.next_with(Duration::ZERO, 1.0))
            .collect();
        let ms = |n: u64| Duration::from_millis(n);
        assert_eq!(
            sleeps,
            [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(ms)
        );
        // A success starts over.
        assert_eq!(
            Backoff::new().next_with(Duration::ZERO, 1.0),
            FIRST_RETRY_PAUSE
        );
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_pause() {
        let mut backoff = Backoff::new();
        for _ in 0..8 {
            backoff.next_with(Duration::ZERO, 0.0);
        }
        // The pause is at its cap now: every sleep lies in [cap / 2, cap].
        assert_eq!(backoff.next_with(Duration::ZERO, 0.0), MAX_RETRY_PAUSE / 2);
        assert_eq!(
            backoff.next_with(Duration::ZERO, 0.5),
            MAX_RETRY_PAUSE * 3 / 4
        );
        for _ in 0..1000 {
            let sleep = backoff.next(Duration::ZERO);
            assert!(
                (MAX_RETRY_PAUSE / 2..=MAX_RETRY_PAUSE).contains(&sleep),
                "{sleep:?}"
            );
        }
        let mut fresh = Backoff::new();
        let first = fresh.next(Duration::ZERO);
        assert!((FIRST_RETRY_PAUSE / 2..=FIRST_RETRY_PAUSE).contains(&first));
        // Out-of-range jitter is clamped into the band.
        assert_eq!(
            Backoff::new().next_with(Duration::ZERO, 7.0),
            FIRST_RETRY_PAUSE
        );
        assert_eq!(
            Backoff::new().next_with(Duration::ZERO, -1.0),
            FIRST_RETRY_PAUSE / 2
        );
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut backoff = Backoff::new();
        let asked = Duration::from_secs(2);
        // Above the pause (even above its cap), the receiver's pause wins...
        assert_eq!(backoff.next_with(asked, 1.0), asked);
        assert_eq!(
            backoff.next_with(Duration::from_secs(60), 0.0),
            Duration::from_secs(60)
        );
        // ... but never beyond MAX_RETRY_AFTER.
        assert_eq!(
            backoff.next_with(Duration::from_secs(86_400), 1.0),
            MAX_RETRY_AFTER
        );
        // Below it, the jittered pause is kept, and the pause still doubles.
        let mut backoff = Backoff::new();
        for _ in 0..8 {
            backoff.next_with(Duration::ZERO, 1.0);
        }
        assert_eq!(
            backoff.next_with(Duration::from_millis(10), 1.0),
            MAX_RETRY_PAUSE
        );
    }
}
