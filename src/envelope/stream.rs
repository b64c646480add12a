//! Incremental stream encryption and decryption: pure state machines over byte
//! chunks ([`Sealer`], [`Opener`]) and thin async adapters over
//! `Stream<Item = Result<Bytes, E>>`.
//!
//! Memory is bounded by one segment of pending input plus the output of the
//! chunk being processed, whatever the stream's length.
//!
//! The [`Opener`] never returns plaintext from a segment whose tag has not
//! verified. The [`Sealer`] holds back the last segment and the trailer until
//! [`Sealer::finish`], so a caller can refuse the upload (a digest mismatch, a
//! short body) before the store has received a complete object.

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};

use super::keys::{DataKey, PayloadKey};
use super::segment::{open_segment, open_trailer, seal_segment_in_place, seal_trailer};
use super::size::{segment_plaintext_len, segments, SegmentSpan};
use super::{FormatError, Result, SALT_LEN, STREAM_HEADER_LEN, TAG_LEN, TRAILER_LEN};

/// Encrypts one stream of a known plaintext length.
///
/// Plaintext is copied once, into the buffer of the segment it belongs to,
/// and sealed there in place; every complete segment leaves as one frame of
/// its own (the first one led by the stream header), so a consumer sends
/// whole segments without copying them again.
pub struct Sealer {
    key: PayloadKey,
    plaintext_len: u64,
    consumed: u64,
    index: u64,
    last_index: u64,
    /// The frame being filled: (the stream header, for the first segment,)
    /// then the plaintext of segment `index`, with room for its tag (and the
    /// trailer, for the last segment).
    buf: BytesMut,
    /// Where segment `index`'s plaintext starts in `buf`.
    seg_start: usize,
    md5: Md5,
}

impl Sealer {
    pub fn new(dk: &DataKey, salt: [u8; SALT_LEN], part: u32, plaintext_len: u64) -> Self {
        let mut s = Self {
            key: dk.payload_key(&salt, part, plaintext_len),
            plaintext_len,
            consumed: 0,
            index: 0,
            last_index: segments(plaintext_len) - 1,
            buf: BytesMut::new(),
            seg_start: 0,
            md5: Md5::new(),
        };
        s.buf = BytesMut::with_capacity(STREAM_HEADER_LEN + s.frame_capacity());
        s.buf.extend_from_slice(&salt);
        s.buf.extend_from_slice(&plaintext_len.to_be_bytes());
        s.seg_start = STREAM_HEADER_LEN;
        s
    }

    /// Ciphertext length of the whole stream.
    pub fn stream_len(&self) -> u64 {
        super::size::stream_len(self.plaintext_len)
    }

    /// Bytes of segment `index` as it leaves: its plaintext and tag, and
    /// the trailer after the last one.
    fn frame_capacity(&self) -> usize {
        let trailer = if self.index == self.last_index {
            TRAILER_LEN
        } else {
            0
        };
        segment_plaintext_len(self.plaintext_len, self.index) as usize + TAG_LEN + trailer
    }

    /// Seals segment `index` in place at the end of `buf`.
    fn seal_current(&mut self) -> Result<()> {
        let last = self.index == self.last_index;
        let tag =
            seal_segment_in_place(&self.key, self.index, last, &mut self.buf[self.seg_start..])?;
        self.buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Feeds plaintext; appends every complete non-final segment to `out`,
    /// one frame each.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Bytes>) -> Result<()> {
        if (data.len() as u64) > self.plaintext_len - self.consumed {
            return Err(FormatError::TrailingData);
        }
        self.consumed += data.len() as u64;
        self.md5.update(data);
        while !data.is_empty() {
            let seg_len = segment_plaintext_len(self.plaintext_len, self.index) as usize;
            let have = self.buf.len() - self.seg_start;
            let n = (seg_len - have).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            // The last segment waits for `finish` (and so does its trailer).
            if have + n == seg_len && self.index < self.last_index {
                self.seal_current()?;
                self.index += 1;
                let next = BytesMut::with_capacity(self.frame_capacity());
                out.push(std::mem::replace(&mut self.buf, next).freeze());
                self.seg_start = 0;
            }
        }
        Ok(())
    }

