//! Multipart upload ids, sealed under the gateway secret that every instance
//! in front of a store shares. They make multipart uploads stateless: any
//! instance can serve any request of an upload, and nothing about it lives in
//! one gateway's memory or disk.
//!
//! Upload id: `base64url(nonce(12) || AES-256-GCM(K_upload, DK || upload id(16)
//! || flags(1) || store upload id))`, random nonce, AAD =
//! `"sealgate/v1/upload-token/2" || u16 len(bucket) || bucket || u16 len(key)
//! || key`. Flags bit 0: the upload's header is too large for metadata and is
//! kept in the upload record until completion puts it in the manifest. Flags
//! bit 1: the upload asked for an Object Lock, whose 10 bytes follow the
//! flags ([`encode_lock`]): completion gives the manifest the same lock. The
//! data key never reaches the store unwrapped: it travels sealed to the
//! client and back, and the store cannot make an id (it lacks the secret), so
//! no part is ever encrypted under a key the store chose.
//!
//! Ids of earlier releases (AAD `"sealgate/v1/upload-token"`, no flags byte)
//! still open, so uploads in flight across an upgrade complete; so do their
//! part ETags (`hex(md5)-hex(salt)hex(mac)`, [`TokenKey::verify_part`]).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::{hkdf, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use std::time::UNIX_EPOCH;

use crate::envelope::{DataKey, SALT_LEN};
use crate::store::lock::{LockMode, ObjectLock};

pub struct TokenKey {
    aead: LessSafeKey,
    part: hmac::Key,
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(secret: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"sealgate/v1/gateway")
        .extract(secret)
        .expand(&[info], Len(32))
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF of 32 bytes");
    out
}

/// What an upload id carries.
pub struct UploadToken {
    pub dk: DataKey,
    pub upload_id: [u8; 16],
    pub store_upload_id: String,
    /// The header is kept in the upload record, for the manifest.
    pub header_in_record: bool,
    /// The Object Lock the client asked for at CreateMultipartUpload, for
    /// the manifest at completion.
    pub lock: Option<ObjectLock>,
}

const CONTEXT_V1: &[u8] = b"sealgate/v1/upload-token";
const CONTEXT_V2: &[u8] = b"sealgate/v1/upload-token/2";
const FLAG_HEADER_IN_RECORD: u8 = 0x01;
const FLAG_LOCK: u8 = 0x02;
const LOCK_LEN: usize = 10;

/// An upload's lock in 10 bytes: mode (0 none, 1 GOVERNANCE, 2 COMPLIANCE),
/// be64 retain-until in milliseconds since the Unix epoch (0: none), legal
/// hold (0 none, 1 OFF, 2 ON).
fn encode_lock(l: &ObjectLock) -> [u8; LOCK_LEN] {
    let mut out = [0u8; LOCK_LEN];
    out[0] = match l.mode {
        None => 0,
        Some(LockMode::Governance) => 1,
        Some(LockMode::Compliance) => 2,
    };
    let ms = l
        .retain_until
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis().min(u64::MAX as u128) as u64);
    out[1..9].copy_from_slice(&ms.to_be_bytes());
    out[9] = match l.legal_hold {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    out
}

fn decode_lock(b: &[u8]) -> Option<ObjectLock> {
    let mode = match b[0] {
        0 => None,
        1 => Some(LockMode::Governance),
        2 => Some(LockMode::Compliance),
        _ => return None,
    };
    let ms = u64::from_be_bytes(b[1..9].try_into().ok()?);
    let legal_hold = match b[9] {
        0 => None,
        1 => Some(false),
        2 => Some(true),
        _ => return None,
    };
    Some(ObjectLock {
        mode,
        retain_until: (ms != 0).then(|| UNIX_EPOCH + std::time::Duration::from_millis(ms)),
        legal_hold,
    })
}

fn aad(context: &[u8], bucket: &str, key: &str) -> Vec<u8> {
    let mut a = context.to_vec();
    for s in [bucket, key] {
        a.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_be_bytes());
        a.extend_from_slice(s.as_bytes());
    }
    a
}

