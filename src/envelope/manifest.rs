//! The multipart manifest: the authenticated list of an object's streams,
//! written by the gateway when a multipart upload completes.
//!
//! A multipart object's header (in metadata) is written when the upload starts,
//! before anyone knows how many parts there will be. The manifest, stored as a
//! small companion object, fixes the part list afterwards so that the store
//! cannot drop, reorder, duplicate or substitute parts (an older upload of the
//! same part number has another salt), and carries the multipart ETag.
//!
//! Binary layout (big-endian; both layouts fixed in v1):
//!
//! ```text
//! u8      layout = 1 or 2
//! u32     header length H (0 when the header is inline in metadata)
//! [H]     envelope header (a multipart header too large for metadata)
//! u32     part count N (>= 1)
//! u64     total plaintext length
//! N x     u32 part number, u64 plaintext length, [16] salt
//! layout 1 (written by earlier releases):
//!   [12]  nonce (random)
//!   [32]  AES-256-GCM(K_manifest, nonce, ETag MD5 (16 bytes), AAD)
//! layout 2:
//!   u32   S
//!   [S]   sealed block (purpose "manifest", root DK, AAD): digest records
//! ```
//! `K_manifest = HKDF(salt = empty, ikm = DK, info = "sealgate/v1/manifest")`;
//! `AAD = "sealgate/v1/manifest" || u16 len(bucket) || bucket || u16 len(key) ||
//! key || upload id (16, from the header) || every manifest byte before the
//! nonce (layout 1) or before S (layout 2)`.
//!
//! Records of the layout-2 block: `0x01` the ETag MD5 (16 bytes, required);
//! `0x81` (optional, repeatable) a composite checksum of the parts, `u8
//! algorithm || digest`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use super::keys::DataKey;
use super::layout::Layout;
use super::sealed::{self, read_records, RecordWriter};
use super::{FormatError, Result, SALT_LEN, TAG_LEN};

const CONTEXT: &[u8] = b"sealgate/v1/manifest";
/// The purpose of the layout-2 sealed block. Fixed in v1.
const PURPOSE: &str = "manifest";
/// The layout this release writes.
pub const LAYOUT: u8 = 2;
const T_ETAG_MD5: u8 = 0x01;
const T_CHECKSUM: u8 = 0x81;

/// What a manifest's sealed digests say of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    pub etag_md5: [u8; 16],
    /// Composite checksums of the parts, `(algorithm, digest)`.
    pub checksums: Vec<(u8, Vec<u8>)>,
}
/// Most parts S3 allows in one upload.
pub const MAX_PARTS: u32 = 10_000;
const ENTRY_LEN: usize = 4 + 8 + SALT_LEN;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestPart {
    pub number: u32,
    pub plaintext_len: u64,
    pub salt: [u8; SALT_LEN],
}

/// A parsed manifest. `etag_md5` is only known after [`Manifest::open`].
#[derive(Clone, Debug)]
pub struct Manifest {
    pub layout: u8,
    pub header: Option<Vec<u8>>,
    pub parts: Vec<ManifestPart>,
    pub plaintext_len: u64,
    raw: Vec<u8>,
    table_end: usize,
}

/// The layout-1 key of the sealed ETag.
fn layout1_key(dk: &DataKey) -> LessSafeKey {
    let k = dk.derive(b"sealgate/v1/manifest");
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k[..]).expect("32-byte key"))
}

fn aad(bucket: &str, key: &str, upload_id: &[u8; 16], table: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(table.len() + bucket.len() + key.len() + 64);
    a.extend_from_slice(CONTEXT);
    for s in [bucket, key] {
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        a.extend_from_slice(&len.to_be_bytes());
        a.extend_from_slice(s.as_bytes());
    }
    a.extend_from_slice(upload_id);
    a.extend_from_slice(table);
    a
}

