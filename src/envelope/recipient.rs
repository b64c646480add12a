//! The one joint where key types plug in: a [`Recipient`] wraps a data key for
//! a public key, an [`Identity`] unwraps it with a private key. RSA-OAEP-256
//! (here) and X25519 ([`super::x25519`], for groups) implement them; a KMS
//! would be another implementation of these two traits and a new algorithm
//! byte, and would touch nothing else.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
    OAEP_SHA256_MGF1SHA256,
};
use zeroize::{Zeroize, Zeroizing};

use super::header::RecipientStanza;
use super::keys::DataKey;
use super::{FormatError, Result, DATA_KEY_LEN, KEY_ID_LEN};

/// Algorithm byte of a recipient stanza. Values are fixed in v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Algorithm {
    /// RSA-OAEP with SHA-256 and MGF1-SHA-256, label [`OAEP_LABEL`].
    RsaOaep256 = 1,
    /// X25519, HKDF-SHA256 and AES-256-GCM ([`super::x25519`]).
    X25519 = 2,
}

impl Algorithm {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::RsaOaep256),
            2 => Some(Self::X25519),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RsaOaep256 => "RSA-OAEP-256",
            Self::X25519 => "X25519-HKDF-AES256GCM",
        }
    }
}

/// OAEP label binding wrapped keys to this use. Fixed in v1.
pub const OAEP_LABEL: &[u8] = b"sealgate/v1/data-key";

/// Key id of a public key: the first 8 bytes of SHA-256 over its SPKI DER.
pub fn key_id_of_spki(spki_der: &[u8]) -> [u8; KEY_ID_LEN] {
    let d = digest::digest(&digest::SHA256, spki_der);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&d.as_ref()[..KEY_ID_LEN]);
    id
}

/// Wraps data keys for one public key.
pub trait Recipient: Send + Sync + std::fmt::Debug {
    fn algorithm(&self) -> Algorithm;
    fn key_id(&self) -> [u8; KEY_ID_LEN];
    /// Length of the wrapped key this recipient produces (deterministic).
    fn wrapped_len(&self) -> usize;
    fn wrap(&self, dk: &DataKey) -> Result<RecipientStanza>;
    /// A short description for people (`RSA-3072`).
    fn describe(&self) -> String;
    /// The public key, SubjectPublicKeyInfo DER (its key id and fingerprint
    /// are hashes of it).
    fn spki_der(&self) -> Vec<u8>;
    /// Bytes one stanza of this recipient adds to a header.
    fn stanza_len(&self) -> usize {
        1 + KEY_ID_LEN + 2 + self.wrapped_len()
    }
}

/// Unwraps data keys with one private key.
pub trait Identity: Send + Sync + std::fmt::Debug {
    fn algorithm(&self) -> Algorithm;
    fn key_id(&self) -> [u8; KEY_ID_LEN];
    fn unwrap(&self, stanza: &RecipientStanza) -> Result<DataKey>;
    /// The public side, to encrypt for oneself.
    fn recipient(&self) -> Result<std::sync::Arc<dyn Recipient>>;
    /// A short description for people (`RSA-3072`).
    fn describe(&self) -> String;
    /// The public key, SubjectPublicKeyInfo DER.
    fn spki_der(&self) -> Vec<u8>;
    /// Whether this identity opens `stanza` (same algorithm and key id).
    fn matches(&self, stanza: &RecipientStanza) -> bool {
        self.key_id() == stanza.key_id && self.algorithm() as u8 == stanza.algorithm
    }
    /// Unwraps a 32-byte secret other than a data key, wrapped for this key
    /// under a label of its own (a group's epoch key, `crate::sharing`).
    /// Key types that cannot refuse ([`FormatError::Unwrap`]).
    fn unwrap_secret(&self, wrapped: &[u8], label: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let _ = (wrapped, label);
        Err(FormatError::Unwrap)
    }
}

/// An RSA public key used with OAEP-SHA256.
pub struct RsaOaepRecipient {
    key: OaepPublicEncryptingKey,
    key_id: [u8; KEY_ID_LEN],
    bits: usize,
    spki: Vec<u8>,
}

impl RsaOaepRecipient {
    /// From an SPKI (SubjectPublicKeyInfo) DER public key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let public = PublicEncryptingKey::from_der(der)
            .map_err(|_| FormatError::MalformedHeader("not an RSA SPKI public key"))?;
        let bits = public.key_size_bits();
        if bits < 2048 {
            return Err(FormatError::MalformedHeader(
                "RSA keys under 2048 bits are refused",
            ));
        }
        let key = OaepPublicEncryptingKey::new(public).map_err(|_| FormatError::Crypto)?;
        Ok(Self {
            key,
            key_id: key_id_of_spki(der),
            bits,
            spki: der.to_vec(),
        })
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// RSA-OAEP-256 of a 32-byte secret other than a data key, under its own
    /// OAEP label (a group's epoch key, `crate::sharing`).
    pub fn wrap_secret(&self, secret: &[u8; 32], label: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.key.ciphertext_size()];
        let n = self
            .key
            .encrypt(&OAEP_SHA256_MGF1SHA256, secret, &mut out, Some(label))
            .map_err(|_| FormatError::Crypto)?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

impl Recipient for RsaOaepRecipient {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaOaep256
    }
    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.key_id
    }
    fn wrapped_len(&self) -> usize {
        self.key.ciphertext_size()
    }
    fn describe(&self) -> String {
        format!("RSA-{}", self.bits)
    }
    fn spki_der(&self) -> Vec<u8> {
        self.spki.clone()
    }
    fn wrap(&self, dk: &DataKey) -> Result<RecipientStanza> {
        let mut out = vec![0u8; self.key.ciphertext_size()];
        let n = self
            .key
            .encrypt(
                &OAEP_SHA256_MGF1SHA256,
                dk.expose(),
                &mut out,
                Some(OAEP_LABEL),
            )
            .map_err(|_| FormatError::Crypto)?
            .len();
        out.truncate(n);
        Ok(RecipientStanza {
            algorithm: Algorithm::RsaOaep256 as u8,
            key_id: self.key_id,
            wrapped: out,
        })
    }
}

