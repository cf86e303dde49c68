//! The global allocator of the harness: mimalloc for every system, wrapped in a
//! counter of live heap bytes.
//!
//! The counter is one process-wide relaxed atomic add per allocator call, the same for
//! every system. It is process-wide, not per thread, because vuer-rtc merges columns
//! on rayon worker threads: a per-thread counter would miss what they allocate for the
//! document. [`live_bytes`] is therefore exact only while nothing else runs: the
//! harness reads it between phases, with no progress-bar ticker thread allocating.
//!
//! Invariant: `live_bytes() == Σ size of the live blocks` handed out since start.

// `unsafe impl GlobalAlloc` is the only unsafe code of the harness.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

use mimalloc::MiMalloc;

static LIVE: AtomicIsize = AtomicIsize::new(0);

fn count(delta: isize) {
    LIVE.fetch_add(delta, Ordering::Relaxed);
}

/// Bytes currently allocated through the global allocator (all threads).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// mimalloc plus a process-wide count of live heap bytes.
pub struct Counting;

// SAFETY: every method forwards to mimalloc with the caller's arguments unchanged and
// only updates a counter besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract of `GlobalAlloc::alloc`.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract of `GlobalAlloc::alloc_zeroed`.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of `GlobalAlloc::dealloc`.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract of `GlobalAlloc::realloc`.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}