impl Manifest {
    /// Builds and seals a manifest (layout 2).
    pub fn seal(
        dk: &DataKey,
        header: Option<&[u8]>,
        parts: Vec<ManifestPart>,
        etag_md5: &[u8; 16],
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> Result<Self> {
        let d = Digests {
            etag_md5: *etag_md5,
            checksums: Vec::new(),
        };
        Self::seal_with(dk, header, parts, &d, bucket, key, upload_id)
    }

    /// [`Manifest::seal`] with every digest (composite checksums too).
    pub fn seal_with(
        dk: &DataKey,
        header: Option<&[u8]>,
        parts: Vec<ManifestPart>,
        digests: &Digests,
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> Result<Self> {
        let (mut raw, table_end) = Self::table(LAYOUT, header, &parts)?;
        let mut w = RecordWriter::new();
        w.put(T_ETAG_MD5, &digests.etag_md5)?;
        let mut sums = digests.checksums.clone();
        sums.sort();
        for (alg, d) in &sums {
            let mut v = vec![*alg];
            v.extend_from_slice(d);
            w.put(T_CHECKSUM, &v)?;
        }
        let block = sealed::seal(
            dk.expose(),
            PURPOSE,
            &aad(bucket, key, upload_id, &raw),
            &w.finish(),
        )?;
        raw.extend_from_slice(&(block.len() as u32).to_be_bytes());
        raw.extend_from_slice(&block);
        Ok(Self {
            layout: LAYOUT,
            header: header.map(<[u8]>::to_vec),
            plaintext_len: parts.iter().map(|p| p.plaintext_len).sum(),
            parts,
            raw,
            table_end,
        })
    }

    /// A layout-1 manifest, as releases before layout 2 wrote it: for test
    /// vectors and tests of old objects only.
    pub fn seal_layout1(
        dk: &DataKey,
        header: Option<&[u8]>,
        parts: Vec<ManifestPart>,
        etag_md5: &[u8; 16],
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> Result<Self> {
        let (mut raw, table_end) = Self::table(1, header, &parts)?;
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&super::keys::random_salt()?[..12]);
        let mut sealed = etag_md5.to_vec();
        layout1_key(dk)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(bucket, key, upload_id, &raw)),
                &mut sealed,
            )
            .map_err(|_| FormatError::Crypto)?;
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        Ok(Self {
            layout: 1,
            header: header.map(<[u8]>::to_vec),
            plaintext_len: parts.iter().map(|p| p.plaintext_len).sum(),
            parts,
            raw,
            table_end,
        })
    }

    /// Everything up to the digests: layout, header, part table.
    fn table(
        layout: u8,
        header: Option<&[u8]>,
        parts: &[ManifestPart],
    ) -> Result<(Vec<u8>, usize)> {
        if parts.is_empty() || parts.len() > MAX_PARTS as usize {
            return Err(FormatError::MalformedHeader(
                "manifest part count out of range",
            ));
        }
        let h = header.unwrap_or(&[]);
        let mut raw = Vec::with_capacity(21 + h.len() + parts.len() * ENTRY_LEN + 64);
        raw.push(layout);
        raw.extend_from_slice(&(h.len() as u32).to_be_bytes());
        raw.extend_from_slice(h);
        raw.extend_from_slice(&(parts.len() as u32).to_be_bytes());
        let total: u64 = parts.iter().map(|p| p.plaintext_len).sum();
        raw.extend_from_slice(&total.to_be_bytes());
        for p in parts {
            raw.extend_from_slice(&p.number.to_be_bytes());
            raw.extend_from_slice(&p.plaintext_len.to_be_bytes());
            raw.extend_from_slice(&p.salt);
        }
        let end = raw.len();
        Ok((raw, end))
    }

    /// Parses manifest bytes read from the store (not yet authenticated: the
    /// part table may be used for display sizes only until [`Manifest::open`]).
    pub fn parse(raw: &[u8]) -> Result<Self> {
        let bad = FormatError::MalformedHeader("malformed manifest");
        let mut r = Cursor { b: raw, pos: 0 };
        let layout = r.take(1)?[0];
        if layout != 1 && layout != 2 {
            return Err(FormatError::UnsupportedVersion(layout));
        }
        let hlen = u32::from_be_bytes(r.take(4)?.try_into().expect("4")) as usize;
        if hlen > super::header::MAX_HEADER_LEN {
            return Err(bad);
        }
        let header = if hlen == 0 {
            None
        } else {
            Some(r.take(hlen)?.to_vec())
        };
        let n = u32::from_be_bytes(r.take(4)?.try_into().expect("4"));
        if n == 0 || n > MAX_PARTS {
            return Err(bad);
        }
        let total = u64::from_be_bytes(r.take(8)?.try_into().expect("8"));
        let table = r.take(n as usize * ENTRY_LEN)?;
        let mut parts = Vec::with_capacity(n as usize);
        let mut sum = 0u64;
        let mut prev = 0u32;
        for e in table.chunks_exact(ENTRY_LEN) {
            let number = u32::from_be_bytes(e[..4].try_into().expect("4"));
            if number <= prev || number > MAX_PARTS {
                return Err(bad);
            }
            prev = number;
            let plaintext_len = u64::from_be_bytes(e[4..12].try_into().expect("8"));
            sum = sum.checked_add(plaintext_len).ok_or(bad.clone())?;
            parts.push(ManifestPart {
                number,
                plaintext_len,
                salt: e[12..].try_into().expect("16"),
            });
        }
        if sum != total {
            return Err(bad);
        }
        let table_end = r.pos;
        if layout == 1 {
            r.take(12 + 16 + TAG_LEN)?;
        } else {
            let s = u32::from_be_bytes(r.take(4)?.try_into().expect("4")) as usize;
            if !(sealed::MIN_BLOCK_LEN..=sealed::MAX_BLOCK_LEN).contains(&s) {
                return Err(bad);
            }
            r.take(s)?;
        }
        if r.pos != raw.len() {
            return Err(bad);
        }
        Ok(Self {
            layout,
            header,
            parts,
            plaintext_len: total,
            raw: raw.to_vec(),
            table_end,
        })
    }

