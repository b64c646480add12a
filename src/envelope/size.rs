//! Exact size and range arithmetic of one stream. Pure, total, table- and
//! property-tested.
//!
//! A stream of `p` plaintext bytes is
//! `stream header (24) || n segments || trailer (32)`, with
//! `n = max(1, ceil(p / S))` segments: every segment but the last holds exactly
//! `S` plaintext bytes, the last holds 0 < len <= S bytes (or 0 when p = 0), and
//! each carries a 16-byte tag. Hence
//! `stream_len(p) = 24 + p + 16 * n + 32`.

use super::{SEGMENT_SIZE, STREAM_HEADER_LEN, TAG_LEN, TRAILER_LEN};

const S: u64 = SEGMENT_SIZE as u64;
const T: u64 = TAG_LEN as u64;
const FIXED: u64 = (STREAM_HEADER_LEN + TRAILER_LEN) as u64;

/// Number of segments in a stream of `p` plaintext bytes.
pub const fn segments(p: u64) -> u64 {
    if p == 0 {
        1
    } else {
        p.div_ceil(S)
    }
}

/// Ciphertext length of a stream of `p` plaintext bytes.
pub const fn stream_len(p: u64) -> u64 {
    FIXED + p + T * segments(p)
}

/// Plaintext length of a stream of `c` ciphertext bytes, or `None` when no
/// plaintext length produces exactly `c` bytes.
pub const fn plaintext_len(c: u64) -> Option<u64> {
    if c < FIXED + T {
        return None;
    }
    let body = c - FIXED;
    let q = body / (S + T);
    let r = body % (S + T);
    let p = if r == 0 {
        q * S
    } else if r < T || (r == T && q > 0) {
        return None;
    } else {
        q * S + (r - T)
    };
    if stream_len(p) == c {
        Some(p)
    } else {
        None
    }
}

/// Ciphertext offset (within the stream) of segment `i`.
pub const fn segment_offset(i: u64) -> u64 {
    STREAM_HEADER_LEN as u64 + i * (S + T)
}

/// Plaintext length of segment `i` in a stream of `p` bytes (`i < segments(p)`).
pub const fn segment_plaintext_len(p: u64, i: u64) -> u64 {
    let start = i * S;
    let rest = p - start;
    if rest < S {
        rest
    } else {
        S
    }
}

/// Offset of the trailer within a stream of `p` plaintext bytes.
pub const fn trailer_offset(p: u64) -> u64 {
    stream_len(p) - TRAILER_LEN as u64
}

/// The segments and ciphertext bytes that serve a plaintext range of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSpan {
    /// First segment index needed.
    pub first: u64,
    /// Last segment index needed (inclusive).
    pub last: u64,
    /// Ciphertext byte range within the stream, `[ct_start, ct_end)`.
    pub ct_start: u64,
    pub ct_end: u64,
    /// Plaintext bytes to drop from the start of the first segment.
    pub skip: u64,
    /// Plaintext bytes to deliver in all.
    pub take: u64,
}

/// Maps the plaintext range `[start, end]` (inclusive, `end < p`) of a stream of
/// `p` bytes to the segments that serve it. `None` when the range is empty or
/// out of bounds.
pub const fn span(p: u64, start: u64, end: u64) -> Option<SegmentSpan> {
    if start > end || end >= p {
        return None;
    }
    let first = start / S;
    let last = end / S;
    let ct_start = segment_offset(first);
    let ct_end = segment_offset(last) + segment_plaintext_len(p, last) + T;
    Some(SegmentSpan {
        first,
        last,
        ct_start,
        ct_end,
        skip: start - first * S,
        take: end - start + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases: &[(u64, u64)] = &[
            (0, 24 + 16 + 32),
            (1, 24 + 1 + 16 + 32),
            (S - 1, 24 + S - 1 + 16 + 32),
            (S, 24 + S + 16 + 32),
            (S + 1, 24 + S + 1 + 32 + 32),
            (3 * S, 24 + 3 * S + 48 + 32),
            (1 << 30, 24 + (1 << 30) + 16 * 16384 + 32),
        ];
        for &(p, c) in cases {
            assert_eq!(stream_len(p), c, "p={p}");
            assert_eq!(plaintext_len(c), Some(p), "c={c}");
        }
    }

    #[test]
    fn impossible_lengths() {
        for c in 0..(FIXED + T) {
            assert_eq!(plaintext_len(c), None);
        }
        // A segment holding zero bytes after a full one cannot exist.
        assert_eq!(plaintext_len(FIXED + S + T + T), None);
        // Any value between a full stream and the next valid one.
        assert_eq!(plaintext_len(stream_len(S) + 1), None);
    }

    #[test]
    fn span_edges() {
        let p = 3 * S + 10;
        let sp = span(p, 0, p - 1).unwrap();
        assert_eq!((sp.first, sp.last, sp.skip, sp.take), (0, 3, 0, p));
        assert_eq!(sp.ct_start, 24);
        assert_eq!(sp.ct_end, stream_len(p) - 32);
        let sp = span(p, S, S).unwrap();
        assert_eq!((sp.first, sp.last, sp.skip, sp.take), (1, 1, 0, 1));
        let sp = span(p, S - 1, S).unwrap();
        assert_eq!((sp.first, sp.last), (0, 1));
        assert_eq!(span(p, 0, p), None);
        assert_eq!(span(p, 5, 4), None);
        assert_eq!(span(0, 0, 0), None);
    }

    proptest! {
        #[test]
        fn inverse(p in 0u64..(1 << 40)) {
            prop_assert_eq!(plaintext_len(stream_len(p)), Some(p));
        }

        #[test]
        fn inverse_is_unique(c in 0u64..(1 << 22)) {
            if let Some(p) = plaintext_len(c) {
                prop_assert_eq!(stream_len(p), c);
            }
            // Naive reference: search every p that could give c.
            let lo = c.saturating_sub(FIXED + T * (c / S + 2));
            let naive = (lo..=c).find(|&p| stream_len(p) == c);
            prop_assert_eq!(plaintext_len(c), naive);
        }

        #[test]
        fn span_matches_naive(p in 1u64..(8 * S), a in any::<u64>(), b in any::<u64>()) {
            let (start, end) = { let x = a % p; let y = b % p; (x.min(y), x.max(y)) };
            let sp = span(p, start, end).unwrap();
            // Naive: walk segments, collect those overlapping the range.
            let n = segments(p);
            let need: Vec<u64> = (0..n).filter(|&i| {
                let s0 = i * S; let s1 = s0 + segment_plaintext_len(p, i);
                s0 <= end && s1 > start
            }).collect();
            prop_assert_eq!(sp.first, need[0]);
            prop_assert_eq!(sp.last, *need.last().unwrap());
            let mut ct = 24u64;
            for i in 0..sp.first { ct += segment_plaintext_len(p, i) + T; }
            prop_assert_eq!(sp.ct_start, ct);
            for i in sp.first..=sp.last { ct += segment_plaintext_len(p, i) + T; }
            prop_assert_eq!(sp.ct_end, ct);
            prop_assert_eq!(sp.first * S + sp.skip, start);
            prop_assert_eq!(sp.take, end - start + 1);
        }
    }
}
