//! Sealed blocks: the one structure sealgate uses for every small secret
//! record it keeps beside the content (an object's client-visible attributes
//! in its header, a multipart part's record, a manifest's digests, a listing
//! index entry). Pure functions, no I/O.
//!
//! Layout (fixed in v1):
//!
//! ```text
//! [16]    salt        random, fresh for every block
//! [..]    ciphertext  AES-256-GCM(K, nonce = 0^12, records, AAD)
//! [16]    tag
//! K = HKDF-SHA256(salt = salt, IKM = root key, info = "sealgate/v1/sealed/" || purpose)
//! ```
//!
//! Every block has its own key (the salt is random), so the all-zero nonce is
//! used once per key: a block can be resealed any number of times under the
//! same root key (a copy, a rewrap, a re-sent part) without a nonce ever
//! repeating under one key. The purpose string separates the kinds of blocks,
//! so a block of one kind never opens as another; the AAD binds a block to
//! where it belongs (an upload, a part, a store ETag).
//!
//! The plaintext is a sequence of **records**, `u8 tag || be16 length ||
//! value`, in strictly increasing tag order except that a tag the schema
//! declares repeatable may repeat (its values then in strictly increasing byte
//! order). Tags below 0x80 are *critical*: a reader that does not know one
//! MUST refuse the block. Tags 0x80 and above are *optional*: a reader skips
//! the ones it does not know. That is how a later release adds fields to a
//! block without a new format version.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use super::{FormatError, Result, TAG_LEN};

/// Salt at the start of every sealed block. Fixed in v1.
pub const BLOCK_SALT_LEN: usize = 16;
/// Smallest sealed block: salt and tag around an empty record list.
pub const MIN_BLOCK_LEN: usize = BLOCK_SALT_LEN + TAG_LEN;
/// Largest sealed block a reader accepts (DoS guard).
pub const MAX_BLOCK_LEN: usize = 1 << 20;
const INFO_PREFIX: &[u8] = b"sealgate/v1/sealed/";
/// First optional tag: readers skip unknown tags from here up.
pub const FIRST_OPTIONAL_TAG: u8 = 0x80;

struct Len;
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        32
    }
}

fn block_key(root: &[u8], purpose: &str, salt: &[u8]) -> Result<LessSafeKey> {
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(root)
        .expand(&[INFO_PREFIX, purpose.as_bytes()], Len)
        .and_then(|okm| okm.fill(&mut k[..]))
        .map_err(|_| FormatError::Crypto)?;
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &k[..]).map_err(|_| FormatError::Crypto)?,
    ))
}

/// Seals `records` (an encoded record list) under `root` for `purpose`.
pub fn seal(root: &[u8], purpose: &str, aad: &[u8], records: &[u8]) -> Result<Vec<u8>> {
    let salt = super::keys::random_salt()?;
    seal_with_salt(root, purpose, aad, records, salt)
}

/// [`seal`] with a given salt: for test vectors only (a salt must never be
/// reused with another plaintext under one root key).
pub fn seal_with_salt(
    root: &[u8],
    purpose: &str,
    aad: &[u8],
    records: &[u8],
    salt: [u8; BLOCK_SALT_LEN],
) -> Result<Vec<u8>> {
    let key = block_key(root, purpose, &salt)?;
    let mut out = Vec::with_capacity(MIN_BLOCK_LEN + records.len());
    out.extend_from_slice(&salt);
    out.extend_from_slice(records);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(aad),
            &mut out[BLOCK_SALT_LEN..],
        )
        .map_err(|_| FormatError::Crypto)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a sealed block; the records are zeroized when dropped.
pub fn open(root: &[u8], purpose: &str, aad: &[u8], block: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if block.len() < MIN_BLOCK_LEN || block.len() > MAX_BLOCK_LEN {
        return Err(FormatError::MalformedHeader(
            "sealed block length out of range",
        ));
    }
    let key = block_key(root, purpose, &block[..BLOCK_SALT_LEN])?;
    let mut buf = Zeroizing::new(block[BLOCK_SALT_LEN..].to_vec());
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(aad),
            &mut buf[..],
        )
        .map_err(|_| FormatError::HeaderMac)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// Builds a record list in canonical order.
#[derive(Default)]
pub struct RecordWriter {
    buf: Zeroizing<Vec<u8>>,
    last: Option<(u8, Vec<u8>)>,
}

