//! The hostile store: objects written honestly through the gateway, then
//! rewritten at the store (through the `Store` trait, as its operator could).
//! No case is ever served as wrong data, by the gateway that wrote the object
//! (its caches warm) or by a fresh one. Each case declares what a client of
//! each sees: an error response, or a body stream cut short; the writer may
//! still serve the honest bytes when only the store's copy of the manifest
//! changed (it authenticated the manifest before).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sealgate::store::ObjectHeaders;

use crate::harness::*;

const B: &str = "hostile";
/// Single-part objects: 3 segments and a bit.
const N: usize = 3 * SEG + 3000;
/// Bytes before the first segment of an inline-header object: the stream
/// header (FORMAT.md section 7).
const STREAM_HEADER: usize = 24;
/// A sealed segment: 64 KiB and its tag.
const SEALED_SEG: usize = SEG + 16;

#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Flip one bit of the stored body at this offset.
    FlipByte(usize),
    /// Flip one bit of the body's last byte (the trailer record).
    FlipLastByte,
    /// Cut this many bytes off the end.
    Truncate(usize),
    /// Keep only the stream header and the first sealed segment.
    TruncateAtSegmentBoundary,
    /// Append zero bytes.
    Extend(usize),
    /// Swap the first two sealed segments.
    SwapSegments,
    /// Another object's body under this object's metadata.
    BodyOfOther,
    /// Another object's metadata (its header) over this object's body.
    HeaderOfOther,
    /// Another object's body and metadata, moved under this name.
    MovedFromOther,
    /// This object's body and metadata, with `x-amz-meta-sg` removed.
    NoHeader,
    /// The header's version byte set to 2.
    HeaderVersion2,
    /// The header's last base64 character dropped.
    HeaderCut,
    /// An empty body.
    Empty,
    /// Multipart: flip a bit inside the second part.
    FlipInSecondPart,
    /// Multipart: flip a bit of the sealed manifest.
    FlipManifest,
    /// Multipart: the manifest replaced by another multipart object's.
    ManifestOfOther,
    /// Multipart: the manifest deleted.
    NoManifest,
}

impl Tamper {
    fn multipart(self) -> bool {
        matches!(
            self,
            Tamper::FlipInSecondPart
                | Tamper::FlipManifest
                | Tamper::ManifestOfOther
                | Tamper::NoManifest
        )
    }
}

/// How the client sees the refusal.
#[derive(Clone, Copy, Debug)]
enum Seen {
    /// An S3 error response with this status and code, its message
    /// containing the text.
    Error(u16, &'static str, &'static str),
    /// A response that starts, then a body stream that fails: the header
    /// was authentic, a later part of the content was not.
    BodyCut,
    /// Exactly the honest bytes: the gateway that wrote the object serves
    /// it from the view it authenticated then (its caches are keyed by
    /// authenticated bytes), and the object's own bytes are untouched.
    Honest,
}

/// The opaque message of every integrity failure.
const ALTERED: &str = "failed authentication";

struct HostileCase {
    tamper: Tamper,
    /// What a client of the gateway that wrote the object sees.
    warm: Seen,
    /// What a client of a fresh gateway sees.
    cold: Seen,
}

const fn h(tamper: Tamper, seen: Seen) -> HostileCase {
    HostileCase {
        tamper,
        warm: seen,
        cold: seen,
    }
}

/// A multipart object whose manifest the store changed.
const fn manifest(tamper: Tamper) -> HostileCase {
    HostileCase {
        tamper,
        warm: Seen::Honest,
        cold: INTEGRITY,
    }
}

const INTEGRITY: Seen = Seen::Error(500, "InternalError", ALTERED);

table! { hostile;
    flipped_byte_in_the_first_segment: h(Tamper::FlipByte(STREAM_HEADER + 1000), Seen::BodyCut),
    flipped_byte_in_the_third_segment: h(Tamper::FlipByte(STREAM_HEADER + 2 * SEALED_SEG + 7),
        Seen::BodyCut),
    flipped_byte_in_a_segment_tag: h(Tamper::FlipByte(STREAM_HEADER + SEALED_SEG - 3),
        Seen::BodyCut),
    flipped_byte_in_the_stream_header: h(Tamper::FlipByte(5), Seen::BodyCut),
    flipped_byte_in_the_trailer: h(Tamper::FlipLastByte, INTEGRITY),
    truncated_by_100_bytes: h(Tamper::Truncate(100), INTEGRITY),
    truncated_by_1_byte: h(Tamper::Truncate(1), INTEGRITY),
    truncated_at_a_segment_boundary: h(Tamper::TruncateAtSegmentBoundary, INTEGRITY),
    extended_by_16_bytes: h(Tamper::Extend(16), INTEGRITY),
    two_segments_swapped: h(Tamper::SwapSegments, Seen::BodyCut),
    body_of_another_object: h(Tamper::BodyOfOther, INTEGRITY),
    header_of_another_object: h(Tamper::HeaderOfOther, INTEGRITY),
    another_object_moved_under_this_name: h(Tamper::MovedFromOther, INTEGRITY),
    header_removed: h(Tamper::NoHeader,
        Seen::Error(403, "InvalidObjectState", "not written by sealgate")),
    header_of_an_unknown_version: h(Tamper::HeaderVersion2,
        Seen::Error(500, "InternalError", "format version 2")),
    header_cut_short: h(Tamper::HeaderCut, INTEGRITY),
    empty_body: h(Tamper::Empty, INTEGRITY),
    multipart_flipped_byte_in_the_second_part: h(Tamper::FlipInSecondPart, Seen::BodyCut),
    multipart_flipped_manifest: manifest(Tamper::FlipManifest),
    multipart_manifest_of_another_object: manifest(Tamper::ManifestOfOther),
    multipart_manifest_removed: manifest(Tamper::NoManifest),
}