    /// Plaintext bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.plaintext_len - self.consumed
    }

    /// MD5 of the plaintext seen so far (complete once `remaining() == 0`).
    pub fn md5(&self) -> [u8; 16] {
        self.md5.clone().finalize().into()
    }

    /// Emits the last segment and the trailer, as one frame. Fails if the
    /// plaintext was short.
    pub fn finish(mut self, out: &mut Vec<Bytes>) -> Result<[u8; 16]> {
        if self.consumed != self.plaintext_len {
            return Err(FormatError::Truncated);
        }
        debug_assert_eq!(self.index, self.last_index);
        self.seal_current()?;
        let md5: [u8; 16] = self.md5.finalize().into();
        self.buf
            .extend_from_slice(&seal_trailer(&self.key, self.index + 1, &md5)?);
        out.push(self.buf.freeze());
        Ok(md5)
    }
}

enum Phase {
    StreamHeader,
    Segments,
    Trailer,
    Done,
}

/// Decrypts a whole stream or a segment-aligned slice of one.
pub struct Opener {
    phase: Phase,
    dk: Option<DataKey>,
    part: u32,
    expected: Option<([u8; SALT_LEN], u64)>,
    key: Option<PayloadKey>,
    p: u64,
    next: u64,
    last: u64,
    skip: u64,
    take: u64,
    check_trailer: bool,
    pending: BytesMut,
    trailer_md5: Option<[u8; 16]>,
}

impl Opener {
    /// A whole stream, starting with its stream header. `expected` (salt and
    /// plaintext length from the envelope header, for single-part objects, or
    /// from a manifest) is checked against the stream header.
    pub fn full(dk: DataKey, part: u32, expected: Option<([u8; SALT_LEN], u64)>) -> Self {
        Self {
            phase: Phase::StreamHeader,
            dk: Some(dk),
            part,
            expected,
            key: None,
            p: 0,
            next: 0,
            last: 0,
            skip: 0,
            take: u64::MAX,
            check_trailer: true,
            pending: BytesMut::new(),
            trailer_md5: None,
        }
    }

    /// The ciphertext bytes `[span.ct_start, span.ct_end)` of a stream of `p`
    /// plaintext bytes whose salt is known.
    pub fn range(
        dk: &DataKey,
        salt: &[u8; SALT_LEN],
        part: u32,
        p: u64,
        span: SegmentSpan,
    ) -> Self {
        Self {
            phase: Phase::Segments,
            dk: None,
            part,
            expected: None,
            key: Some(dk.payload_key(salt, part, p)),
            p,
            next: span.first,
            last: span.last,
            skip: span.skip,
            take: span.take,
            check_trailer: false,
            pending: BytesMut::new(),
            trailer_md5: None,
        }
    }

    /// The authenticated plaintext MD5 from the trailer, once the stream is done.
    pub fn trailer_md5(&self) -> Option<[u8; 16]> {
        self.trailer_md5
    }

    fn seg_ct_len(&self) -> usize {
        (segment_plaintext_len(self.p, self.next) as usize) + TAG_LEN
    }

    /// Feeds ciphertext; appends verified plaintext chunks to `out`.
    pub fn push(&mut self, mut input: Bytes, out: &mut Vec<Bytes>) -> Result<()> {
        while !input.is_empty() {
            match self.phase {
                Phase::StreamHeader => {
                    let need = STREAM_HEADER_LEN - self.pending.len();
                    let n = need.min(input.len());
                    self.pending.extend_from_slice(&input.split_to(n));
                    if self.pending.len() == STREAM_HEADER_LEN {
                        let h = self.pending.split();
                        let salt: [u8; SALT_LEN] = h[..SALT_LEN].try_into().expect("16");
                        let p = u64::from_be_bytes(h[SALT_LEN..].try_into().expect("8"));
                        if let Some(exp) = self.expected {
                            if exp != (salt, p) {
                                return Err(FormatError::StreamMismatch);
                            }
                        }
                        let dk = self.dk.take().expect("full opener has a data key");
                        self.key = Some(dk.payload_key(&salt, self.part, p));
                        self.p = p;
                        self.next = 0;
                        self.last = segments(p) - 1;
                        self.phase = Phase::Segments;
                    }
                }
                Phase::Segments => {
                    let seg_len = self.seg_ct_len();
                    if self.pending.is_empty() && input.len() >= seg_len {
                        // Decrypt straight out of the input chunk, without a copy
                        // when we hold the only reference.
                        let seg = input.split_to(seg_len);
                        let buf = BytesMut::from(seg);
                        self.open_one(buf, out)?;
                    } else {
                        if self.pending.is_empty() {
                            // One allocation per segment, not a regrowth
                            // (and a copy) per input chunk.
                            self.pending.reserve(seg_len);
                        }
                        let n = (seg_len - self.pending.len()).min(input.len());
                        self.pending.extend_from_slice(&input.split_to(n));
                        if self.pending.len() == seg_len {
                            let buf = self.pending.split();
                            self.open_one(buf, out)?;
                        }
                    }
                }
                Phase::Trailer => {
                    let n = (TRAILER_LEN - self.pending.len()).min(input.len());
                    self.pending.extend_from_slice(&input.split_to(n));
                    if self.pending.len() == TRAILER_LEN {
                        let t = self.pending.split();
                        let key = self.key.as_ref().expect("key set");
                        self.trailer_md5 = Some(open_trailer(key, self.last + 1, &t)?);
                        self.phase = Phase::Done;
                    }
                }
                Phase::Done => return Err(FormatError::TrailingData),
            }
        }
        Ok(())
    }

