//! CPU state that outlives a call on the worker threads.
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
