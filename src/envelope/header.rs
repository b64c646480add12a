//! The envelope header: version, key commitment, body binding, wrapped keys and
//! a MAC bound to the bucket and object key.
//!
//! Binary layout (all integers big-endian; fixed in v1):
//!
//! ```text
//! u8      version            = 1
//! u8      flags              bit 0: multipart; bit 1: sealed attributes; every
//!                            other bit must be 0
//! u8      segment size log2  = 16
//! [32]    commitment         HKDF(DK, "sealgate/v1/commitment")
//! single part (flags bit 0 clear):
//!   [16]  stream salt        must equal the salt in the body's stream header
//!   u64   plaintext length   must equal the length in the body's stream header
//! multipart (flags bit 0 set):
//!   [16]  upload id          random, names the multipart manifest
//! u8      recipient count    >= 1
//! per recipient:
//!   u8    algorithm          1 = RSA-OAEP-256
//!   [8]   key id             SHA-256(SPKI DER)[..8]
//!   u16   wrapped length
//!   [..]  wrapped data key
//! flags bit 1 set:
//!   u16   attributes length
//!   [..]  attributes         a sealed block (purpose "attributes", root DK):
//!                            Content-Type, user metadata... ([`super::attributes`])
//! [32]    mac                HMAC-SHA256(K_mac, MAC input)
//! ```
//!
//! MAC input: `"sealgate/v1/header" || u16 len(bucket) || bucket || u16 len(key) ||
//! key || every header byte before the MAC`.
//!
//! In object metadata the header travels as one entry, `x-amz-meta-sg`, whose
//! value is the unpadded base64url of these bytes. When that does not fit the
//! metadata budget, the value is instead a pointer (see [`MetaValue`]) and the
//! header bytes lead the object body (single part) or sit in the manifest
//! (multipart).

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::attributes::{self, Attributes};
use super::keys::DataKey;
use super::recipient::{Identity, Recipient};
use super::sealed;
use super::{
    FormatError, Result, COMMITMENT_LEN, KEY_ID_LEN, MAC_LEN, SALT_LEN, SEGMENT_SIZE_LOG2, VERSION,
};

const MAC_CONTEXT: &[u8] = b"sealgate/v1/header";
const FLAG_MULTIPART: u8 = 0x01;
const FLAG_ATTRIBUTES: u8 = 0x02;
/// Marks a pointer whose header leads the object body; never a header's flags.
const MARK_BODY: u8 = 0x80;
/// Marks a pointer whose header is in the multipart manifest.
const MARK_MANIFEST: u8 = 0x81;
/// Upper bound on a header we accept from the store (DoS guard).
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// One wrapped data key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientStanza {
    pub algorithm: u8,
    pub key_id: [u8; KEY_ID_LEN],
    pub wrapped: Vec<u8>,
}

/// What ties the header to the body it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyBinding {
    Single {
        salt: [u8; SALT_LEN],
        plaintext_len: u64,
    },
    Multipart {
        upload_id: [u8; 16],
    },
}

/// A parsed (not yet authenticated) or freshly sealed header. `raw` keeps the
/// exact bytes, so the MAC is checked over what was read.
#[derive(Clone, Debug)]
pub struct Header {
    pub version: u8,
    pub commitment: [u8; COMMITMENT_LEN],
    pub binding: BodyBinding,
    pub recipients: Vec<RecipientStanza>,
    /// The sealed attributes block (flags bit 1), if the header has one.
    /// Headers written before attributes were sealed have none: their
    /// objects' client-visible headers are the store's word.
    pub attributes: Option<Vec<u8>>,
    raw: Vec<u8>,
}

/// What a new header is bound to; the entry point picks the random parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewBinding {
    /// A single-part object of this plaintext length (a fresh stream salt).
    Single { plaintext_len: u64 },
    /// A multipart upload (a fresh upload id).
    Multipart,
}

