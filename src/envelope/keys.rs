//! The data key and the key schedule.
//!
//! All subkeys come from HKDF-SHA256 over the 256-bit data key:
//! - commitment  = HKDF(salt = empty, ikm = DK, info = "sealgate/v1/commitment")
//! - header MAC  = HKDF(salt = empty, ikm = DK, info = "sealgate/v1/header-mac")
//! - payload key = HKDF(salt = stream salt, ikm = DK, info = "sealgate/v1/payload"
//!   || be32(part) || be64(plaintext length))
//!
//! The info strings are fixed in v1.

use aws_lc_rs::{hkdf, rand};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{FormatError, Result, COMMITMENT_LEN, DATA_KEY_LEN, SALT_LEN};

const INFO_COMMITMENT: &[u8] = b"sealgate/v1/commitment";
const INFO_HEADER_MAC: &[u8] = b"sealgate/v1/header-mac";
const INFO_PAYLOAD: &[u8] = b"sealgate/v1/payload";

/// A per-object 256-bit data key. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; DATA_KEY_LEN]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A fresh random data key from the system CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; DATA_KEY_LEN];
        rand::fill(&mut k).map_err(|_| FormatError::Crypto)?;
        Ok(Self(k))
    }

    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; DATA_KEY_LEN] = bytes.try_into().map_err(|_| FormatError::Unwrap)?;
        Ok(Self(arr))
    }

    /// Raw key bytes, for wrapping only.
    pub fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }

    /// The key commitment stored in the header.
    pub fn commitment(&self) -> [u8; COMMITMENT_LEN] {
        let mut out = [0u8; COMMITMENT_LEN];
        expand(&[], &self.0, &[INFO_COMMITMENT], &mut out);
        out
    }

    /// Constant-time check of a stored commitment against this key.
    pub fn check_commitment(&self, stored: &[u8]) -> Result<()> {
        let mut expected = self.commitment();
        let ok: bool = expected.as_slice().ct_eq(stored).into();
        expected.zeroize();
        if ok {
            Ok(())
        } else {
            Err(FormatError::Commitment)
        }
    }

    /// The key of the header MAC.
    pub fn header_mac_key(&self) -> MacKey {
        let mut out = [0u8; 32];
        expand(&[], &self.0, &[INFO_HEADER_MAC], &mut out);
        MacKey(out)
    }

    /// A 32-byte subkey for `info` (HKDF with an empty salt).
    pub(crate) fn derive(&self, info: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        expand(&[], &self.0, &[info], &mut out[..]);
        out
    }

    /// The AES-256-GCM key of one stream (a whole single-part object, or one part).
    pub fn payload_key(&self, salt: &[u8; SALT_LEN], part: u32, plaintext_len: u64) -> PayloadKey {
        let mut out = [0u8; 32];
        expand(
            salt,
            &self.0,
            &[
                INFO_PAYLOAD,
                &part.to_be_bytes(),
                &plaintext_len.to_be_bytes(),
            ],
            &mut out,
        );
        let key = PayloadKey::new(&out);
        out.zeroize();
        key
    }
}

/// HMAC key for the header. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MacKey(pub(crate) [u8; 32]);

/// An AES-256-GCM key for one stream. aws-lc-rs keeps the expanded key; it
/// clears its own memory when dropped.
pub struct PayloadKey(aws_lc_rs::aead::LessSafeKey);

impl PayloadKey {
    fn new(raw: &[u8; 32]) -> Self {
        let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, raw)
            .expect("AES-256 key length is 32");
        Self(aws_lc_rs::aead::LessSafeKey::new(unbound))
    }

    pub(crate) fn aead(&self) -> &aws_lc_rs::aead::LessSafeKey {
        &self.0
    }
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadKey(<redacted>)")
    }
}

/// A random salt from the system CSPRNG.
pub fn random_salt() -> Result<[u8; SALT_LEN]> {
    let mut s = [0u8; SALT_LEN];
    rand::fill(&mut s).map_err(|_| FormatError::Crypto)?;
    Ok(s)
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF-SHA256 output of at most 32 bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_is_checked() {
        let k = DataKey::from_bytes([7; 32]);
        let c = k.commitment();
        assert!(k.check_commitment(&c).is_ok());
        let mut bad = c;
        bad[0] ^= 1;
        assert_eq!(k.check_commitment(&bad), Err(FormatError::Commitment));
        let other = DataKey::from_bytes([8; 32]);
        assert_eq!(other.check_commitment(&c), Err(FormatError::Commitment));
    }

    #[test]
    fn debug_never_prints_key() {
        let k = DataKey::from_bytes([0xAB; 32]);
        let s = format!("{k:?}");
        assert!(!s.to_lowercase().contains("ab"));
    }

    #[test]
    fn subkeys_differ() {
        let k = DataKey::from_bytes([1; 32]);
        assert_ne!(k.commitment(), k.header_mac_key().0);
    }
}
