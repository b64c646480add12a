//! Multipart upload ids and part ETags, sealed under the gateway secret that
//! every instance in front of a store shares. They make multipart uploads
//! stateless: any instance can serve any request of an upload, and nothing
//! about it lives in one gateway's memory or disk.
//!
//! - Upload id: `base64url(nonce(12) || AES-256-GCM(K_upload, DK || upload id(16) || store upload id))`,
//!   AAD = `"sealgate/v1/upload-token" || u16 len(bucket) || bucket || u16 len(key) || key`,
//!   nonce = `HMAC(K_nonce, upload id || u32 len || store upload id || AAD)[..12]`.
//!   The data key never reaches the store unwrapped: it travels sealed to the
//!   client and back.
//! - Part ETag (what UploadPart answers): `hex(md5 of the part's plaintext) ||
//!   hex(stream salt) || hex(first 8 bytes of HMAC(K_part, store upload id ||
//!   u32 part number || md5 || salt || store part ETag))`. CompleteMultipartUpload
//!   checks it against the store's current part, so a stale or forged ETag is
//!   `InvalidPart`, exactly as at S3.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::{hkdf, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::envelope::{DataKey, SALT_LEN};

pub struct TokenKey {
    aead: LessSafeKey,
    part: hmac::Key,
    nonce: hmac::Key,
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
}

fn aad(bucket: &str, key: &str) -> Vec<u8> {
    let mut a = b"sealgate/v1/upload-token".to_vec();
    for s in [bucket, key] {
        a.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_be_bytes());
        a.extend_from_slice(s.as_bytes());
    }
    a
}