/// A parsed part ETag.
pub struct PartTag {
    pub md5: [u8; 16],
    pub salt: [u8; SALT_LEN],
    mac: [u8; 8],
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        let k = derive(secret, b"sealgate/v1/upload-token");
        let p = derive(secret, b"sealgate/v1/part-etag");
        Self {
            aead: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k[..]).expect("32-byte key")),
            part: hmac::Key::new(hmac::HMAC_SHA256, &p[..]),
        }
    }

    /// Seals an upload id (random nonce: every sealing is fresh).
    pub fn seal(&self, t: &UploadToken, bucket: &str, key: &str) -> String {
        let mut nonce = [0u8; 12];
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
        let mut buf = Zeroizing::new(Vec::with_capacity(49 + t.store_upload_id.len() + 16));
        buf.extend_from_slice(t.dk.expose());
        buf.extend_from_slice(&t.upload_id);
        let mut flags = 0;
        if t.header_in_record {
            flags |= FLAG_HEADER_IN_RECORD;
        }
        if t.lock.is_some() {
            flags |= FLAG_LOCK;
        }
        buf.push(flags);
        if let Some(l) = &t.lock {
            buf.extend_from_slice(&encode_lock(l));
        }
        buf.extend_from_slice(t.store_upload_id.as_bytes());
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(CONTEXT_V2, bucket, key)),
                &mut *buf,
            )
            .expect("AES-GCM seal");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// `None` when the id was not issued by a gateway with this secret for
    /// this bucket and key.
    pub fn open(&self, id: &str, bucket: &str, key: &str) -> Option<UploadToken> {
        if id.len() > 4096 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(id.trim()).ok()?;
        if raw.len() < 12 + 48 + 16 {
            return None;
        }
        let nonce: [u8; 12] = raw[..12].try_into().ok()?;
        for (context, flagged) in [(CONTEXT_V2, true), (CONTEXT_V1, false)] {
            let mut ct = Zeroizing::new(raw[12..].to_vec());
            let Ok(pt) = self.aead.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(context, bucket, key)),
                &mut ct[..],
            ) else {
                continue;
            };
            let dk = DataKey::from_slice(&pt[..32]).ok()?;
            let upload_id: [u8; 16] = pt[32..48].try_into().ok()?;
            let (flags, rest) = if flagged {
                (*pt.get(48)?, &pt[49..])
            } else {
                (0, &pt[48..])
            };
            if flags & !(FLAG_HEADER_IN_RECORD | FLAG_LOCK) != 0 {
                return None;
            }
            let (lock, rest) = if flags & FLAG_LOCK != 0 {
                if rest.len() < LOCK_LEN {
                    return None;
                }
                (Some(decode_lock(&rest[..LOCK_LEN])?), &rest[LOCK_LEN..])
            } else {
                (None, rest)
            };
            let store_upload_id = String::from_utf8(rest.to_vec()).ok()?;
            return Some(UploadToken {
                dk,
                upload_id,
                store_upload_id,
                header_in_record: flags & FLAG_HEADER_IN_RECORD != 0,
                lock,
            });
        }
        None
    }

    fn part_mac(
        &self,
        store_upload_id: &str,
        part: u32,
        md5: &[u8; 16],
        salt: &[u8; 16],
        store_etag: &str,
    ) -> [u8; 8] {
        let mut ctx = hmac::Context::with_key(&self.part);
        ctx.update(&(store_upload_id.len() as u32).to_be_bytes());
        ctx.update(store_upload_id.as_bytes());
        ctx.update(&part.to_be_bytes());
        ctx.update(md5);
        ctx.update(salt);
        ctx.update(store_etag.as_bytes());
        let tag = ctx.sign();
        tag.as_ref()[..8].try_into().expect("8 bytes")
    }

    /// `hex(md5)-hex(salt)hex(mac)`. The dash tells clients that compare a
    /// part's ETag with the MD5 of what they sent (s3cmd) that it is not a
    /// plain MD5, as with SSE-KMS at AWS; without it s3cmd retries every part
    /// and gives up.
    pub fn part_etag(
        &self,
        store_upload_id: &str,
        part: u32,
        md5: &[u8; 16],
        salt: &[u8; 16],
        store_etag: &str,
    ) -> String {
        let mac = self.part_mac(store_upload_id, part, md5, salt, store_etag);
        let (md5, salt, mac) = (hex::encode(md5), hex::encode(salt), hex::encode(mac));
        format!("{md5}-{salt}{mac}")
    }

    /// Also accepts the dashless form of earlier releases (uploads in flight
    /// across an upgrade).
    pub fn parse_part_etag(etag: &str) -> Option<PartTag> {
        let e = etag.trim().trim_matches('"');
        let e = match e.split_once('-') {
            Some((md5, rest)) if md5.len() == 32 => format!("{md5}{rest}"),
            Some(_) => return None,
            None => e.to_owned(),
        };
        if e.len() != 80 {
            return None;
        }
        let b = hex::decode(e).ok()?;
        Some(PartTag {
            md5: b[..16].try_into().ok()?,
            salt: b[16..32].try_into().ok()?,
            mac: b[32..40].try_into().ok()?,
        })
    }

    /// Constant-time check of a part tag against the store's current part.
    pub fn verify_part(
        &self,
        t: &PartTag,
        store_upload_id: &str,
        part: u32,
        store_etag: &str,
    ) -> bool {
        use subtle::ConstantTimeEq;
        let want = self.part_mac(store_upload_id, part, &t.md5, &t.salt, store_etag);
        want.ct_eq(&t.mac).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(flag: bool) -> UploadToken {
        UploadToken {
            dk: DataKey::from_bytes([5; 32]),
            upload_id: [6; 16],
            store_upload_id: "abc-123".into(),
            header_in_record: flag,
            lock: None,
        }
    }

    #[test]
    fn a_lock_travels_in_the_id() {
        let k = TokenKey::new(b"secret");
        let until = UNIX_EPOCH + std::time::Duration::from_millis(1_900_000_000_123);
        for lock in [
            ObjectLock {
                mode: Some(LockMode::Compliance),
                retain_until: Some(until),
                legal_hold: None,
            },
            ObjectLock {
                mode: None,
                retain_until: None,
                legal_hold: Some(true),
            },
            ObjectLock {
                mode: Some(LockMode::Governance),
                retain_until: Some(until),
                legal_hold: Some(false),
            },
        ] {
            for flag in [false, true] {
                let t = UploadToken {
                    lock: Some(lock.clone()),
                    ..token(flag)
                };
                let o = k.open(&k.seal(&t, "b", "k"), "b", "k").unwrap();
                assert_eq!(o.lock.as_ref(), Some(&lock));
                assert_eq!(o.store_upload_id, "abc-123");
                assert_eq!(o.header_in_record, flag);
            }
        }
    }

    #[test]
    fn token_round_trip_and_binding() {
        let k = TokenKey::new(b"secret");
        for flag in [false, true] {
            let s = k.seal(&token(flag), "b", "k");
            assert_ne!(s, k.seal(&token(flag), "b", "k"), "random nonce");
            let o = k.open(&s, "b", "k").unwrap();
            assert_eq!(o.dk.expose(), &[5; 32]);
            assert_eq!(o.upload_id, [6; 16]);
            assert_eq!(o.store_upload_id, "abc-123");
            assert_eq!(o.header_in_record, flag);
            assert!(k.open(&s, "b", "other").is_none());
            assert!(k.open(&s, "other", "k").is_none());
            assert!(TokenKey::new(b"other").open(&s, "b", "k").is_none());
            let mut raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
            let n = raw.len();
            raw[n - 1] ^= 1;
            assert!(k.open(&URL_SAFE_NO_PAD.encode(raw), "b", "k").is_none());
        }
    }

    #[test]
    fn ids_of_earlier_releases_open() {
        // An id as releases before flags sealed it: context v1, no flags byte.
        let k = TokenKey::new(b"secret");
        let nonce = [9u8; 12];
        let mut pt = vec![5u8; 32];
        pt.extend_from_slice(&[6; 16]);
        pt.extend_from_slice(b"abc-123");
        k.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(CONTEXT_V1, "b", "k")),
                &mut pt,
            )
            .unwrap();
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&pt);
        let o = k.open(&URL_SAFE_NO_PAD.encode(raw), "b", "k").unwrap();
        assert_eq!(o.store_upload_id, "abc-123");
        assert!(!o.header_in_record);
        let e = k.part_etag("abc", 3, &[1; 16], &[2; 16], "st");
        let p = TokenKey::parse_part_etag(&e).unwrap();
        assert!(k.verify_part(&p, "abc", 3, "st"));
        assert!(!k.verify_part(&p, "abc", 4, "st"));
        assert!(!k.verify_part(&p, "abc", 3, "st2"));
        assert!(TokenKey::parse_part_etag(&hex::encode([1u8; 16])).is_none());
    }
}