fn sg(info: &ObjectHeaders) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(&info.metadata["sg"])
        .expect("inline header")
}

fn with_sg(h: &ObjectHeaders, raw: &[u8]) -> ObjectHeaders {
    let mut h = h.clone();
    h.metadata.insert("sg".into(), URL_SAFE_NO_PAD.encode(raw));
    h
}

/// The one manifest key at the store that is not in `before`.
async fn new_manifest(w: &World, before: &[String]) -> String {
    let m: Vec<String> = w
        .raw_keys(B)
        .await
        .into_iter()
        .filter(|k| k.starts_with(".sealgate/mp/") && !before.contains(k))
        .collect();
    assert_eq!(m.len(), 1, "{m:?}");
    m[0].clone()
}

async fn hostile(case: HostileCase) {
    let (w, gw) = World::with_bucket(B).await;
    let k = "victim";
    let (d, other_manifest) = if case.tamper.multipart() {
        let parts = crate::multipart::upload(&gw, B, "other", &[5 * MIB, 500]).await;
        assert_eq!(parts.len(), 2);
        let om = new_manifest(&w, &[]).await;
        let d = crate::multipart::upload(&gw, B, k, &[5 * MIB, 2000])
            .await
            .concat();
        (d, Some(om))
    } else {
        gw.put(B, "other", &data(N, 2)).await;
        let d = data(N, 1);
        gw.put(B, k, &d).await;
        (d, None)
    };
    // Warm the writer's caches with an honest read.
    assert!(gw.get_ok(B, k).await == d);

    let (info, mut body) = w.raw_get(B, k).await;
    let (oinfo, obody) = w.raw_get(B, "other").await;
    let mut headers = info.headers.clone();
    match case.tamper {
        Tamper::FlipByte(at) => body[at] ^= 0x01,
        Tamper::FlipLastByte => *body.last_mut().unwrap() ^= 0x80,
        Tamper::Truncate(n) => body.truncate(body.len() - n),
        Tamper::TruncateAtSegmentBoundary => body.truncate(STREAM_HEADER + SEALED_SEG),
        Tamper::Extend(n) => body.extend(std::iter::repeat_n(0u8, n)),
        Tamper::SwapSegments => {
            let (s0, s1) =
                body[STREAM_HEADER..STREAM_HEADER + 2 * SEALED_SEG].split_at_mut(SEALED_SEG);
            s0.swap_with_slice(s1);
        }
        Tamper::BodyOfOther => body = obody,
        Tamper::HeaderOfOther => headers = oinfo.headers.clone(),
        Tamper::MovedFromOther => (headers, body) = (oinfo.headers.clone(), obody),
        Tamper::NoHeader => {
            headers.metadata.remove("sg");
        }
        Tamper::HeaderVersion2 => {
            let mut raw = sg(&headers);
            raw[0] = 2;
            headers = with_sg(&headers, &raw);
        }
        Tamper::HeaderCut => {
            let v = headers.metadata.get_mut("sg").unwrap();
            v.pop();
        }
        Tamper::Empty => body.clear(),
        Tamper::FlipInSecondPart => {
            let at = body.len() - 1000;
            body[at] ^= 0x01;
        }
        Tamper::FlipManifest | Tamper::ManifestOfOther | Tamper::NoManifest => {
            let om = other_manifest.clone().unwrap();
            let m = new_manifest(&w, std::slice::from_ref(&om)).await;
            let (minfo, mut mraw) = w.raw_get(B, &m).await;
            match case.tamper {
                Tamper::FlipManifest => {
                    let n = mraw.len();
                    mraw[n / 2] ^= 0x01;
                    w.raw_put(B, &m, mraw, &minfo.headers).await;
                }
                Tamper::ManifestOfOther => {
                    let (oinfo, oraw) = w.raw_get(B, &om).await;
                    w.raw_put(B, &m, oraw, &oinfo.headers).await;
                }
                _ => w.store.delete(B, &m).await.unwrap(),
            }
        }
    }
    if !matches!(
        case.tamper,
        Tamper::FlipManifest | Tamper::ManifestOfOther | Tamper::NoManifest
    ) {
        w.raw_put(B, k, body, &headers).await;
    }

    let cold = w.gateway(Spec::alice());
    for (which, g, seen) in [("warm", &gw, case.warm), ("cold", &cold, case.cold)] {
        let got = g.get(B, k).await;
        match (seen, got) {
            (Seen::Honest, Ok(bytes)) => assert!(bytes == d, "{which}: other bytes"),
            (_, Ok(bytes)) => panic!(
                "{which}: served {} bytes of a tampered object (the honest bytes: {})",
                bytes.len(),
                bytes == d
            ),
            (Seen::Error(status, code, text), Err(Refusal::Response(e))) => {
                assert_refused(&e, status, code, which);
                assert!(e.message.contains(text), "{which}: {e}");
            }
            (Seen::BodyCut, Err(Refusal::Body(why))) => eprintln!("{which}: body cut: {why}"),
            (seen, Err(r)) => panic!("{which}: expected {seen:?}, saw {r:?}"),
        }
    }
    // A ranged read of the whole tampered region is refused too.
    let r = cold
        .client
        .get_object()
        .bucket(B)
        .key(k)
        .range(format!("bytes=0-{}", d.len() - 1))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(
            collect(r.body).await.is_err(),
            "a ranged GET served a tampered object"
        );
    }
    // The other object is untouched and still reads, from both.
    let other = cold.get_ok(B, "other").await;
    let n = if case.tamper.multipart() {
        5 * MIB + 500
    } else {
        N
    };
    assert_eq!(other.len(), n);
}
