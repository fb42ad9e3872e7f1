//! getrandom's custom backend (`--cfg getrandom_backend="custom"`, `.cargo/config.toml`): the
//! component is built for `wasm32-unknown-unknown`, where std has no source of randomness, and
//! draws its random bytes from the host through `wasi:random/random`, the one interface it
//! imports. getrandom 0.3 (the engine's hash keys) and 0.4 (tract's random operators) both call
//! this one symbol.

use crate::wasi::random::random::get_random_bytes;

/// # Safety
/// getrandom calls it with `dest` valid for writes of `len` bytes.
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    let bytes = get_random_bytes(len as u64);
    if bytes.len() != len {
        return Err(getrandom::Error::UNEXPECTED);
    }
    // SAFETY: the caller hands over `len` writable bytes at `dest`, which `bytes` cannot alias.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dest, len) };
    Ok(())
}
