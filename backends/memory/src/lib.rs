//! In-memory storage backend for HeliosDB-Lite: nothing survives the process.
//!
//! Keyspaces are persistent ordered maps (`im::OrdMap`), so a snapshot is a cheap clone of
//! the current state. A commit checks the batch first, then changes the state in place:
//! nodes a snapshot still shares are copied on write (the snapshot keeps its view), nodes
//! nobody else holds are updated without a copy. With a size limit the next state is
//! built aside and swapped in, so a batch over the limit changes nothing.
#![deny(unsafe_code)]

use heliosdb_engine::backend::{
    BatchOp, Direction, Durability, KvIter, Snapshot, StorageBackend, StorageError, WriteBatch,
    validate_keyspace_name, validate_side_record_name,
};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

/// Keys and values are shared slices: a commit copies the map nodes on its path, and with
/// `Arc` that copies pointers, not every neighbouring key and value.
type Keyspace = im::OrdMap<Arc<[u8]>, Arc<[u8]>>;
type State = BTreeMap<String, Keyspace>;

/// A storage backend that keeps everything in memory.
#[derive(Default)]
pub struct MemoryBackend {
    state: RwLock<Arc<State>>,
    // Serializes commits and keyspace creation against each other; holds the bytes of keys
    // and values stored, which only commits change.
    write: Mutex<u64>,
    limit_bytes: Option<u64>,
    /// Side records ([`StorageBackend::put_side_record`]): outside the size limit, which
    /// must not stop the record a failed commit leaves.
    side: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("keyspaces", &self.state.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty backend that holds at most `limit_bytes` of keys and values: a commit that
    /// would grow it beyond fails with [`StorageError::Full`] and changes nothing.
    pub fn with_limit(limit_bytes: u64) -> Self {
        Self {
            limit_bytes: Some(limit_bytes),
            ..Self::default()
        }
    }

    /// Bytes of keys and values stored now.
    pub fn used_bytes(&self) -> u64 {
        *self.write.lock()
    }
}

fn entry_bytes(key: &[u8], value: &[u8]) -> u64 {
    // Lengths are bounded by MAX_KEY_LEN / MAX_VALUE_LEN, far below u64::MAX.
    (key.len() + value.len()) as u64
}

struct MemorySnapshot {
    state: Arc<State>,
}

impl MemorySnapshot {
    fn keyspace(&self, name: &str) -> Result<&Keyspace, StorageError> {
        self.state
            .get(name)
            .ok_or_else(|| StorageError::UnknownKeyspace {
                name: name.to_owned(),
            })
    }
}

fn is_empty_range(lower: &Bound<&[u8]>, upper: &Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u))
        | (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
        _ => false,
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.keyspace(keyspace)?.get(key).map(|v| v.to_vec()))
    }

    fn range<'a>(
        &'a self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Result<KvIter<'a>, StorageError> {
        let map = self.keyspace(keyspace)?;
        // `OrdMap::range` panics on inverted bounds; an inverted range is simply empty.
        if is_empty_range(&lower, &upper) {
            return Ok(Box::new(std::iter::empty()));
        }
        let iter = map
            .range::<_, [u8]>((lower, upper))
            .map(|(k, v)| Ok((k.to_vec(), v.to_vec())));
        Ok(match direction {
            Direction::Forward => Box::new(iter),
            Direction::Reverse => Box::new(iter.rev()),
        })
    }
}

impl StorageBackend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> Option<PathBuf> {
        None
    }

    fn limits(&self) -> Vec<(&'static str, u64)> {
        self.limit_bytes
            .map(|limit| ("limit_bytes", limit))
            .into_iter()
            .collect()
    }

    fn ensure_keyspace(&self, name: &str) -> Result<(), StorageError> {
        validate_keyspace_name(name)?;
        let _write = self.write.lock();
        if self.state.read().contains_key(name) {
            return Ok(());
        }
        let mut next = State::clone(&self.state.read());
        next.insert(name.to_owned(), Keyspace::new());
        *self.state.write() = Arc::new(next);
        Ok(())
    }

    fn keyspaces(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.state.read().keys().cloned().collect())
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StorageError> {
        Ok(Box::new(MemorySnapshot {
            state: Arc::clone(&self.state.read()),
        }))
    }

    fn commit(&self, batch: &WriteBatch, _durability: Durability) -> Result<(), StorageError> {
        batch.validate()?;
        let mut used = self.write.lock();
        let ops = batch.ops();
        let Some(limit) = self.limit_bytes else {
            // Without a size limit the only way a batch can fail is an unknown keyspace,
            // checked before anything changes; then the state is changed in place. Maps no
            // snapshot shares are updated without copying their nodes, which building the
            // next state aside always did.
            let mut state = self.state.write();
            if let Some(name) = ops
                .iter()
                .map(op_keyspace)
                .find(|k| !state.contains_key(*k))
            {
                return Err(StorageError::UnknownKeyspace {
                    name: name.to_owned(),
                });
            }
            *used = apply(Arc::make_mut(&mut state), ops, *used)?;
            return Ok(());
        };
        let mut next = State::clone(&self.state.read());
        let next_used = apply(&mut next, ops, *used)?;
        if next_used > limit && next_used > *used {
            return Err(StorageError::Full {
                limit_bytes: limit,
                needed_bytes: next_used,
            });
        }
        *used = next_used;
        *self.state.write() = Arc::new(next);
        Ok(())
    }

    fn persist(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn side_record(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_side_record_name(name)?;
        Ok(self.side.lock().get(name).cloned())
    }

    fn put_side_record(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        validate_side_record_name(name)?;
        self.side.lock().insert(name.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn remove_side_record(&self, name: &str) -> Result<(), StorageError> {
        validate_side_record_name(name)?;
        self.side.lock().remove(name);
        Ok(())
    }
}

fn op_keyspace(op: &BatchOp) -> &str {
    match op {
        BatchOp::Put { keyspace, .. } | BatchOp::Delete { keyspace, .. } => keyspace,
    }
}

/// Applies `ops` to `state`; returns the bytes stored after them, from `used` before.
fn apply(state: &mut State, ops: &[BatchOp], mut used: u64) -> Result<u64, StorageError> {
    for op in ops {
        let (name, key, value) = match op {
            BatchOp::Put {
                keyspace,
                key,
                value,
            } => (keyspace, key, Some(value)),
            BatchOp::Delete { keyspace, key } => (keyspace, key, None),
        };
        let map = state
            .get_mut(name.as_str())
            .ok_or_else(|| StorageError::UnknownKeyspace { name: name.clone() })?;
        let added = value.map_or(0, |v| entry_bytes(key, v));
        let removed = match value {
            Some(value) => map.insert(Arc::from(key.as_slice()), Arc::from(value.as_slice())),
            None => map.remove(key.as_slice()),
        }
        .map_or(0, |old| entry_bytes(key, &old));
        used = used.saturating_add(added).saturating_sub(removed);
    }
    Ok(used)
}
