//! X25519 recipients (algorithm byte 0x02, `X25519-HKDF-AES256GCM`): an
//! HPKE-like base-mode wrap of the data key for an X25519 public key. Groups
//! use it: an object's data key is wrapped once for the group's current
//! epoch key, whatever the group's size (see `crate::sharing`).
//!
//! Wrap (fixed in v1):
//!
//! ```text
//! e        fresh X25519 key pair, one per wrap
//! shared   = X25519(e_priv, R_pub)            all-zero output is refused
//! KEK      = HKDF-SHA256(salt = e_pub || R_pub, IKM = shared,
//!                        info = "sealgate/v1/x25519-wrap")
//! wrapped  = e_pub (32) || AES-256-GCM(KEK, nonce = 0^12, DK, AAD = "sealgate/v1/x25519")
//!            = 32 + 32 + 16 = 80 bytes
//! ```
//!
//! The KEK is fresh for every wrap (e is), so the all-zero nonce is used
//! once per key. Unwrapping costs one X25519 operation.
//!
//! Key id: SHA-256 over the RFC 8410 SubjectPublicKeyInfo DER of the public
//! key, first 8 bytes, as for RSA ([`key_id_of_spki`]).

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use aws_lc_rs::hkdf;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::header::RecipientStanza;
use super::keys::DataKey;
use super::recipient::{key_id_of_spki, Algorithm, Identity, Recipient};
use super::{FormatError, Result, DATA_KEY_LEN, KEY_ID_LEN, TAG_LEN};

/// Length of an X25519 public or private key. Fixed by RFC 7748.
pub const X25519_KEY_LEN: usize = 32;
/// Length of a wrapped data key: e_pub, encrypted DK, tag. Fixed in v1.
pub const X25519_WRAPPED_LEN: usize = X25519_KEY_LEN + DATA_KEY_LEN + TAG_LEN;
/// HKDF info of the key-encryption key. Fixed in v1.
pub const X25519_WRAP_INFO: &[u8] = b"sealgate/v1/x25519-wrap";
/// AAD of the wrapped data key. Fixed in v1.
pub const X25519_WRAP_AAD: &[u8] = b"sealgate/v1/x25519";

/// RFC 8410 SubjectPublicKeyInfo of an X25519 key, up to the key bytes:
/// SEQUENCE { SEQUENCE { OID 1.3.101.110 }, BIT STRING (0 unused bits) }.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];
/// RFC 8410 OneAsymmetricKey (v1, no attributes, no public key), up to the
/// key bytes: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.110 },
/// OCTET STRING { OCTET STRING (32) } }.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];

/// The SPKI DER (44 bytes) of an X25519 public key.
pub fn x25519_spki_der(public: &[u8; X25519_KEY_LEN]) -> Vec<u8> {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    der
}

/// The raw public key inside an X25519 SPKI DER.
pub fn x25519_public_from_spki(der: &[u8]) -> Result<[u8; X25519_KEY_LEN]> {
    match der.strip_prefix(&SPKI_PREFIX[..]) {
        Some(key) if key.len() == X25519_KEY_LEN => Ok(key.try_into().expect("length checked")),
        _ => Err(FormatError::MalformedHeader(
            "not an X25519 SPKI public key",
        )),
    }
}

struct KekLen;
impl hkdf::KeyType for KekLen {
    fn len(&self) -> usize {
        32
    }
}

/// X25519 of `private` with `peer`, then the KEK. The shared secret never
/// leaves the closure; an all-zero one (a low-order peer point) is refused.
fn kek(
    private: &PrivateKey,
    peer: &[u8; X25519_KEY_LEN],
    e_pub: &[u8; X25519_KEY_LEN],
    r_pub: &[u8; X25519_KEY_LEN],
) -> Result<LessSafeKey> {
    let mut salt = [0u8; 2 * X25519_KEY_LEN];
    salt[..X25519_KEY_LEN].copy_from_slice(e_pub);
    salt[X25519_KEY_LEN..].copy_from_slice(r_pub);
    let mut k = Zeroizing::new([0u8; 32]);
    agreement::agree(
        private,
        UnparsedPublicKey::new(&X25519, peer),
        FormatError::Unwrap,
        |shared| {
            let zero: bool = shared.ct_eq(&[0u8; X25519_KEY_LEN][..]).into();
            if zero || shared.len() != X25519_KEY_LEN {
                return Err(FormatError::Unwrap);
            }
            hkdf::Salt::new(hkdf::HKDF_SHA256, &salt)
                .extract(shared)
                .expand(&[X25519_WRAP_INFO], KekLen)
                .and_then(|okm| okm.fill(&mut k[..]))
                .map_err(|_| FormatError::Crypto)
        },
    )?;
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &k[..]).map_err(|_| FormatError::Crypto)?,
    ))
}

