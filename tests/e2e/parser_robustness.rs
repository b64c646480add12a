//! The fuzz targets' properties (fuzz/fuzz_targets/), run as ordinary tests
//! so that every `cargo test` throws a few thousand random and mutated inputs
//! at the parsers of untrusted bytes, whether or not anyone runs the fuzzer:
//! - `MetaValue::decode` and `Header::parse` never panic, and what parses
//!   round-trips exactly;
//! - any mutation of a real header is refused by `Header::open`;
//! - `Opener` never panics on arbitrary ciphertext, refuses it, and refuses
//!   every truncation, bit flip and extension of a real stream.

use base64::Engine;
use bytes::Bytes;
use proptest::prelude::*;

use sealgate::envelope::header::{Header, MetaValue};
use sealgate::envelope::recipient::{Identity, RsaOaepIdentity};
use sealgate::envelope::size::{span, stream_len};
use sealgate::envelope::stream::{Opener, Sealer};
use sealgate::envelope::{DataKey, FormatError, SEGMENT_SIZE};

fn vector(name: &str) -> serde_json::Value {
    let p = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A real three-recipient header, its name, and an identity that opens it.
struct Fixture {
    header: Vec<u8>,
    bucket: String,
    key: String,
    identity: RsaOaepIdentity,
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let v = vector("pass-3-recipients");
        let keys = vector("keys");
        let pem = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "rsa2048-b")
            .unwrap()["private_key_pkcs8_pem"]
            .as_str()
            .unwrap()
            .to_string();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        Fixture {
            header: hex::decode(v["intermediate"]["header_hex"].as_str().unwrap()).unwrap(),
            bucket: v["bucket"].as_str().unwrap().into(),
            key: v["key"].as_str().unwrap().into(),
            identity: RsaOaepIdentity::from_pkcs8_der(&der).unwrap(),
        }
    })
}

fn check_parse(raw: &[u8]) {
    if let Ok(h) = Header::parse(raw) {
        assert_eq!(h.raw(), raw);
        assert!(!h.recipients.is_empty());
        let dk = DataKey::from_bytes([0x42; 32]);
        assert!(h.authenticate(&dk, "bucket", "key").is_err());
    }
}

fn check_meta(text: &str) {
    if let Ok(meta) = MetaValue::decode(text) {
        assert_eq!(meta.encode(), text.trim());
        if let MetaValue::Inline(raw) = meta {
            check_parse(&raw);
        }
    }
}

fn open(
    ct: &[u8],
    chunk: usize,
    expected: Option<([u8; 16], u64)>,
) -> Result<Vec<u8>, FormatError> {
    let mut o = Opener::full(DataKey::from_bytes([0x42; 32]), 0, expected);
    let mut out = Vec::new();
    for piece in ct.chunks(chunk.max(1)) {
        o.push(Bytes::copy_from_slice(piece), &mut out)?;
    }
    o.finish()?;
    Ok(out.concat())
}

fn seal(pt: &[u8], salt: [u8; 16]) -> Vec<u8> {
    let mut s = Sealer::new(&DataKey::from_bytes([0x42; 32]), salt, 0, pt.len() as u64);
    let mut out = Vec::new();
    s.push(pt, &mut out).unwrap();
    s.finish(&mut out).unwrap();
    out.concat()
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    let n = data.len();
    match *m {
        Mutation::Flip { at, bit } if n > 0 => data[at % n] ^= 1 << bit,
        Mutation::Truncate { at } if n > 0 => data.truncate(at % n),
        Mutation::Insert { at, byte } => data.insert(at % (n + 1), byte),
        Mutation::Remove { at } if n > 0 => {
            data.remove(at % n);
        }
        _ => data.push(0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn header_parse_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..1200)) {
        check_parse(&raw);
    }

    #[test]
    fn header_parse_plausible_prefix(
        tail in proptest::collection::vec(any::<u8>(), 0..700),
        flags in 0u8..3,
        count in 0u8..4,
    ) {
        // Version, flags and segment size right, so parsing gets past the
        // first checks and into the stanza loop.
        let mut raw = vec![1, flags, 16];
        raw.extend_from_slice(&[0; 32]);
        raw.extend_from_slice(&[0; 24][..if flags & 1 == 0 { 24 } else { 16 }]);
        raw.push(count);
        raw.extend_from_slice(&tail);
        check_parse(&raw);
    }

    #[test]
    fn meta_decode_arbitrary_text(text in ".{0,300}") {
        check_meta(&text);
    }

    #[test]
    fn meta_decode_base64ish_text(text in "[A-Za-z0-9_=+/ -]{0,300}") {
        check_meta(&text);
    }

    #[test]
    fn meta_decode_encoded_bytes(raw in proptest::collection::vec(any::<u8>(), 0..600), first in 0u8..3) {
        let mut raw = raw;
        if let Some(b) = raw.first_mut() {
            *b = first; // often the right version
        }
        check_meta(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw));
    }

    #[test]
    fn opener_refuses_arbitrary_ciphertext(
        ct in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..600,
    ) {
        prop_assert!(open(&ct, chunk, None).is_err());
    }

    #[test]
    fn opener_refuses_plausible_ciphertext(
        p in 0u64..200_000,
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..5000,
    ) {
        // A stream header announcing a plausible length, then garbage.
        let mut ct = vec![7u8; 16];
        ct.extend_from_slice(&p.to_be_bytes());
        ct.extend_from_slice(&body);
        prop_assert!(open(&ct, chunk, None).is_err());
        prop_assert!(open(&ct, chunk, Some(([7; 16], p))).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn header_mutations_are_refused(m in proptest::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let mut raw = f.header.clone();
        for x in &m {
            apply(&mut raw, x);
        }
        check_parse(&raw);
        let opened = Header::open(&raw, &[&f.identity as &dyn Identity], &f.bucket, &f.key);
        if raw == f.header {
            prop_assert!(opened.is_ok());
        } else {
            prop_assert!(opened.is_err(), "mutation {:?} was accepted", m);
        }
    }

    #[test]
    fn stream_mutations_are_refused(
        len in prop_oneof![0usize..300, (SEGMENT_SIZE - 2)..(SEGMENT_SIZE + 3), 0usize..(3 * SEGMENT_SIZE)],
        m in mutation(),
        chunk in prop_oneof![Just(usize::MAX), 1usize..100_000],
    ) {
        let pt: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
        let salt = [3u8; 16];
        let ct = seal(&pt, salt);
        prop_assert_eq!(ct.len() as u64, stream_len(len as u64));
        prop_assert_eq!(open(&ct, chunk, Some((salt, len as u64))).unwrap(), pt);
        let mut bad = ct.clone();
        apply(&mut bad, &m);
        prop_assert!(bad != ct);
        prop_assert!(open(&bad, chunk, Some((salt, len as u64))).is_err(), "{:?} accepted", m);
        prop_assert!(open(&bad, chunk, None).is_err(), "{:?} accepted", m);
    }

    #[test]
    fn range_opener_on_arbitrary_bytes(
        p in 1u64..(4 * SEGMENT_SIZE as u64),
        a in any::<u64>(),
        b in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let (x, y) = (a % p, b % p);
        let sp = span(p, x.min(y), x.max(y)).unwrap();
        let dk = DataKey::from_bytes([0x42; 32]);
        let mut o = Opener::range(&dk, &[3; 16], 0, p, sp);
        let mut out = Vec::new();
        let r = o.push(Bytes::from(body), &mut out).and_then(|_| o.finish());
        prop_assert!(r.is_err());
    }
}
