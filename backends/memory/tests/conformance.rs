//! The shared backend conformance checks, on the memory backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_backend_memory::MemoryBackend;

heliosdb_engine::backend_conformance_tests!(Box::new(MemoryBackend::new()));
