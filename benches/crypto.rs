//! Crypto benchmarks: the primitives under the format and the format's own
//! layers, so a regression can be placed (aws-lc-rs, a segment, a stream, RSA).
//!
//! ```text
//! cargo bench --bench crypto -- --quick              # about a minute
//! SEALGATE_BENCH_STREAM_MB=1024 cargo bench --bench crypto -- stream   # 1 GiB streams
//! ```
//!
//! Groups:
//! - `aes-256-gcm-64KiB`: raw aws-lc-rs seal/open of one 64 KiB buffer, MD5
//!   of 64 KiB (the Sealer computes the plaintext MD5 for the ETag), SHA-256
//!   (a signed payload's; sha2 as s3s uses it, and aws-lc-rs's), and the
//!   upload floor per byte (MD5 + seal; signed: + SHA-256);
//! - `segment-64KiB`: `envelope::segment` seal/open of one full segment;
//! - `stream-<N>MiB`: `Sealer` and `Opener` over an N MiB stream (default 64,
//!   env `SEALGATE_BENCH_STREAM_MB`), fed in 1 MiB chunks as a network body
//!   would arrive; throughput is plaintext bytes;
//! - `rsa-oaep-256`: unwrap (and wrap) of a data key with the RSA test keys of
//!   `tests/vectors/keys.json` (2048, 3072, 4096 bits).

use std::hint::black_box;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use base64::Engine;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use md5::{Digest, Md5};

use sealgate::envelope::recipient::{Identity, RsaOaepIdentity};
use sealgate::envelope::segment::{open_segment, seal_segment_into};
use sealgate::envelope::stream::{Opener, Sealer};
use sealgate::envelope::{DataKey, SEGMENT_SIZE, TAG_LEN};

const CHUNK: usize = 1 << 20;

