//! The binary's global allocator: mimalloc, with an optional process-wide count of live
//! heap bytes for `vuer-rtc bench`'s report of the replica's own memory.
//!
//! Counting is off unless [`start_counting`] turned it on: every other command (the
//! server above all) pays one relaxed load per allocator call, not a shared atomic add.
//!
//! Invariant: after [`start_counting`], `live_bytes()` rises and falls by the size of
//! every block allocated and freed from then on (blocks older than the start that are
//! freed later count negative: read differences between two points, not levels).

#![allow(unsafe_code, reason = "a GlobalAlloc impl forwarding to mimalloc")]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use mimalloc::MiMalloc;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Turns the counting on (for the rest of the process).
pub fn start_counting() {
    ON.store(true, Ordering::Relaxed);
}

/// Bytes allocated minus bytes freed since [`start_counting`].
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[inline]
fn count(delta: isize) {
    if ON.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

#[expect(
    clippy::cast_possible_wrap,
    reason = "a block is smaller than isize::MAX bytes (Layout guarantees it)"
)]
fn size(layout: Layout) -> isize {
    layout.size() as isize
}

/// mimalloc plus the optional count (see the module doc).
pub struct Counting;

// SAFETY: every method forwards to mimalloc with the caller's arguments unchanged and
// only updates a counter besides. Every run of the binary goes through it (the CLI
// tests in `tests/cli.rs` run it, `bench` with the counting on).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps `GlobalAlloc::alloc`'s contract; forwarded as is.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            count(size(layout));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps `GlobalAlloc::alloc_zeroed`'s contract; forwarded.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count(size(layout));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller keeps `GlobalAlloc::dealloc`'s contract; forwarded.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        count(-size(layout));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller keeps `GlobalAlloc::realloc`'s contract; forwarded.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            #[expect(clippy::cast_possible_wrap, reason = "as in `size`")]
            count(new_size as isize - size(layout));
        }
        p
    }
}
