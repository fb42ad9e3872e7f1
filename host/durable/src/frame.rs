//! A record on disk: its payload's length (u32, little-endian), the CRC-32 (IEEE) of the payload
//! (u32, little-endian), then the payload.
//!
//! A log's records are never empty, so in a log eight zero bytes where a header should be are
//! not a record: they begin the zeroed space a log sets aside for the records to come
//! ([`read_log`]).

/// Bytes before each payload.
pub const HEADER_BYTES: usize = 8;

/// Appends one framed record to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&header(payload));
    out.extend_from_slice(payload);
}

/// The bytes that go before `payload` (for writing a large payload without copying it).
pub fn header(payload: &[u8]) -> [u8; HEADER_BYTES] {
    let len = u32::try_from(payload.len()).expect("a record under 4 GiB");
    let mut header = [0; HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
}

/// The records of a log, read up to the first one that is not whole.
#[derive(Debug, PartialEq)]
pub struct Read<'a> {
    pub records: Vec<&'a [u8]>,
    /// Where the whole records end: the length to keep.
    pub valid_len: usize,
    /// What follows them, when something does.
    pub tail: Tail,
}

/// What follows the last whole record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the log ends with a whole record.
    Clean,
    /// A record cut short: its header or payload runs past the end (a write a crash interrupted).
    Torn,
    /// A record whose checksum does not match its payload.
    Corrupt,
    /// Only zero bytes: space a log set aside for the records to come.
    Zeros,
}

/// Reads framed records from `bytes` until the end or the first record that is not whole.
pub fn read(bytes: &[u8]) -> Read<'_> {
    read_framed(bytes, false)
}

/// [`read`] for a log, whose records are never empty: a zero header ends the records, as
/// [`Tail::Zeros`] when only zeros follow and [`Tail::Corrupt`] when anything else does (a
/// record written past one that never reached the disk).
pub fn read_log(bytes: &[u8]) -> Read<'_> {
    read_framed(bytes, true)
}

fn read_framed(bytes: &[u8], zero_header_ends: bool) -> Read<'_> {
    let mut records = Vec::new();
    let mut at = 0;
    let tail = loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            break Tail::Clean;
        }
        if zero_header_ends && rest.iter().take(HEADER_BYTES).all(|b| *b == 0) {
            break if rest.iter().all(|b| *b == 0) {
                Tail::Zeros
            } else {
                Tail::Corrupt
            };
        }
        let Some((header, body)) = rest.split_first_chunk::<HEADER_BYTES>() else {
            break Tail::Torn;
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = body.get(..len) else {
            break Tail::Torn;
        };
        if crc32fast::hash(payload) != crc {
            break Tail::Corrupt;
        }
        records.push(payload);
        at += HEADER_BYTES + len;
    };
    Read {
        records,
        valid_len: at,
        tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    #[test]
    fn reads_what_it_wrote() {
        let bytes = framed(&[b"one", b"", b"three"]);
        let read = read(&bytes);
        assert_eq!(read.records, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(read.valid_len, bytes.len());
        assert_eq!(read.tail, Tail::Clean);
    }

    #[test]
    fn a_flipped_bit_ends_the_log_as_corrupt() {
        let mut bytes = framed(&[b"one", b"two", b"three"]);
        let second_payload = HEADER_BYTES + 3 + HEADER_BYTES;
        bytes[second_payload] ^= 1;
        let read = read(&bytes);
        assert_eq!(read.records, vec![&b"one"[..]]);
        assert_eq!(read.valid_len, HEADER_BYTES + 3);
        assert_eq!(read.tail, Tail::Corrupt);
    }

    #[test]
    fn in_a_log_zeros_end_the_records_and_what_follows_zeros_is_corrupt() {
        let mut bytes = framed(&[b"one", b"two"]);
        let whole = bytes.len();
        bytes.resize(whole + 100, 0);
        let found = read_log(&bytes);
        assert_eq!(found.records, vec![&b"one"[..], b"two"]);
        assert_eq!((found.valid_len, found.tail), (whole, Tail::Zeros));
        // A record that reached the disk after a gap that did not: not read, and said.
        let mut after_gap = bytes.clone();
        encode(b"three", &mut after_gap);
        let found = read_log(&after_gap);
        assert_eq!(found.records.len(), 2);
        assert_eq!((found.valid_len, found.tail), (whole, Tail::Corrupt));
        // Fewer zeros than a header are zeros too; a plain read takes them for a torn record.
        bytes.truncate(whole + 3);
        assert_eq!(read_log(&bytes).tail, Tail::Zeros);
        assert_eq!(read(&bytes).tail, Tail::Torn);
    }

    proptest! {
        /// A log cut anywhere reads as the records wholly before the cut, and the rest as torn.
        #[test]
        fn a_cut_anywhere_keeps_the_whole_records_before_it(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let bytes = framed(&refs);
            let cut = cut.index(bytes.len() + 1);
            let read = read(&bytes[..cut]);
            // The records that end at or before the cut, counted independently of `read`.
            let mut end = 0;
            let whole = refs
                .iter()
                .take_while(|p| {
                    end += HEADER_BYTES + p.len();
                    end <= cut
                })
                .count();
            prop_assert_eq!(&read.records[..], &refs[..whole]);
            let kept: usize = refs[..whole].iter().map(|p| HEADER_BYTES + p.len()).sum();
            prop_assert_eq!(read.valid_len, kept);
            let expected = if kept == cut { Tail::Clean } else { Tail::Torn };
            prop_assert_eq!(read.tail, expected);
        }
    }
}
