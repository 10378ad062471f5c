//! A backend that fails on command: the fault injector behind the fail-closed tests.
//!
//! [`FaultyBackend`] wraps any [`StorageBackend`] and passes every call through, except
//! the write points it was told to fail: the Nth commit, persist or side-record write
//! from now ([`FaultyBackend::arm`]), or each of them with a seeded probability
//! ([`FaultyBackend::seeded`]). A failure is reported as the operating system would
//! report it (`ENOSPC`, `EIO`) and comes in two kinds:
//!
//! * [`FaultKind::Refuse`]: nothing of the batch is written, ever.
//! * [`FaultKind::Tear`]: the commit reports the error and is not visible, but the batch
//!   reaches the inner backend when this one is closed ([`FaultyBackend::close`] or
//!   drop), as fjall's journal completes a half-written record when it is dropped after
//!   the disk frees up. This is the case the engine must undo at the next open.
//!
//! After an injected commit or persist failure the backend is poisoned, as fjall is:
//! later commits and persists return [`StorageError::Poisoned`] and write nothing (side
//! records still work). Reopening is opening a new engine database on a new
//! `FaultyBackend` over the same inner backend (memory) or directory (fjall).

use super::{Durability, Snapshot, StorageBackend, StorageError, WriteBatch};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// [`StorageBackend::commit`].
    Commit,
    /// [`StorageBackend::persist`] (the fsync of buffered commits).
    Persist,
    /// [`StorageBackend::put_side_record`] and [`StorageBackend::remove_side_record`].
    SideRecord,
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The call fails and writes nothing.
    Refuse,
    /// The call fails, the batch is not visible, and it is written to the inner backend
    /// when this backend is closed. Only commits tear; elsewhere it acts as `Refuse`.
    Tear,
}

/// The operating system error a fault reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// `ENOSPC`: no space left on device.
    NoSpace,
    /// `EIO`: an input/output error.
    Io,
}

impl FaultError {
    fn to_io(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(match self {
            FaultError::NoSpace => 28,
            FaultError::Io => 5,
        })
    }
}

/// One planned failure: the `nth` call (0 = the next one) at `point` from the moment it
/// is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Where.
    pub point: FaultPoint,
    /// Which call at that point, counting from 0 when armed.
    pub nth: u64,
    /// What it does.
    pub kind: FaultKind,
    /// The error it reports.
    pub error: FaultError,
}

#[derive(Default)]
struct Plan {
    armed: Vec<(Fault, u64)>,
    /// Calls seen per point: commit, persist, side record.
    calls: [u64; 3],
    /// With a seed: fail one call in `one_in`, kinds and errors drawn from the generator.
    random: Option<(u64, u64)>,
    /// Failures injected so far.
    injected: Vec<(FaultPoint, FaultKind)>,
    /// Torn batches waiting for the close.
    torn: Vec<WriteBatch>,
    /// Set by an injected commit or persist failure.
    poisoned: bool,
}

fn index(point: FaultPoint) -> usize {
    match point {
        FaultPoint::Commit => 0,
        FaultPoint::Persist => 1,
        FaultPoint::SideRecord => 2,
    }
}

/// splitmix64: a small, good, seedable generator (no dependency for a test tool).
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A [`StorageBackend`] over another one that fails the write points it is told to.
pub struct FaultyBackend {
    inner: Arc<dyn StorageBackend>,
    plan: Mutex<Plan>,
}

impl std::fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("inner", &self.inner.kind())
            .finish_non_exhaustive()
    }
}

impl FaultyBackend {
    /// Passes everything through to `inner` until a fault is armed.
    pub fn new(inner: Arc<dyn StorageBackend>) -> Self {
        Self {
            inner,
            plan: Mutex::new(Plan::default()),
        }
    }

    /// Fails each commit, persist and side-record write with probability `1 / one_in`,
    /// drawing the kind and the error from a generator seeded with `seed` (the same seed
    /// fails the same calls of the same workload).
    pub fn seeded(inner: Arc<dyn StorageBackend>, seed: u64, one_in: u64) -> Self {
        let backend = Self::new(inner);
        backend.plan.lock().random = Some((seed, one_in.max(1)));
        backend
    }

    /// Plans `fault`, counting its `nth` from now.
    pub fn arm(&self, fault: Fault) {
        let mut plan = self.plan.lock();
        let now = plan.calls[index(fault.point)];
        plan.armed.push((fault, now + fault.nth));
    }

    /// Removes every planned fault and the seeded generator.
    pub fn disarm(&self) {
        let mut plan = self.plan.lock();
        plan.armed.clear();
        plan.random = None;
    }