    fn open_one(&mut self, mut buf: BytesMut, out: &mut Vec<Bytes>) -> Result<()> {
        let key = self.key.as_ref().expect("key set");
        let is_last_of_stream = self.next == segments(self.p) - 1;
        let pt_len = open_segment(key, self.next, is_last_of_stream, &mut buf)?.len();
        buf.truncate(pt_len);
        let mut pt = buf.freeze();
        if self.skip > 0 {
            let s = (self.skip as usize).min(pt.len());
            let _ = pt.split_to(s);
            self.skip -= s as u64;
        }
        if (pt.len() as u64) > self.take {
            pt.truncate(self.take as usize);
        }
        self.take -= pt.len() as u64;
        if !pt.is_empty() {
            out.push(pt);
        }
        if self.next == self.last {
            self.phase = if self.check_trailer {
                Phase::Trailer
            } else {
                Phase::Done
            };
        }
        self.next += 1;
        Ok(())
    }

    /// Call at end of input: fails unless the stream (or slice) was complete.
    pub fn finish(&self) -> Result<()> {
        match self.phase {
            Phase::Done => Ok(()),
            _ => Err(FormatError::Truncated),
        }
    }
}

/// Encrypts a whole plaintext in memory (tests, vectors, small tools).
pub fn seal_all(
    dk: &DataKey,
    salt: [u8; SALT_LEN],
    part: u32,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut s = Sealer::new(dk, salt, part, plaintext.len() as u64);
    let mut out = Vec::new();
    s.push(plaintext, &mut out)?;
    s.finish(&mut out)?;
    Ok(out.concat())
}

/// Decrypts a whole stream in memory (tests, vectors, small tools).
pub fn open_all(
    dk: &DataKey,
    part: u32,
    expected: Option<([u8; SALT_LEN], u64)>,
    ciphertext: &[u8],
) -> Result<Vec<u8>> {
    let mut o = Opener::full(dk.clone(), part, expected);
    let mut out = Vec::new();
    o.push(Bytes::copy_from_slice(ciphertext), &mut out)?;
    o.finish()?;
    Ok(out.concat())
}

pub mod adapters {
    //! Async adapters: a plaintext stream in, a ciphertext stream out, and back.

    use super::*;
    use futures::{Stream, StreamExt};
    use std::io;

    /// Called with every plaintext chunk, and once at the end, before the last
    /// ciphertext bytes are released: failing there keeps the store from ever
    /// receiving a complete object.
    pub trait PlaintextCheck: Send + 'static {
        /// What the check learned (digests for the response).
        type Output: Send + 'static;
        /// How a failure is reported (an S3 error in the gateway).
        type Error: Send + 'static;
        fn update(&mut self, data: &[u8]);
        fn finish(&mut self, md5: &[u8; 16]) -> std::result::Result<Self::Output, Self::Error>;
        /// Maps a failure of the plaintext input (a client that went away, a
        /// bad chunk signature).
        fn input_failed(
            &mut self,
            e: &(dyn std::error::Error + Send + Sync + 'static),
        ) -> Self::Error;
        /// Maps a failure of the format layer (more or fewer bytes than the
        /// declared length).
        fn format_failed(&mut self, e: FormatError) -> Self::Error;
    }

    /// What a sealed stream reports once, when it ends: the plaintext MD5
    /// and the check's output, or why it failed.
    pub type SealOutcome<C> = std::result::Result<
        ([u8; 16], <C as PlaintextCheck>::Output),
        <C as PlaintextCheck>::Error,
    >;

    fn fmt_err(e: FormatError) -> io::Error {
        io::Error::other(e)
    }