/// A new object's data key and its sealed header: what
/// [`Header::encrypt_for`] gives.
pub struct Sealed {
    pub dk: DataKey,
    pub header: Header,
}

/// What changes when a header is sealed again for a copy, a rename or a
/// rewrap (same data key, same content).
#[derive(Default)]
pub struct Reseal<'a> {
    /// New recipients; `None` keeps the header's stanzas as they are.
    pub recipients: Option<&'a [&'a dyn Recipient]>,
    /// New stanzas already wrapped (a rewrap that keeps some as they are).
    pub stanzas: Option<Vec<RecipientStanza>>,
    /// A new binding (a multipart copy gets a new upload id).
    pub binding: Option<BodyBinding>,
    /// New attributes; `None` keeps the sealed block as it is.
    pub attributes: Option<&'a Attributes>,
}

/// The value of the `sg` metadata entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaValue {
    /// The whole header, inline.
    Inline(Vec<u8>),
    /// The header leads the body and is `header_len` bytes long. `mac` is the
    /// header MAC for the object's current bucket and key: authoritative in
    /// place of the MAC inside the body header, so that a copy or rename
    /// (which cannot rewrite the body) rebinds the object by rewriting
    /// metadata only.
    Overflow { header_len: u32, mac: [u8; MAC_LEN] },
    /// The header of a multipart object is in its manifest (named by
    /// `upload_id`). `mac` is authoritative as for [`MetaValue::Overflow`].
    InManifest {
        upload_id: [u8; 16],
        mac: [u8; MAC_LEN],
    },
}

impl MetaValue {
    pub fn encode(&self) -> String {
        match self {
            MetaValue::Inline(raw) => URL_SAFE_NO_PAD.encode(raw),
            MetaValue::Overflow { header_len, mac } => {
                let mut b = vec![VERSION, MARK_BODY];
                b.extend_from_slice(&header_len.to_be_bytes());
                b.extend_from_slice(mac);
                URL_SAFE_NO_PAD.encode(b)
            }
            MetaValue::InManifest { upload_id, mac } => {
                let mut b = vec![VERSION, MARK_MANIFEST];
                b.extend_from_slice(upload_id);
                b.extend_from_slice(mac);
                URL_SAFE_NO_PAD.encode(b)
            }
        }
    }

    pub fn decode(text: &str) -> Result<Self> {
        if text.len() > MAX_HEADER_LEN * 2 {
            return Err(FormatError::MalformedHeader("metadata value too long"));
        }
        let b = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| FormatError::MalformedHeader("metadata value is not base64url"))?;
        if b.len() < 2 {
            return Err(FormatError::MalformedHeader("metadata value too short"));
        }
        if b[0] != VERSION {
            return Err(FormatError::UnsupportedVersion(b[0]));
        }
        if b[1] == MARK_MANIFEST {
            if b.len() != 18 + MAC_LEN {
                return Err(FormatError::MalformedHeader("bad manifest pointer"));
            }
            return Ok(MetaValue::InManifest {
                upload_id: b[2..18].try_into().expect("length checked"),
                mac: b[18..].try_into().expect("length checked"),
            });
        }
        if b[1] == MARK_BODY {
            if b.len() != 6 + MAC_LEN {
                return Err(FormatError::MalformedHeader("bad overflow pointer"));
            }
            let header_len = u32::from_be_bytes([b[2], b[3], b[4], b[5]]);
            if header_len as usize > MAX_HEADER_LEN || header_len == 0 {
                return Err(FormatError::MalformedHeader(
                    "overflow header length out of range",
                ));
            }
            let mac = b[6..].try_into().expect("length checked");
            return Ok(MetaValue::Overflow { header_len, mac });
        }
        Ok(MetaValue::Inline(b))
    }
}

fn mac_key(dk: &DataKey) -> hmac::Key {
    let k = dk.header_mac_key();
    hmac::Key::new(hmac::HMAC_SHA256, &k.0)
}