    /// Calls seen at `point` so far, failed ones included.
    pub fn calls(&self, point: FaultPoint) -> u64 {
        self.plan.lock().calls[index(point)]
    }

    /// The failures injected so far, in order.
    pub fn injected(&self) -> Vec<(FaultPoint, FaultKind)> {
        self.plan.lock().injected.clone()
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &Arc<dyn StorageBackend> {
        &self.inner
    }

    /// Closes this backend as a crash-free shutdown would: torn batches reach the inner
    /// backend now (as a journal flushed on drop completes a half-written record).
    /// Called on drop too.
    pub fn close(&self) -> Result<(), StorageError> {
        let torn = std::mem::take(&mut self.plan.lock().torn);
        for batch in torn {
            self.inner.commit(&batch, Durability::Sync)?;
        }
        Ok(())
    }

    /// True once an injected commit or persist failure poisoned the backend.
    pub fn is_poisoned(&self) -> bool {
        self.plan.lock().poisoned
    }

    /// Decides whether this call at `point` fails, and how.
    fn strike(&self, point: FaultPoint) -> Option<(FaultKind, FaultError)> {
        let mut plan = self.plan.lock();
        let call = plan.calls[index(point)];
        plan.calls[index(point)] += 1;
        let planned = plan
            .armed
            .iter()
            .position(|(fault, at)| fault.point == point && *at == call);
        let hit = if let Some(position) = planned {
            let (fault, _) = plan.armed.remove(position);
            Some((fault.kind, fault.error))
        } else if let Some((mut state, one_in)) = plan.random {
            let roll = next_random(&mut state);
            let shape = next_random(&mut state);
            plan.random = Some((state, one_in));
            roll.is_multiple_of(one_in).then(|| {
                let kind = if shape & 1 == 0 {
                    FaultKind::Refuse
                } else {
                    FaultKind::Tear
                };
                let error = if shape & 2 == 0 {
                    FaultError::NoSpace
                } else {
                    FaultError::Io
                };
                (kind, error)
            })
        } else {
            None
        };
        if let Some((kind, _)) = hit {
            plan.injected.push((point, kind));
            if point != FaultPoint::SideRecord {
                plan.poisoned = true;
            }
        }
        hit
    }
}

impl Drop for FaultyBackend {
    fn drop(&mut self) {
        // Best effort, like the journal flush it models.
        let _ = self.close();
    }
}

impl StorageBackend for FaultyBackend {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn location(&self) -> Option<PathBuf> {
        self.inner.location()
    }

    fn limits(&self) -> Vec<(&'static str, u64)> {
        self.inner.limits()
    }

    fn ensure_keyspace(&self, name: &str) -> Result<(), StorageError> {
        self.inner.ensure_keyspace(name)
    }

    fn keyspaces(&self) -> Result<Vec<String>, StorageError> {
        self.inner.keyspaces()
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StorageError> {
        self.inner.snapshot()
    }

    fn commit(&self, batch: &WriteBatch, durability: Durability) -> Result<(), StorageError> {
        if self.is_poisoned() {
            return Err(StorageError::Poisoned);
        }
        match self.strike(FaultPoint::Commit) {
            None => self.inner.commit(batch, durability),
            Some((kind, error)) => {
                // A torn batch must be one the inner backend would have taken.
                if kind == FaultKind::Tear && batch.validate().is_ok() {
                    self.plan.lock().torn.push(batch.clone());
                }
                Err(StorageError::Io(error.to_io()))
            }
        }
    }

    fn persist(&self) -> Result<(), StorageError> {
        if self.is_poisoned() {
            return Err(StorageError::Poisoned);
        }
        match self.strike(FaultPoint::Persist) {
            None => self.inner.persist(),
            Some((_, error)) => Err(StorageError::Io(error.to_io())),
        }
    }

    fn reclaim(&self, keyspaces: &[&str]) -> Result<(), StorageError> {
        self.inner.reclaim(keyspaces)
    }

    fn erasure_after_close(&self) -> Option<Box<dyn super::ErasureStep>> {
        self.inner.erasure_after_close()
    }

    fn side_record(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.side_record(name)
    }

    fn put_side_record(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        match self.strike(FaultPoint::SideRecord) {
            None => self.inner.put_side_record(name, bytes),
            Some((_, error)) => Err(StorageError::Io(error.to_io())),
        }
    }

    fn remove_side_record(&self, name: &str) -> Result<(), StorageError> {
        match self.strike(FaultPoint::SideRecord) {
            None => self.inner.remove_side_record(name),
            Some((_, error)) => Err(StorageError::Io(error.to_io())),
        }
    }
}
