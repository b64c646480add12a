//! What the store keeps about a multipart upload while it is in progress,
//! under `.sealgate/up/<hex of SHA-256(store upload id)[..16]>/`
//! (docs/FORMAT.md 10.4). Nothing here is trusted because of where it was
//! found: the upload record is only as good as the upload id it carries
//! (sealed under the gateway secret, which the store lacks), and a part
//! record opens only under the upload's data key, bound to the part number
//! and the store's ETag of that very part.
//!
//! - `id`, the upload record: `u8 version = 2 || be16 len || upload id (the
//!   text CreateMultipartUpload gave) || be32 len || header` (the header only
//!   when it is too large for the upload's metadata; completion moves it into
//!   the manifest).
//! - `<part, 5 digits>.<hex of SHA-256(store part ETag)[..8]>`, one per
//!   uploaded part: a sealed block (purpose `"part"`, root key the data key)
//!   holding the part's plaintext length, stream salt and plaintext MD5, with
//!   AAD `"sealgate/v1/part" || be32 len || store upload id || be32 part ||
//!   be32 len || store part ETag`. Keyed by the store's ETag, so concurrent
//!   re-sends of one part never overwrite each other's records.

use aws_lc_rs::digest::{digest, SHA256};

use super::HIDDEN_PREFIX;
use crate::envelope::sealed::{self, read_records, RecordWriter};
use crate::envelope::{DataKey, FormatError, Result, SALT_LEN};

const RECORD_VERSION: u8 = 2;
const PART_PURPOSE: &str = "part";
const T_LEN: u8 = 0x01;
const T_SALT: u8 = 0x02;
const T_MD5: u8 = 0x03;
/// Optional, repeatable: a checksum of the part's plaintext the client asked
/// for, `u8 algorithm || digest`.
const T_CHECKSUM: u8 = 0x80;
/// Most bytes an upload record may have (a header of at most 64 KiB).
pub const MAX_UPLOAD_RECORD: u64 = 80 * 1024;
/// Most bytes a part record may have.
pub const MAX_PART_RECORD: u64 = 1024;

/// The folder of what is kept about an upload, named after its store upload
/// id (so an abort by a listed `store.` id finds it too).
pub fn upload_prefix(store_upload_id: &str) -> String {
    let d = digest(&SHA256, store_upload_id.as_bytes());
    format!("{HIDDEN_PREFIX}up/{}/", hex::encode(&d.as_ref()[..16]))
}

pub fn upload_record_key(store_upload_id: &str) -> String {
    format!("{}id", upload_prefix(store_upload_id))
}

pub fn part_record_key(store_upload_id: &str, part: u32, store_etag: &str) -> String {
    let d = digest(&SHA256, store_etag.as_bytes());
    format!(
        "{}{part:05}.{}",
        upload_prefix(store_upload_id),
        hex::encode(&d.as_ref()[..8])
    )
}

/// The upload record: the upload id given to the client, and the header
/// when it does not fit the upload's metadata.
pub struct UploadRecord {
    pub upload_id: String,
    pub header: Option<Vec<u8>>,
}

impl UploadRecord {
    pub fn encode(&self) -> Vec<u8> {
        let h = self.header.as_deref().unwrap_or(&[]);
        let mut out = Vec::with_capacity(7 + self.upload_id.len() + h.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&(self.upload_id.len() as u16).to_be_bytes());
        out.extend_from_slice(self.upload_id.as_bytes());
        out.extend_from_slice(&(h.len() as u32).to_be_bytes());
        out.extend_from_slice(h);
        out
    }

    /// Parses a record read from the store (not trusted: the caller opens
    /// the upload id with the gateway secret and checks the header with the
    /// data key it carries).
    pub fn decode(b: &[u8]) -> Option<Self> {
        if *b.first()? != RECORD_VERSION || b.len() < 7 {
            return None;
        }
        let n = u16::from_be_bytes([b[1], b[2]]) as usize;
        let id = b.get(3..3 + n)?;
        let rest = &b[3 + n..];
        let h = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let header = rest.get(4..)?;
        if header.len() != h {
            return None;
        }
        Some(Self {
            upload_id: String::from_utf8(id.to_vec()).ok()?,
            header: (h > 0).then(|| header.to_vec()),
        })
    }
}

/// What completion needs of a part, and ListParts shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRecord {
    pub plaintext_len: u64,
    pub salt: [u8; SALT_LEN],
    pub md5: [u8; 16],
    /// Checksums of the part's plaintext, `(algorithm, digest)`.
    pub checksums: Vec<(u8, Vec<u8>)>,
}

