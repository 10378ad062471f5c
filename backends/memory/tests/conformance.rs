//! The backend suite (`heliosdb_engine::backend_suite!`) on the memory backend: storage
//! conformance, GlueSQL's acceptance suite, the audit and fail-closed contracts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_backend_memory::MemoryBackend;

heliosdb_engine::backend_suite!(
    memory,
    |_dir| std::sync::Arc::new(MemoryBackend::new()),
    persistent = false
);