/// An RSA private key used with OAEP-SHA256.
pub struct RsaOaepIdentity {
    key: OaepPrivateDecryptingKey,
    key_id: [u8; KEY_ID_LEN],
    public_spki: Vec<u8>,
    bits: usize,
}

impl RsaOaepIdentity {
    /// From an unencrypted PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let private = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|_| FormatError::MalformedHeader("not an RSA PKCS#8 private key"))?;
        Self::from_key(private)
    }

    fn from_key(private: PrivateDecryptingKey) -> Result<Self> {
        let bits = private.key_size_bits();
        let public_spki = private
            .public_key()
            .as_der()
            .map_err(|_| FormatError::Crypto)?
            .as_ref()
            .to_vec();
        let key_id = key_id_of_spki(&public_spki);
        let key = OaepPrivateDecryptingKey::new(private).map_err(|_| FormatError::Crypto)?;
        Ok(Self {
            key,
            key_id,
            public_spki,
            bits,
        })
    }

    pub fn public_spki_der(&self) -> &[u8] {
        &self.public_spki
    }

    pub fn bits(&self) -> usize {
        self.bits
    }
}

impl std::fmt::Debug for RsaOaepIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RsaOaepIdentity(key id {}, {} bits)",
            hex::encode(self.key_id),
            self.bits
        )
    }
}

impl std::fmt::Debug for RsaOaepRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RsaOaepRecipient(key id {}, {} bits)",
            hex::encode(self.key_id),
            self.bits
        )
    }
}

impl Identity for RsaOaepIdentity {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaOaep256
    }
    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.key_id
    }
    fn recipient(&self) -> Result<std::sync::Arc<dyn Recipient>> {
        Ok(std::sync::Arc::new(RsaOaepRecipient::from_spki_der(
            &self.public_spki,
        )?))
    }
    fn describe(&self) -> String {
        format!("RSA-{}", self.bits)
    }
    fn spki_der(&self) -> Vec<u8> {
        self.public_spki.clone()
    }
    fn unwrap_secret(&self, wrapped: &[u8], label: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new(vec![0u8; self.key.min_output_size()]);
        let pt = self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out[..], Some(label))
            .map_err(|_| FormatError::Unwrap)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        if pt.len() != secret.len() {
            return Err(FormatError::Unwrap);
        }
        secret.copy_from_slice(pt);
        Ok(secret)
    }
    fn unwrap(&self, stanza: &RecipientStanza) -> Result<DataKey> {
        if stanza.algorithm != Algorithm::RsaOaep256 as u8 || stanza.key_id != self.key_id {
            return Err(FormatError::Unwrap);
        }
        let mut out = vec![0u8; self.key.min_output_size()];
        let res = self
            .key
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                &stanza.wrapped,
                &mut out,
                Some(OAEP_LABEL),
            )
            .map_err(|_| FormatError::Unwrap)
            .and_then(|pt| {
                if pt.len() == DATA_KEY_LEN {
                    DataKey::from_slice(pt)
                } else {
                    Err(FormatError::Unwrap)
                }
            });
        out.zeroize();
        res
    }
}

/// Generates an RSA key pair and returns (PKCS#8 DER private key, SPKI DER public key).
/// The private DER is zeroized when dropped.
pub fn generate_rsa_pkcs8(bits: usize) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>)> {
    use aws_lc_rs::rsa::KeySize;
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => {
            return Err(FormatError::MalformedHeader(
                "RSA key size must be 2048, 3072 or 4096",
            ))
        }
    };
    let private = PrivateDecryptingKey::generate(size).map_err(|_| FormatError::Crypto)?;
    let der = private.as_der().map_err(|_| FormatError::Crypto)?;
    let private_der = zeroize::Zeroizing::new(der.as_ref().to_vec());
    let public = private
        .public_key()
        .as_der()
        .map_err(|_| FormatError::Crypto)?
        .as_ref()
        .to_vec();
    Ok((private_der, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip() {
        let (priv_der, pub_der) = generate_rsa_pkcs8(2048).unwrap();
        let id = RsaOaepIdentity::from_pkcs8_der(&priv_der).unwrap();
        let r = RsaOaepRecipient::from_spki_der(&pub_der).unwrap();
        assert_eq!(id.key_id(), r.key_id());
        let dk = DataKey::generate().unwrap();
        let st = r.wrap(&dk).unwrap();
        assert_eq!(st.wrapped.len(), 256);
        assert_eq!(id.unwrap(&st).unwrap().expose(), dk.expose());
        let mut bad = st.clone();
        bad.wrapped[10] ^= 1;
        assert!(id.unwrap(&bad).is_err());
        // A secret under another label: opens only with that label, and a
        // data-key stanza never opens as one (labels separate the uses).
        let w = r.wrap_secret(&[9; 32], b"other/label").unwrap();
        assert_eq!(*id.unwrap_secret(&w, b"other/label").unwrap(), [9; 32]);
        assert_eq!(
            id.unwrap_secret(&w, OAEP_LABEL).unwrap_err(),
            FormatError::Unwrap
        );
        assert!(id.unwrap_secret(&st.wrapped, b"other/label").is_err());
    }
}