fn public_of(private: &PrivateKey) -> Result<[u8; X25519_KEY_LEN]> {
    let p = private
        .compute_public_key()
        .map_err(|_| FormatError::Crypto)?;
    p.as_ref().try_into().map_err(|_| FormatError::Crypto)
}

/// An X25519 public key data keys are wrapped for.
#[derive(Clone)]
pub struct X25519Recipient {
    public: [u8; X25519_KEY_LEN],
    key_id: [u8; KEY_ID_LEN],
}

impl X25519Recipient {
    /// From the raw 32-byte public key. A low-order point (one for which
    /// every X25519 output is zero) is refused here, not at the first wrap.
    pub fn from_public_bytes(public: [u8; X25519_KEY_LEN]) -> Result<Self> {
        let probe = PrivateKey::generate(&X25519).map_err(|_| FormatError::Crypto)?;
        let probe_pub = public_of(&probe)?;
        kek(&probe, &public, &probe_pub, &public)
            .map_err(|_| FormatError::MalformedHeader("not a usable X25519 public key"))?;
        Ok(Self {
            public,
            key_id: key_id_of_spki(&x25519_spki_der(&public)),
        })
    }

    /// From an RFC 8410 SPKI DER public key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        Self::from_public_bytes(x25519_public_from_spki(der)?)
    }

    pub fn public_bytes(&self) -> &[u8; X25519_KEY_LEN] {
        &self.public
    }

    pub fn spki_der(&self) -> Vec<u8> {
        x25519_spki_der(&self.public)
    }

    /// [`Recipient::wrap`] with a given ephemeral private key: for test
    /// vectors only (an ephemeral key must never be used twice).
    pub fn wrap_with_ephemeral(
        &self,
        dk: &DataKey,
        ephemeral: &[u8; X25519_KEY_LEN],
    ) -> Result<RecipientStanza> {
        let e =
            PrivateKey::from_private_key(&X25519, ephemeral).map_err(|_| FormatError::Crypto)?;
        self.wrap_with(dk, &e)
    }

    fn wrap_with(&self, dk: &DataKey, e: &PrivateKey) -> Result<RecipientStanza> {
        let e_pub = public_of(e)?;
        let key = kek(e, &self.public, &e_pub, &self.public)?;
        let mut wrapped = Vec::with_capacity(X25519_WRAPPED_LEN);
        wrapped.extend_from_slice(&e_pub);
        wrapped.extend_from_slice(dk.expose());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(X25519_WRAP_AAD),
                &mut wrapped[X25519_KEY_LEN..],
            )
            .map_err(|_| FormatError::Crypto)?;
        wrapped.extend_from_slice(tag.as_ref());
        Ok(RecipientStanza {
            algorithm: Algorithm::X25519 as u8,
            key_id: self.key_id,
            wrapped,
        })
    }
}

impl std::fmt::Debug for X25519Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "X25519Recipient(key id {})", hex::encode(self.key_id))
    }
}

impl Recipient for X25519Recipient {
    fn algorithm(&self) -> Algorithm {
        Algorithm::X25519
    }
    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.key_id
    }
    fn wrapped_len(&self) -> usize {
        X25519_WRAPPED_LEN
    }
    fn describe(&self) -> String {
        "X25519".into()
    }
    fn spki_der(&self) -> Vec<u8> {
        x25519_spki_der(self.public_bytes())
    }
    fn wrap(&self, dk: &DataKey) -> Result<RecipientStanza> {
        let e = PrivateKey::generate(&X25519).map_err(|_| FormatError::Crypto)?;
        self.wrap_with(dk, &e)
    }
}