fn part_tag_aad(store_upload_id: &str, part: u32) -> Vec<u8> {
    let mut a = b"sealgate/v1/part-tag".to_vec();
    a.extend_from_slice(&(store_upload_id.len() as u32).to_be_bytes());
    a.extend_from_slice(store_upload_id.as_bytes());
    a.extend_from_slice(&part.to_be_bytes());
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
        let n = derive(secret, b"sealgate/v1/upload-nonce");
        Self {
            aead: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k[..]).expect("32-byte key")),
            part: hmac::Key::new(hmac::HMAC_SHA256, &p[..]),
            nonce: hmac::Key::new(hmac::HMAC_SHA256, &n[..]),
        }
    }

    /// Seals an upload id. Deterministic: the nonce is derived from the
    /// upload's random id (and store id, bucket and key), so any gateway with
    /// the secret that learns the data key again (ListMultipartUploads, from
    /// the header) gives the client the very id it was given at creation. The
    /// nonce repeats only for the same plaintext: one data key per upload id.
    pub fn seal(&self, t: &UploadToken, bucket: &str, key: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.nonce);
        ctx.update(&t.upload_id);
        ctx.update(&(t.store_upload_id.len() as u32).to_be_bytes());
        ctx.update(t.store_upload_id.as_bytes());
        ctx.update(&aad(bucket, key));
        let nonce: [u8; 12] = ctx.sign().as_ref()[..12].try_into().expect("12 bytes");
        let mut buf = Zeroizing::new(Vec::with_capacity(48 + t.store_upload_id.len() + 16));
        buf.extend_from_slice(t.dk.expose());
        buf.extend_from_slice(&t.upload_id);
        buf.extend_from_slice(t.store_upload_id.as_bytes());
        let mut v: Vec<u8> = buf.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(bucket, key)),
                &mut v,
            )
            .expect("AES-GCM seal");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&v);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// `None` when the id was not issued by a gateway with this secret for
    /// this bucket and key.
    pub fn open(&self, id: &str, bucket: &str, key: &str) -> Option<UploadToken> {
        let raw = URL_SAFE_NO_PAD.decode(id.trim()).ok()?;
        if raw.len() < 12 + 48 + 16 {
            return None;
        }
        let nonce: [u8; 12] = raw[..12].try_into().ok()?;
        let mut ct = Zeroizing::new(raw[12..].to_vec());
        let pt = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(bucket, key)),
                &mut ct,
            )
            .ok()?;
        let dk = DataKey::from_slice(&pt[..32]).ok()?;
        let upload_id: [u8; 16] = pt[32..48].try_into().ok()?;
        let store_upload_id = String::from_utf8(pt[48..].to_vec()).ok()?;
        Some(UploadToken {
            dk,
            upload_id,
            store_upload_id,
        })
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

    /// The part ETag as kept at the store for ListParts: sealed under the
    /// upload key (it carries the MD5 of the part's plaintext, which the store
    /// must not learn) and bound to the store upload id and part number.
    /// `nonce(12) || AES-256-GCM(etag)`.
    pub fn seal_part_tag(&self, store_upload_id: &str, part: u32, etag: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
        let mut v = etag.as_bytes().to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(part_tag_aad(store_upload_id, part)),
                &mut v,
            )
            .expect("AES-GCM seal");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&v);
        out
    }

    /// The part ETag from a kept tag; `None` unless it was sealed by a
    /// gateway with this secret for this upload and part.
    pub fn open_part_tag(&self, store_upload_id: &str, part: u32, raw: &[u8]) -> Option<String> {
        if raw.len() < 12 + 16 || raw.len() > 1024 {
            return None;
        }
        let nonce: [u8; 12] = raw[..12].try_into().ok()?;
        let mut ct = raw[12..].to_vec();
        let pt = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(part_tag_aad(store_upload_id, part)),
                &mut ct,
            )
            .ok()?;
        String::from_utf8(pt.to_vec()).ok()
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

    #[test]
    fn token_round_trip_and_binding() {
        let k = TokenKey::new(b"secret");
        let t = UploadToken {
            dk: DataKey::from_bytes([5; 32]),
            upload_id: [6; 16],
            store_upload_id: "abc-123".into(),
        };
        let s = k.seal(&t, "b", "k");
        assert_eq!(s, k.seal(&t, "b", "k"), "sealing is deterministic");
        assert_ne!(s, k.seal(&t, "b", "k2"));
        let o = k.open(&s, "b", "k").unwrap();
        assert_eq!(o.dk.expose(), &[5; 32]);
        assert_eq!(o.store_upload_id, "abc-123");
        assert!(k.open(&s, "b", "other").is_none());
        assert!(TokenKey::new(b"other").open(&s, "b", "k").is_none());
        let e = k.part_etag("abc", 3, &[1; 16], &[2; 16], "st");
        assert_eq!(e.find('-'), Some(32), "{e}");
        let p = TokenKey::parse_part_etag(&e).unwrap();
        assert!(k.verify_part(&p, "abc", 3, "st"));
        let dashless = e.replace('-', "");
        let old = TokenKey::parse_part_etag(&dashless).unwrap();
        assert!(k.verify_part(&old, "abc", 3, "st"));
        assert!(
            TokenKey::parse_part_etag(&format!("{}-{}", &dashless[..31], &dashless[31..]))
                .is_none()
        );
        assert!(!k.verify_part(&p, "abc", 4, "st"));
        assert!(!k.verify_part(&p, "abc", 3, "st2"));
    }

    #[test]
    fn part_tags_are_sealed_and_bound() {
        let k = TokenKey::new(b"secret");
        let e = k.part_etag("abc", 3, &[1; 16], &[2; 16], "st");
        let raw = k.seal_part_tag("abc", 3, &e);
        assert!(
            !raw.windows(8).any(|w| w == &e.as_bytes()[..8]),
            "ETag in the clear"
        );
        assert_eq!(k.open_part_tag("abc", 3, &raw).as_deref(), Some(e.as_str()));
        assert!(k.open_part_tag("abc", 4, &raw).is_none());
        assert!(k.open_part_tag("abd", 3, &raw).is_none());
        assert!(TokenKey::new(b"other")
            .open_part_tag("abc", 3, &raw)
            .is_none());
        let mut bad = raw.clone();
        bad[20] ^= 1;
        assert!(k.open_part_tag("abc", 3, &bad).is_none());
        assert!(k.open_part_tag("abc", 3, &raw[..20]).is_none());
    }
}
