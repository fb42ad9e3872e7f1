//! Hash keys for the maps the engine keys by what clients send: user ids, and scores (which
//! clients steer through their features).
//!
//! std's `RandomState` draws a thread's keys once and counts up from them. A pre-initialized
//! component (`edgescore-preinit`, wasmtime wizer) has drawn them already when it is snapshotted,
//! so every instance of the file would hash with the same keys, readable by anyone who has the
//! file: colliding keys could be computed offline (hash flooding). These maps hash with keys
//! drawn for the instance from the host's random source the first time one of them hashes —
//! after pre-initialization, which builds no such map (`preload` checks [`keys_drawn`]).

use std::hash::BuildHasher;
use std::sync::OnceLock;

use siphasher::sip::SipHasher13;

static KEYS: OnceLock<(u64, u64)> = OnceLock::new();

/// A [`BuildHasher`] of SipHash-1-3 (std's hash) under this instance's keys. Zero-sized: a map
/// per user costs no more than with std's.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceKeys;

impl BuildHasher for InstanceKeys {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        let (k0, k1) = *KEYS.get_or_init(draw);
        SipHasher13::new_with_keys(k0, k1)
    }
}

/// Whether this instance's keys are drawn (a pre-initialization must end before they are).
pub fn keys_drawn() -> bool {
    KEYS.get().is_some()
}

fn draw() -> (u64, u64) {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the host provides random bytes");
    let (k0, k1) = bytes.split_at(8);
    (
        u64::from_le_bytes(k0.try_into().expect("8 bytes")),
        u64::from_le_bytes(k1.try_into().expect("8 bytes")),
    )
}