/// An X25519 private key data keys are unwrapped with. The raw private key
/// is zeroized on drop (aws-lc clears its own copy when it frees it) and is
/// never printed.
pub struct X25519Identity {
    secret: Zeroizing<[u8; X25519_KEY_LEN]>,
    key: PrivateKey,
    public: [u8; X25519_KEY_LEN],
    key_id: [u8; KEY_ID_LEN],
}

impl X25519Identity {
    /// A fresh key pair from the system CSPRNG.
    pub fn generate() -> Result<Self> {
        let key = PrivateKey::generate(&X25519).map_err(|_| FormatError::Crypto)?;
        let raw: Curve25519SeedBin = key.as_be_bytes().map_err(|_| FormatError::Crypto)?;
        let mut secret = Zeroizing::new([0u8; X25519_KEY_LEN]);
        secret.copy_from_slice(raw.as_ref());
        drop(raw);
        Self::from_parts(secret, key)
    }

    /// From the raw 32-byte private key (RFC 7748 scalar, clamped when used).
    pub fn from_secret_bytes(secret: &[u8; X25519_KEY_LEN]) -> Result<Self> {
        let key = PrivateKey::from_private_key(&X25519, secret).map_err(|_| FormatError::Crypto)?;
        Self::from_parts(Zeroizing::new(*secret), key)
    }

    /// From an unencrypted RFC 8410 PKCS#8 (v1) DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        match der.strip_prefix(&PKCS8_PREFIX[..]) {
            Some(key) if key.len() == X25519_KEY_LEN => {
                let mut secret = Zeroizing::new([0u8; X25519_KEY_LEN]);
                secret.copy_from_slice(key);
                Self::from_secret_bytes(&secret)
            }
            _ => Err(FormatError::MalformedHeader(
                "not an X25519 PKCS#8 private key",
            )),
        }
    }

    /// The RFC 8410 PKCS#8 (v1) DER private key, zeroized when dropped.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut der = Zeroizing::new(Vec::with_capacity(PKCS8_PREFIX.len() + X25519_KEY_LEN));
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(&self.secret[..]);
        der
    }

    fn from_parts(secret: Zeroizing<[u8; X25519_KEY_LEN]>, key: PrivateKey) -> Result<Self> {
        let public = public_of(&key)?;
        Ok(Self {
            secret,
            key,
            public,
            key_id: key_id_of_spki(&x25519_spki_der(&public)),
        })
    }

    /// The raw private key, for wrapping it (a group's epoch key) only.
    pub fn expose_secret(&self) -> &[u8; X25519_KEY_LEN] {
        &self.secret
    }

    pub fn public_bytes(&self) -> &[u8; X25519_KEY_LEN] {
        &self.public
    }

    pub fn spki_der(&self) -> Vec<u8> {
        x25519_spki_der(&self.public)
    }

    /// The public side as a concrete recipient.
    pub fn to_recipient(&self) -> Result<X25519Recipient> {
        X25519Recipient::from_public_bytes(self.public)
    }
}

impl std::fmt::Debug for X25519Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "X25519Identity(key id {})", hex::encode(self.key_id))
    }
}

