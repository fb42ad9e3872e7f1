//! Where the Spin app keeps things in a key-value store, within what every store accepts.
//!
//! - A user's window is at `user/<id>`. Spin's Redis store takes keys of at most
//!   [`MAX_KEY_BYTES`] bytes and an id may have 256: an id too long for that is kept at
//!   `userh/<sha-256 of the id, hex>` instead, and its value starts with the id itself
//!   ([`UserKey::wrap`]), so that a reader can tell whose window it holds.
//! - A counter is written by `increment` only, and stores encode it their own way: Spin's SQLite
//!   store as 8 bytes little-endian, Redis (`INCRBY`) as decimal text. [`decode_counter`] reads
//!   both.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The longest key Spin's Redis store accepts.
pub const MAX_KEY_BYTES: usize = 256;
const PLAIN: &str = "user/";
const HASHED: &str = "userh/";

/// The key of a user's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    key: String,
    hashed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayoutError {
    #[error("{key}: the value is too short to hold its owner's id")]
    NoOwner { key: String },
    #[error("{key}: holds the window of another user id (a hash collision)")]
    OtherOwner { key: String },
}

impl UserKey {
    pub fn of(user_id: &str) -> UserKey {
        if PLAIN.len() + user_id.len() <= MAX_KEY_BYTES {
            return UserKey {
                key: format!("{PLAIN}{user_id}"),
                hashed: false,
            };
        }
        let digest = Sha256::digest(user_id.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        UserKey {
            key: format!("{HASHED}{hex}"),
            hashed: true,
        }
    }

    /// A key as a store lists it, if it is a user's window.
    pub fn parse(key: &str) -> Option<UserKey> {
        let hashed = key.starts_with(HASHED);
        (hashed || key.starts_with(PLAIN)).then(|| UserKey {
            key: key.to_string(),
            hashed,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The value to store for `user_id`'s encoded window: the window itself, or, under a hashed
    /// key, the id (length as u16 little-endian, then its bytes) followed by the window. An empty
    /// window stays an empty value (how an emptied window is swapped out).
    pub fn wrap(&self, user_id: &str, window: Vec<u8>) -> Vec<u8> {
        if !self.hashed || window.is_empty() {
            return window;
        }
        let mut value = Vec::with_capacity(2 + user_id.len() + window.len());
        value.extend_from_slice(&(user_id.len() as u16).to_le_bytes());
        value.extend_from_slice(user_id.as_bytes());
        value.extend_from_slice(&window);
        value
    }

    /// The encoded window in a stored `value`; `user_id`, when given, must be its owner.
    pub fn unwrap<'v>(
        &self,
        user_id: Option<&str>,
        value: &'v [u8],
    ) -> Result<&'v [u8], LayoutError> {
        if !self.hashed || value.is_empty() {
            return Ok(value);
        }
        let no_owner = || LayoutError::NoOwner {
            key: self.key.clone(),
        };
        let (length, rest) = value.split_first_chunk::<2>().ok_or_else(no_owner)?;
        let length = usize::from(u16::from_le_bytes(*length));
        if rest.len() < length {
            return Err(no_owner());
        }
        let (owner, window) = rest.split_at(length);
        match user_id {
            Some(id) if id.as_bytes() != owner => Err(LayoutError::OtherOwner {
                key: self.key.clone(),
            }),
            _ => Ok(window),
        }
    }
}

/// A counter as either store encodes it: decimal text (Redis `INCRBY`) or 8 bytes
/// little-endian (Spin's SQLite store). Text is tried first: 8 bytes that are all digits would
/// be a binary count above 3.4 × 10¹⁸, which no counter reaches.
pub fn decode_counter(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok().filter(|t| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    match text {
        Some(t) => t.parse().ok(),
        None => Some(i64::from_le_bytes(value.try_into().ok()?)),
    }
}

/// The key of the claim to create `key`: `claim/<sha-256 of the key, hex>` (within the key limit
/// whatever the key). A counter: the request whose `increment` makes it 1 creates the key, and
/// deletes the claim once it has.
pub fn claim_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("claim/{hex}")
}

/// The first `limit` of `keys` after `cursor` (a key), in sorted order, and the last of them if
/// more follow: how the app pages through a `list-keys` answer that holds every key at once
/// (Spin's stores list them all and take no cursor).
pub fn page_after(
    mut keys: Vec<String>,
    cursor: Option<&str>,
    limit: usize,
) -> (Vec<String>, Option<String>) {
    keys.retain(|k| cursor.is_none_or(|c| k.as_str() > c));
    keys.sort_unstable();
    let more = keys.len() > limit;
    keys.truncate(limit);
    let next = more.then(|| keys.last().cloned()).flatten();
    (keys, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn claims_are_keys_of_their_own_within_the_limit() {
        let long = UserKey::of(&"u".repeat(300));
        for key in ["watermark", "user/a", long.as_str()] {
            let claim = claim_key(key);
            assert!(claim.starts_with("claim/") && claim.len() <= MAX_KEY_BYTES);
            assert!(UserKey::parse(&claim).is_none(), "not a window's key");
        }
        assert_ne!(claim_key("user/a"), claim_key("user/b"));
    }

    fn listed(n: usize) -> Vec<String> {
        // In no particular order, as list-keys promises.
        (0..n)
            .map(|i| format!("user/{:05}", (i * 7919) % n))
            .collect()
    }

    #[test]
    fn paging_a_whole_listing_visits_every_key_once_in_order() {
        let all = listed(2_510);
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let (page, next) = page_after(all.clone(), cursor.as_deref(), 1000);
            assert!(page.len() <= 1000, "{}", page.len());
            seen.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut expected = all;
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_listing_within_the_limit_is_one_page_with_no_cursor() {
        let (page, next) = page_after(listed(3), None, 1000);
        assert_eq!((page.len(), next), (3, None));
        let (page, next) = page_after(listed(3), Some("user/00000"), 1000);
        assert_eq!(page, ["user/00001", "user/00002"]);
        assert_eq!(next, None);
    }

    #[test]
    fn short_ids_keep_their_key_and_long_ones_are_hashed_within_the_limit() {
        let short = "u".repeat(MAX_KEY_BYTES - PLAIN.len());
        assert_eq!(UserKey::of(&short).as_str(), format!("user/{short}"));
        let long = "u".repeat(256);
        let key = UserKey::of(&long);
        assert!(key.as_str().starts_with("userh/"));
        assert_eq!(key.as_str().len(), HASHED.len() + 64);
        assert_ne!(UserKey::of(&format!("{long}x")), key);
        assert_eq!(UserKey::parse(key.as_str()), Some(key));
        assert_eq!(UserKey::parse("count/users"), None);
    }

    #[test]
    fn a_hashed_value_names_its_owner() {
        let id = "é".repeat(128);
        let key = UserKey::of(&id);
        let value = key.wrap(&id, vec![1, 2, 3]);
        assert_eq!(key.unwrap(Some(&id), &value), Ok(&[1u8, 2, 3][..]));
        assert_eq!(key.unwrap(None, &value), Ok(&[1u8, 2, 3][..]));
        assert!(matches!(
            key.unwrap(Some("someone else"), &value),
            Err(LayoutError::OtherOwner { .. })
        ));
        assert!(matches!(
            key.unwrap(None, &value[..3]),
            Err(LayoutError::NoOwner { .. })
        ));
        // An emptied window is an empty value under any key.
        assert!(key.wrap(&id, Vec::new()).is_empty());
        let plain = UserKey::of("user-7");
        assert_eq!(plain.wrap("user-7", vec![9]), vec![9]);
    }

    #[test]
    fn counters_read_in_either_store_encoding() {
        assert_eq!(decode_counter(b"12345678"), Some(12_345_678));
        assert_eq!(decode_counter(b"-3"), Some(-3));
        assert_eq!(decode_counter(&42i64.to_le_bytes()), Some(42));
        assert_eq!(decode_counter(&(-1i64).to_le_bytes()), Some(-1));
        assert_eq!(decode_counter(b""), None);
        assert_eq!(decode_counter(b"abc"), None);
    }

    proptest! {
        #[test]
        fn any_counter_below_the_bound_decodes_from_both_encodings(n in -(1i64 << 61)..(1i64 << 61)) {
            prop_assert_eq!(decode_counter(n.to_string().as_bytes()), Some(n));
            prop_assert_eq!(decode_counter(&n.to_le_bytes()), Some(n));
        }
    }
}