impl RecordWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a record. Records must come in canonical order (tags
    /// increasing; a repeated tag with increasing values); values are at most
    /// 65535 bytes.
    pub fn put(&mut self, tag: u8, value: &[u8]) -> Result<()> {
        let len = u16::try_from(value.len())
            .map_err(|_| FormatError::MalformedHeader("record value too long"))?;
        if let Some((t, v)) = &self.last {
            if tag < *t || (tag == *t && value <= v.as_slice()) {
                return Err(FormatError::MalformedHeader("records out of order"));
            }
        }
        self.buf.push(tag);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self.last = Some((tag, value.to_vec()));
        Ok(())
    }

    pub fn finish(self) -> Zeroizing<Vec<u8>> {
        self.buf
    }
}

/// Reads a record list, checking canonical order. `repeatable` lists the
/// tags that may occur more than once.
pub fn read_records<'a>(b: &'a [u8], repeatable: &[u8]) -> Result<Vec<(u8, &'a [u8])>> {
    let bad = |m| FormatError::MalformedHeader(m);
    let mut out: Vec<(u8, &[u8])> = Vec::new();
    let mut pos = 0usize;
    while pos < b.len() {
        if b.len() - pos < 3 {
            return Err(bad("record truncated"));
        }
        let tag = b[pos];
        let len = u16::from_be_bytes([b[pos + 1], b[pos + 2]]) as usize;
        pos += 3;
        if b.len() - pos < len {
            return Err(bad("record truncated"));
        }
        let value = &b[pos..pos + len];
        pos += len;
        if let Some(&(t, v)) = out.last() {
            let ordered = tag > t || (tag == t && repeatable.contains(&tag) && value > v);
            if !ordered {
                return Err(bad("records out of order or repeated"));
            }
        }
        out.push((tag, value));
    }
    Ok(out)
}

/// Refuses an unknown critical tag; unknown optional tags are skipped.
pub fn unknown(tag: u8) -> Result<()> {
    if tag < FIRST_OPTIONAL_TAG {
        Err(FormatError::MalformedHeader("unknown critical record"))
    } else {
        Ok(())
    }
}

/// A value that must be exactly `N` bytes.
pub fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N]> {
    v.try_into()
        .map_err(|_| FormatError::MalformedHeader("record value has the wrong length"))
}

/// A value that must be UTF-8 text.
pub fn text(v: &[u8]) -> Result<String> {
    String::from_utf8(v.to_vec()).map_err(|_| FormatError::MalformedHeader("record is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_separation() {
        let root = [3u8; 32];
        let b = seal(&root, "attributes", b"aad", b"records").unwrap();
        assert_eq!(b.len(), MIN_BLOCK_LEN + 7);
        assert_eq!(
            &open(&root, "attributes", b"aad", &b).unwrap()[..],
            b"records"
        );
        assert!(
            open(&root, "part", b"aad", &b).is_err(),
            "purpose separates"
        );
        assert!(open(&root, "attributes", b"aad2", &b).is_err(), "aad binds");
        assert!(
            open(&[4u8; 32], "attributes", b"aad", &b).is_err(),
            "root key"
        );
        for i in 0..b.len() {
            let mut f = b.clone();
            f[i] ^= 1;
            assert!(open(&root, "attributes", b"aad", &f).is_err(), "byte {i}");
        }
        assert!(open(&root, "attributes", b"aad", &b[..MIN_BLOCK_LEN - 1]).is_err());
        let again = seal(&root, "attributes", b"aad", b"records").unwrap();
        assert_ne!(again, b, "fresh salt per block");
    }

    #[test]
    fn records_are_canonical() {
        let mut w = RecordWriter::new();
        w.put(1, b"a").unwrap();
        w.put(7, b"k1").unwrap();
        w.put(7, b"k2").unwrap();
        assert!(w.put(7, b"k2").is_err(), "a repeat must increase");
        assert!(w.put(2, b"x").is_err(), "tags increase");
        w.put(0x90, b"").unwrap();
        let raw = w.finish();
        let r = read_records(&raw, &[7]).unwrap();
        assert_eq!(r, vec![(1, &b"a"[..]), (7, b"k1"), (7, b"k2"), (0x90, b"")]);
        assert!(read_records(&raw, &[]).is_err(), "7 not repeatable");
        assert!(read_records(&raw[..raw.len() - 1], &[7]).is_err());
        let mut swapped = raw.to_vec();
        swapped[0] = 9;
        assert!(read_records(&swapped, &[7]).is_err());
        assert!(unknown(0x10).is_err());
        assert!(unknown(0x80).is_ok());
    }
}
