//! Format v1 test vectors (`tests/vectors/`, schema in `tests/vectors/README.md`).
//!
//! One test checks every vector file against the library:
//! - pass vectors open to the declared plaintext (and trailer MD5), fed whole
//!   and in odd-sized chunks, and re-encrypting with the same data key and salt
//!   reproduces the stored header and ciphertext byte for byte;
//! - the attributes a reader opens (`Header::open_attributes`) are the
//!   declared ones, or none for a header without an attributes block;
//! - must-fail vectors fail with the declared [`FormatError`] kind;
//! - the generator below, run again, reproduces every file exactly, and there
//!   are no stale files.
//!
//! Besides the library, the test carries a second, deliberately naive
//! implementation of the key schedule, the header MAC, the stream, sealed
//! blocks and the attribute records (straight from `docs/FORMAT.md`, over raw
//! aws-lc-rs primitives) and checks that the library's bytes agree with it;
//! wherever a header authenticates, the naive attributes reader must reach
//! the library's verdict.
//!
//! Every reader here locates the header as FORMAT.md 6 and 9 say: inline in
//! metadata, at the head of the body behind a `0x80` pointer, or in the
//! multipart manifest behind a `0x81` pointer. The library has no such
//! function (the gateway does this with I/O in between), so [`open_header`]
//! puts the library's pieces together.
//!
//! Multipart vectors (a manifest beside the body) are generated and checked
//! in `format_vectors/multipart.rs`: the library reads them the way the
//! gateway does (header, manifest, layout, one stream per part), a naive
//! reader does it again from `docs/FORMAT.md` section 10, and a third walk
//! reads the body without its manifest (10.3, last paragraph).
//!
//! Every vector file is checked on its own: a failure names the vector, and
//! the test goes on to report every other failing vector before it fails.
//!
//! Random values of a writer (salts, upload ids, manifest nonces, the salts of
//! sealed blocks) are derived from the vector's name instead, through the
//! library's `*_with_salt` and `Header::assemble` entry points.
//!
//! `SEALGATE_REGEN_VECTORS=1 cargo test --test format_vectors` rewrites the
//! files. RSA keys live in `keys.json` and are generated only when that file is
//! missing. OAEP is randomized, so wrapped keys are reused from the existing
//! files whenever they still unwrap to the same data key: regenerating with an
//! unchanged format changes no byte.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aws_lc_rs::{aead, hkdf, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;

use sealgate::envelope::attributes::PURPOSE as ATTRIBUTES_PURPOSE;
use sealgate::envelope::header::MetaValue;
use sealgate::envelope::manifest::Manifest;
use sealgate::envelope::recipient::{
    generate_rsa_pkcs8, key_id_of_spki, Algorithm, Identity, Recipient, RsaOaepIdentity,
    RsaOaepRecipient,
};
use sealgate::envelope::stream::{seal_all, Opener, Sealer};
use sealgate::envelope::{sealed, size};
use sealgate::envelope::{
    Attributes, BodyBinding, DataKey, FormatError, Header, RecipientStanza, Reseal, KEY_ID_LEN,
    SALT_LEN, SEGMENT_SIZE, STREAM_HEADER_LEN, TAG_LEN, TRAILER_LEN,
};

#[path = "format_vectors/multipart.rs"]
mod multipart;

#[path = "format_vectors/groups.rs"]
mod groups;

const BUCKET: &str = "sealgate-vectors";
const FILE_FORMAT: &str = "sealgate-format-v1-vector";
/// Plaintext bytes are `(MUL * i + add) mod 256`.
const MUL: u64 = 31;
/// Plaintexts up to this length are also stored as hex.
const INLINE_PLAINTEXT_MAX: usize = 64;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn regen_requested() -> bool {
    std::env::var("SEALGATE_REGEN_VECTORS").is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------
// Small helpers

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

fn pattern(len: usize, add: u8) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (MUL.wrapping_mul(i).wrapping_add(add as u64) % 256) as u8)
        .collect()
}

fn data_key(tag: &str) -> DataKey {
    DataKey::from_bytes(sha256(
        format!("sealgate/v1/vectors/data-key/{tag}").as_bytes(),
    ))
}

fn salt(tag: &str) -> [u8; SALT_LEN] {
    sha256(format!("sealgate/v1/vectors/salt/{tag}").as_bytes())[..SALT_LEN]
        .try_into()
        .unwrap()
}

fn object_key(name: &str) -> String {
    format!("vectors/{name}")
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn unpem(text: &str) -> Vec<u8> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("PEM body is base64")
}

/// The standard fields of an attributes block (FORMAT.md 4.6): record tag
/// and name in a vector's `attributes`.
const ATTRIBUTE_FIELDS: [(u8, &str); 6] = [
    (0x01, "content_type"),
    (0x02, "content_encoding"),
    (0x03, "content_disposition"),
    (0x04, "content_language"),
    (0x05, "cache_control"),
    (0x06, "expires"),
];
/// The repeatable user-metadata record.
const ATTRIBUTE_META: u8 = 0x10;

fn attribute_slots(a: &Attributes) -> [&Option<String>; 6] {
    [
        &a.content_type,
        &a.content_encoding,
        &a.content_disposition,
        &a.content_language,
        &a.cache_control,
        &a.expires,
    ]
}

/// A vector's `attributes`: the standard fields present, and `metadata`.
fn attributes_json(a: &Attributes) -> Value {
    let mut o = serde_json::Map::new();
    for ((_, name), v) in ATTRIBUTE_FIELDS.iter().zip(attribute_slots(a)) {
        if let Some(v) = v {
            o.insert(name.to_string(), json!(v));
        }
    }
    o.insert("metadata".into(), json!(a.metadata));
    Value::Object(o)
}

fn attributes_from_json(v: &Value) -> Attributes {
    let text = |name: &str| v.get(name).map(|x| x.as_str().unwrap().to_string());
    let known: BTreeSet<&str> = ATTRIBUTE_FIELDS
        .iter()
        .map(|f| f.1)
        .chain(["metadata"])
        .collect();
    for k in v.as_object().expect("attributes is an object").keys() {
        assert!(known.contains(k.as_str()), "unknown attribute field {k}");
    }
    Attributes {
        content_type: text("content_type"),
        content_encoding: text("content_encoding"),
        content_disposition: text("content_disposition"),
        content_language: text("content_language"),
        cache_control: text("cache_control"),
        expires: text("expires"),
        metadata: serde_json::from_value(v["metadata"].clone()).expect("metadata map"),
        // No vector carries checksum records yet (optional records, 4.6).
        checksums: Vec::new(),
    }
}

/// Why a reader refused an object: a format error, or (multipart) no
/// manifest where the header says it is, which is not a [`FormatError`].
#[derive(Debug)]
enum Refused {
    Format(FormatError),
    MissingManifest,
    /// 10.3 step 7: the trailers' MD5s do not give the manifest's ETag.
    EtagMismatch,
}

impl From<FormatError> for Refused {
    fn from(e: FormatError) -> Self {
        Refused::Format(e)
    }
}

impl Refused {
    fn kind(&self) -> &'static str {
        match self {
            Refused::Format(e) => error_kind(e),
            Refused::MissingManifest => "MissingManifest",
            Refused::EtagMismatch => "EtagMismatch",
        }
    }
}

fn error_kind(e: &FormatError) -> &'static str {
    match e {
        FormatError::UnsupportedVersion(_) => "UnsupportedVersion",
        FormatError::MalformedHeader(_) => "MalformedHeader",
        FormatError::HeaderMac => "HeaderMac",
        FormatError::Commitment => "Commitment",
        FormatError::NoMatchingRecipient { .. } => "NoMatchingRecipient",
        FormatError::Unwrap => "Unwrap",
        FormatError::SegmentAuth => "SegmentAuth",
        FormatError::Truncated => "Truncated",
        FormatError::TrailingData => "TrailingData",
        FormatError::StreamMismatch => "StreamMismatch",
        FormatError::Crypto => "Crypto",
    }
}

// ---------------------------------------------------------------------------
// Keys (tests/vectors/keys.json)

const KEY_SPECS: &[(&str, usize)] = &[
    ("rsa2048-a", 2048),
    ("rsa2048-b", 2048),
    ("rsa2048-c", 2048),
    ("rsa3072-a", 3072),
    ("rsa4096-a", 4096),
    ("rsa2048-outsider", 2048),
];

struct KeyEntry {
    bits: usize,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
    identity: RsaOaepIdentity,
    recipient: RsaOaepRecipient,
}

struct Keys(BTreeMap<String, KeyEntry>);

impl Keys {
    fn entry(name: &str, bits: usize, pkcs8: Vec<u8>, spki: Vec<u8>) -> KeyEntry {
        let identity = RsaOaepIdentity::from_pkcs8_der(&pkcs8).expect("PKCS#8 key");
        let recipient = RsaOaepRecipient::from_spki_der(&spki).expect("SPKI key");
        assert_eq!(identity.public_spki_der(), &spki[..], "{name}: key pair");
        assert_eq!(identity.bits(), bits, "{name}: size");
        KeyEntry {
            bits,
            pkcs8,
            spki,
            identity,
            recipient,
        }
    }

    fn load_or_generate(path: &Path, may_generate: bool) -> Keys {
        if let Ok(text) = std::fs::read_to_string(path) {
            let v: Value = serde_json::from_str(&text).expect("keys.json is JSON");
            let mut map = BTreeMap::new();
            for k in v["keys"].as_array().expect("keys array") {
                let name = k["name"].as_str().unwrap().to_string();
                let bits = k["bits"].as_u64().unwrap() as usize;
                let pkcs8 = unpem(k["private_key_pkcs8_pem"].as_str().unwrap());
                let spki = unpem(k["public_key_spki_pem"].as_str().unwrap());
                assert_eq!(
                    k["key_id"].as_str().unwrap(),
                    hex::encode(key_id_of_spki(&spki)),
                    "{name}: key id"
                );
                map.insert(name.clone(), Self::entry(&name, bits, pkcs8, spki));
            }
            for (name, _) in KEY_SPECS {
                assert!(map.contains_key(*name), "keys.json lacks {name}");
            }
            return Keys(map);
        }
        assert!(
            may_generate,
            "{} is missing: run with SEALGATE_REGEN_VECTORS=1 to create it",
            path.display()
        );
        let mut map = BTreeMap::new();
        for &(name, bits) in KEY_SPECS {
            let (pkcs8, spki) = generate_rsa_pkcs8(bits).expect("RSA key generation");
            map.insert(
                name.to_string(),
                Self::entry(name, bits, pkcs8.to_vec(), spki),
            );
        }
        Keys(map)
    }

    fn to_json(&self) -> Value {
        let keys: Vec<Value> = self
            .0
            .iter()
            .map(|(name, k)| {
                json!({
                    "name": name,
                    "bits": k.bits,
                    "key_id": hex::encode(key_id_of_spki(&k.spki)),
                    "private_key_pkcs8_pem": pem("PRIVATE KEY", &k.pkcs8),
                    "public_key_spki_pem": pem("PUBLIC KEY", &k.spki),
                })
            })
            .collect();
        json!({
            "format": "sealgate-format-v1-keys",
            "description": "RSA test keys of the format v1 vectors. Test keys only: never use them for data.",
            "keys": keys,
        })
    }