fn stream_mb() -> usize {
    std::env::var("SEALGATE_BENCH_STREAM_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(64)
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

fn raw_gcm(c: &mut Criterion) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap());
    let pt = data(SEGMENT_SIZE);
    let mut ct = pt.clone();
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), &mut ct)
        .unwrap();
    ct.extend_from_slice(tag.as_ref());

    let mut g = c.benchmark_group("aes-256-gcm-64KiB");
    g.throughput(Throughput::Bytes(SEGMENT_SIZE as u64));
    g.bench_function("aws-lc-rs seal", |b| {
        let mut buf = pt.clone();
        b.iter(|| {
            black_box(
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap(),
            )
        })
    });
    g.bench_function("aws-lc-rs open", |b| {
        b.iter_batched_ref(
            || ct.clone(),
            |buf| {
                black_box(
                    key.open_in_place(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), buf)
                        .unwrap()
                        .len(),
                )
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("md5", |b| b.iter(|| black_box(Md5::digest(black_box(&pt)))));
    // The SHA-256 of a signed payload: s3s checks it with the sha2 crate.
    g.bench_function("sha256 (sha2)", |b| {
        b.iter(|| black_box(sha2::Sha256::digest(black_box(&pt))))
    });
    g.bench_function("sha256 (aws-lc-rs)", |b| {
        b.iter(|| {
            black_box(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                black_box(&pt),
            ))
        })
    });
    // The floor of an upload, per byte: what the gateway must compute whatever
    // its plumbing. Unsigned payloads: the plaintext MD5 (the ETag) and the
    // seal; signed payloads: plus the payload's SHA-256.
    g.bench_function("upload floor, unsigned (md5 + seal)", |b| {
        let mut buf = pt.clone();
        b.iter(|| {
            black_box(Md5::digest(&buf));
            black_box(
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap(),
            )
        })
    });
    g.bench_function("upload floor, signed (sha256 + md5 + seal)", |b| {
        let mut buf = pt.clone();
        b.iter(|| {
            black_box(sha2::Sha256::digest(&buf));
            black_box(Md5::digest(&buf));
            black_box(
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap(),
            )
        })
    });
    g.finish();
}

fn segment(c: &mut Criterion) {
    let dk = DataKey::from_bytes([0x42; 32]);
    let pk = dk.payload_key(&[9; 16], 0, 1 << 30);
    let pt = data(SEGMENT_SIZE);
    let mut sealed = vec![0u8; SEGMENT_SIZE + TAG_LEN];
    seal_segment_into(&pk, 3, false, &pt, &mut sealed).unwrap();

    let mut g = c.benchmark_group("segment-64KiB");
    g.throughput(Throughput::Bytes(SEGMENT_SIZE as u64));
    g.bench_function("envelope seal", |b| {
        let mut out = vec![0u8; SEGMENT_SIZE + TAG_LEN];
        b.iter(|| seal_segment_into(&pk, 3, false, black_box(&pt), &mut out).unwrap())
    });
    g.bench_function("envelope open", |b| {
        b.iter_batched_ref(
            || sealed.clone(),
            |buf| black_box(open_segment(&pk, 3, false, buf).unwrap().len()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn stream(c: &mut Criterion) {
    let mb = stream_mb();
    let len = mb * CHUNK;
    let dk = DataKey::from_bytes([0x42; 32]);
    let salt = [5u8; 16];
    let chunk = data(CHUNK);

    // One sealed stream to open, split into 1 MiB network-like chunks.
    let mut ct = Vec::with_capacity(len + len / 4096 + 64);
    {
        let mut s = Sealer::new(&dk, salt, 0, len as u64);
        let mut out = Vec::new();
        for _ in 0..mb {
            s.push(&chunk, &mut out).unwrap();
        }
        s.finish(&mut out).unwrap();
        for f in out {
            ct.extend_from_slice(&f);
        }
    }

    let mut g = c.benchmark_group(format!("stream-{mb}MiB"));
    g.throughput(Throughput::Bytes(len as u64));
    g.sample_size(10);
    g.bench_function("Sealer", |b| {
        b.iter(|| {
            let mut s = Sealer::new(&dk, salt, 0, len as u64);
            let mut out = Vec::new();
            let mut total = 0usize;
            for _ in 0..mb {
                s.push(&chunk, &mut out).unwrap();
                // the ciphertext "leaves" for the store
                total += out.drain(..).map(|f| f.len()).sum::<usize>();
            }
            s.finish(&mut out).unwrap();
            black_box(total + out.iter().map(|f| f.len()).sum::<usize>())
        })
    });
    g.bench_function("Opener", |b| {
        b.iter_batched(
            || {
                ct.chunks(CHUNK)
                    .map(Bytes::copy_from_slice)
                    .collect::<Vec<_>>()
            },
            |chunks| {
                let mut o = Opener::full(dk.clone(), 0, Some((salt, len as u64)));
                let mut out = Vec::new();
                let mut total = 0usize;
                for piece in chunks {
                    o.push(piece, &mut out).unwrap();
                    total += out.drain(..).map(|b| b.len()).sum::<usize>();
                }
                o.finish().unwrap();
                assert_eq!(total, len);
                black_box(total)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn vector_identities() -> Vec<(usize, RsaOaepIdentity)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keys.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("tests/vectors/keys.json"))
            .unwrap();
    let mut out = Vec::new();
    for name in ["rsa2048-a", "rsa3072-a", "rsa4096-a"] {
        let k = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .expect("key in keys.json");
        let b64: String = k["private_key_pkcs8_pem"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let id = RsaOaepIdentity::from_pkcs8_der(&der).unwrap();
        out.push((id.bits(), id));
    }
    out
}

fn rsa(c: &mut Criterion) {
    let dk = DataKey::from_bytes([0x42; 32]);
    let mut g = c.benchmark_group("rsa-oaep-256");
    for (bits, id) in vector_identities() {
        let r = id.recipient().unwrap();
        let stanza = r.wrap(&dk).unwrap();
        g.bench_function(format!("unwrap {bits}"), |b| {
            b.iter(|| black_box(id.unwrap(black_box(&stanza)).unwrap()))
        });
        g.bench_function(format!("wrap {bits}"), |b| {
            b.iter(|| black_box(r.wrap(black_box(&dk)).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, raw_gcm, segment, stream, rsa);
criterion_main!(benches);
