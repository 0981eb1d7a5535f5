//! The leaf every layer builds on: errors, memory and cache helpers, dates,
//! progress, the integer-coded transactions and the per-customer aggregates
//! that reading produces and every analysis consumes.

pub mod aggregate;
pub mod dates;
pub mod named;
pub mod progress;
pub mod settings;
pub mod summary;
pub mod text;
pub mod transactions;

use std::fmt;

/// A mistake in how churn was invoked (exit code 2), as opposed to a problem
/// with the data or the system (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns memory freed by a finished stage to the OS now, so that peak
/// memory is the largest stage rather than the sum of stages (the allocator
/// otherwise keeps freed pages for a while to make reuse cheap).
pub fn release_freed_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it is a no-op for
    // memory from other allocators.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Asks the CPU to bring `v[i]` into cache; a no-op off x86-64 or out of bounds.
#[inline(always)]
pub fn prefetch<T>(v: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = v.get(i) {
        // SAFETY: a prefetch is only a hint; the address is valid anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (x as *const T).cast(),
            )
        };
    }
}

/// The process exit code for an error: 2 for usage errors, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        2
    } else {
        1
    }
}

/// True when the error is a closed stdout (e.g. `churn rfm ... | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<csv::Error>().is_some_and(|c| {
                matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}
