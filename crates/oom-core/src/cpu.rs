//! CPU state that outlives a call on the worker threads, and cache hints.
//!
//! After AVX2 code (the Gram kernels, faer's decompositions) a worker could
//! keep the upper halves of its vector registers dirty; every switch
//! between baseline SSE code (the plan's ops) and libm's AVX functions
//! (`log1p`, `exp`) then paid a state-transition penalty. Measured: after
//! `pca` in the same process, each pass over a `log1p` plan took 6× the
//! CPU (100k cells: a moments pass 1.8 s → 11 s; 1M markers 51 → 141 s).

/// Mark the upper vector state of this thread clean (one `vzeroupper`).
pub fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        #[target_feature(enable = "avx")]
        unsafe fn zeroupper() {
            std::arch::x86_64::_mm256_zeroupper();
        }
        // SAFETY: the CPU supports AVX (checked above).
        unsafe { zeroupper() }
    }
}

/// [`clear_upper_vector_state`] on the calling thread and every rayon worker.
pub fn clear_upper_vector_state_everywhere() {
    clear_upper_vector_state();
    rayon::broadcast(|_| clear_upper_vector_state());
}

/// Ask for the cache line at `p` ahead of its use (a no-op off x86-64; any
/// address is fine, a prefetch never faults). The per-column passes use it
/// for the column of a stored value a few entries ahead: their state (sums
/// and counts of ~20k genes) is larger than a core's L2 cache, and a value
/// otherwise waits for its column's line.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint to the cache; it reads nothing and never faults.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