fn part_aad(store_upload_id: &str, part: u32, store_etag: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + store_upload_id.len() + store_etag.len());
    a.extend_from_slice(b"sealgate/v1/part");
    a.extend_from_slice(&(store_upload_id.len() as u32).to_be_bytes());
    a.extend_from_slice(store_upload_id.as_bytes());
    a.extend_from_slice(&part.to_be_bytes());
    a.extend_from_slice(&(store_etag.len() as u32).to_be_bytes());
    a.extend_from_slice(store_etag.as_bytes());
    a
}

impl PartRecord {
    pub fn seal(
        &self,
        dk: &DataKey,
        store_upload_id: &str,
        part: u32,
        store_etag: &str,
    ) -> Result<Vec<u8>> {
        let mut w = RecordWriter::new();
        w.put(T_LEN, &self.plaintext_len.to_be_bytes())?;
        w.put(T_SALT, &self.salt)?;
        w.put(T_MD5, &self.md5)?;
        let mut sums = self.checksums.clone();
        sums.sort();
        for (alg, d) in &sums {
            let mut v = vec![*alg];
            v.extend_from_slice(d);
            w.put(T_CHECKSUM, &v)?;
        }
        sealed::seal(
            dk.expose(),
            PART_PURPOSE,
            &part_aad(store_upload_id, part, store_etag),
            &w.finish(),
        )
    }

    pub fn open(
        dk: &DataKey,
        store_upload_id: &str,
        part: u32,
        store_etag: &str,
        block: &[u8],
    ) -> Result<Self> {
        let records = sealed::open(
            dk.expose(),
            PART_PURPOSE,
            &part_aad(store_upload_id, part, store_etag),
            block,
        )?;
        let (mut len, mut salt, mut md5) = (None, None, None);
        let mut checksums = Vec::new();
        for (tag, v) in read_records(&records, &[T_CHECKSUM])? {
            match tag {
                T_LEN => len = Some(u64::from_be_bytes(sealed::fixed(v)?)),
                T_SALT => salt = Some(sealed::fixed(v)?),
                T_MD5 => md5 = Some(sealed::fixed(v)?),
                T_CHECKSUM => {
                    let (alg, d) = v
                        .split_first()
                        .ok_or(FormatError::MalformedHeader("empty checksum record"))?;
                    checksums.push((*alg, d.to_vec()));
                }
                t => sealed::unknown(t)?,
            }
        }
        match (len, salt, md5) {
            (Some(plaintext_len), Some(salt), Some(md5)) => Ok(Self {
                plaintext_len,
                salt,
                md5,
                checksums,
            }),
            _ => Err(FormatError::MalformedHeader("part record incomplete")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_record_binds_upload_part_and_store_etag() {
        let dk = DataKey::from_bytes([1; 32]);
        let r = PartRecord {
            plaintext_len: 5 << 20,
            salt: [2; 16],
            md5: [3; 16],
            checksums: vec![(1, vec![9, 9, 9, 9]), (5, vec![7; 32])],
        };
        let b = r.seal(&dk, "up", 7, "etag").unwrap();
        assert_eq!(PartRecord::open(&dk, "up", 7, "etag", &b).unwrap(), r);
        assert!(PartRecord::open(&dk, "up", 8, "etag", &b).is_err());
        assert!(PartRecord::open(&dk, "up2", 7, "etag", &b).is_err());
        assert!(PartRecord::open(&dk, "up", 7, "etag2", &b).is_err());
        assert!(PartRecord::open(&DataKey::from_bytes([9; 32]), "up", 7, "etag", &b).is_err());
        // The MD5 is sealed: it never appears in the clear.
        assert!(!b.windows(16).any(|w| w == [3; 16]));
    }

    #[test]
    fn upload_record_round_trip() {
        for header in [None, Some(vec![1, 2, 3])] {
            let r = UploadRecord {
                upload_id: "abc_-".into(),
                header: header.clone(),
            };
            let d = UploadRecord::decode(&r.encode()).unwrap();
            assert_eq!((d.upload_id.as_str(), d.header), ("abc_-", header));
        }
        let e = UploadRecord {
            upload_id: "x".into(),
            header: Some(vec![1]),
        }
        .encode();
        assert!(UploadRecord::decode(&e[..e.len() - 1]).is_none());
        assert!(
            UploadRecord::decode(b"c2c").is_none(),
            "old records are not read"
        );
        assert_ne!(
            part_record_key("u", 1, "a"),
            part_record_key("u", 1, "b"),
            "re-sends of a part keep separate records"
        );
    }
}
