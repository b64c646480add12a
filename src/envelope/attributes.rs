//! What a client says about an object (Content-Type and the other standard
//! headers, and its `x-amz-meta-*` user metadata), sealed inside the envelope
//! header so that the store neither reads nor changes it.
//!
//! Encoded as the record list of a sealed block (see [`super::sealed`]) with
//! purpose `"attributes"` under the object's data key. Records (fixed in v1):
//!
//! | tag | value |
//! | --- | --- |
//! | 0x01 | Content-Type |
//! | 0x02 | Content-Encoding |
//! | 0x03 | Content-Disposition |
//! | 0x04 | Content-Language |
//! | 0x05 | Cache-Control |
//! | 0x06 | Expires, the HTTP-date text as the client sent it |
//! | 0x10 | one user-metadata entry: `key || 0x00 || value` (repeatable; keys lowercase, unique) |
//! | 0x81 | optional, repeatable: a checksum of the plaintext the client gave, `u8 algorithm || digest` |
//!
//! Every text value is UTF-8. Absent fields have no record.

use std::collections::BTreeMap;

use super::sealed::{self, read_records, text, RecordWriter};
use super::{FormatError, Result};

const T_CONTENT_TYPE: u8 = 0x01;
const T_CONTENT_ENCODING: u8 = 0x02;
const T_CONTENT_DISPOSITION: u8 = 0x03;
const T_CONTENT_LANGUAGE: u8 = 0x04;
const T_CACHE_CONTROL: u8 = 0x05;
const T_EXPIRES: u8 = 0x06;
const T_META: u8 = 0x10;
const T_CHECKSUM: u8 = 0x81;

/// The purpose string of an attributes block. Fixed in v1.
pub const PURPOSE: &str = "attributes";

/// Client-visible attributes of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The raw HTTP-date text of `Expires`.
    pub expires: Option<String>,
    /// User metadata, keys lowercase without the `x-amz-meta-` prefix.
    pub metadata: BTreeMap<String, String>,
    /// Checksums of the whole plaintext the client gave (`x-amz-checksum-*`),
    /// `(algorithm, digest)` sorted by algorithm (1 CRC32, 2 CRC32C, 3
    /// CRC64NVME, 4 SHA1, 5 SHA256).
    pub checksums: Vec<(u8, Vec<u8>)>,
}

impl Attributes {
    /// The record list.
    pub fn encode(&self) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let mut w = RecordWriter::new();
        for (tag, v) in [
            (T_CONTENT_TYPE, &self.content_type),
            (T_CONTENT_ENCODING, &self.content_encoding),
            (T_CONTENT_DISPOSITION, &self.content_disposition),
            (T_CONTENT_LANGUAGE, &self.content_language),
            (T_CACHE_CONTROL, &self.cache_control),
            (T_EXPIRES, &self.expires),
        ] {
            if let Some(v) = v {
                w.put(tag, v.as_bytes())?;
            }
        }
        for (k, v) in &self.metadata {
            if k.is_empty() || k.contains('\0') || k.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(FormatError::MalformedHeader("bad user metadata key"));
            }
            let mut e = Vec::with_capacity(k.len() + 1 + v.len());
            e.extend_from_slice(k.as_bytes());
            e.push(0);
            e.extend_from_slice(v.as_bytes());
            w.put(T_META, &e)?;
        }
        for (alg, raw) in &self.checksums {
            let mut v = Vec::with_capacity(1 + raw.len());
            v.push(*alg);
            v.extend_from_slice(raw);
            w.put(T_CHECKSUM, &v)?;
        }
        Ok(w.finish())
    }

    /// Parses a record list (already opened).
    pub fn decode(records: &[u8]) -> Result<Self> {
        let mut a = Self::default();
        for (tag, v) in read_records(records, &[T_META, T_CHECKSUM])? {
            let slot = match tag {
                T_CONTENT_TYPE => &mut a.content_type,
                T_CONTENT_ENCODING => &mut a.content_encoding,
                T_CONTENT_DISPOSITION => &mut a.content_disposition,
                T_CONTENT_LANGUAGE => &mut a.content_language,
                T_CACHE_CONTROL => &mut a.cache_control,
                T_EXPIRES => &mut a.expires,
                T_META => {
                    let nul = v
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(FormatError::MalformedHeader("metadata entry without key"))?;
                    let k = text(&v[..nul])?;
                    if k.is_empty() || k.bytes().any(|b| b.is_ascii_uppercase()) {
                        return Err(FormatError::MalformedHeader("bad user metadata key"));
                    }
                    let val = text(&v[nul + 1..])?;
                    if a.metadata.insert(k, val).is_some() {
                        return Err(FormatError::MalformedHeader("repeated user metadata key"));
                    }
                    continue;
                }
                T_CHECKSUM => {
                    let (alg, raw) = v
                        .split_first()
                        .ok_or(FormatError::MalformedHeader("empty checksum record"))?;
                    a.checksums.push((*alg, raw.to_vec()));
                    continue;
                }
                t => {
                    sealed::unknown(t)?;
                    continue;
                }
            };
            *slot = Some(text(v)?);
        }
        Ok(a)
    }

    /// Bytes S3 counts against its 2 KB user-metadata budget for this user
    /// metadata (keys and values).
    pub fn user_metadata_size(&self) -> usize {
        self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_canonical() {
        let mut a = Attributes {
            content_type: Some("text/plain; charset=utf-8".into()),
            content_encoding: Some("gzip".into()),
            expires: Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
            ..Default::default()
        };
        a.metadata.insert("mtime".into(), "1700000000.5".into());
        a.metadata.insert("a".into(), "ünïcødé ✓".into());
        a.metadata.insert("ab".into(), "".into());
        let raw = a.encode().unwrap();
        assert_eq!(Attributes::decode(&raw).unwrap(), a);
        assert_eq!(
            Attributes::decode(&Attributes::default().encode().unwrap()).unwrap(),
            Attributes::default()
        );
        // An unknown critical record is refused, an optional one skipped.
        let mut crit = raw.to_vec();
        crit.extend_from_slice(&[0x7f, 0, 0]);
        assert!(Attributes::decode(&crit).is_err());
        let mut opt = raw.to_vec();
        opt.extend_from_slice(&[0x90, 0, 1, 9]);
        assert_eq!(Attributes::decode(&opt).unwrap(), a);
        // Upper-case keys never come from a writer and are refused.
        let mut up = Attributes::default();
        up.metadata.insert("Key".into(), "v".into());
        assert!(up.encode().is_err());
    }
}