    fn get(&self, name: &str) -> &KeyEntry {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("unknown key {name}"))
    }

    fn identities(&self, names: &[String]) -> Vec<&dyn Identity> {
        names
            .iter()
            .map(|n| &self.get(n).identity as &dyn Identity)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Reading an object the way the gateway does: metadata value + body.

struct Opened {
    plaintext: Vec<u8>,
    /// Single-part: the trailer's MD5. Multipart: the manifest's ETag MD5.
    trailer_md5: [u8; 16],
    /// Multipart: the object's ETag, `hex(MD5 of part MD5s)-N`.
    etag: Option<String>,
    /// The opened attributes block (FORMAT.md 4.6); `None` for a header
    /// without one (written before attributes were sealed).
    attributes: Option<Attributes>,
}

/// A manifest as a vector stores it: the store key it lies at, and its bytes.
#[derive(Clone)]
struct StoredManifest {
    object_key: String,
    bytes: Vec<u8>,
}

/// `manifest` of a vector: absent (single-part vectors), `null` (the store
/// holds no manifest), or a stored object.
#[derive(Clone)]
enum ManifestField {
    Absent,
    Missing,
    Stored(StoredManifest),
}

impl ManifestField {
    fn from_json(v: &Value) -> Self {
        match v.get("manifest") {
            None => ManifestField::Absent,
            Some(Value::Null) => ManifestField::Missing,
            Some(m) => {
                let bytes = hex::decode(m["hex"].as_str().unwrap()).unwrap();
                assert_eq!(m["len"].as_u64().unwrap() as usize, bytes.len());
                assert_eq!(m["sha256"].as_str().unwrap(), hex::encode(sha256(&bytes)));
                ManifestField::Stored(StoredManifest {
                    object_key: m["object_key"].as_str().unwrap().to_string(),
                    bytes,
                })
            }
        }
    }

    fn stored(&self) -> Option<&StoredManifest> {
        match self {
            ManifestField::Stored(m) => Some(m),
            _ => None,
        }
    }
}

/// Where a header was found (FORMAT.md 6): inline in metadata, at the head
/// of the body behind a `0x80` pointer, or in the manifest behind a `0x81`
/// pointer naming this upload id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeaderHome {
    Inline,
    Body,
    Manifest([u8; 16]),
}

/// FORMAT.md section 9, steps 1 to 6, with the library: the header located,
/// parsed, unwrapped and authenticated for this name, the pointer rules
/// checked, the attributes opened.
struct OpenedHeader {
    header: Header,
    dk: DataKey,
    home: HeaderHome,
    /// Where the (single-part) stream starts in the body.
    stream_offset: usize,
    /// The manifest parsed in step 2, when the header came from it.
    manifest: Option<Manifest>,
    attributes: Option<Attributes>,
}

/// The manifest a reader finds for `upload_id`: only one stored at the key
/// FORMAT.md 10.2 names.
fn find_manifest<'m>(manifest: &'m ManifestField, upload_id: &[u8; 16]) -> Option<&'m [u8]> {
    manifest
        .stored()
        .filter(|m| m.object_key == multipart::manifest_object_key(upload_id))
        .map(|m| &m.bytes[..])
}

fn open_header(
    meta: &str,
    body: &[u8],
    manifest: &ManifestField,
    identities: &[&dyn Identity],
    bucket: &str,
    key: &str,
) -> Result<OpenedHeader, Refused> {
    let mut h = authenticated_header(meta, body, manifest, identities, bucket, key)?;
    // Step 6, last: the attributes, once the header is authentic.
    h.attributes = h.header.open_attributes(&h.dk)?;
    Ok(h)
}

/// [`open_header`] without opening the attributes block.
fn authenticated_header(
    meta: &str,
    body: &[u8],
    manifest: &ManifestField,
    identities: &[&dyn Identity],
    bucket: &str,
    key: &str,
) -> Result<OpenedHeader, Refused> {
    // Steps 1 and 2: the metadata value, and where the header is.
    let (raw, detached_mac, home, stream_offset, parsed_manifest) = match MetaValue::decode(meta)? {
        MetaValue::Inline(raw) => (raw, None, HeaderHome::Inline, 0, None),
        MetaValue::Overflow { header_len, mac } => {
            let n = header_len as usize;
            if body.len() < n {
                return Err(FormatError::Truncated.into());
            }
            (body[..n].to_vec(), Some(mac), HeaderHome::Body, n, None)
        }
        MetaValue::InManifest { upload_id, mac } => {
            let stored = find_manifest(manifest, &upload_id).ok_or(Refused::MissingManifest)?;
            let m = Manifest::parse(stored)?;
            let raw = m.header.clone().ok_or(FormatError::MalformedHeader(
                "a manifest pointer to a manifest without a header",
            ))?;
            (raw, Some(mac), HeaderHome::Manifest(upload_id), 0, Some(m))
        }
    };
    // Steps 3 to 6.
    let header = Header::parse(&raw)?;
    let dk = header.unwrap_with(identities)?;
    match detached_mac {
        // A pointer's MAC is authoritative; the MAC field inside a header
        // kept elsewhere is ignored (a rename cannot rewrite the body).
        Some(mac) => header.authenticate_detached(&dk, bucket, key, &mac)?,
        None => header.authenticate(&dk, bucket, key)?,
    }
    match (home, header.binding) {
        (HeaderHome::Body, BodyBinding::Multipart { .. }) => {
            return Err(
                FormatError::MalformedHeader("a multipart header behind a body pointer").into(),
            )
        }
        (HeaderHome::Manifest(_), BodyBinding::Single { .. }) => {
            return Err(FormatError::MalformedHeader(
                "a single-part header behind a manifest pointer",
            )
            .into())
        }
        (HeaderHome::Manifest(named), BodyBinding::Multipart { upload_id })
            if named != upload_id =>
        {
            return Err(FormatError::HeaderMac.into())
        }
        _ => {}
    }
    Ok(OpenedHeader {
        header,
        dk,
        home,
        stream_offset,
        manifest: parsed_manifest,
        attributes: None,
    })
}

fn open_object(
    meta: &str,
    body: &[u8],
    manifest: &ManifestField,
    identities: &[&dyn Identity],
    bucket: &str,
    key: &str,
    chunk: usize,
) -> Result<Opened, Refused> {
    let h = open_header(meta, body, manifest, identities, bucket, key)?;
    let expected = match h.header.binding {
        BodyBinding::Single {
            salt,
            plaintext_len,
        } => (salt, plaintext_len),
        BodyBinding::Multipart { upload_id } => {
            return multipart::open_library(h, &upload_id, manifest, body, bucket, key, chunk);
        }
    };
    let mut opener = Opener::full(h.dk, 0, Some(expected));
    let mut out = Vec::new();
    for piece in body[h.stream_offset..].chunks(chunk.max(1)) {
        opener.push(Bytes::copy_from_slice(piece), &mut out)?;
    }
    opener.finish()?;
    Ok(Opened {
        plaintext: out.concat(),
        trailer_md5: opener.trailer_md5().expect("finished stream has a trailer"),
        etag: None,
        attributes: h.attributes,
    })
}

// ---------------------------------------------------------------------------
// A naive second implementation, straight from docs/FORMAT.md.

mod naive {
    use super::*;

    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    pub fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
        let mut out = [0u8; 32];
        prk.expand(&[info], Len(32))
            .unwrap()
            .fill(&mut out)
            .unwrap();
        out
    }

    pub fn commitment(dk: &[u8; 32]) -> [u8; 32] {
        hkdf32(&[], dk, b"sealgate/v1/commitment")
    }

    pub fn header_mac_key(dk: &[u8; 32]) -> [u8; 32] {
        hkdf32(&[], dk, b"sealgate/v1/header-mac")
    }

    pub fn payload_key(dk: &[u8; 32], salt: &[u8; 16], part: u32, p: u64) -> [u8; 32] {
        let mut info = b"sealgate/v1/payload".to_vec();
        info.extend_from_slice(&part.to_be_bytes());
        info.extend_from_slice(&p.to_be_bytes());
        hkdf32(salt, dk, &info)
    }

    pub fn mac_input(bucket: &str, key: &str, header_before_mac: &[u8]) -> Vec<u8> {
        let mut v = b"sealgate/v1/header".to_vec();
        for s in [bucket, key] {
            v.extend_from_slice(&(s.len() as u16).to_be_bytes());
            v.extend_from_slice(s.as_bytes());
        }
        v.extend_from_slice(header_before_mac);
        v
    }

    pub fn header_mac(dk: &[u8; 32], mac_input: &[u8]) -> Vec<u8> {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &header_mac_key(dk));
        hmac::sign(&k, mac_input).as_ref().to_vec()
    }

    fn gcm_seal(key: &[u8; 32], counter: u64, flag: u8, pt: &[u8]) -> Vec<u8> {
        let k = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, key).unwrap());
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&counter.to_be_bytes());
        nonce[11] = flag;
        let mut buf = pt.to_vec();
        k.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut buf,
        )
        .unwrap();
        buf
    }

    pub fn stream(dk: &[u8; 32], salt: &[u8; 16], part: u32, pt: &[u8]) -> Vec<u8> {
        let p = pt.len() as u64;
        let key = payload_key(dk, salt, part, p);
        let mut out = salt.to_vec();
        out.extend_from_slice(&p.to_be_bytes());
        let chunks: Vec<&[u8]> = if pt.is_empty() {
            vec![&[][..]]
        } else {
            pt.chunks(SEGMENT_SIZE).collect()
        };
        let n = chunks.len();
        for (i, c) in chunks.iter().enumerate() {
            let flag = u8::from(i + 1 == n);
            out.extend_from_slice(&gcm_seal(&key, i as u64, flag, c));
        }
        out.extend_from_slice(&gcm_seal(&key, n as u64, 2, &md5_of(pt)));
        out
    }

    /// FORMAT.md 4.5: `K_block = HKDF(salt, root, "sealgate/v1/sealed/" || purpose)`.
    pub fn block_key(root: &[u8; 32], purpose: &str, salt: &[u8]) -> [u8; 32] {
        hkdf32(
            salt,
            root,
            &[b"sealgate/v1/sealed/", purpose.as_bytes()].concat(),
        )
    }

    fn block_gcm(key: &[u8; 32]) -> aead::LessSafeKey {
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, key).unwrap())
    }

    /// `salt || AES-256-GCM(K_block, 12 zero bytes, records, aad) || tag`.
    pub fn seal_block(
        root: &[u8; 32],
        purpose: &str,
        aad: &[u8],
        records: &[u8],
        salt: &[u8; 16],
    ) -> Vec<u8> {
        let mut buf = records.to_vec();
        block_gcm(&block_key(root, purpose, salt))
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key([0; 12]),
                aead::Aad::from(aad),
                &mut buf,
            )
            .unwrap();
        [&salt[..], &buf].concat()
    }

    /// Opens a block: its records, or the error a reader reports.
    pub fn open_block(
        root: &[u8; 32],
        purpose: &str,
        aad: &[u8],
        block: &[u8],
    ) -> Result<Vec<u8>, &'static str> {
        if block.len() < 32 || block.len() > 1 << 20 {
            return Err("MalformedHeader");
        }
        let mut buf = block[16..].to_vec();
        let n = block_gcm(&block_key(root, purpose, &block[..16]))
            .open_in_place(
                aead::Nonce::assume_unique_for_key([0; 12]),
                aead::Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| "HeaderMac")?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    /// A record list in canonical order (tags increasing; a repeatable tag
    /// repeats with increasing values), or `MalformedHeader`.
    pub fn records(b: &[u8], repeatable: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, &'static str> {
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut rest = b;
        while !rest.is_empty() {
            if rest.len() < 3 {
                return Err("MalformedHeader");
            }
            let tag = rest[0];
            let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
            if rest.len() - 3 < len {
                return Err("MalformedHeader");
            }
            let value = rest[3..3 + len].to_vec();
            rest = &rest[3 + len..];
            if let Some((t, v)) = out.last() {
                let increasing = tag > *t || (tag == *t && repeatable.contains(&tag) && value > *v);
                if !increasing {
                    return Err("MalformedHeader");
                }
            }
            out.push((tag, value));
        }
        Ok(out)
    }

    /// The attributes of a record list (FORMAT.md 4.6), as a vector's
    /// `attributes` value, or `MalformedHeader`.
    pub fn attributes(b: &[u8]) -> Result<Value, &'static str> {
        let utf8 = |v: &[u8]| String::from_utf8(v.to_vec()).map_err(|_| "MalformedHeader");
        let mut o = serde_json::Map::new();
        let mut meta = serde_json::Map::new();
        for (tag, v) in records(b, &[ATTRIBUTE_META])? {
            if let Some((_, name)) = ATTRIBUTE_FIELDS.iter().find(|f| f.0 == tag) {
                o.insert(name.to_string(), json!(utf8(&v)?));
            } else if tag == ATTRIBUTE_META {
                let nul = v.iter().position(|&c| c == 0).ok_or("MalformedHeader")?;
                let k = utf8(&v[..nul])?;
                if k.is_empty() || k.bytes().any(|c| c.is_ascii_uppercase()) {
                    return Err("MalformedHeader");
                }
                if meta.insert(k, json!(utf8(&v[nul + 1..])?)).is_some() {
                    return Err("MalformedHeader");
                }
            } else if tag < 0x80 {
                return Err("MalformedHeader");
            }
        }
        o.insert("metadata".into(), Value::Object(meta));
        Ok(Value::Object(o))
    }

    /// The canonical record list of a vector's `attributes`.
    pub fn encode_attributes(a: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |tag: u8, v: &[u8]| {
            out.push(tag);
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v);
        };
        for (tag, name) in ATTRIBUTE_FIELDS {
            if let Some(v) = a.get(name) {
                put(tag, v.as_str().unwrap().as_bytes());
            }
        }
        // Entries sort as `key || 0x00 || value` bytes, i.e. by key bytes.
        let mut entries: Vec<Vec<u8>> = a["metadata"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| [k.as_bytes(), &[0], v.as_str().unwrap().as_bytes()].concat())
            .collect();
        entries.sort();
        for e in entries {
            put(ATTRIBUTE_META, &e);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The generator.

/// Wraps through a cache of wrapped keys found in the existing vector files,
/// so that regeneration is byte-stable although OAEP is randomized.
type WrapCache = Mutex<HashMap<([u8; KEY_ID_LEN], [u8; 32]), Vec<u8>>>;

#[derive(Debug)]
struct CachedRecipient<'a> {
    inner: &'a RsaOaepRecipient,
    cache: &'a WrapCache,
}