fn mac_input_bytes(out: &mut Vec<u8>, bucket: &str, key: &str, body: &[u8]) {
    out.extend_from_slice(MAC_CONTEXT);
    for s in [bucket, key] {
        // S3 bucket names are at most 63 bytes and keys at most 1024 bytes.
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(body);
}

impl Header {
    /// The one entry point for new objects: a fresh random data key, wrapped
    /// for every recipient, the key commitment, the binding (fresh salt or
    /// upload id), the sealed attributes, and the MAC for `bucket`/`key`.
    /// Single-part, multipart, copy-through and reencrypt all come here.
    pub fn encrypt_for(
        recipients: &[&dyn Recipient],
        binding: NewBinding,
        attributes: &Attributes,
        bucket: &str,
        key: &str,
    ) -> Result<Sealed> {
        let dk = DataKey::generate()?;
        let binding = match binding {
            NewBinding::Single { plaintext_len } => BodyBinding::Single {
                salt: super::keys::random_salt()?,
                plaintext_len,
            },
            NewBinding::Multipart => BodyBinding::Multipart {
                upload_id: super::keys::random_salt()?,
            },
        };
        let stanzas = wrap_all(&dk, recipients)?;
        let attrs = seal_attributes(&dk, attributes)?;
        let header = Self::from_parts(
            &dk,
            dk.commitment(),
            binding,
            stanzas,
            Some(attrs),
            bucket,
            key,
        )?;
        Ok(Sealed { dk, header })
    }

    /// Builds and MACs a header for `dk` with given stanzas and an already
    /// sealed attributes block: for test vectors and for the naive second
    /// implementation in the tests. Writers use [`Header::encrypt_for`].
    pub fn assemble(
        dk: &DataKey,
        binding: BodyBinding,
        stanzas: Vec<RecipientStanza>,
        attributes: Option<Vec<u8>>,
        bucket: &str,
        key: &str,
    ) -> Result<Self> {
        Self::from_parts(
            dk,
            dk.commitment(),
            binding,
            stanzas,
            attributes,
            bucket,
            key,
        )
    }

    /// Builds and MACs a header without attributes, as releases before
    /// sealed attributes wrote it. Kept for test vectors and tests of old
    /// objects: new objects always get attributes.
    pub fn seal(
        dk: &DataKey,
        recipients: &[&dyn Recipient],
        binding: BodyBinding,
        bucket: &str,
        key: &str,
    ) -> Result<Self> {
        let stanzas = wrap_all(dk, recipients)?;
        Self::from_parts(dk, dk.commitment(), binding, stanzas, None, bucket, key)
    }

    /// This header's content sealed again under a new name, with the changes
    /// in `r`. `dk` must be this header's (authenticated) data key.
    pub fn reseal(&self, dk: &DataKey, r: Reseal<'_>, bucket: &str, key: &str) -> Result<Self> {
        let stanzas = match (r.stanzas, r.recipients) {
            (Some(s), _) => s,
            (None, Some(rs)) => wrap_all(dk, rs)?,
            (None, None) => self.recipients.clone(),
        };
        let attributes = match r.attributes {
            Some(a) => Some(seal_attributes(dk, a)?),
            None => self.attributes.clone(),
        };
        Self::from_parts(
            dk,
            self.commitment,
            r.binding.unwrap_or(self.binding),
            stanzas,
            attributes,
            bucket,
            key,
        )
    }

    fn from_parts(
        dk: &DataKey,
        commitment: [u8; COMMITMENT_LEN],
        binding: BodyBinding,
        recipients: Vec<RecipientStanza>,
        attributes: Option<Vec<u8>>,
        bucket: &str,
        key: &str,
    ) -> Result<Self> {
        if recipients.is_empty() || recipients.len() > 255 {
            return Err(FormatError::MalformedHeader(
                "recipient count must be 1..=255",
            ));
        }
        let mut raw = Vec::with_capacity(96 + recipients.len() * 530);
        raw.push(VERSION);
        let mut flags = match binding {
            BodyBinding::Single { .. } => 0,
            BodyBinding::Multipart { .. } => FLAG_MULTIPART,
        };
        if attributes.is_some() {
            flags |= FLAG_ATTRIBUTES;
        }
        raw.push(flags);
        raw.push(SEGMENT_SIZE_LOG2);
        raw.extend_from_slice(&commitment);
        match binding {
            BodyBinding::Single {
                salt,
                plaintext_len,
            } => {
                raw.extend_from_slice(&salt);
                raw.extend_from_slice(&plaintext_len.to_be_bytes());
            }
            BodyBinding::Multipart { upload_id } => raw.extend_from_slice(&upload_id),
        }
        raw.push(recipients.len() as u8);
        for r in &recipients {
            let len = u16::try_from(r.wrapped.len())
                .map_err(|_| FormatError::MalformedHeader("wrapped key too long"))?;
            raw.push(r.algorithm);
            raw.extend_from_slice(&r.key_id);
            raw.extend_from_slice(&len.to_be_bytes());
            raw.extend_from_slice(&r.wrapped);
        }
        if let Some(a) = &attributes {
            let len = u16::try_from(a.len())
                .map_err(|_| FormatError::MalformedHeader("attributes too long"))?;
            raw.extend_from_slice(&len.to_be_bytes());
            raw.extend_from_slice(a);
        }
        if raw.len() + MAC_LEN > MAX_HEADER_LEN {
            return Err(FormatError::MalformedHeader("header too long"));
        }
        let mut input = Vec::with_capacity(raw.len() + 128);
        mac_input_bytes(&mut input, bucket, key, &raw);
        raw.extend_from_slice(hmac::sign(&mac_key(dk), &input).as_ref());
        Ok(Self {
            version: VERSION,
            commitment,
            binding,
            recipients,
            attributes,
            raw,
        })
    }

    /// Parses header bytes read from the store. Nothing is authenticated yet:
    /// call [`Header::authenticate`] with the unwrapped data key before use.
    pub fn parse(raw: &[u8]) -> Result<Self> {
        if raw.len() > MAX_HEADER_LEN {
            return Err(FormatError::MalformedHeader("header too long"));
        }
        let mut r = Reader { b: raw, pos: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let flags = r.u8()?;
        if flags & !(FLAG_MULTIPART | FLAG_ATTRIBUTES) != 0 {
            return Err(FormatError::MalformedHeader("unknown flags"));
        }
        if r.u8()? != SEGMENT_SIZE_LOG2 {
            return Err(FormatError::MalformedHeader("unsupported segment size"));
        }
        let commitment: [u8; COMMITMENT_LEN] = r.array()?;
        let binding = if flags & FLAG_MULTIPART == 0 {
            BodyBinding::Single {
                salt: r.array()?,
                plaintext_len: u64::from_be_bytes(r.array()?),
            }
        } else {
            BodyBinding::Multipart {
                upload_id: r.array()?,
            }
        };
        let count = r.u8()?;
        if count == 0 {
            return Err(FormatError::MalformedHeader("no recipients"));
        }
        let mut recipients = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let algorithm = r.u8()?;
            let key_id: [u8; KEY_ID_LEN] = r.array()?;
            let len = u16::from_be_bytes(r.array()?) as usize;
            let wrapped = r.take(len)?.to_vec();
            recipients.push(RecipientStanza {
                algorithm,
                key_id,
                wrapped,
            });
        }
        let attributes = if flags & FLAG_ATTRIBUTES != 0 {
            let len = u16::from_be_bytes(r.array()?) as usize;
            if len < sealed::MIN_BLOCK_LEN {
                return Err(FormatError::MalformedHeader("attributes block too short"));
            }
            Some(r.take(len)?.to_vec())
        } else {
            None
        };
        r.take(MAC_LEN)?;
        if r.pos != raw.len() {
            return Err(FormatError::MalformedHeader("trailing bytes after MAC"));
        }
        Ok(Self {
            version,
            commitment,
            binding,
            recipients,
            attributes,
            raw: raw.to_vec(),
        })
    }

    /// Exact bytes of this header.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn is_multipart(&self) -> bool {
        matches!(self.binding, BodyBinding::Multipart { .. })
    }

    /// Key ids of all recipients, as lowercase hex.
    pub fn key_ids_hex(&self) -> Vec<String> {
        self.recipients
            .iter()
            .map(|r| hex::encode(r.key_id))
            .collect()
    }

    /// Checks the key commitment (constant time) and the MAC (constant time)
    /// for this data key, bucket and object key.
    pub fn authenticate(&self, dk: &DataKey, bucket: &str, key: &str) -> Result<()> {
        let mac = &self.raw[self.raw.len() - MAC_LEN..];
        self.authenticate_detached(dk, bucket, key, mac)
    }

    /// As [`Header::authenticate`], with the MAC taken from a pointer.
    pub fn authenticate_detached(
        &self,
        dk: &DataKey,
        bucket: &str,
        key: &str,
        mac: &[u8],
    ) -> Result<()> {
        dk.check_commitment(&self.commitment)?;
        let body = &self.raw[..self.raw.len() - MAC_LEN];
        let mut input = Vec::with_capacity(body.len() + 128);
        mac_input_bytes(&mut input, bucket, key, body);
        // hmac::verify compares in constant time.
        let k = mac_key(dk);
        hmac::verify(&k, &input, mac).map_err(|_| FormatError::HeaderMac)
    }

    /// The sealed attributes, opened with the data key. Call only after
    /// [`Header::authenticate`]. `None` for a header written before
    /// attributes were sealed.
    pub fn open_attributes(&self, dk: &DataKey) -> Result<Option<Attributes>> {
        let Some(block) = &self.attributes else {
            return Ok(None);
        };
        let records = sealed::open(dk.expose(), attributes::PURPOSE, b"", block)?;
        Attributes::decode(&records).map(Some)
    }

    /// The unwrapping step alone: open the first matching stanza.
    pub fn unwrap_with(&self, identities: &[&dyn Identity]) -> Result<DataKey> {
        for st in &self.recipients {
            for id in identities {
                if id.key_id() == st.key_id && id.algorithm() as u8 == st.algorithm {
                    return id.unwrap(st);
                }
            }
        }
        Err(FormatError::NoMatchingRecipient {
            key_ids: self.key_ids_hex(),
        })
    }

    /// Parse, unwrap, check commitment and MAC: the whole opening of a header.
    pub fn open(
        raw: &[u8],
        identities: &[&dyn Identity],
        bucket: &str,
        key: &str,
    ) -> Result<(Self, DataKey)> {
        let h = Self::parse(raw)?;
        let dk = h.unwrap_with(identities)?;
        h.authenticate(&dk, bucket, key)?;
        Ok((h, dk))
    }

    /// The MAC of this header's content for another name (pointers).
    pub fn mac_for(&self, dk: &DataKey, bucket: &str, key: &str) -> [u8; MAC_LEN] {
        let body = &self.raw[..self.raw.len() - MAC_LEN];
        let mut input = Vec::with_capacity(body.len() + 128);
        mac_input_bytes(&mut input, bucket, key, body);
        hmac::sign(&mac_key(dk), &input)
            .as_ref()
            .try_into()
            .expect("HMAC-SHA256 is 32 bytes")
    }

    /// Whether two headers have the same content apart from their MAC (so
    /// one can stand in for the other under a pointer for a new name).
    pub fn same_content(&self, other: &Header) -> bool {
        self.raw[..self.raw.len() - MAC_LEN] == other.raw[..other.raw.len() - MAC_LEN]
    }

    /// Base64url text of the whole header.
    pub fn to_meta_inline(&self) -> String {
        MetaValue::Inline(self.raw.clone()).encode()
    }
}

