//! Fingerprints: how people name a public key out loud.
//!
//! `Fingerprint = SHA-256(SPKI DER)[..10]`, shown as 20 uppercase hex digits
//! in 5 groups of 4 joined by `-` (`7F3A-92C1-0B4D-E588-1A2C`). 80 bits: short
//! enough to read over the phone, and a second preimage (a key of one's own
//! with someone else's fingerprint) still costs about 2^80 key generations.
//! The same rule applies to every key type (RSA, Ed25519, X25519): the SPKI
//! names the algorithm, so keys of different types never share a fingerprint
//! by construction. Fingerprints are of public keys: comparing them needs no
//! constant time.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;

/// Bytes of a fingerprint. Fixed in v1.
pub const FINGERPRINT_LEN: usize = 10;

/// The fingerprint of a public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; FINGERPRINT_LEN]);

/// A text that is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a key fingerprint (20 hex digits, as 5 groups of 4 joined by '-'): {0:?}")]
pub struct FingerprintError(pub String);

impl Fingerprint {
    /// The fingerprint of a public key given as its SPKI DER.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let d = digest::digest(&digest::SHA256, spki_der);
        let mut f = [0u8; FINGERPRINT_LEN];
        f.copy_from_slice(&d.as_ref()[..FINGERPRINT_LEN]);
        Self(f)
    }

    pub fn from_bytes(bytes: [u8; FINGERPRINT_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; FINGERPRINT_LEN] {
        &self.0
    }

    /// Parses the canonical form, in either case; the dashes may be left
    /// out altogether (`7f3a92c10b4de5881a2c`) but not put elsewhere.
    pub fn parse(text: &str) -> Result<Self, FingerprintError> {
        let err = || FingerprintError(text.chars().take(64).collect());
        let t = text.trim();
        let digits: String = if t.len() == 24 {
            let groups: Vec<&str> = t.split('-').collect();
            if groups.len() != 5 || groups.iter().any(|g| g.len() != 4) {
                return Err(err());
            }
            groups.concat()
        } else if t.len() == 20 {
            t.to_string()
        } else {
            return Err(err());
        };
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let raw = hex::decode(digits).map_err(|_| err())?;
        Ok(Self(raw.try_into().map_err(|_| err())?))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode_upper(self.0);
        for (i, group) in h.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(std::str::from_utf8(group).expect("hex is ASCII"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let f =
            Fingerprint::from_bytes([0x7f, 0x3a, 0x92, 0xc1, 0x0b, 0x4d, 0xe5, 0x88, 0x1a, 0x2c]);
        assert_eq!(f.to_string(), "7F3A-92C1-0B4D-E588-1A2C");
        assert_eq!(format!("{f:?}"), "Fingerprint(7F3A-92C1-0B4D-E588-1A2C)");
        for ok in [
            "7F3A-92C1-0B4D-E588-1A2C",
            "7f3a-92c1-0b4d-e588-1a2c",
            " 7F3A-92C1-0B4D-E588-1A2C\n",
            "7F3A92C10B4DE5881A2C",
        ] {
            assert_eq!(Fingerprint::parse(ok).unwrap(), f, "{ok:?}");
        }
        for bad in [
            "",
            "7F3A-92C1-0B4D-E588-1A2",
            "7F3A-92C1-0B4D-E588-1A2C-",
            "7F3A-92C1-0B4D-E588-1A2G",
            "7F3A9-2C1-0B4D-E588-1A2C",
            "7F3A:92C1:0B4D:E588:1A2C",
            "7F3A92C10B4DE5881A2",
            "+F3A92C10B4DE5881A2C",
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!("7f3a92c10b4de5881a2c".parse::<Fingerprint>().unwrap(), f);
    }

    #[test]
    fn of_spki_is_truncated_sha256() {
        let f = Fingerprint::of_spki(b"abc");
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ...
        assert_eq!(f.to_string(), "BA78-16BF-8F01-CFEA-4141");
        assert_ne!(Fingerprint::of_spki(b"abd"), f);
    }
}
