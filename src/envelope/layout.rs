//! Where each plaintext byte of an object lives in its ciphertext, and which
//! ciphertext bytes a read needs. Pure arithmetic over a [`Layout`]; the
//! gateway turns a [`ReadPlan`] into one ranged GET at the store.
//!
//! An object body is `[overflow header] || stream_1 || ... || stream_n`: a
//! single-part object has one stream (part number 0), a multipart object one
//! stream per part, in part order.

use super::size::{span, stream_len, SegmentSpan};
use super::SALT_LEN;

/// One stream of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartLayout {
    /// Part number used in the key schedule (0 for single-part objects).
    pub number: u32,
    pub plaintext_len: u64,
    pub salt: [u8; SALT_LEN],
    /// Offset of this stream's first byte in the object body.
    pub ct_offset: u64,
    /// Offset of this stream's first plaintext byte in the object's plaintext.
    pub pt_offset: u64,
}

/// Layout of a whole object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub parts: Vec<PartLayout>,
    pub plaintext_len: u64,
    pub ct_len: u64,
}

/// What to do with one run of ciphertext bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PieceKind {
    /// A whole stream of part `parts[index]`: stream header, segments, trailer.
    Full { index: usize },
    /// Segments of part `parts[index]` only, as given by `span`.
    Range { index: usize, span: SegmentSpan },
    /// Bytes between two pieces (a trailer, a stream header): fetched, not used.
    Skip,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub len: u64,
    pub kind: PieceKind,
}

/// The ciphertext range `[ct_start, ct_end)` to fetch and how to consume it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadPlan {
    pub ct_start: u64,
    pub ct_end: u64,
    pub pieces: Vec<Piece>,
}

impl Layout {
    /// A single-part object whose body starts at `body_offset`.
    pub fn single(body_offset: u64, salt: [u8; SALT_LEN], plaintext_len: u64) -> Self {
        Self::multipart(body_offset, &[(0, plaintext_len, salt)])
    }

    /// An object of several streams, given as (part number, plaintext length, salt).
    pub fn multipart(body_offset: u64, parts: &[(u32, u64, [u8; SALT_LEN])]) -> Self {
        let mut ct = body_offset;
        let mut pt = 0u64;
        let parts = parts
            .iter()
            .map(|&(number, plaintext_len, salt)| {
                let p = PartLayout {
                    number,
                    plaintext_len,
                    salt,
                    ct_offset: ct,
                    pt_offset: pt,
                };
                ct += stream_len(plaintext_len);
                pt += plaintext_len;
                p
            })
            .collect();
        Self {
            parts,
            plaintext_len: pt,
            ct_len: ct,
        }
    }

    /// Every stream, whole: the plan of a full read.
    pub fn plan_full(&self) -> ReadPlan {
        let pieces: Vec<Piece> = self
            .parts
            .iter()
            .enumerate()
            .map(|(index, p)| Piece {
                len: stream_len(p.plaintext_len),
                kind: PieceKind::Full { index },
            })
            .collect();
        ReadPlan {
            ct_start: self.parts.first().map_or(self.ct_len, |p| p.ct_offset),
            ct_end: self.ct_len,
            pieces,
        }
    }

