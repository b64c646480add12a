//! Ed25519 signing keys: what a group's administrator signs documents with.
//! Separate from decryption keys (an RSA identity never signs, a signing key
//! never decrypts).
//!
//! The private side is kept on disk exactly like an identity: an encrypted
//! PKCS#8 PEM (PBES2: PBKDF2-SHA256, 600,000 iterations, AES-256-CBC; see
//! `crate::keyring::encrypt_private_key`), which `openssl pkey` reads. The
//! public side is an RFC 8410 SPKI (`PUBLIC KEY` PEM); its fingerprint
//! ([`Fingerprint`]) is what a gateway's config pins.

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::fingerprint::Fingerprint;

/// Length of an Ed25519 public key. Fixed by RFC 8032.
pub const ED25519_PUBLIC_LEN: usize = 32;
/// Length of an Ed25519 signature. Fixed by RFC 8032.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// RFC 8410 SubjectPublicKeyInfo of an Ed25519 key, up to the key bytes:
/// SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) }.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("wrong passphrase, or not an encrypted PKCS#8 private key")]
    Passphrase,
    #[error("signature verification failed")]
    BadSignature,
    #[error("crypto backend failure")]
    Crypto,
}

pub type Result<T> = std::result::Result<T, SigningError>;

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VerifyingKey([u8; ED25519_PUBLIC_LEN]);

impl VerifyingKey {
    /// From the raw 32-byte key. Whether it is a valid point shows when a
    /// signature is verified (every verification fails if it is not).
    pub fn from_bytes(bytes: [u8; ED25519_PUBLIC_LEN]) -> Self {
        Self(bytes)
    }

    /// From an RFC 8410 SPKI DER public key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(k) if k.len() == ED25519_PUBLIC_LEN => {
                Ok(Self(k.try_into().expect("length checked")))
            }
            _ => Err(SigningError::Malformed("not an Ed25519 SPKI public key")),
        }
    }

    pub fn as_bytes(&self) -> &[u8; ED25519_PUBLIC_LEN] {
        &self.0
    }

    /// The RFC 8410 SPKI DER (44 bytes).
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        der
    }

    /// The key's fingerprint (of its SPKI DER).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_spki(&self.to_spki_der())
    }

    /// Verifies an Ed25519 signature (RFC 8032) of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8; ED25519_SIGNATURE_LEN]) -> Result<()> {
        UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(msg, sig)
            .map_err(|_| SigningError::BadSignature)
    }

    /// A `PUBLIC KEY` PEM.
    #[cfg(feature = "gateway")]
    pub fn to_spki_pem(&self) -> Result<String> {
        crate::keyring::public_pem(&self.to_spki_der())
            .map_err(|_| SigningError::Malformed("cannot encode PEM"))
    }

    /// From a `PUBLIC KEY` PEM.
    #[cfg(feature = "gateway")]
    pub fn from_spki_pem(text: &str) -> Result<Self> {
        let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
            .map_err(|_| SigningError::Malformed("not a PEM file"))?;
        if label != "PUBLIC KEY" {
            return Err(SigningError::Malformed("expected a PUBLIC KEY PEM"));
        }
        Self::from_spki_der(&der)
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.fingerprint())
    }
}

/// An Ed25519 private key. aws-lc keeps the key and clears it when dropped;
/// nothing here prints it.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: VerifyingKey,
}

impl SigningKey {
    /// A fresh key from the system CSPRNG.
    pub fn generate() -> Result<Self> {
        Self::from_pair(Ed25519KeyPair::generate().map_err(|_| SigningError::Crypto)?)
    }

