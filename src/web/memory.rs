//! The engine's memory as the page sees it: a wasm module's linear memory is capped at 4 GiB
//! and never shrinks, so the allocator counts what is live and the peak, for the page to show,
//! for the measured figures in the README, and to refuse a model that cannot fit before it is
//! read instead of aborting half-way.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::to_js;

/// A wasm32 module's linear memory can hold at most 65536 pages of 64 KiB.
pub const WASM_MEMORY_LIMIT: u64 = 1 << 32;

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

/// The system allocator (dlmalloc in wasm), counting. wasm is single-threaded here; the atomics
/// are plain loads and stores there.
struct CountingAllocator;

// SAFETY: every call is forwarded to `System` unchanged; only the counters are added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grow(layout.size() as u64);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grow(layout.size() as u64);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            grow(new_size as u64);
        }
        moved
    }
}

fn grow(bytes: u64) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Bytes allocated and not yet freed.
pub fn live_bytes() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

/// The module's linear memory now: it only grows.
pub fn reserved_bytes() -> u64 {
    core::arch::wasm32::memory_size(0) as u64 * 65536
}

/// Refuses `bytes` more when they cannot fit beside what is live, naming what for.
pub fn check_room(what: &str, bytes: u64) -> Result<(), JsError> {
    let live = live_bytes();
    if live.saturating_add(bytes) > WASM_MEMORY_LIMIT {
        return Err(JsError::new(&format!(
            "out of memory: {what} needs {:.0} MB, and the engine already holds {:.0} MB of the \
             {:.0} MB a page's WebAssembly memory can hold; forget or unload a model, or reload the page",
            bytes as f64 / 1e6,
            live as f64 / 1e6,
            WASM_MEMORY_LIMIT as f64 / 1e6
        )));
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EngineMemory {
    live: u64,
    peak: u64,
    reserved: u64,
    limit: u64,
}

/// `{live, peak, reserved, limit}` in bytes: allocated now, the most allocated at once since
/// the last `resetMemoryPeak`, the module's linear memory, and its cap.
#[wasm_bindgen(js_name = engineMemory)]
pub fn engine_memory() -> Result<JsValue, JsError> {
    to_js(&EngineMemory {
        live: live_bytes(),
        peak: PEAK.load(Ordering::Relaxed),
        reserved: reserved_bytes(),
        limit: WASM_MEMORY_LIMIT,
    })
}

/// Starts a new peak from what is live now (to measure one step).
#[wasm_bindgen(js_name = resetMemoryPeak)]
pub fn reset_memory_peak() {
    PEAK.store(live_bytes(), Ordering::Relaxed);
}
