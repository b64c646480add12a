//! One AES-256-GCM segment, and the stream trailer: pure functions over byte slices.
//!
//! Nonce layout (12 bytes, fixed in v1), after the age STREAM construction:
//! `be88(counter) || flag`, where flag is
//! - `0x00` for a segment that is not the last,
//! - `0x01` for the last segment of the stream,
//! - `0x02` for the trailer record, whose counter is the number of segments.
//!
//! The payload key is unique per stream (HKDF over a random salt), and within a
//! stream the (counter, flag) pairs never repeat, so no nonce is ever reused
//! under one key. The counter stops reordering, the flag stops truncation at a
//! segment boundary and extension after the last segment.

use aws_lc_rs::aead::{Aad, Nonce as AeadNonce, Tag};

use super::keys::PayloadKey;
use super::{FormatError, Result, TAG_LEN, TRAILER_LEN, TRAILER_PLAINTEXT_LEN};

/// What a nonce seals: fixed in v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceKind {
    Segment = 0,
    LastSegment = 1,
    Trailer = 2,
}

/// The nonce of segment or trailer `counter`.
pub fn nonce(counter: u64, kind: NonceKind) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = kind as u8;
    n
}

fn seg_kind(last: bool) -> NonceKind {
    if last {
        NonceKind::LastSegment
    } else {
        NonceKind::Segment
    }
}

/// Encrypts `buf` in place as segment `index` and appends its tag.
pub fn seal_segment(key: &PayloadKey, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<()> {
    let n = AeadNonce::assume_unique_for_key(nonce(index, seg_kind(last)));
    let tag: Tag = key
        .aead()
        .seal_in_place_separate_tag(n, Aad::empty(), buf.as_mut_slice())
        .map_err(|_| FormatError::Crypto)?;
    buf.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Encrypts `plaintext` into `out` (`plaintext.len() + TAG_LEN` bytes) as segment `index`.
pub fn seal_segment_into(
    key: &PayloadKey,
    index: u64,
    last: bool,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    tag_out[..TAG_LEN].copy_from_slice(&seal_segment_in_place(key, index, last, body)?);
    Ok(())
}

/// Encrypts `body` in place as segment `index`; returns its tag (which
/// follows the body in the stream).
pub fn seal_segment_in_place(
    key: &PayloadKey,
    index: u64,
    last: bool,
    body: &mut [u8],
) -> Result<[u8; TAG_LEN]> {
    let n = AeadNonce::assume_unique_for_key(nonce(index, seg_kind(last)));
    let tag = key
        .aead()
        .seal_in_place_separate_tag(n, Aad::empty(), body)
        .map_err(|_| FormatError::Crypto)?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts segment `index` in place; returns the plaintext prefix of `ct`.
/// Nothing of `ct` is plaintext unless this returns `Ok`.
pub fn open_segment<'a>(
    key: &PayloadKey,
    index: u64,
    last: bool,
    ct: &'a mut [u8],
) -> Result<&'a mut [u8]> {
    if ct.len() < TAG_LEN {
        return Err(FormatError::Truncated);
    }
    let n = AeadNonce::assume_unique_for_key(nonce(index, seg_kind(last)));
    key.aead()
        .open_in_place(n, Aad::empty(), ct)
        .map_err(|_| FormatError::SegmentAuth)
}

/// Seals the trailer record: the MD5 of the stream's plaintext.
pub fn seal_trailer(
    key: &PayloadKey,
    segments: u64,
    md5: &[u8; TRAILER_PLAINTEXT_LEN],
) -> Result<[u8; TRAILER_LEN]> {
    let mut out = [0u8; TRAILER_LEN];
    let (body, tag_out) = out.split_at_mut(TRAILER_PLAINTEXT_LEN);
    body.copy_from_slice(md5);
    let n = AeadNonce::assume_unique_for_key(nonce(segments, NonceKind::Trailer));
    let tag = key
        .aead()
        .seal_in_place_separate_tag(n, Aad::empty(), body)
        .map_err(|_| FormatError::Crypto)?;
    tag_out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens the trailer record of a stream of `segments` segments.
pub fn open_trailer(
    key: &PayloadKey,
    segments: u64,
    ct: &[u8],
) -> Result<[u8; TRAILER_PLAINTEXT_LEN]> {
    if ct.len() != TRAILER_LEN {
        return Err(FormatError::Truncated);
    }
    let mut buf = [0u8; TRAILER_LEN];
    buf.copy_from_slice(ct);
    let n = AeadNonce::assume_unique_for_key(nonce(segments, NonceKind::Trailer));
    let pt = key
        .aead()
        .open_in_place(n, Aad::empty(), &mut buf)
        .map_err(|_| FormatError::SegmentAuth)?;
    let mut md5 = [0u8; TRAILER_PLAINTEXT_LEN];
    md5.copy_from_slice(pt);
    Ok(md5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::DataKey;

    fn key() -> PayloadKey {
        DataKey::from_bytes([3; 32]).payload_key(&[9; 16], 0, 10)
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(nonce(0, NonceKind::Segment), [0; 12]);
        let n = nonce(0x0102, NonceKind::LastSegment);
        assert_eq!(&n[..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
        assert_eq!(nonce(5, NonceKind::Trailer)[11], 2);
    }

    #[test]
    fn segment_round_trip_and_position_binding() {
        let k = key();
        let mut buf = b"hello".to_vec();
        seal_segment(&k, 4, false, &mut buf).unwrap();
        assert_eq!(buf.len(), 5 + TAG_LEN);
        let mut c = buf.clone();
        assert_eq!(open_segment(&k, 4, false, &mut c).unwrap(), b"hello");
        let mut c = buf.clone();
        assert_eq!(
            open_segment(&k, 5, false, &mut c),
            Err(FormatError::SegmentAuth)
        );
        let mut c = buf.clone();
        assert_eq!(
            open_segment(&k, 4, true, &mut c),
            Err(FormatError::SegmentAuth)
        );
        let mut c = buf;
        c[0] ^= 0x80;
        assert_eq!(
            open_segment(&k, 4, false, &mut c),
            Err(FormatError::SegmentAuth)
        );
    }

    #[test]
    fn trailer_round_trip() {
        let k = key();
        let t = seal_trailer(&k, 3, &[5; 16]).unwrap();
        assert_eq!(open_trailer(&k, 3, &t).unwrap(), [5; 16]);
        assert_eq!(open_trailer(&k, 2, &t), Err(FormatError::SegmentAuth));
    }
}