impl Recipient for CachedRecipient<'_> {
    fn algorithm(&self) -> Algorithm {
        self.inner.algorithm()
    }
    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.inner.key_id()
    }
    fn wrapped_len(&self) -> usize {
        self.inner.wrapped_len()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn spki_der(&self) -> Vec<u8> {
        self.inner.spki_der()
    }
    fn wrap(&self, dk: &DataKey) -> sealgate::envelope::Result<RecipientStanza> {
        let mut cache = self.cache.lock().unwrap();
        let slot = (self.inner.key_id(), *dk.expose());
        if let Some(w) = cache.get(&slot) {
            return Ok(RecipientStanza {
                algorithm: Algorithm::RsaOaep256 as u8,
                key_id: self.inner.key_id(),
                wrapped: w.clone(),
            });
        }
        let st = self.inner.wrap(dk)?;
        cache.insert(slot, st.wrapped.clone());
        Ok(st)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Overflow {
    No,
    Yes,
    /// Overflow, with the body's header sealed for another (earlier) name.
    RenamedFrom(&'static str),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Pass,
    Fail(&'static str),
}

struct Plain {
    len: usize,
    add: u8,
}

struct Vector {
    name: String,
    description: String,
    expect: Expect,
    bucket: String,
    key: String,
    identity_sets: Vec<Vec<String>>,
    meta: String,
    body: Vec<u8>,
    /// Pass vectors: the plaintext and the writer's inputs.
    plain: Option<Plain>,
    inputs: Option<Value>,
    intermediate: Option<Value>,
    /// Multipart vectors: the manifest object, and what a reader without it
    /// (FORMAT.md 10.3, last paragraph) makes of the body.
    manifest: ManifestField,
    without_manifest: Option<Value>,
    /// Pass vectors whose header has an attributes block: what it holds.
    attributes: Option<Value>,
}

impl Vector {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "format": FILE_FORMAT,
            "name": self.name,
            "description": self.description,
            "expect": match self.expect { Expect::Pass => "pass", Expect::Fail(_) => "fail" },
            "bucket": self.bucket,
            "key": self.key,
            "identity_sets": self.identity_sets,
            "metadata": { "x-amz-meta-sg": self.meta },
            "body_len": self.body.len(),
            "body_sha256": hex::encode(sha256(&self.body)),
            "body_hex": hex::encode(&self.body),
        });
        let o = v.as_object_mut().unwrap();
        if let Expect::Fail(kind) = self.expect {
            o.insert("error".into(), json!(kind));
        }
        if let Some(p) = &self.plain {
            let pt = pattern(p.len, p.add);
            let mut pj = json!({
                "len": p.len,
                "generator": format!("byte i = ({MUL} * i + {}) mod 256", p.add),
                "generator_mul": MUL,
                "generator_add": p.add,
                "sha256": hex::encode(sha256(&pt)),
                "md5": hex::encode(md5_of(&pt)),
            });
            if p.len <= INLINE_PLAINTEXT_MAX {
                pj.as_object_mut()
                    .unwrap()
                    .insert("hex".into(), json!(hex::encode(&pt)));
            }
            o.insert("plaintext".into(), pj);
        }
        if let Some(i) = &self.inputs {
            o.insert("inputs".into(), i.clone());
        }
        if let Some(i) = &self.intermediate {
            o.insert("intermediate".into(), i.clone());
        }
        match &self.manifest {
            ManifestField::Absent => {}
            ManifestField::Missing => {
                o.insert("manifest".into(), Value::Null);
            }
            ManifestField::Stored(m) => {
                o.insert(
                    "manifest".into(),
                    json!({
                        "object_key": m.object_key,
                        "len": m.bytes.len(),
                        "sha256": hex::encode(sha256(&m.bytes)),
                        "hex": hex::encode(&m.bytes),
                    }),
                );
            }
        }
        if let Some(w) = &self.without_manifest {
            o.insert("without_manifest".into(), w.clone());
        }
        if let Some(a) = &self.attributes {
            o.insert("attributes".into(), a.clone());
        }
        v
    }
}

/// The attributes a pass vector's writer seals: the declared ones, and
/// records a reader of this release does not know (optional tags), which it
/// must skip.
struct AttrSpec {
    declared: Value,
    unknown_optional: Vec<(u8, Vec<u8>)>,
}

impl AttrSpec {
    fn new(declared: Value) -> Self {
        AttrSpec {
            declared,
            unknown_optional: Vec::new(),
        }
    }

    /// The record list, encoded by the library (checked against the naive
    /// encoder when the vector is read back).
    fn records(&self) -> Vec<u8> {
        let mut r = attributes_from_json(&self.declared)
            .encode()
            .unwrap()
            .to_vec();
        for (tag, v) in &self.unknown_optional {
            r.push(*tag);
            r.extend_from_slice(&(v.len() as u16).to_be_bytes());
            r.extend_from_slice(v);
        }
        r
    }
}

/// Makes an attributes block from an object's data key.
type MakeBlock<'a> = dyn Fn(&DataKey) -> Vec<u8> + 'a;

/// Appends one raw record (for malformed record lists).
fn record(out: &mut Vec<u8>, tag: u8, v: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

/// An attributes block sealed as a writer seals it (purpose `attributes`,
/// empty AAD), with a salt derived from `tag` (writers draw it at random).
fn attributes_block(dk: &DataKey, tag: &str, records: &[u8]) -> Vec<u8> {
    sealed::seal_with_salt(
        dk.expose(),
        ATTRIBUTES_PURPOSE,
        b"",
        records,
        salt(&format!("{tag}/attributes")),
    )
    .unwrap()
}

/// A pass vector's values for its attributes block: the salt among the
/// writer's inputs; the block key, records and block among the
/// intermediate values (naively computed).
fn attributes_values(
    inputs: &mut Value,
    intermediate: &mut Value,
    dk: &DataKey,
    tag: &str,
    records: &[u8],
) {
    let s = salt(&format!("{tag}/attributes"));
    let block = naive::seal_block(dk.expose(), ATTRIBUTES_PURPOSE, b"", records, &s);
    inputs["attributes_salt"] = json!(hex::encode(s));
    let im = intermediate.as_object_mut().unwrap();
    im.insert(
        "attributes_key".into(),
        json!(hex::encode(naive::block_key(
            dk.expose(),
            ATTRIBUTES_PURPOSE,
            &s
        ))),
    );
    im.insert("attributes_records_hex".into(), json!(hex::encode(records)));
    im.insert("attributes_len".into(), json!(block.len()));
    im.insert("attributes_block_hex".into(), json!(hex::encode(&block)));
}

/// A well-formed single-part object, before any tampering.
struct Obj {
    dk: DataKey,
    salt: [u8; SALT_LEN],
    len: usize,
    add: u8,
    header: Vec<u8>,
    stream: Vec<u8>,
}

impl Obj {
    fn inline_meta(&self) -> String {
        MetaValue::Inline(self.header.clone()).encode()
    }
    fn overflow_meta(&self, bucket: &str, key: &str) -> String {
        MetaValue::Overflow {
            header_len: self.header.len() as u32,
            mac: Header::parse(&self.header)
                .unwrap()
                .mac_for(&self.dk, bucket, key),
        }
        .encode()
    }
    fn seg_start(&self, i: usize) -> usize {
        size::segment_offset(i as u64) as usize
    }
}

struct Gen<'a> {
    keys: &'a Keys,
    cache: WrapCache,
}

fn meta_of(header: &[u8]) -> String {
    MetaValue::Inline(header.to_vec()).encode()
}

fn sets(list: &[&[&str]]) -> Vec<Vec<String>> {
    list.iter()
        .map(|s| s.iter().map(|n| n.to_string()).collect())
        .collect()
}

impl<'a> Gen<'a> {
    fn new(keys: &'a Keys, old_files: &[Value]) -> Self {
        let g = Gen {
            keys,
            cache: Mutex::new(HashMap::new()),
        };
        // Harvest wrapped keys from the existing files.
        for v in old_files {
            let Some(meta) = v["metadata"]["x-amz-meta-sg"].as_str() else {
                continue;
            };
            let body = hex::decode(v["body_hex"].as_str().unwrap_or("")).unwrap_or_default();
            let raw = match MetaValue::decode(meta) {
                Ok(MetaValue::Inline(raw)) => raw,
                Ok(MetaValue::Overflow { header_len, .. }) if body.len() >= header_len as usize => {
                    body[..header_len as usize].to_vec()
                }
                Ok(MetaValue::InManifest { .. }) => {
                    let m = hex::decode(v["manifest"]["hex"].as_str().unwrap_or(""))
                        .unwrap_or_default();
                    match Manifest::parse(&m).ok().and_then(|m| m.header) {
                        Some(h) => h,
                        None => continue,
                    }
                }
                _ => continue,
            };
            let Ok(h) = Header::parse(&raw) else { continue };
            for st in &h.recipients {
                for k in keys.0.values() {
                    if k.identity.key_id() == st.key_id {
                        if let Ok(dk) = k.identity.unwrap(st) {
                            g.cache
                                .lock()
                                .unwrap()
                                .entry((st.key_id, *dk.expose()))
                                .or_insert_with(|| st.wrapped.clone());
                        }
                    }
                }
            }
        }
        g
    }

    fn recipients(&self, names: &[&str]) -> Vec<CachedRecipient<'_>> {
        names
            .iter()
            .map(|n| CachedRecipient {
                inner: &self.keys.get(n).recipient,
                cache: &self.cache,
            })
            .collect()
    }

    fn stanza(&self, name: &str, dk: &DataKey) -> RecipientStanza {
        self.recipients(&[name])[0].wrap(dk).unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn object(
        &self,
        dk_tag: &str,
        salt_tag: &str,
        len: usize,
        add: u8,
        rcpts: &[&str],
        bucket: &str,
        key: &str,
    ) -> Obj {
        self.object_with(dk_tag, salt_tag, len, add, rcpts, bucket, key, None)
    }

    /// As [`Gen::object`], with an attributes block made by `block` from the
    /// data key (flags bit 1), or none.
    #[allow(clippy::too_many_arguments)]
    fn object_with(
        &self,
        dk_tag: &str,
        salt_tag: &str,
        len: usize,
        add: u8,
        rcpts: &[&str],
        bucket: &str,
        key: &str,
        block: Option<&MakeBlock<'_>>,
    ) -> Obj {
        let dk = data_key(dk_tag);
        let salt = salt(salt_tag);
        let pt = pattern(len, add);
        let rs = self.recipients(rcpts);
        let refs: Vec<&dyn Recipient> = rs.iter().map(|r| r as &dyn Recipient).collect();
        let binding = BodyBinding::Single {
            salt,
            plaintext_len: len as u64,
        };
        let header = match block {
            // As releases before sealed attributes wrote it.
            None => Header::seal(&dk, &refs, binding, bucket, key),
            Some(block) => {
                let stanzas = refs.iter().map(|r| r.wrap(&dk).unwrap()).collect();
                Header::assemble(&dk, binding, stanzas, Some(block(&dk)), bucket, key)
            }
        }
        .unwrap()
        .raw()
        .to_vec();
        let stream = seal_all(&dk, salt, 0, &pt).unwrap();
        Obj {
            dk,
            salt,
            len,
            add,
            header,
            stream,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pass(
        &self,
        name: &str,
        description: &str,
        len: usize,
        rcpts: &[&str],
        identity_sets: &[&[&str]],
        key: &str,
        overflow: Overflow,
    ) -> Vector {
        self.pass_with(
            name,
            description,
            len,
            rcpts,
            identity_sets,
            key,
            overflow,
            None,
        )
    }

    /// A single-part pass vector, with sealed attributes when `attrs` is
    /// given (their block's salt derived from the vector's name).
    #[allow(clippy::too_many_arguments)]
    fn pass_with(
        &self,
        name: &str,
        description: &str,
        len: usize,
        rcpts: &[&str],
        identity_sets: &[&[&str]],
        key: &str,
        overflow: Overflow,
        attrs: Option<&AttrSpec>,
    ) -> Vector {
        let sealed_for = match overflow {
            Overflow::RenamedFrom(old) => old.to_string(),
            _ => key.to_string(),
        };
        let records = attrs.map(AttrSpec::records);
        let seal_block = |dk: &DataKey| attributes_block(dk, name, records.as_deref().unwrap());
        let o = self.object_with(
            name,
            name,
            len,
            7,
            rcpts,
            BUCKET,
            &sealed_for,
            attrs.map(|_| &seal_block as &MakeBlock<'_>),
        );
        let (meta, body, offset) = if overflow != Overflow::No {
            let meta = MetaValue::Overflow {
                header_len: o.header.len() as u32,
                mac: Header::parse(&o.header)
                    .unwrap()
                    .mac_for(&o.dk, BUCKET, key),
            }
            .encode();
            let mut body = o.header.clone();
            body.extend_from_slice(&o.stream);
            (meta, body, o.header.len())
        } else {
            (o.inline_meta(), o.stream.clone(), 0)
        };
        let dkb = *o.dk.expose();
        let before_mac = &o.header[..o.header.len() - 32];
        let intermediate = json!({
            "data_key": hex::encode(dkb),
            "commitment": hex::encode(naive::commitment(&dkb)),
            "header_mac_key": hex::encode(naive::header_mac_key(&dkb)),
            "payload_key": hex::encode(naive::payload_key(&dkb, &o.salt, 0, len as u64)),
            "header_hex": hex::encode(&o.header),
            "header_len": o.header.len(),
            "mac_input_hex": hex::encode(naive::mac_input(BUCKET, key, before_mac)),
            "stream_offset": offset,
            "stream_len": o.stream.len(),
            "segments": size::segments(len as u64),
            "plaintext_md5": hex::encode(md5_of(&pattern(len, 7))),
        });
        let mut inputs = json!({
            "data_key": hex::encode(dkb),
            "salt": hex::encode(o.salt),
            "part": 0,
            "recipients": rcpts,
            "overflow": overflow != Overflow::No,
            "header_sealed_for_key": sealed_for,
        });
        let mut intermediate = intermediate;
        if let Some(records) = &records {
            attributes_values(&mut inputs, &mut intermediate, &o.dk, name, records);
        }
        Vector {
            name: name.into(),
            description: description.into(),
            expect: Expect::Pass,
            bucket: BUCKET.into(),
            key: key.into(),
            identity_sets: sets(identity_sets),
            meta,
            body,
            plain: Some(Plain { len, add: 7 }),
            manifest: ManifestField::Absent,
            without_manifest: None,
            inputs: Some(inputs),
            intermediate: Some(intermediate),
            attributes: attrs.map(|a| a.declared.clone()),
        }
    }

    fn fail(&self, name: &str, description: &str, error: &'static str) -> Vector {
        Vector {
            name: name.into(),
            description: description.into(),
            expect: Expect::Fail(error),
            bucket: BUCKET.into(),
            key: object_key(name),
            identity_sets: sets(&[&["rsa2048-a"]]),
            meta: String::new(),
            body: Vec::new(),
            plain: None,
            inputs: None,
            intermediate: None,
            manifest: ManifestField::Absent,
            without_manifest: None,
            attributes: None,
        }
    }

    /// The usual base of a must-fail vector: 1000 bytes, one segment, one
    /// RSA-2048 recipient, sealed for this vector's own name. All such bases
    /// share one data key and salt (so the wrapped key is shared too); only
    /// their names differ.
    fn small(&self, name: &str) -> Obj {
        self.object(
            "small",
            "small",
            1000,
            7,
            &["rsa2048-a"],
            BUCKET,
            &object_key(name),
        )
    }

    fn all(&self) -> Vec<Vector> {
        let mut v = Vec::new();
        let a = &["rsa2048-a"][..];
        // ---- pass vectors
        v.push(self.pass(
            "pass-empty",
            "Empty plaintext: one segment holding 0 bytes (just a tag), then the trailer.",
            0,
            a,
            &[a],
            &object_key("pass-empty"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-1-byte",
            "One byte of plaintext.",
            1,
            a,
            &[a],
            &object_key("pass-1-byte"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-65535",
            "One byte short of a full segment.",
            SEGMENT_SIZE - 1,
            a,
            &[a],
            &object_key("pass-65535"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-65536",
            "Exactly one full segment, which is also the last (flag 1); no empty segment follows.",
            SEGMENT_SIZE,
            a,
            &[a],
            &object_key("pass-65536"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-65537",
            "Two segments: a full one (flag 0) and a last one holding 1 byte (flag 1).",
            SEGMENT_SIZE + 1,
            a,
            &[a],
            &object_key("pass-65537"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-3-segments-plus-5",
            "Three full segments and a last segment of 5 bytes (4 segments, trailer counter 4).",
            3 * SEGMENT_SIZE + 5,
            a,
            &[a],
            &object_key("pass-3-segments-plus-5"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-rsa3072",
            "One RSA-3072 recipient (384-byte wrapped key).",
            100,
            &["rsa3072-a"],
            &[&["rsa3072-a"]],
            &object_key("pass-rsa3072"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-3-recipients",
            "Three recipients (2 x RSA-2048, 1 x RSA-3072). Each identity alone opens it; so does a \
             set whose first identity matches no stanza.",
            1000,
            &["rsa2048-a", "rsa2048-b", "rsa3072-a"],
            &[
                &["rsa2048-a"],
                &["rsa2048-b"],
                &["rsa3072-a"],
                &["rsa2048-outsider", "rsa2048-b"],
            ],
            &object_key("pass-3-recipients"),
            Overflow::No,
        ));
        v.push(self.pass(
            "pass-overflow",
            "Five recipients (RSA-4096, RSA-3072, 3 x RSA-2048): the base64 header would exceed \
             the 2 KB metadata budget, so the metadata holds an overflow pointer and the header \
             leads the body.",
            1234,
            &[
                "rsa4096-a",
                "rsa3072-a",
                "rsa2048-a",
                "rsa2048-b",
                "rsa2048-c",
            ],
            &[&["rsa4096-a"], &["rsa2048-c"]],
            &object_key("pass-overflow"),
            Overflow::Yes,
        ));
        v.push(self.pass(
            "pass-overflow-renamed",
            "An overflow object after a server-side copy or rename: the header in the body (and \
             the MAC field inside it) is still the one written for the source name \
             vectors/pass-overflow-renamed-source; the pointer in metadata carries the MAC for \
             the current name, which is the one a reader checks.",
            1000,
            &[
                "rsa4096-a",
                "rsa3072-a",
                "rsa2048-a",
                "rsa2048-b",
                "rsa2048-c",
            ],
            &[&["rsa2048-a"]],
            &object_key("pass-overflow-renamed"),
            Overflow::RenamedFrom("vectors/pass-overflow-renamed-source"),
        ));
        v.push(self.pass(
            "pass-unicode-key",
            "An object key with non-ASCII characters and spaces: the MAC input carries its UTF-8 \
             bytes, length-prefixed in bytes (not characters).",
            33,
            a,
            &[a],
            "dir/ünïcødé name 😀.txt",
            Overflow::No,
        ));

        // ---- pass vectors: sealed attributes (flags bit 1)
        v.push(self.pass_with(
            "pass-attributes",
            "Sealed attributes (FORMAT.md 4.6): every standard field, and five user-metadata \
             entries with non-ASCII values. The entries are records `0x10` in the canonical \
             order, by the bytes of `key || 0x00 || value`, i.e. by key bytes: a < a-b < a_b < \
             ab < mtime (a key sorts before every longer key it begins).",
            100,
            a,
            &[a],
            &object_key("pass-attributes"),
            Overflow::No,
            Some(&AttrSpec::new(json!({
                "content_type": "text/plain; charset=utf-8",
                "content_encoding": "gzip",
                "content_disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
                "content_language": "fr-CA",
                "cache_control": "max-age=3600, private",
                "expires": "Wed, 21 Oct 2026 07:28:00 GMT",
                "metadata": {
                    "mtime": "1700000000.5",
                    "ab": "日本語 😀",
                    "a_b": "",
                    "a-b": "ünïcødé ✓",
                    "a": "1",
                },
            }))),
        ));
        v.push(self.pass_with(
            "pass-attributes-empty",
            "An object a client said nothing about, as this release writes it: flags bit 1 set \
             and an attributes block holding no records (A = 32: salt and tag only).",
            10,
            a,
            &[a],
            &object_key("pass-attributes-empty"),
            Overflow::No,
            Some(&AttrSpec::new(json!({ "metadata": {} }))),
        ));
        v.push(self.pass_with(
            "pass-attributes-overflow",
            "Sealed attributes in a header too large for metadata (five recipients): the \
             header, attributes block included, leads the body behind a 0x80 pointer.",
            500,
            &[
                "rsa4096-a",
                "rsa3072-a",
                "rsa2048-a",
                "rsa2048-b",
                "rsa2048-c",
            ],
            &[&["rsa2048-a"], &["rsa4096-a"]],
            &object_key("pass-attributes-overflow"),
            Overflow::Yes,
            Some(&AttrSpec::new(json!({
                "content_type": "text/plain",
                "metadata": { "mtime": "1700000000" },
            }))),
        ));
        v.push(self.pass_with(
            "pass-attributes-unknown-optional",
            "An attributes block from a later release: besides Content-Type it holds records \
             with the optional tags 0x90 and 0xff, which this release does not know and skips \
             (FORMAT.md 4.5). The declared attributes are what a reader shows.",
            50,
            a,
            &[a],
            &object_key("pass-attributes-unknown-optional"),
            Overflow::No,
            Some(&AttrSpec {
                declared: json!({ "content_type": "application/json", "metadata": {} }),
                unknown_optional: vec![
                    (0x90, b"from a later release".to_vec()),
                    (0xff, Vec::new()),
                ],
            }),
        ));

        // ---- must-fail: segment and trailer bits
        {
            let n = "fail-tag-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "Bit 0 of the last tag byte of segment 0 flipped.",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.body[o.seg_start(0) + o.len + TAG_LEN - 1] ^= 0x01;
            v.push(f);
        }
        {
            let n = "fail-segment-body-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "Bit 7 of plaintext-position 500 of segment 0's ciphertext flipped.",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.body[o.seg_start(0) + 500] ^= 0x80;
            v.push(f);
        }
        {
            let n = "fail-trailer-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "Bit 0 of the trailer record's first byte (the encrypted MD5) flipped.",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            let t = f.body.len() - TRAILER_LEN;
            f.body[t] ^= 0x01;
            v.push(f);
        }
        {
            let n = "fail-stream-header-salt-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "First byte of the stream header's salt flipped: no longer equals the header's salt.",
                "StreamMismatch",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.body[0] ^= 0x01;
            v.push(f);
        }
        {
            let n = "fail-stream-header-length";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "The stream header's plaintext length rewritten from 1000 to 999.",
                "StreamMismatch",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.body[SALT_LEN..STREAM_HEADER_LEN].copy_from_slice(&999u64.to_be_bytes());
            v.push(f);
        }
        {
            let n = "fail-part-number";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "The body was sealed as part 1 (payload key info carries be32(1)) but a \
                 single-part object is always read as part 0.",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            f.body = seal_all(&o.dk, o.salt, 1, &pattern(o.len, o.add)).unwrap();
            v.push(f);
        }

        // ---- must-fail: header bits
        {
            let n = "fail-header-binding-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "Header byte 35 (first byte of the bound salt) flipped in both the header and the \
                 stream header, so the binding still agrees: only the MAC catches it.",
                "HeaderMac",
            );
            let mut h = o.header.clone();
            h[35] ^= 0x01;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            f.body[0] ^= 0x01;
            v.push(f);
        }
        {
            let n = "fail-header-mac-bit";
            let o = self.small(n);
            let mut f = self.fail(n, "Last byte of the header MAC flipped.", "HeaderMac");
            let mut h = o.header.clone();
            let last = h.len() - 1;
            h[last] ^= 0x01;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-header-commitment-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "First byte of the commitment (header byte 3) flipped.",
                "Commitment",
            );
            let mut h = o.header.clone();
            h[3] ^= 0x01;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-wrapped-key-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "Byte 100 of the (only) wrapped key flipped: RSA-OAEP decryption fails.",
                "Unwrap",
            );
            let mut h = o.header.clone();
            // 3 + 32 + 24 + 1 (count) + 1 (algorithm) + 8 (key id) + 2 (length)
            h[71 + 100] ^= 0x01;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-key-id-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "First byte of the stanza's key id flipped: no identity matches it.",
                "NoMatchingRecipient",
            );
            let mut h = o.header.clone();
            h[61] ^= 0x01;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-no-matching-recipient";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "A well-formed object, read by an identity it was not encrypted for.",
                "NoMatchingRecipient",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.identity_sets = sets(&[&["rsa2048-outsider"]]);
            v.push(f);
        }
        {
            let n = "fail-unknown-version";
            let o = self.small(n);
            let mut f = self.fail(n, "Header version byte set to 2.", "UnsupportedVersion");
            let mut h = o.header.clone();
            h[0] = 2;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-unknown-version-overflow";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "An overflow pointer with version byte 2 ([2, 0x80, be32 len, MAC]).",
                "UnsupportedVersion",
            );
            let mut ptr = vec![2u8, 0x80];
            ptr.extend_from_slice(&(o.header.len() as u32).to_be_bytes());
            ptr.extend_from_slice(&o.header[o.header.len() - 32..]);
            f.meta = meta_of(&ptr);
            f.body = [o.header.clone(), o.stream.clone()].concat();
            v.push(f);
        }
        {
            let n = "fail-unknown-flag";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "Header flags byte set to 0x02, a bit v1 does not define.",
                "MalformedHeader",
            );
            let mut h = o.header.clone();
            h[1] = 0x02;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-header-trailing-byte";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "One zero byte appended to the header after the MAC.",
                "MalformedHeader",
            );
            let mut h = o.header.clone();
            h.push(0);
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-metadata-padded";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "The metadata value with '=' padding appended: v1 metadata is unpadded base64url.",
                "MalformedHeader",
            );
            // Pad the text as a padded encoder would (the 359-byte header
            // leaves 2 bytes in its last group, hence one '=').
            let mut m = o.inline_meta();
            while !m.len().is_multiple_of(4) {
                m.push('=');
            }
            assert_ne!(m, o.inline_meta(), "header length needs padding");
            f.meta = m;
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-overflow-header-truncated";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "Overflow pointer declares the whole header but the body ends 10 bytes into it.",
                "Truncated",
            );
            f.meta = o.overflow_meta(BUCKET, &object_key(n));
            f.body = o.header[..o.header.len() - 10].to_vec();
            v.push(f);
        }
        {
            let n = "fail-overflow-pointer-mac-bit";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "An overflow object whose pointer MAC (the last byte of the 38-byte pointer) is \
                 flipped; the MAC field inside the body's header is intact but is not what a \
                 reader checks.",
                "HeaderMac",
            );
            let mut ptr = URL_SAFE_NO_PAD
                .decode(o.overflow_meta(BUCKET, &object_key(n)))
                .unwrap();
            ptr[37] ^= 0x01;
            f.meta = URL_SAFE_NO_PAD.encode(&ptr);
            f.body = [o.header.clone(), o.stream.clone()].concat();
            v.push(f);
        }
        {
            let n = "fail-overflow-wrong-key";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "An intact overflow object (pointer MAC'd for its name) read under another \
                 object key.",
                "HeaderMac",
            );
            f.meta = o.overflow_meta(BUCKET, &object_key(n));
            f.body = [o.header.clone(), o.stream.clone()].concat();
            f.key = object_key("fail-overflow-wrong-key-elsewhere");
            v.push(f);
        }
        {
            let n = "fail-overflow-pointer-short";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "A 6-byte overflow pointer [1, 0x80, be32 len] without its MAC: v1 pointers are \
                 exactly 38 bytes.",
                "MalformedHeader",
            );
            let mut ptr = vec![1u8, 0x80];
            ptr.extend_from_slice(&(o.header.len() as u32).to_be_bytes());
            f.meta = meta_of(&ptr);
            f.body = [o.header.clone(), o.stream.clone()].concat();
            v.push(f);
        }

        // ---- must-fail: truncation and extension
        for (n, desc, cut) in [
            ("fail-truncated-empty-body", "The body is empty.", 0usize),
            ("fail-truncated-in-stream-header", "The body ends 10 bytes into the stream header.", 10),
            (
                "fail-truncated-after-stream-header",
                "The body ends right after the 24-byte stream header.",
                STREAM_HEADER_LEN,
            ),
            (
                "fail-truncated-mid-segment",
                "The body ends 500 bytes into segment 0.",
                STREAM_HEADER_LEN + 500,
            ),
            (
                "fail-truncated-before-trailer",
                "The trailer record is cut off whole: the body ends at the boundary after the last segment.",
                STREAM_HEADER_LEN + 1000 + TAG_LEN,
            ),
            (
                "fail-truncated-mid-trailer",
                "The body ends 16 bytes into the trailer record.",
                STREAM_HEADER_LEN + 1000 + TAG_LEN + 16,
            ),
        ] {
            let o = self.small(n);
            let mut f = self.fail(n, desc, "Truncated");
            f.meta = o.inline_meta();
            f.body = o.stream[..cut].to_vec();
            v.push(f);
        }
        {
            let n = "fail-truncated-at-segment-boundary";
            let o = self.object(
                "two-segments",
                "two-segments",
                SEGMENT_SIZE + 1,
                7,
                a,
                BUCKET,
                &object_key(n),
            );
            let mut f = self.fail(
                n,
                "A two-segment object (65537 bytes) cut after segment 0: the last segment and the \
                 trailer are missing.",
                "Truncated",
            );
            f.meta = o.inline_meta();
            f.body = o.stream[..o.seg_start(1)].to_vec();
            v.push(f);
        }
        {
            let n = "fail-truncated-length-rewritten";
            let o = self.object(
                "two-segments",
                "two-segments",
                SEGMENT_SIZE + 1,
                7,
                a,
                BUCKET,
                &object_key(n),
            );
            let mut f = self.fail(
                n,
                "A two-segment object (65537 bytes) cut after segment 0 with the stream header's \
                 length rewritten to 65536 so the layout looks complete (the old trailer re-appended): \
                 the header's bound length disagrees.",
                "StreamMismatch",
            );
            f.meta = o.inline_meta();
            let mut body = o.stream[..o.seg_start(1)].to_vec();
            body[SALT_LEN..STREAM_HEADER_LEN].copy_from_slice(&(SEGMENT_SIZE as u64).to_be_bytes());
            body.extend_from_slice(&o.stream[o.stream.len() - TRAILER_LEN..]);
            f.body = body;
            v.push(f);
        }
        {
            let n = "fail-extra-bytes-after-trailer";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "One zero byte appended after the trailer.",
                "TrailingData",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.body.push(0);
            v.push(f);
        }
        {
            let n = "fail-extra-segment";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "The last segment repeated once more before the trailer: where the trailer \
                 belongs, the reader finds segment bytes.",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            let seg = &o.stream[o.seg_start(0)..o.seg_start(0) + o.len + TAG_LEN];
            let trailer = &o.stream[o.stream.len() - TRAILER_LEN..];
            f.body = [&o.stream[..o.seg_start(0)], seg, seg, trailer].concat();
            v.push(f);
        }
        {
            let n = "fail-segments-swapped";
            let o = self.object(
                "two-full-segments",
                "two-full-segments",
                2 * SEGMENT_SIZE,
                7,
                a,
                BUCKET,
                &object_key(n),
            );
            let mut f = self.fail(
                n,
                "A two-segment object (131072 bytes, both segments full) with segments 0 and 1 \
                 swapped.",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            let s = SEGMENT_SIZE + TAG_LEN;
            let (h, rest) = o.stream.split_at(STREAM_HEADER_LEN);
            f.body = [h, &rest[s..2 * s], &rest[..s], &rest[2 * s..]].concat();
            v.push(f);
        }

        // ---- must-fail: splicing and swapping objects
        {
            let n = "fail-segment-from-other-object";
            let o = self.small(n);
            let other = self.object("other", "other", 1000, 7, a, BUCKET, &object_key(n));
            let mut f = self.fail(
                n,
                "Segment 0 replaced by segment 0 of another object of the same name and length \
                 (another data key and salt: e.g. an older version).",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            let mut body = o.stream.clone();
            let r = o.seg_start(0)..o.seg_start(0) + 1000 + TAG_LEN;
            body[r.clone()].copy_from_slice(&other.stream[r]);
            f.body = body;
            v.push(f);
        }
        {
            let n = "fail-header-a-body-b";
            let o = self.small(n);
            let other = self.object("other-b", "other-b", 1000, 9, a, BUCKET, &object_key(n));
            let mut f = self.fail(
                n,
                "Object A's metadata served with object B's body (same name, same length): the \
                 stream header's salt is not the one A's header binds.",
                "StreamMismatch",
            );
            f.meta = o.inline_meta();
            f.body = other.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-header-a-body-b-rewritten";
            let o = self.small(n);
            let other = self.object("other-b", "other-b", 1000, 9, a, BUCKET, &object_key(n));
            let mut f = self.fail(
                n,
                "As fail-header-a-body-b, but B's stream header replaced with A's: the binding \
                 agrees, B's segments do not open under A's payload key.",
                "SegmentAuth",
            );
            f.meta = o.inline_meta();
            let mut body = other.stream.clone();
            body[..STREAM_HEADER_LEN].copy_from_slice(&o.stream[..STREAM_HEADER_LEN]);
            f.body = body;
            v.push(f);
        }
        {
            let n = "fail-wrong-bucket";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "An intact object read under another bucket name (sealgate-vectors-2) than the one \
                 its header was MAC'd for.",
                "HeaderMac",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.bucket = format!("{BUCKET}-2");
            v.push(f);
        }
        {
            let n = "fail-wrong-key";
            let o = self.small(n);
            let mut f = self.fail(
                n,
                "An intact object read under another object key than the one its header was MAC'd \
                 for.",
                "HeaderMac",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            f.key = object_key("fail-wrong-key-elsewhere");
            v.push(f);
        }

        // ---- must-fail: key commitment
        {
            let n = "fail-commitment-other-key";
            let dk1 = data_key("commit-1");
            let dk2 = data_key("commit-2");
            let s = salt("commit-2");
            let binding = BodyBinding::Single {
                salt: s,
                plaintext_len: 1000,
            };
            let rb = self.recipients(&["rsa2048-b"]);
            let h1 = Header::seal(&dk1, &[&rb[0]], binding, BUCKET, &object_key(n)).unwrap();
            // Keep DK1's commitment, but wrap DK2 for the reader and MAC under DK2.
            let forged = Header::parse(h1.raw())
                .unwrap()
                .reseal(
                    &dk2,
                    Reseal {
                        stanzas: Some(vec![self.stanza("rsa2048-b", &dk2)]),
                        ..Default::default()
                    },
                    BUCKET,
                    &object_key(n),
                )
                .unwrap();
            let mut f = self.fail(
                n,
                "Header carries the commitment of data key DK1, but its stanza wraps DK2, the MAC \
                 is computed under DK2 and the body is sealed under DK2. Everything but the \
                 commitment is consistent: a reader that skipped the commitment check would \
                 decrypt it.",
                "Commitment",
            );
            f.identity_sets = sets(&[&["rsa2048-b"]]);
            f.meta = meta_of(forged.raw());
            f.body = seal_all(&dk2, s, 0, &pattern(1000, 7)).unwrap();
            v.push(f);
        }
        {
            let n = "fail-recipients-disagree";
            let dk1 = data_key("commit-1");
            let dk2 = data_key("commit-2");
            let s = salt("commit-1");
            let binding = BodyBinding::Single {
                salt: s,
                plaintext_len: 1000,
            };
            let ra = self.recipients(&["rsa2048-a"]);
            let h1 = Header::seal(&dk1, &[&ra[0]], binding, BUCKET, &object_key(n)).unwrap();
            let forged = h1
                .reseal(
                    &dk1,
                    Reseal {
                        stanzas: Some(vec![
                            self.stanza("rsa2048-a", &dk1),
                            self.stanza("rsa2048-b", &dk2),
                        ]),
                        ..Default::default()
                    },
                    BUCKET,
                    &object_key(n),
                )
                .unwrap();
            let mut f = self.fail(
                n,
                "A malicious writer's two-recipient header: the stanza for rsa2048-a wraps DK1 \
                 (commitment, MAC and body are DK1's), the stanza for rsa2048-b wraps DK2. \
                 rsa2048-a reads the object; rsa2048-b must be refused.",
                "Commitment",
            );
            f.identity_sets = sets(&[&["rsa2048-b"]]);
            f.meta = meta_of(forged.raw());
            f.body = seal_all(&dk1, s, 0, &pattern(1000, 7)).unwrap();
            v.push(f);
        }
        v.extend(self.attribute_fail_vectors());
        v.extend(self.multipart_vectors());
        v
    }

    /// The base of an attributes must-fail vector: [`Gen::small`] with an
    /// attributes block made by `block`, in a header MAC'd by its writer.
    fn small_attr(&self, name: &str, block: &MakeBlock<'_>) -> Obj {
        self.object_with(
            "small",
            "small",
            1000,
            7,
            &["rsa2048-a"],
            BUCKET,
            &object_key(name),
            Some(block),
        )
    }

    /// Must-fail vectors of the attributes block (FORMAT.md 4.5, 4.6, 9).
    fn attribute_fail_vectors(&self) -> Vec<Vector> {
        let mut v = Vec::new();
        let good = {
            let mut r = Vec::new();
            record(&mut r, 0x01, b"text/plain");
            record(&mut r, ATTRIBUTE_META, b"mtime\x001700000000");
            r
        };
        {
            let n = "fail-attributes-bit";
            let o = self.small_attr(n, &|dk| attributes_block(dk, n, &good));
            let mut f = self.fail(
                n,
                "Bit 0 of the first ciphertext byte of the attributes block (after its 16-byte \
                 salt) flipped: the header MAC covers the block, so the MAC fails before the \
                 block is opened.",
                "HeaderMac",
            );
            let mut h = o.header.clone();
            let block_start = h.len() - 32 - (good.len() + 32);
            h[block_start + 16] ^= 0x01;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-attributes-flag-cleared";
            let o = self.small_attr(n, &|dk| attributes_block(dk, n, &good));
            let mut f = self.fail(
                n,
                "Flags bit 1 cleared (0x02 to 0x00) with the attributes block still in place: \
                 parsed without attributes, the header's MAC field would be the first 32 bytes \
                 of `be16 A || block || MAC`, and bytes follow it. Parsing (section 9, step 3) \
                 refuses the trailing bytes before any key is used, so the error is \
                 MalformedHeader, not HeaderMac.",
                "MalformedHeader",
            );
            let mut h = o.header.clone();
            h[1] &= !0x02;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-unknown-flag-bit-2";
            let o = self.small_attr(n, &|dk| attributes_block(dk, n, &good));
            let mut f = self.fail(
                n,
                "Flags bit 2 (0x04) set on a header with attributes (flags 0x06): a bit v1 \
                 does not define.",
                "MalformedHeader",
            );
            let mut h = o.header.clone();
            h[1] |= 0x04;
            f.meta = meta_of(&h);
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-attributes-block-short";
            let o = self.small_attr(n, &|dk| attributes_block(dk, n, b"")[..31].to_vec());
            let mut f = self.fail(
                n,
                "An attributes length A = 31, below the 32 bytes of salt and tag every sealed \
                 block has (the header MAC'd by its writer): refused when the header is parsed.",
                "MalformedHeader",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-attributes-wrong-purpose";
            let o = self.small_attr(n, &|dk| {
                sealed::seal_with_salt(
                    dk.expose(),
                    "manifest",
                    b"",
                    &good,
                    salt(&format!("{n}/attributes")),
                )
                .unwrap()
            });
            let mut f = self.fail(
                n,
                "A header MAC'd by its writer whose attributes block was sealed with purpose \
                 \"manifest\" instead of \"attributes\": the header authenticates, the block \
                 does not open.",
                "HeaderMac",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            v.push(f);
        }
        // Blocks that open (sealed and MAC'd by a faulty writer) with a bad
        // record list.
        type Records<'a> = Vec<(u8, &'a [u8])>;
        let bad_records: Vec<(&str, &str, Records)> = vec![
            (
                "fail-attributes-unknown-critical",
                "Content-Type, then a record with tag 0x07: critical (below 0x80) and unknown \
                 to v1, so the block is refused.",
                vec![(0x01, b"text/plain"), (0x07, b"x")],
            ),
            (
                "fail-attributes-out-of-order",
                "Content-Encoding (0x02) before Content-Type (0x01): tags must increase.",
                vec![(0x02, b"gzip"), (0x01, b"text/plain")],
            ),
            (
                "fail-attributes-repeated-tag",
                "Content-Type twice (text/html, then text/plain: increasing values), but 0x01 \
                 is not repeatable.",
                vec![(0x01, b"text/html"), (0x01, b"text/plain")],
            ),
            (
                "fail-attributes-metadata-not-increasing",
                "Two user-metadata entries, b then a: a repeated tag's values must increase.",
                vec![(ATTRIBUTE_META, b"b\x002"), (ATTRIBUTE_META, b"a\x001")],
            ),
            (
                "fail-attributes-repeated-metadata-key",
                "Two user-metadata entries with the key k (values a and b, so the records \
                 increase): keys are unique.",
                vec![(ATTRIBUTE_META, b"k\x00a"), (ATTRIBUTE_META, b"k\x00b")],
            ),
            (
                "fail-attributes-invalid-utf8",
                "A Content-Type value holding the byte 0xff: values are UTF-8.",
                vec![(0x01, b"text/\xffplain")],
            ),
            (
                "fail-attributes-metadata-invalid-utf8",
                "A user-metadata value holding a truncated UTF-8 sequence (0xc3 0x28).",
                vec![(ATTRIBUTE_META, b"k\x00\xc3(")],
            ),
            (
                "fail-attributes-metadata-without-nul",
                "A user-metadata record without the 0x00 that ends its key.",
                vec![(ATTRIBUTE_META, b"mtime")],
            ),
            (
                "fail-attributes-metadata-empty-key",
                "A user-metadata record with an empty key (its first byte is 0x00).",
                vec![(ATTRIBUTE_META, b"\x00v")],
            ),
            (
                "fail-attributes-uppercase-key",
                "A user-metadata key with an upper-case ASCII letter (Mtime): keys are lowercase.",
                vec![(ATTRIBUTE_META, b"Mtime\x001700000000")],
            ),
        ];
        for (n, desc, recs) in bad_records {
            let mut r = Vec::new();
            for (tag, value) in recs {
                record(&mut r, tag, value);
            }
            let o = self.small_attr(n, &|dk| attributes_block(dk, n, &r));
            let mut f = self.fail(
                n,
                &format!(
                    "A header MAC'd by its writer whose attributes block opens but holds a bad \
                     record list. {desc}"
                ),
                "MalformedHeader",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            v.push(f);
        }
        {
            let n = "fail-attributes-record-past-end";
            let mut r = Vec::new();
            record(&mut r, 0x01, b"text/plain");
            r[1..3].copy_from_slice(&32u16.to_be_bytes());
            let o = self.small_attr(n, &|dk| attributes_block(dk, n, &r));
            let mut f = self.fail(
                n,
                "A header MAC'd by its writer whose attributes block opens but holds a record \
                 declaring 32 bytes with only 10 left.",
                "MalformedHeader",
            );
            f.meta = o.inline_meta();
            f.body = o.stream.clone();
            v.push(f);
        }
        v
    }
}

// ---------------------------------------------------------------------------
// Files

fn vector_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "json")
                        && p.file_name().is_some_and(|n| n != "keys.json")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(groups::GROUP_PREFIX))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn to_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------
// Checks

fn check_file(keys: &Keys, path: &Path) {
    let v = read_json(path);
    let name = v["name"].as_str().unwrap().to_string();
    assert_eq!(v["format"], FILE_FORMAT, "{name}");
    assert_eq!(
        path.file_stem().unwrap().to_str().unwrap(),
        name,
        "file name"
    );
    let bucket = v["bucket"].as_str().unwrap();
    let key = v["key"].as_str().unwrap();
    let meta = v["metadata"]["x-amz-meta-sg"].as_str().unwrap();
    let body = hex::decode(v["body_hex"].as_str().unwrap()).unwrap();
    assert_eq!(
        v["body_len"].as_u64().unwrap() as usize,
        body.len(),
        "{name}"
    );
    assert_eq!(
        v["body_sha256"].as_str().unwrap(),
        hex::encode(sha256(&body)),
        "{name}"
    );
    let sets: Vec<Vec<String>> = serde_json::from_value(v["identity_sets"].clone()).unwrap();
    assert!(!sets.is_empty(), "{name}: no identity set");
    let manifest = ManifestField::from_json(&v);

    for set in &sets {
        let ids = keys.identities(set);
        for chunk in [usize::MAX, 4099, 1] {
            if chunk == 1 && body.len() > 4096 {
                continue;
            }
            let got = open_object(meta, &body, &manifest, &ids, bucket, key, chunk);
            match v["expect"].as_str().unwrap() {
                "pass" => {
                    let opened = got.unwrap_or_else(|e| {
                        panic!("{name} with {set:?} (chunk {chunk}): expected pass, got {e:?}")
                    });
                    let p = &v["plaintext"];
                    let len = p["len"].as_u64().unwrap() as usize;
                    let add = p["generator_add"].as_u64().unwrap() as u8;
                    assert_eq!(p["generator_mul"].as_u64().unwrap(), MUL);
                    let pt = pattern(len, add);
                    assert_eq!(p["sha256"].as_str().unwrap(), hex::encode(sha256(&pt)));
                    if let Some(h) = p.get("hex") {
                        assert_eq!(h.as_str().unwrap(), hex::encode(&pt));
                    }
                    assert!(opened.plaintext == pt, "{name}: plaintext differs");
                    assert_eq!(p["md5"].as_str().unwrap(), hex::encode(md5_of(&pt)));
                    // The attributes: declared ones, or none for a header
                    // written before attributes were sealed.
                    let declared = v.get("attributes");
                    assert_eq!(
                        opened.attributes.as_ref().map(attributes_json).as_ref(),
                        declared,
                        "{name}: attributes"
                    );
                    assert_eq!(
                        opened.attributes,
                        declared.map(attributes_from_json),
                        "{name}: attributes"
                    );
                    if let ManifestField::Absent = manifest {
                        assert_eq!(opened.trailer_md5, md5_of(&pt), "{name}: trailer MD5");
                        assert_eq!(opened.etag, None);
                    } else {
                        multipart::check_opened(&v, &opened);
                    }
                }
                "fail" => {
                    let want = v["error"].as_str().unwrap();
                    match got {
                        Ok(_) => panic!("{name} with {set:?}: expected {want}, but it opened"),
                        Err(e) => {
                            assert_eq!(e.kind(), want, "{name} with {set:?} (chunk {chunk}): {e:?}")
                        }
                    }
                }
                other => panic!("{name}: unknown expectation {other}"),
            }
        }
        check_attributes_naively(&name, meta, &body, &manifest, &ids, bucket, key);
    }
    match manifest {
        ManifestField::Absent => {
            if v["expect"] == "pass" {
                check_reencrypt(keys, &v, meta, &body);
            }
        }
        _ => multipart::check_vector(keys, &v, meta, &body, &manifest),
    }
}

/// A pass vector's header sealed again from its inputs: without attributes
/// as earlier releases did (`Header::seal`), or with the attributes block
/// rebuilt from the vector's values (`Header::assemble`), which are checked
/// on the way.
fn reseal_header(
    v: &Value,
    dk: &DataKey,
    refs: &[&dyn Recipient],
    binding: BodyBinding,
    header: &[u8],
    sealed_for: &str,
) -> Header {
    let name = v["name"].as_str().unwrap();
    let bucket = v["bucket"].as_str().unwrap();
    let parsed = Header::parse(header).unwrap();
    let Some(block) = &parsed.attributes else {
        assert_eq!(header[1] & 0x02, 0, "{name}: flags bit 1");
        assert!(v.get("attributes").is_none(), "{name}: attributes declared");
        return Header::seal(dk, refs, binding, bucket, sealed_for).unwrap();
    };
    assert_eq!(header[1] & 0x02, 0x02, "{name}: flags bit 1");
    // Naively: `be16 A || block` right after the last stanza, then the MAC.
    let mut pos = 3 + 32 + if header[1] & 1 == 0 { 24 } else { 16 } + 1;
    for _ in 0..header[pos - 1] {
        pos += 11 + u16::from_be_bytes([header[pos + 9], header[pos + 10]]) as usize;
    }
    let a = u16::from_be_bytes([header[pos], header[pos + 1]]) as usize;
    assert_eq!(pos + 2 + a + 32, header.len(), "{name}: header layout");
    assert_eq!(&header[pos + 2..pos + 2 + a], &block[..], "{name}: block");

    let dkb = dk.expose();
    let inputs = &v["inputs"];
    let im = &v["intermediate"];
    let salt: [u8; 16] = hex::decode(inputs["attributes_salt"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(&block[..16], &salt[..], "{name}: block salt");
    let records = hex::decode(im["attributes_records_hex"].as_str().unwrap()).unwrap();
    assert_eq!(
        naive::open_block(dkb, ATTRIBUTES_PURPOSE, b"", block).unwrap(),
        records,
        "{name}: records"
    );
    let declared = &v["attributes"];
    assert_eq!(naive::attributes(&records).as_ref(), Ok(declared));
    // The declared attributes encode (library and naive) to the records,
    // less any optional records of a later release.
    let known: Vec<u8> = naive::records(&records, &[ATTRIBUTE_META])
        .unwrap()
        .into_iter()
        .filter(|(t, _)| *t < 0x80)
        .flat_map(|(t, val)| {
            let mut r = Vec::new();
            record(&mut r, t, &val);
            r
        })
        .collect();
    assert_eq!(
        naive::encode_attributes(declared),
        known,
        "{name}: naive encoding"
    );
    assert_eq!(
        attributes_from_json(declared).encode().unwrap().to_vec(),
        known,
        "{name}: library encoding"
    );
    let lib_block = sealed::seal_with_salt(dkb, ATTRIBUTES_PURPOSE, b"", &records, salt).unwrap();
    assert_eq!(&lib_block, block, "{name}: library block");
    assert_eq!(
        naive::seal_block(dkb, ATTRIBUTES_PURPOSE, b"", &records, &salt),
        *block,
        "{name}: naive block"
    );
    assert_eq!(
        im["attributes_key"].as_str().unwrap(),
        hex::encode(naive::block_key(dkb, ATTRIBUTES_PURPOSE, &salt))
    );
    assert_eq!(
        im["attributes_block_hex"].as_str().unwrap(),
        hex::encode(block)
    );
    assert_eq!(im["attributes_len"].as_u64().unwrap() as usize, block.len());
    let stanzas = refs.iter().map(|r| r.wrap(dk).unwrap()).collect();
    Header::assemble(dk, binding, stanzas, Some(lib_block), bucket, sealed_for).unwrap()
}

/// Wherever a vector's header authenticates, the naive attributes reader
/// (FORMAT.md 4.5, 4.6) agrees with the library: same attributes, or the
/// same refusal.
fn check_attributes_naively(
    name: &str,
    meta: &str,
    body: &[u8],
    manifest: &ManifestField,
    ids: &[&dyn Identity],
    bucket: &str,
    key: &str,
) {
    let Ok(h) = authenticated_header(meta, body, manifest, ids, bucket, key) else {
        return;
    };
    let lib = h
        .header
        .open_attributes(&h.dk)
        .map(|a| a.as_ref().map(attributes_json));
    let naive = match &h.header.attributes {
        None => Ok(None),
        Some(block) => naive::open_block(h.dk.expose(), "attributes", b"", block)
            .and_then(|r| naive::attributes(&r))
            .map(Some),
    };
    match (lib, naive) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}: naive attributes differ"),
        (Err(e), Err(k)) => assert_eq!(error_kind(&e), k, "{name}: naive attributes"),
        (a, b) => panic!("{name}: library {a:?}, naive {b:?}"),
    }
}

/// Re-encrypting a pass vector with its data key and salt (and its stored
/// wrapped keys) gives the same bytes, and the library agrees with the naive
/// implementation.
fn check_reencrypt(keys: &Keys, v: &Value, meta: &str, body: &[u8]) {
    let name = v["name"].as_str().unwrap();
    let bucket = v["bucket"].as_str().unwrap();
    let key = v["key"].as_str().unwrap();
    let inputs = &v["inputs"];
    let dkb: [u8; 32] = hex::decode(inputs["data_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let salt: [u8; 16] = hex::decode(inputs["salt"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let dk = DataKey::from_bytes(dkb);
    let p = &v["plaintext"];
    let pt = pattern(
        p["len"].as_u64().unwrap() as usize,
        p["generator_add"].as_u64().unwrap() as u8,
    );
    // The stored header, and the stream after it.
    let (header, stream) = match MetaValue::decode(meta).unwrap() {
        MetaValue::Inline(raw) => (raw, body),
        MetaValue::Overflow { header_len, .. } => {
            let (h, s) = body.split_at(header_len as usize);
            (h.to_vec(), s)
        }
        MetaValue::InManifest { .. } => {
            panic!("{name}: a manifest pointer on a single-part vector")
        }
    };
    let sealed_for = inputs["header_sealed_for_key"].as_str().unwrap();
    // Stream: library, library in ragged chunks, naive.
    assert!(
        seal_all(&dk, salt, 0, &pt).unwrap() == stream,
        "{name}: re-encryption differs"
    );
    let mut sealer = Sealer::new(&dk, salt, 0, pt.len() as u64);
    let mut out = Vec::new();
    for piece in pt.chunks(7919) {
        sealer.push(piece, &mut out).unwrap();
    }
    sealer.finish(&mut out).unwrap();
    assert!(
        out.concat() == *stream,
        "{name}: chunked re-encryption differs"
    );
    assert!(
        naive::stream(&dkb, &salt, 0, &pt) == stream,
        "{name}: naive stream differs"
    );
    assert_eq!(stream.len() as u64, size::stream_len(pt.len() as u64));
    assert_eq!(
        size::plaintext_len(stream.len() as u64),
        Some(pt.len() as u64)
    );
    // Header: seal again with the stored wrapped keys.
    let parsed = Header::parse(&header).unwrap();
    let cache: WrapCache = Mutex::new(HashMap::new());
    for st in &parsed.recipients {
        cache
            .lock()
            .unwrap()
            .insert((st.key_id, dkb), st.wrapped.clone());
    }
    let names: Vec<String> = serde_json::from_value(inputs["recipients"].clone()).unwrap();
    let rs: Vec<CachedRecipient> = names
        .iter()
        .map(|n| CachedRecipient {
            inner: &keys.get(n).recipient,
            cache: &cache,
        })
        .collect();
    let refs: Vec<&dyn Recipient> = rs.iter().map(|r| r as &dyn Recipient).collect();
    let binding = BodyBinding::Single {
        salt,
        plaintext_len: pt.len() as u64,
    };
    let resealed = reseal_header(v, &dk, &refs, binding, &header, sealed_for);
    assert_eq!(resealed.raw(), &header[..], "{name}: header differs");
    if inputs["overflow"] == true {
        let (before, _) = header.split_at(header.len() - 32);
        let mac = naive::header_mac(&dkb, &naive::mac_input(bucket, key, before));
        assert_eq!(
            meta,
            MetaValue::Overflow {
                header_len: header.len() as u32,
                mac: mac.clone().try_into().unwrap(),
            }
            .encode()
        );
        assert_eq!(resealed.mac_for(&dk, bucket, key).to_vec(), mac);
    } else {
        assert_eq!(sealed_for, key);
        assert_eq!(meta, resealed.to_meta_inline(), "{name}: metadata differs");
    }
    // Naive header pieces.
    assert_eq!(&header[3..35], &naive::commitment(&dkb)[..]);
    assert_eq!(dk.commitment(), naive::commitment(&dkb));
    let (before, mac) = header.split_at(header.len() - 32);
    assert_eq!(
        naive::header_mac(&dkb, &naive::mac_input(bucket, sealed_for, before)),
        mac,
        "{name}: naive MAC differs"
    );
    let im = &v["intermediate"];
    assert_eq!(im["header_hex"].as_str().unwrap(), hex::encode(&header));
    assert_eq!(
        im["payload_key"].as_str().unwrap(),
        hex::encode(naive::payload_key(&dkb, &salt, 0, pt.len() as u64))
    );
}

#[test]
fn format_vectors() {
    let dir = vectors_dir();
    let regen = regen_requested();
    let keys_path = dir.join("keys.json");
    let keys = Keys::load_or_generate(&keys_path, regen);
    let old: Vec<Value> = vector_files().iter().map(|p| read_json(p)).collect();
    let generator = Gen::new(&keys, &old);
    let vectors = generator.all();

    let mut names = std::collections::BTreeSet::new();
    for v in &vectors {
        assert!(names.insert(v.name.clone()), "duplicate vector {}", v.name);
    }

    if regen {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&keys_path, to_text(&keys.to_json())).unwrap();
        for p in vector_files() {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            if !names.contains(&stem) {
                std::fs::remove_file(&p).unwrap();
            }
        }
        for v in &vectors {
            std::fs::write(dir.join(format!("{}.json", v.name)), to_text(&v.to_json())).unwrap();
        }
    } else {
        // The committed files are exactly what the generator makes.
        let on_disk: std::collections::BTreeSet<String> = vector_files()
            .iter()
            .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            on_disk, names,
            "vector files differ from the generated set: regenerate with SEALGATE_REGEN_VECTORS=1"
        );
        for v in &vectors {
            let stored = read_json(&dir.join(format!("{}.json", v.name)));
            assert!(
                stored == v.to_json(),
                "{}: the generator no longer reproduces this vector (format change?). \
                 If intended, regenerate with SEALGATE_REGEN_VECTORS=1 and review the diff.",
                v.name
            );
        }
    }

    let files = vector_files();
    assert_eq!(files.len(), vectors.len());
    let (mut pass, mut fail) = (0, 0);
    // Each vector is its own check: a failing one is named (its panic message
    // is printed as it happens) and does not hide the others.
    let mut failed = Vec::new();
    for p in &files {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let checked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_file(&keys, p)));
        if checked.is_err() {
            failed.push(name);
        } else if read_json(p)["expect"] == "pass" {
            pass += 1;
        } else {
            fail += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "{} vector(s) failed their checks (messages above): {failed:?}",
        failed.len()
    );
    assert!(pass >= 10 && fail >= 30, "pass {pass}, fail {fail}");
    eprintln!("format vectors: {pass} pass vectors opened, {fail} must-fail vectors refused");
}

/// Every required error kind is covered by at least one must-fail vector.
#[test]
fn vectors_cover_every_failure_kind() {
    if regen_requested() {
        return; // the files are being rewritten by `format_vectors`
    }
    let mut kinds = std::collections::BTreeSet::new();
    for p in vector_files() {
        let v = read_json(&p);
        if v["expect"] == "fail" {
            kinds.insert(v["error"].as_str().unwrap().to_string());
        }
    }
    for k in [
        "UnsupportedVersion",
        "MalformedHeader",
        "HeaderMac",
        "Commitment",
        "NoMatchingRecipient",
        "Unwrap",
        "SegmentAuth",
        "Truncated",
        "TrailingData",
        "StreamMismatch",
        "MissingManifest",
    ] {
        assert!(kinds.contains(k), "no must-fail vector expects {k}");
    }
}

/// The multipart vectors reach every refusal of FORMAT.md 10.3 (steps 1 to 6)
/// and show both what the manifest-less walk catches and what it cannot.
#[test]
fn multipart_vectors_cover_every_step() {
    if regen_requested() {
        return;
    }
    let (mut kinds, mut walk_pass_on_fail, mut walk_fail) = (BTreeSet::new(), 0, 0);
    for p in vector_files() {
        let v = read_json(&p);
        if v.get("manifest").is_none() || v["expect"] != "fail" {
            continue;
        }
        kinds.insert(v["error"].as_str().unwrap().to_string());
        match v["without_manifest"]["expect"].as_str() {
            Some("pass") => walk_pass_on_fail += 1,
            Some("fail") => walk_fail += 1,
            other => panic!("{}: without_manifest {other:?}", p.display()),
        }
    }
    for k in [
        "HeaderMac",
        "MissingManifest",
        "UnsupportedVersion",
        "MalformedHeader",
        "Truncated",
        "TrailingData",
        "StreamMismatch",
        "SegmentAuth",
    ] {
        assert!(
            kinds.contains(k),
            "no multipart must-fail vector expects {k}"
        );
    }
    assert!(
        walk_pass_on_fail >= 5 && walk_fail >= 5,
        "{walk_pass_on_fail} {walk_fail}"
    );
}

/// The format extensions within v1 (sealed attributes, the manifest pointer,
/// manifest layout 2) have pass vectors in every form a writer produces, and
/// the must-fail vectors of their rules.
#[test]
fn vectors_cover_format_extensions() {
    if regen_requested() {
        return;
    }
    let mut forms = BTreeSet::new();
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    for p in vector_files() {
        let v = read_json(&p);
        let name = v["name"].as_str().unwrap().to_string();
        if v["expect"] == "fail" {
            errors.insert(name, v["error"].as_str().unwrap().to_string());
            continue;
        }
        let meta = MetaValue::decode(v["metadata"]["x-amz-meta-sg"].as_str().unwrap()).unwrap();
        let body = hex::decode(v["body_hex"].as_str().unwrap()).unwrap();
        let manifest = v
            .get("manifest")
            .map(|m| hex::decode(m["hex"].as_str().unwrap()).unwrap());
        let (home, raw) = match meta {
            MetaValue::Inline(raw) => ("inline", raw),
            MetaValue::Overflow { header_len, .. } => {
                ("body", body[..header_len as usize].to_vec())
            }
            MetaValue::InManifest { .. } => (
                "manifest",
                Manifest::parse(manifest.as_ref().unwrap())
                    .unwrap()
                    .header
                    .unwrap(),
            ),
        };
        let h = Header::parse(&raw).unwrap();
        let kind = if h.is_multipart() { "mp" } else { "single" };
        let attrs = match &h.attributes {
            None => "none",
            Some(b) if b.len() == sealed::MIN_BLOCK_LEN => "empty",
            Some(_) => "some",
        };
        assert_eq!(
            v.get("attributes").is_some(),
            attrs != "none",
            "{name}: declared attributes"
        );
        let layout = manifest.as_ref().map_or(0, |m| m[0]);
        forms.insert(format!("{kind}/{home}/{attrs}/{layout}"));
    }
    for form in [
        "single/inline/none/0",
        "single/body/none/0",
        "single/inline/some/0",
        "single/inline/empty/0",
        "single/body/some/0",
        "mp/inline/none/1",
        "mp/inline/some/2",
        "mp/inline/empty/2",
        "mp/manifest/some/2",
    ] {
        assert!(
            forms.contains(form),
            "no pass vector of the form {form}: {forms:?}"
        );
    }
    for (name, error) in [
        ("fail-attributes-bit", "HeaderMac"),
        ("fail-attributes-flag-cleared", "MalformedHeader"),
        ("fail-attributes-unknown-critical", "MalformedHeader"),
        ("fail-attributes-out-of-order", "MalformedHeader"),
        ("fail-attributes-repeated-metadata-key", "MalformedHeader"),
        ("fail-attributes-invalid-utf8", "MalformedHeader"),
        ("fail-attributes-block-short", "MalformedHeader"),
        ("fail-attributes-wrong-purpose", "HeaderMac"),
        ("fail-mp-pointer-upload-id-differs", "HeaderMac"),
        ("fail-mp-pointer-manifest-without-header", "MalformedHeader"),
        ("fail-mp-manifest-header-and-inline", "MalformedHeader"),
        (
            "fail-mp-body-pointer-to-multipart-header",
            "MalformedHeader",
        ),
        ("fail-mp-manifest-unknown-critical", "MalformedHeader"),
        ("fail-mp-manifest-block-past-end", "MalformedHeader"),
        ("fail-mp-manifest-version", "UnsupportedVersion"),
    ] {
        assert_eq!(errors.get(name).map(String::as_str), Some(error), "{name}");
    }
}
