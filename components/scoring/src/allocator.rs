//! The component's allocator: talc. On `wasm32-unknown-unknown` std allocates with Rust's port of
//! dlmalloc, which grew the linear memory by 20-25% more than wasi-libc's malloc did for the same
//! windows (198 instead of 159 bytes per one-event user, 44.3 instead of 36.3 per event at 150 a
//! user: `tests/tests/capacity.rs`); talc grew it by 163 and 36.5, at the same scoring speed
//! (README, "Numbers").

// SAFETY: talc requires single-threaded wasm, and a component instance runs on one thread. It
// claims the pages it adds with `memory.grow`, as much as an allocation needs.
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };
