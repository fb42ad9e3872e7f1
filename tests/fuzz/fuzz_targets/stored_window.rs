//! Stored windows as a key-value store hands them back (possibly corrupt): decoding never
//! panics, and a window that decodes behaves as a window: it re-encodes to the same bytes, its
//! median is one of its scores (or the mean of two), and expiry drops exactly the events at or
//! before the cutoff.
#![no_main]

use edgescore_contract::stored_window::StoredWindow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (f64, &[u8])| {
    let (cutoff, bytes) = input;
    let Ok(mut window) = StoredWindow::decode(bytes) else {
        return;
    };
    if !bytes.is_empty() {
        assert_eq!(window.encode(), bytes, "re-encodes to what it decoded");
    }
    if let Some(m) = window.median() {
        assert!(m.is_finite(), "median {m} of a decoded window");
    }
    let before = window.len();
    let events: Vec<(f64, f32)> = decode_events(&window.encode());
    let expected = events.iter().filter(|(t, _)| !(*t <= cutoff)).count();
    let dropped = window.expire(cutoff);
    assert_eq!(dropped + window.len(), before);
    assert_eq!(
        window.len(),
        expected,
        "expiry at {cutoff} keeps what is after it"
    );
});

/// The events as written, independently of the decoder.
fn decode_events(bytes: &[u8]) -> Vec<(f64, f32)> {
    bytes[1..]
        .chunks_exact(12)
        .map(|e| {
            let t = f64::from_le_bytes(e[..8].try_into().unwrap());
            let s = f32::from_le_bytes(e[8..].try_into().unwrap());
            (t, s)
        })
        .collect()
}