    /// Encrypts `input` (exactly `sealer`'s plaintext length) into ciphertext
    /// chunks. The outcome arrives on the receiver exactly once, before the
    /// last ciphertext chunk (or the error) is yielded; if the consumer stops
    /// early, the receiver reports cancellation.
    pub fn seal_stream<S, E, C>(
        input: S,
        sealer: Sealer,
        check: C,
    ) -> (
        impl Stream<Item = std::result::Result<Bytes, io::Error>> + Send + 'static,
        futures::channel::oneshot::Receiver<SealOutcome<C>>,
    )
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        C: PlaintextCheck,
    {
        struct St<S, C: PlaintextCheck> {
            input: S,
            sealer: Option<Sealer>,
            check: C,
            outcome: Option<futures::channel::oneshot::Sender<SealOutcome<C>>>,
            /// Sealed segments not yet yielded, oldest first.
            ready: Vec<Bytes>,
            next: usize,
        }
        impl<S, C: PlaintextCheck> St<S, C> {
            fn next_ready(&mut self) -> Option<Bytes> {
                let frame = self.ready.get_mut(self.next).map(std::mem::take);
                match frame {
                    Some(_) => self.next += 1,
                    None => {
                        self.ready.clear();
                        self.next = 0;
                    }
                }
                frame
            }
            fn report(&mut self, r: SealOutcome<C>) {
                if let Some(tx) = self.outcome.take() {
                    let _ = tx.send(r);
                }
            }
        }
        let (tx, rx) = futures::channel::oneshot::channel();
        let stream = futures::stream::unfold(
            St {
                input,
                sealer: Some(sealer),
                check,
                outcome: Some(tx),
                ready: Vec::new(),
                next: 0,
            },
            |mut st| async move {
                if let Some(frame) = st.next_ready() {
                    return Some((Ok(frame), st));
                }
                st.sealer.as_ref()?;
                loop {
                    match st.input.next().await {
                        Some(Ok(chunk)) => {
                            st.check.update(&chunk);
                            let sealer = st.sealer.as_mut()?;
                            if let Err(e) = sealer.push(&chunk, &mut st.ready) {
                                st.sealer = None;
                                let err = st.check.format_failed(e.clone());
                                st.report(Err(err));
                                return Some((Err(fmt_err(e)), st));
                            }
                            if let Some(frame) = st.next_ready() {
                                return Some((Ok(frame), st));
                            }
                        }
                        Some(Err(e)) => {
                            st.sealer = None;
                            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                            let err = st.check.input_failed(&*e);
                            st.report(Err(err));
                            return Some((Err(io::Error::other(e)), st));
                        }
                        None => {
                            let sealer = st.sealer.take()?;
                            if sealer.remaining() != 0 {
                                let err = st.check.format_failed(FormatError::Truncated);
                                st.report(Err(err));
                                return Some((Err(fmt_err(FormatError::Truncated)), st));
                            }
                            let md5 = sealer.md5();
                            let output = match st.check.finish(&md5) {
                                Ok(o) => o,
                                Err(e) => {
                                    st.report(Err(e));
                                    return Some((
                                        Err(io::Error::other("plaintext check failed")),
                                        st,
                                    ));
                                }
                            };
                            return match sealer.finish(&mut st.ready) {
                                Ok(md5) => {
                                    st.report(Ok((md5, output)));
                                    let frame = st.next_ready().unwrap_or_default();
                                    Some((Ok(frame), st))
                                }
                                Err(e) => {
                                    let err = st.check.format_failed(e.clone());
                                    st.report(Err(err));
                                    Some((Err(fmt_err(e)), st))
                                }
                            };
                        }
                    }
                }
            },
        )
        // Fused: polling after the end gives the end again.
        .fuse();
        (stream, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::size::{span, stream_len};
    use crate::envelope::SEGMENT_SIZE;
    use proptest::prelude::*;

    const S: usize = SEGMENT_SIZE;

    fn dk() -> DataKey {
        DataKey::from_bytes([0x42; 32])
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn edges_round_trip() {
        for n in [0, 1, S - 1, S, S + 1, 3 * S, 3 * S + 5] {
            let pt = data(n);
            let ct = seal_all(&dk(), [1; 16], 0, &pt).unwrap();
            assert_eq!(ct.len() as u64, stream_len(n as u64), "n={n}");
            assert_eq!(
                open_all(&dk(), 0, Some(([1; 16], n as u64)), &ct).unwrap(),
                pt
            );
        }
    }

    #[test]
    fn tamper_is_detected() {
        let pt = data(2 * S + 10);
        let ct = seal_all(&dk(), [1; 16], 0, &pt).unwrap();
        let open = |c: &[u8]| open_all(&dk(), 0, None, c);
        // Truncation at and between segment boundaries, and of the trailer.
        for cut in [
            ct.len() - 1,
            ct.len() - TRAILER_LEN,
            24 + S + 16,
            24 + S + 15,
            24,
            10,
        ] {
            assert!(open(&ct[..cut]).is_err(), "cut={cut}");
        }
        // Extension.
        let mut ext = ct.clone();
        ext.push(0);
        assert_eq!(open(&ext), Err(FormatError::TrailingData));
        // Swapping two segments.
        let seg = S + 16;
        let mut sw = ct.clone();
        let (a, b) = sw[24..24 + 2 * seg].split_at_mut(seg);
        a.swap_with_slice(b);
        assert_eq!(open(&sw), Err(FormatError::SegmentAuth));
        // Flipping a body bit, a tag bit, the length in the stream header.
        for i in [30, 24 + S + 3, 24 + S + 15, 20] {
            let mut f = ct.clone();
            f[i] ^= 1;
            assert!(open(&f).is_err(), "flip {i}");
        }
        // Another part number, another key.
        assert!(open_all(&dk(), 1, None, &ct).is_err());
        assert!(open_all(&DataKey::from_bytes([1; 32]), 0, None, &ct).is_err());
        // A segment from another stream of the same object key.
        let other = seal_all(&dk(), [2; 16], 0, &pt).unwrap();
        let mut spl = ct.clone();
        spl[24..24 + seg].copy_from_slice(&other[24..24 + seg]);
        assert_eq!(open(&spl), Err(FormatError::SegmentAuth));
        // Expected binding mismatch.
        assert_eq!(
            open_all(&dk(), 0, Some(([9; 16], pt.len() as u64)), &ct),
            Err(FormatError::StreamMismatch)
        );
    }

    #[test]
    fn sealer_refuses_wrong_lengths() {
        let mut s = Sealer::new(&dk(), [0; 16], 0, 3);
        let mut out = Vec::new();
        assert_eq!(s.push(b"abcd", &mut out), Err(FormatError::TrailingData));
        let mut s = Sealer::new(&dk(), [0; 16], 0, 3);
        s.push(b"ab", &mut out).unwrap();
        assert_eq!(s.finish(&mut out), Err(FormatError::Truncated));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn round_trip_any_split(n in 0usize..(3 * S + 100), cuts in proptest::collection::vec(any::<u32>(), 0..8)) {
            let pt = data(n);
            let mut s = Sealer::new(&dk(), [5; 16], 7, n as u64);
            let mut ct = Vec::new();
            let mut pos: Vec<usize> = cuts.iter().map(|&c| if n == 0 { 0 } else { c as usize % n }).collect();
            pos.push(0); pos.push(n); pos.sort();
            for w in pos.windows(2) { s.push(&pt[w[0]..w[1]], &mut ct).unwrap(); }
            s.finish(&mut ct).unwrap();
            // Every frame but the last is one whole segment (the first led
            // by the stream header).
            for (i, f) in ct.iter().enumerate().take(ct.len() - 1) {
                let header = if i == 0 { STREAM_HEADER_LEN } else { 0 };
                prop_assert_eq!(f.len(), header + S + TAG_LEN);
            }
            let ct = ct.concat();
            // Decrypt fed in arbitrary chunks too.
            let mut o = Opener::full(dk(), 7, None);
            let mut out = Vec::new();
            let mut cpos: Vec<usize> = cuts.iter().map(|&c| c as usize % ct.len()).collect();
            cpos.push(0); cpos.push(ct.len()); cpos.sort();
            for w in cpos.windows(2) { o.push(Bytes::copy_from_slice(&ct[w[0]..w[1]]), &mut out).unwrap(); }
            o.finish().unwrap();
            prop_assert_eq!(out.concat(), pt);
        }

        #[test]
        fn ranges_decrypt_exactly(n in 1usize..(4 * S), a in any::<u64>(), b in any::<u64>()) {
            let pt = data(n);
            let ct = seal_all(&dk(), [6; 16], 0, &pt).unwrap();
            let (x, y) = (a % n as u64, b % n as u64);
            let (start, end) = (x.min(y), x.max(y));
            let sp = span(n as u64, start, end).unwrap();
            let mut o = Opener::range(&dk(), &[6; 16], 0, n as u64, sp);
            let mut out = Vec::new();
            o.push(Bytes::copy_from_slice(&ct[sp.ct_start as usize..sp.ct_end as usize]), &mut out).unwrap();
            o.finish().unwrap();
            prop_assert_eq!(out.concat(), pt[start as usize..=end as usize].to_vec());
        }
    }
}