    /// The plan for plaintext bytes `[start, end]` (inclusive). `None` when
    /// the range is empty or past the end.
    pub fn plan_range(&self, start: u64, end: u64) -> Option<ReadPlan> {
        if start > end || end >= self.plaintext_len {
            return None;
        }
        let mut pieces = Vec::new();
        let mut cursor: Option<u64> = None;
        let mut ct_start = 0;
        for (index, p) in self.parts.iter().enumerate() {
            if p.plaintext_len == 0 {
                continue;
            }
            let p_end = p.pt_offset + p.plaintext_len - 1;
            if p_end < start || p.pt_offset > end {
                continue;
            }
            let ls = start.max(p.pt_offset) - p.pt_offset;
            let le = end.min(p_end) - p.pt_offset;
            let (abs_start, abs_end, kind) = if ls == 0 && le == p.plaintext_len - 1 {
                (
                    p.ct_offset,
                    p.ct_offset + stream_len(p.plaintext_len),
                    PieceKind::Full { index },
                )
            } else {
                let sp = span(p.plaintext_len, ls, le)?;
                (
                    p.ct_offset + sp.ct_start,
                    p.ct_offset + sp.ct_end,
                    PieceKind::Range { index, span: sp },
                )
            };
            match cursor {
                None => ct_start = abs_start,
                Some(c) if abs_start > c => pieces.push(Piece {
                    len: abs_start - c,
                    kind: PieceKind::Skip,
                }),
                Some(_) => {}
            }
            pieces.push(Piece {
                len: abs_end - abs_start,
                kind,
            });
            cursor = Some(abs_end);
        }
        Some(ReadPlan {
            ct_start,
            ct_end: cursor?,
            pieces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::stream::{seal_all, Opener};
    use crate::envelope::DataKey;
    use bytes::Bytes;
    use proptest::prelude::*;

    const S: u64 = crate::envelope::SEGMENT_SIZE as u64;

    fn build(parts: &[u64]) -> (Layout, Vec<u8>, Vec<u8>) {
        let dk = DataKey::from_bytes([9; 32]);
        let mut spec = Vec::new();
        let mut pt = Vec::new();
        let mut ct = vec![0xEE; 7]; // a 7-byte "overflow header"
        for (i, &n) in parts.iter().enumerate() {
            let salt = [i as u8 + 1; 16];
            let data: Vec<u8> = (0..n).map(|j| (j as usize * 7 + i) as u8).collect();
            ct.extend(seal_all(&dk, salt, i as u32 + 1, &data).unwrap());
            pt.extend(data);
            spec.push((i as u32 + 1, n, salt));
        }
        (Layout::multipart(7, &spec), pt, ct)
    }

    fn execute(l: &Layout, plan: &ReadPlan, ct: &[u8]) -> Vec<u8> {
        let dk = DataKey::from_bytes([9; 32]);
        let mut pos = plan.ct_start as usize;
        let mut out = Vec::new();
        for piece in &plan.pieces {
            let bytes = Bytes::copy_from_slice(&ct[pos..pos + piece.len as usize]);
            pos += piece.len as usize;
            let mut o = match &piece.kind {
                PieceKind::Skip => continue,
                PieceKind::Full { index } => {
                    let p = &l.parts[*index];
                    Opener::full(dk.clone(), p.number, Some((p.salt, p.plaintext_len)))
                }
                PieceKind::Range { index, span } => {
                    let p = &l.parts[*index];
                    Opener::range(&dk, &p.salt, p.number, p.plaintext_len, *span)
                }
            };
            let mut v = Vec::new();
            o.push(bytes, &mut v).unwrap();
            o.finish().unwrap();
            out.extend(v.concat());
        }
        assert_eq!(pos as u64, plan.ct_end);
        out
    }

    #[test]
    fn full_plan_reads_everything() {
        let (l, pt, ct) = build(&[3 * S + 1, 0, S, 10]);
        assert_eq!(l.ct_len, ct.len() as u64);
        let plan = l.plan_full();
        assert_eq!(plan.ct_start, 7);
        assert_eq!(execute(&l, &plan, &ct), pt);
    }

    #[test]
    fn range_edges() {
        let (l, pt, ct) = build(&[2 * S + 3, S, 5]);
        let n = pt.len() as u64;
        for (a, b) in [
            (0, 0),
            (n - 1, n - 1),
            (0, n - 1),
            (2 * S + 2, 2 * S + 3),
            (2 * S + 3, 3 * S + 3),
            (S - 1, S),
            (3 * S + 2, n - 1),
        ] {
            let plan = l.plan_range(a, b).unwrap();
            assert_eq!(
                execute(&l, &plan, &ct),
                pt[a as usize..=b as usize],
                "{a}-{b}"
            );
        }
        assert!(l.plan_range(0, n).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn random_ranges(parts in proptest::collection::vec(0u64..(2 * S + 9), 1..4), a in any::<u64>(), b in any::<u64>()) {
            let (l, pt, ct) = build(&parts);
            let n = pt.len() as u64;
            prop_assume!(n > 0);
            let (x, y) = (a % n, b % n);
            let plan = l.plan_range(x.min(y), x.max(y)).unwrap();
            prop_assert_eq!(execute(&l, &plan, &ct), pt[x.min(y) as usize..=x.max(y) as usize].to_vec());
        }
    }
}
