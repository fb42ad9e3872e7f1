//! The component's allocator: talc. On `wasm32-unknown-unknown` std allocates with Rust's port of
//! dlmalloc, which grew the linear memory by 20-25% more than wasi-libc's malloc did for the same
//! windows (198 instead of 159 bytes per one-event user, 44.3 instead of 36.3 per event at 150 a
//! user: `tests/tests/capacity.rs`); talc grew it by 163 and 36.5, at the same scoring speed
//! (docs/building.md, "The component's size").
//!
//! While `preload` runs, freed memory is zeroed: the pre-initialized component carries the
//! linear memory as it is then, and freed bytes (the registry's copies of the models, tract's
//! parse of the ONNX file) would otherwise ship in it as data that does not compress.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

struct Allocator {
    talc: talc::TalckWasm,
    zero_freed: AtomicBool,
}

// SAFETY: talc requires single-threaded wasm, and a component instance runs on one thread. It
// claims the pages it adds with `memory.grow`, as much as an allocation needs.
#[global_allocator]
static ALLOCATOR: Allocator = Allocator {
    talc: unsafe { talc::TalckWasm::new_global() },
    zero_freed: AtomicBool::new(false),
};

/// Runs `f` with freed memory zeroed (see the module's comment).
pub fn zeroing_freed_memory<T>(f: impl FnOnce() -> T) -> T {
    ALLOCATOR.zero_freed.store(true, Ordering::Relaxed);
    let result = f();
    ALLOCATOR.zero_freed.store(false, Ordering::Relaxed);
    result
}

// SAFETY: every call goes to talc with the caller's arguments; zeroing writes only within the
// block being freed, which the caller owns until `dealloc` returns.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { self.talc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { self.talc.alloc_zeroed(layout) }
    }

    // Not inlined: in each of the thousands of places that free, the check and the zeroing made
    // the code 2.5% larger.
    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.zero_freed.load(Ordering::Relaxed) {
            unsafe { ptr.write_bytes(0, layout.size()) };
        }
        unsafe { self.talc.dealloc(ptr, layout) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.zero_freed.load(Ordering::Relaxed) {
            return unsafe { self.talc.realloc(ptr, layout, new_size) };
        }
        // talc's own realloc would free the old block (or a shrunk tail) without zeroing it.
        // SAFETY: `GlobalAlloc::realloc`'s contract makes this a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