/// The length of a header for these recipients, with an attributes block
/// of `attributes_len` bytes (the sealed block, see [`sealed`]) or none.
pub fn header_len(
    recipients: &[&dyn Recipient],
    multipart: bool,
    attributes_len: Option<usize>,
) -> usize {
    let binding = if multipart { 16 } else { 24 };
    3 + COMMITMENT_LEN
        + binding
        + 1
        + recipients.iter().map(|r| r.stanza_len()).sum::<usize>()
        + attributes_len.map_or(0, |n| 2 + n)
        + MAC_LEN
}

fn wrap_all(dk: &DataKey, recipients: &[&dyn Recipient]) -> Result<Vec<RecipientStanza>> {
    recipients.iter().map(|r| r.wrap(dk)).collect()
}

fn seal_attributes(dk: &DataKey, a: &Attributes) -> Result<Vec<u8>> {
    sealed::seal(dk.expose(), attributes::PURPOSE, b"", &a.encode()?)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(FormatError::MalformedHeader("header truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::recipient::{generate_rsa_pkcs8, RsaOaepIdentity, RsaOaepRecipient};

    fn pair() -> (RsaOaepIdentity, RsaOaepRecipient) {
        let (p, q) = generate_rsa_pkcs8(2048).unwrap();
        (
            RsaOaepIdentity::from_pkcs8_der(&p).unwrap(),
            RsaOaepRecipient::from_spki_der(&q).unwrap(),
        )
    }

    #[test]
    fn seal_open_and_binding() {
        let (id, r) = pair();
        let dk = DataKey::generate().unwrap();
        let b = BodyBinding::Single {
            salt: [1; 16],
            plaintext_len: 42,
        };
        let h = Header::seal(&dk, &[&r], b, "bkt", "a/b").unwrap();
        let (h2, dk2) = Header::open(h.raw(), &[&id], "bkt", "a/b").unwrap();
        assert_eq!(dk2.expose(), dk.expose());
        assert_eq!(h2.binding, b);
        assert_eq!(
            Header::open(h.raw(), &[&id], "bkt", "a/c").unwrap_err(),
            FormatError::HeaderMac
        );
        assert_eq!(
            Header::open(h.raw(), &[&id], "bkt2", "a/b").unwrap_err(),
            FormatError::HeaderMac
        );
        // Flip each byte of the binding region: MAC must fail.
        for i in 35..59 {
            let mut raw = h.raw().to_vec();
            raw[i] ^= 1;
            assert_eq!(
                Header::open(&raw, &[&id], "bkt", "a/b").unwrap_err(),
                FormatError::HeaderMac
            );
        }
        let mut raw = h.raw().to_vec();
        raw[0] = 2;
        assert_eq!(
            Header::parse(&raw).unwrap_err(),
            FormatError::UnsupportedVersion(2)
        );
        let meta = h.to_meta_inline();
        assert_eq!(
            MetaValue::decode(&meta).unwrap(),
            MetaValue::Inline(h.raw().to_vec())
        );
    }

    #[test]
    fn no_matching_recipient_names_key_ids() {
        let (_, r) = pair();
        let (other, _) = pair();
        let dk = DataKey::generate().unwrap();
        let h = Header::seal(
            &dk,
            &[&r],
            BodyBinding::Multipart { upload_id: [0; 16] },
            "b",
            "k",
        )
        .unwrap();
        match Header::open(h.raw(), &[&other], "b", "k") {
            Err(FormatError::NoMatchingRecipient { key_ids }) => {
                assert_eq!(key_ids, vec![hex::encode(r.key_id())])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn overflow_pointer() {
        let v = MetaValue::Overflow {
            header_len: 1234,
            mac: [7; 32],
        };
        assert_eq!(MetaValue::decode(&v.encode()).unwrap(), v);
        assert!(MetaValue::decode("!!").is_err());
        assert!(Header::parse(&[]).is_err());
        assert!(Header::parse(&[1, 0, 16]).is_err());
    }
}