    /// From a 32-byte RFC 8032 seed: for test vectors (derived keys), and
    /// for tools that keep the seed themselves.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self> {
        Self::from_pair(
            Ed25519KeyPair::from_seed_unchecked(seed)
                .map_err(|_| SigningError::Malformed("not an Ed25519 seed"))?,
        )
    }

    /// From an unencrypted PKCS#8 (v1 or v2) DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        Self::from_pair(
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| SigningError::Malformed("not an Ed25519 PKCS#8 private key"))?,
        )
    }

    fn from_pair(pair: Ed25519KeyPair) -> Result<Self> {
        let public: [u8; ED25519_PUBLIC_LEN] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| SigningError::Crypto)?;
        Ok(Self {
            pair,
            public: VerifyingKey(public),
        })
    }

    /// The unencrypted PKCS#8 v1 DER (RFC 8410), zeroized when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = self.pair.to_pkcs8v1().map_err(|_| SigningError::Crypto)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// An `ENCRYPTED PRIVATE KEY` PEM, with the parameters of identities.
    #[cfg(feature = "gateway")]
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> Result<Zeroizing<String>> {
        if passphrase.is_empty() {
            return Err(SigningError::Malformed("the passphrase must not be empty"));
        }
        let der = self.to_pkcs8_der()?;
        crate::keyring::encrypt_private_key(&der, passphrase)
            .map_err(|_| SigningError::Malformed("cannot encrypt the private key"))
    }

    /// From an `ENCRYPTED PRIVATE KEY` PEM. Unencrypted keys are refused.
    #[cfg(feature = "gateway")]
    pub fn from_encrypted_pem(text: &str, passphrase: &[u8]) -> Result<Self> {
        use pkcs8::der::Decode;
        let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
            .map_err(|_| SigningError::Malformed("not a PEM file"))?;
        let der = Zeroizing::new(der);
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(SigningError::Malformed(
                "expected an ENCRYPTED PRIVATE KEY PEM (unencrypted keys are refused)",
            ));
        }
        let epki = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
            .map_err(|_| SigningError::Malformed("not an encrypted PKCS#8 private key"))?;
        let secret = epki
            .decrypt(passphrase)
            .map_err(|_| SigningError::Passphrase)?;
        Self::from_pkcs8_der(secret.as_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// An Ed25519 signature of `msg` (deterministic, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> [u8; ED25519_SIGNATURE_LEN] {
        let sig = self.pair.sign(msg);
        sig.as_ref()
            .try_into()
            .expect("Ed25519 signatures are 64 bytes")
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = SigningKey::generate().unwrap();
        let sig = k.sign(b"message");
        let v = k.verifying_key();
        v.verify(b"message", &sig).unwrap();
        assert_eq!(v.verify(b"messagf", &sig), Err(SigningError::BadSignature));
        let mut bad = sig;
        bad[10] ^= 1;
        assert_eq!(v.verify(b"message", &bad), Err(SigningError::BadSignature));
        let other = SigningKey::generate().unwrap().verifying_key();
        assert_eq!(
            other.verify(b"message", &sig),
            Err(SigningError::BadSignature)
        );
        assert_ne!(other.fingerprint(), v.fingerprint());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let k = SigningKey::from_seed(&seed).unwrap();
        assert_eq!(
            hex::encode(k.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(k.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn encodings() {
        let k = SigningKey::from_seed(&[7; 32]).unwrap();
        let v = k.verifying_key();
        let spki = v.to_spki_der();
        assert_eq!(spki.len(), 44);
        assert_eq!(VerifyingKey::from_spki_der(&spki).unwrap(), v);
        assert!(VerifyingKey::from_spki_der(&spki[..43]).is_err());
        let mut x = spki.clone();
        x[8] = 0x6e; // the X25519 OID
        assert!(VerifyingKey::from_spki_der(&x).is_err());
        assert_eq!(v.fingerprint(), Fingerprint::of_spki(&spki));
        let der = k.to_pkcs8_der().unwrap();
        let back = SigningKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(back.verifying_key(), v);
        assert_eq!(back.sign(b"m"), k.sign(b"m"), "Ed25519 is deterministic");
        let s = format!("{k:?}");
        assert!(s.contains(&v.fingerprint().to_string()), "{s}");
        assert!(!s.contains("0707"), "{s}");
    }

    #[cfg(feature = "gateway")]
    #[test]
    fn encrypted_pem_round_trip() {
        let k = SigningKey::generate().unwrap();
        let pem = k.to_encrypted_pem(b"correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let back = SigningKey::from_encrypted_pem(&pem, b"correct horse").unwrap();
        assert_eq!(back.verifying_key(), k.verifying_key());
        assert_eq!(
            SigningKey::from_encrypted_pem(&pem, b"wrong").unwrap_err(),
            SigningError::Passphrase
        );
        assert!(k.to_encrypted_pem(b"").is_err());
        let plain = crate::keyring::public_pem(&k.to_pkcs8_der().unwrap())
            .unwrap()
            .replace("PUBLIC KEY", "PRIVATE KEY");
        assert!(SigningKey::from_encrypted_pem(&plain, b"x").is_err());
        let pub_pem = k.verifying_key().to_spki_pem().unwrap();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(
            VerifyingKey::from_spki_pem(&pub_pem).unwrap(),
            k.verifying_key()
        );
    }
}
