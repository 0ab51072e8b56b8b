//! The native allocator's one setting: freed memory that mimalloc hands back to the kernel is
//! *reset* (`madvise(MADV_FREE)`: the kernel may take the pages when it needs them, otherwise
//! they stay mapped with their contents) instead of *decommitted* (`MADV_DONTNEED`: gone at once,
//! so the next tensor there page-faults and the kernel zeroes every page again).
//!
//! Why: the models free and allocate tensors of tens to hundreds of MB every layer. With
//! mimalloc's defaults the kernel's page zeroing was 15.5 % of a SAM 2 run (`perf record` of
//! `medfocus bench --sam2`). Measured, one release binary with and without
//! `MIMALLOC_PURGE_DECOMMITS=0`, alternating two rounds (`scripts/bench/ab.py`, AMD EPYC with
//! AVX-512, 2 cores, 2026-12-06): SAM 2's `set_image` 4.23–4.41 → 3.25–3.49 s, the automatic
//! 8×8 grid 15.8 → 12.2–12.7 s, CLIP's towers unchanged; never purging at all
//! (`MIMALLOC_PURGE_DELAY=-1`) did no better for SAM 2 (3.36–3.45 s, 14.6–14.8 s) and keeps
//! the memory from other processes. The price: tools like `top` count reset pages in the
//! resident size until the kernel takes them back.
//!
//! The program (`src/main.rs`) and the benches set it; the library's tests run on the system
//! allocator and do not need it.

use std::os::raw::{c_int, c_long};

/// `mi_option_purge_decommits`: its place in `mi_option_e` (mimalloc.h, v2 and v3 alike), which
/// `libmimalloc-sys` does not name. `tests::the_option_index_is_purge_decommits` checks it.
const PURGE_DECOMMITS: c_int = 5;

/// Reset freed pages instead of decommitting them (see the module's comment). Call it first
/// thing in `main`; an explicit `MIMALLOC_PURGE_DECOMMITS` in the environment wins.
pub fn reset_freed_pages_instead_of_decommitting() {
    if std::env::var_os("MIMALLOC_PURGE_DECOMMITS").is_some() {
        return;
    }
    // SAFETY: plain option setter of the linked mimalloc; valid index (checked by the test).
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DECOMMITS, 0 as c_long) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test process reruns itself with `MIMALLOC_PURGE_DECOMMITS` set: mimalloc reads that
    /// variable into the option `PURGE_DECOMMITS` names only if the index is right.
    #[test]
    fn the_option_index_is_purge_decommits() {
        const CHILD: &str = "MEDFOCUS_ALLOCATOR_TEST_CHILD";
        // SAFETY: reading an option of the linked mimalloc.
        let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DECOMMITS) };
        if let Some(expected) = std::env::var_os(CHILD) {
            assert_eq!(value.to_string(), expected.to_string_lossy());
            return;
        }
        assert_eq!(value, 1, "mimalloc's default decommits");
        for setting in ["0", "7"] {
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "allocator::tests::the_option_index_is_purge_decommits",
                ])
                .env(CHILD, setting)
                .env("MIMALLOC_PURGE_DECOMMITS", setting)
                .output()
                .unwrap();
            assert!(
                child.status.success(),
                "with MIMALLOC_PURGE_DECOMMITS={setting}: {}",
                String::from_utf8_lossy(&child.stdout)
            );
        }
        reset_freed_pages_instead_of_decommitting();
        // SAFETY: as above.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(PURGE_DECOMMITS) },
            0
        );
    }
}