impl Identity for X25519Identity {
    fn algorithm(&self) -> Algorithm {
        Algorithm::X25519
    }
    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.key_id
    }
    fn recipient(&self) -> Result<Arc<dyn Recipient>> {
        Ok(Arc::new(self.to_recipient()?))
    }
    fn describe(&self) -> String {
        "X25519".into()
    }
    fn spki_der(&self) -> Vec<u8> {
        x25519_spki_der(self.public_bytes())
    }
    fn unwrap(&self, stanza: &RecipientStanza) -> Result<DataKey> {
        if stanza.algorithm != Algorithm::X25519 as u8
            || stanza.key_id != self.key_id
            || stanza.wrapped.len() != X25519_WRAPPED_LEN
        {
            return Err(FormatError::Unwrap);
        }
        let e_pub: [u8; X25519_KEY_LEN] = stanza.wrapped[..X25519_KEY_LEN]
            .try_into()
            .expect("length checked");
        let key = kek(&self.key, &e_pub, &e_pub, &self.public)?;
        let mut buf = Zeroizing::new(stanza.wrapped[X25519_KEY_LEN..].to_vec());
        let dk = key
            .open_in_place(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(X25519_WRAP_AAD),
                &mut buf[..],
            )
            .map_err(|_| FormatError::Unwrap)?;
        DataKey::from_slice(dk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::attributes::Attributes;
    use crate::envelope::header::{Header, NewBinding};
    use crate::envelope::recipient::{generate_rsa_pkcs8, RsaOaepIdentity, RsaOaepRecipient};
    use crate::envelope::sealed;

    #[test]
    fn round_trip() {
        let id = X25519Identity::generate().unwrap();
        let r = id.to_recipient().unwrap();
        assert_eq!(id.key_id(), r.key_id());
        assert_eq!(r.wrapped_len(), 80);
        assert_eq!(r.stanza_len(), 91);
        let dk = DataKey::generate().unwrap();
        let st = r.wrap(&dk).unwrap();
        assert_eq!(st.algorithm, 2);
        assert_eq!(st.wrapped.len(), 80);
        assert!(id.matches(&st));
        assert_eq!(id.unwrap(&st).unwrap().expose(), dk.expose());
        let again = r.wrap(&dk).unwrap();
        assert_ne!(again.wrapped, st.wrapped, "a fresh ephemeral key per wrap");
        assert_ne!(&again.wrapped[..32], &st.wrapped[..32]);
        // The dyn recipient of the identity wraps for the same key.
        let st2 = id.recipient().unwrap().wrap(&dk).unwrap();
        assert_eq!(id.unwrap(&st2).unwrap().expose(), dk.expose());
    }

    #[test]
    fn tampered_wrap_is_refused() {
        let id = X25519Identity::generate().unwrap();
        let r = id.to_recipient().unwrap();
        let dk = DataKey::generate().unwrap();
        let st = r.wrap(&dk).unwrap();
        for i in 0..st.wrapped.len() {
            let mut bad = st.clone();
            bad.wrapped[i] ^= 0x01;
            assert_eq!(
                id.unwrap(&bad).unwrap_err(),
                FormatError::Unwrap,
                "byte {i}"
            );
        }
        let mut short = st.clone();
        short.wrapped.pop();
        assert_eq!(id.unwrap(&short).unwrap_err(), FormatError::Unwrap);
        let mut long = st.clone();
        long.wrapped.push(0);
        assert_eq!(id.unwrap(&long).unwrap_err(), FormatError::Unwrap);
        let mut alg = st.clone();
        alg.algorithm = 1;
        assert_eq!(id.unwrap(&alg).unwrap_err(), FormatError::Unwrap);
    }

    #[test]
    fn wrong_key_is_refused() {
        let id = X25519Identity::generate().unwrap();
        let other = X25519Identity::generate().unwrap();
        let dk = DataKey::generate().unwrap();
        let st = id.to_recipient().unwrap().wrap(&dk).unwrap();
        assert!(!other.matches(&st));
        assert_eq!(other.unwrap(&st).unwrap_err(), FormatError::Unwrap);
        // Even with the key id forged to match, the other key cannot open it.
        let mut forged = st.clone();
        forged.key_id = other.key_id();
        assert_eq!(other.unwrap(&forged).unwrap_err(), FormatError::Unwrap);
    }

    #[test]
    fn all_zero_and_low_order_points_are_refused() {
        // The all-zero point, the point 1, and a point of order 8 (RFC 7748
        // section 6.1 notes; listed in libsodium's blocklist): every X25519
        // output with them is all zero.
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(
            &hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                .unwrap(),
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        for p in [[0u8; 32], one, order8] {
            assert!(X25519Recipient::from_public_bytes(p).is_err(), "{p:02x?}");
        }
        // A stanza whose ephemeral point is all zero is refused by the
        // identity (no KEK from a zero shared secret).
        let id = X25519Identity::generate().unwrap();
        let st = RecipientStanza {
            algorithm: 2,
            key_id: id.key_id(),
            wrapped: vec![0u8; 80],
        };
        assert_eq!(id.unwrap(&st).unwrap_err(), FormatError::Unwrap);
        let mut st1 = st.clone();
        st1.wrapped[..32].copy_from_slice(&order8);
        assert_eq!(id.unwrap(&st1).unwrap_err(), FormatError::Unwrap);
    }

    #[test]
    fn key_id_and_encodings() {
        let id = X25519Identity::from_secret_bytes(&[0x11; 32]).unwrap();
        let spki = id.spki_der();
        assert_eq!(spki.len(), 44);
        assert_eq!(&spki[..12], &SPKI_PREFIX);
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki);
        assert_eq!(id.key_id(), d.as_ref()[..8]);
        let r = X25519Recipient::from_spki_der(&spki).unwrap();
        assert_eq!(r.key_id(), id.key_id());
        assert_eq!(r.public_bytes(), id.public_bytes());
        assert!(X25519Recipient::from_spki_der(&spki[..43]).is_err());
        let mut ed = spki.clone();
        ed[8] = 0x70; // the Ed25519 OID
        assert!(X25519Recipient::from_spki_der(&ed).is_err());
        let der = id.to_pkcs8_der();
        assert_eq!(der.len(), 48);
        let back = X25519Identity::from_pkcs8_der(&der).unwrap();
        assert_eq!(back.public_bytes(), id.public_bytes());
        assert_eq!(back.expose_secret(), &[0x11; 32]);
        assert!(X25519Identity::from_pkcs8_der(&der[..47]).is_err());
        // The public key of RFC 7748 section 6.1 (Alice).
        let alice: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let a = X25519Identity::from_secret_bytes(&alice).unwrap();
        assert_eq!(
            hex::encode(a.public_bytes()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn debug_never_prints_the_private_key() {
        let id = X25519Identity::from_secret_bytes(&[0xAB; 32]).unwrap();
        let s = format!("{id:?}");
        assert!(!s.contains("abab"), "{s}");
        assert!(s.contains(&hex::encode(id.key_id())));
    }

    #[test]
    fn deterministic_wrap_for_vectors() {
        let id = X25519Identity::from_secret_bytes(&[1; 32]).unwrap();
        let r = id.to_recipient().unwrap();
        let dk = DataKey::from_bytes([2; 32]);
        let a = r.wrap_with_ephemeral(&dk, &[3; 32]).unwrap();
        let b = r.wrap_with_ephemeral(&dk, &[3; 32]).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            &a.wrapped[..32],
            X25519Identity::from_secret_bytes(&[3; 32])
                .unwrap()
                .public_bytes()
        );
        assert_eq!(id.unwrap(&a).unwrap().expose(), dk.expose());
    }

    #[test]
    fn header_mixing_rsa_and_x25519_stanzas() {
        let (p, q) = generate_rsa_pkcs8(2048).unwrap();
        let rsa_id = RsaOaepIdentity::from_pkcs8_der(&p).unwrap();
        let rsa = RsaOaepRecipient::from_spki_der(&q).unwrap();
        let x_id = X25519Identity::generate().unwrap();
        let x = x_id.to_recipient().unwrap();
        let outsider = X25519Identity::generate().unwrap();
        let attrs = Attributes {
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        let sealed = Header::encrypt_for(
            &[&rsa, &x],
            NewBinding::Single { plaintext_len: 5 },
            &attrs,
            "bkt",
            "k",
        )
        .unwrap();
        let raw = sealed.header.raw();
        let attrs_len = sealed.header.attributes.as_ref().unwrap().len();
        assert_eq!(
            raw.len(),
            crate::envelope::header::header_len(&[&rsa, &x], false, Some(attrs_len))
        );
        assert!(attrs_len >= sealed::MIN_BLOCK_LEN);
        let parsed = Header::parse(raw).unwrap();
        assert_eq!(parsed.recipients.len(), 2);
        assert_eq!(parsed.recipients[0].algorithm, 1);
        assert_eq!(parsed.recipients[1].algorithm, 2);
        for ids in [
            vec![&x_id as &dyn Identity],
            vec![&rsa_id as &dyn Identity],
            vec![&outsider as &dyn Identity, &x_id as &dyn Identity],
        ] {
            let (h, dk) = Header::open(raw, &ids, "bkt", "k").unwrap();
            assert_eq!(dk.expose(), sealed.dk.expose());
            assert_eq!(
                h.open_attributes(&dk)
                    .unwrap()
                    .unwrap()
                    .content_type
                    .as_deref(),
                Some("text/plain")
            );
        }
        assert!(matches!(
            Header::open(raw, &[&outsider], "bkt", "k"),
            Err(FormatError::NoMatchingRecipient { .. })
        ));
        assert_eq!(
            Header::open(raw, &[&x_id], "bkt", "other").unwrap_err(),
            FormatError::HeaderMac
        );
    }
}