    /// Authenticates the manifest for this object; returns the ETag MD5.
    pub fn open(
        &self,
        dk: &DataKey,
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> Result<[u8; 16]> {
        Ok(self.open_digests(dk, bucket, key, upload_id)?.etag_md5)
    }

    /// Authenticates the manifest for this object; returns its digests.
    pub fn open_digests(
        &self,
        dk: &DataKey,
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> Result<Digests> {
        let table = &self.raw[..self.table_end];
        let aad = aad(bucket, key, upload_id, table);
        if self.layout == 1 {
            let nonce: [u8; 12] = self.raw[self.table_end..self.table_end + 12]
                .try_into()
                .expect("12");
            let mut sealed = self.raw[self.table_end + 12..].to_vec();
            let pt = layout1_key(dk)
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut sealed,
                )
                .map_err(|_| FormatError::HeaderMac)?;
            let etag_md5 = pt.try_into().map_err(|_| FormatError::HeaderMac)?;
            return Ok(Digests {
                etag_md5,
                checksums: Vec::new(),
            });
        }
        let block = &self.raw[self.table_end + 4..];
        let records = sealed::open(dk.expose(), PURPOSE, &aad, block)?;
        let mut md5 = None;
        let mut checksums = Vec::new();
        for (tag, v) in read_records(&records, &[T_CHECKSUM])? {
            match tag {
                T_ETAG_MD5 => md5 = Some(sealed::fixed::<16>(v)?),
                T_CHECKSUM => {
                    let (alg, d) = v
                        .split_first()
                        .ok_or(FormatError::MalformedHeader("empty checksum record"))?;
                    checksums.push((*alg, d.to_vec()));
                }
                t => sealed::unknown(t)?,
            }
        }
        Ok(Digests {
            etag_md5: md5.ok_or(FormatError::MalformedHeader("manifest without ETag"))?,
            checksums,
        })
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The object layout this manifest describes.
    pub fn layout(&self) -> Layout {
        let spec: Vec<_> = self
            .parts
            .iter()
            .map(|p| (p.number, p.plaintext_len, p.salt))
            .collect();
        Layout::multipart(0, &spec)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(FormatError::MalformedHeader("malformed manifest"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_parse_open() {
        let dk = DataKey::from_bytes([1; 32]);
        let parts = vec![
            ManifestPart {
                number: 1,
                plaintext_len: 10,
                salt: [1; 16],
            },
            ManifestPart {
                number: 3,
                plaintext_len: 5,
                salt: [3; 16],
            },
        ];
        let m = Manifest::seal(&dk, None, parts.clone(), &[7; 16], "b", "k", &[9; 16]).unwrap();
        let p = Manifest::parse(m.raw()).unwrap();
        assert_eq!(p.parts, parts);
        assert_eq!(p.plaintext_len, 15);
        assert_eq!(p.open(&dk, "b", "k", &[9; 16]).unwrap(), [7; 16]);
        assert!(p.open(&dk, "b", "k2", &[9; 16]).is_err());
        assert!(p.open(&dk, "b", "k", &[8; 16]).is_err());
        let old =
            Manifest::seal_layout1(&dk, None, parts.clone(), &[7; 16], "b", "k", &[9; 16]).unwrap();
        let q = Manifest::parse(old.raw()).unwrap();
        assert_eq!((q.layout, q.parts.clone()), (1, parts.clone()));
        assert_eq!(q.open(&dk, "b", "k", &[9; 16]).unwrap(), [7; 16]);
        assert!(q.open(&dk, "b", "k2", &[9; 16]).is_err());
        // Any change to the part table fails authentication (or parsing).
        for i in 0..m.raw().len() {
            let mut raw = m.raw().to_vec();
            raw[i] ^= 1;
            if let Ok(q) = Manifest::parse(&raw) {
                assert!(q.open(&dk, "b", "k", &[9; 16]).is_err(), "byte {i}");
            }
        }
    }
}
