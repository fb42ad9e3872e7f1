//! Hash keys drawn afresh for each map of user ids.
//!
//! std's `RandomState` draws a thread's keys once and counts up from them. A pre-initialized
//! component (`edgescore-preinit`, wasmtime wizer) has drawn them already when it is snapshotted,
//! so every instance of the file would hash user ids with the same keys, readable by anyone who
//! has the file: colliding ids could be computed offline (hash flooding). Each map of ids asks
//! the host's random source for its own keys when it is created instead (the windows' index, a
//! batch's new users); maps of other client-steered values are ordered maps, never hashed.

use std::hash::BuildHasher;

use siphasher::sip::SipHasher13;

/// A [`BuildHasher`] of SipHash-1-3 (std's hash) under keys of its own.
#[derive(Debug, Clone)]
pub struct FreshKeys {
    keys: (u64, u64),
}

impl FreshKeys {
    /// Keys from the operating system's (or, in a component, the host's) random source.
    pub fn new() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the host provides random bytes");
        let (k0, k1) = bytes.split_at(8);
        FreshKeys {
            keys: (
                u64::from_le_bytes(k0.try_into().expect("8 bytes")),
                u64::from_le_bytes(k1.try_into().expect("8 bytes")),
            ),
        }
    }
}

impl Default for FreshKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for FreshKeys {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.keys.0, self.keys.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_maps_hash_one_id_differently() {
        let (a, b) = (FreshKeys::new(), FreshKeys::new());
        let id = "user-7";
        // Equal by chance once in 2^64.
        assert_ne!(a.hash_one(id), b.hash_one(id));
        assert_eq!(a.hash_one(id), a.clone().hash_one(id));
    }
}
