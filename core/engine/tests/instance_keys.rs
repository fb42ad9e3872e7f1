//! The instance's hash keys are drawn at the first hash, not before (a test binary of its own:
//! nothing else in this process hashes first).

use std::collections::HashMap;
use std::hash::BuildHasher;

use edgescore_engine::hashing::{InstanceKeys, keys_drawn};

#[test]
fn the_keys_are_drawn_at_the_first_hash_and_are_random() {
    assert!(!keys_drawn());
    let mut users = HashMap::with_hasher(InstanceKeys);
    users.insert("user-7", 1);
    assert!(keys_drawn());
    // Not the all-zero key (what a draw into a buffer left as it was would give).
    let zero = std::hash::BuildHasherDefault::<siphasher::sip::SipHasher13>::default();
    assert_ne!(InstanceKeys.hash_one("user-7"), zero.hash_one("user-7"));
    assert_eq!(
        InstanceKeys.hash_one("user-7"),
        InstanceKeys.hash_one("user-7")
    );
}
