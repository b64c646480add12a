//! Odd object keys round-trip (issue 16, item 4): a single space, spaces
//! only, a tab, leading and trailing whitespace, `%`, `+`, `?`, `#`, dot
//! segments and doubled slashes, unicode, and a key of exactly 1,024 bytes go
//! through PutObject, GetObject, HeadObject, CopyObject (the source URL-encoded
//! in `x-amz-copy-source`), UploadPartCopy into a multipart object, ListObjects
//! V1 and V2 (plain and `encoding-type=url`) and DeleteObjects, over the
//! embedded store and over Garage.
//!
//! Garage 2.5 itself writes keys of at most 479 bytes and deletes keys of at
//! most 471 (longer ones get 503 "Could not reach quorum": LMDB's key size,
//! from Garage directly too), and drops a key's leading slashes (`/a` is
//! stored as `a`, so a copy from `/a` finds nothing): over Garage the longest
//! key is 471 bytes, and the leading-slash row runs over the embedded store
//! only (docs/COMPATIBILITY.md).
//!
//! aws-sdk-s3 will not send a key made of whitespace only (the test client
//! and sealgate's store client alike): `keyed!` gives it a stand-in and puts
//! the key back into the request's path before signing. boto3 sends such
//! keys as they are (tests/clients/boto3_suite.py, `edge_keys`).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, EncodingType, ObjectIdentifier,
};

use crate::harness::*;

/// The longest key S3 allows, in bytes.
const MAX_KEY: usize = 1024;
/// The longest key Garage 2.5 writes and deletes, in bytes.
const GARAGE_MAX_KEY: usize = 471;
/// The longest key Garage 2.5 writes, in bytes.
const GARAGE_MAX_WRITE: usize = 479;

#[derive(Clone, Copy)]
enum Key {
    Is(&'static str),
    /// A key of exactly this many bytes: two-byte characters and ASCII.
    Len(usize),
}

impl Key {
    fn name(self) -> String {
        match self {
            Key::Is(k) => k.to_owned(),
            Key::Len(n) => {
                let mut k = format!("{}/end", "é".repeat((n - 4) / 2));
                k.push_str(&"x".repeat(n - k.len()));
                assert_eq!(k.len(), n);
                k
            }
        }
    }

    /// The longest key its row may derive others from.
    fn limit(self) -> usize {
        match self {
            Key::Is(_) => MAX_KEY,
            Key::Len(n) => n,
        }
    }
}

/// Another key derived from `k`, within `limit` bytes.
fn sibling(k: &str, tag: &str, limit: usize) -> String {
    let mut cut = k.len().min(limit - tag.len());
    while !k.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tag}", &k[..cut])
}

/// `x-amz-copy-source` as SDKs write it: the key URL-encoded, `/` kept.
fn copy_source(bucket: &str, key: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    format!("{bucket}/{}", utf8_percent_encode(key, KEEP))
}

fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap_or_else(|e| panic!("{s:?} is not url-encoded UTF-8: {e}"))
        .into_owned()
}

table! { round_trip;
    single_space_embedded: (On::Local, Key::Is(" ")),
    single_space_garage: (On::Garage, Key::Is(" ")),
    spaces_only_embedded: (On::Local, Key::Is("   ")),
    spaces_only_garage: (On::Garage, Key::Is("   ")),
    tab_only_embedded: (On::Local, Key::Is("\t")),
    tab_only_garage: (On::Garage, Key::Is("\t")),
    leading_whitespace_embedded: (On::Local, Key::Is("  leading")),
    leading_whitespace_garage: (On::Garage, Key::Is("  leading")),
    trailing_whitespace_embedded: (On::Local, Key::Is("trailing \t ")),
    trailing_whitespace_garage: (On::Garage, Key::Is("trailing \t ")),
    percent_embedded: (On::Local, Key::Is("100% done %2F %zz %")),
    percent_garage: (On::Garage, Key::Is("100% done %2F %zz %")),
    plus_embedded: (On::Local, Key::Is("a+b c+d+")),
    plus_garage: (On::Garage, Key::Is("a+b c+d+")),
    question_mark_embedded: (On::Local, Key::Is("why?x=1&y=2?")),
    question_mark_garage: (On::Garage, Key::Is("why?x=1&y=2?")),
    hash_embedded: (On::Local, Key::Is("#1 #2#")),
    hash_garage: (On::Garage, Key::Is("#1 #2#")),
    unicode_embedded: (On::Local, Key::Is("ünï/日本語/😀 ñ")),
    unicode_garage: (On::Garage, Key::Is("ünï/日本語/😀 ñ")),
    dot_segments_embedded: (On::Local, Key::Is("a/../b/./c/..")),
    dot_segments_garage: (On::Garage, Key::Is("a/../b/./c/..")),
    doubled_slashes_embedded: (On::Local, Key::Is("a//b//c/")),
    doubled_slashes_garage: (On::Garage, Key::Is("a//b//c/")),
    leading_slashes_embedded: (On::Local, Key::Is("//lead/")),
    max_length_embedded: (On::Local, Key::Len(MAX_KEY)),
    longest_garage_key_garage: (On::Garage, Key::Len(GARAGE_MAX_KEY)),
}

async fn get_body(gw: &Gw, b: &str, k: &str) -> Result<Vec<u8>, S3Err> {
    let r = keyed!(gw.client.get_object().bucket(b), k)
        .send()
        .await
        .map_err(S3Err::from)?;
    Ok(r.body.collect().await.unwrap().into_bytes().to_vec())
}

/// (key, size) of every entry of a listing, decoded when url-encoded, with
/// every field the encoding applies to checked.
async fn listed(gw: &Gw, b: &str, prefix: Option<&str>, v1: bool, url: bool) -> Vec<(String, i64)> {
    let enc = url.then_some(EncodingType::Url);
    let dec = |s: &str| if url { url_decode(s) } else { s.to_owned() };
    let (entries, echoed) = if v1 {
        let r = gw
            .client
            .list_objects()
            .bucket(b)
            .set_prefix(prefix.map(Into::into))
            .set_encoding_type(enc)
            .send()
            .await
            .unwrap();
        let e: Vec<_> = r
            .contents()
            .iter()
            .map(|o| (dec(o.key().unwrap()), o.size().unwrap()))
            .collect();
        (e, r.prefix().map(dec))
    } else {
        let r = gw
            .client
            .list_objects_v2()
            .bucket(b)
            .set_prefix(prefix.map(Into::into))
            .set_encoding_type(enc)
            .send()
            .await
            .unwrap();
        let e: Vec<_> = r
            .contents()
            .iter()
            .map(|o| (dec(o.key().unwrap()), o.size().unwrap()))
            .collect();
        (e, r.prefix().map(dec))
    };
    assert_eq!(
        echoed.as_deref().unwrap_or_default(),
        prefix.unwrap_or_default(),
        "the Prefix echoed (v1 {v1}, url {url})"
    );
    entries
}

async fn round_trip((on, key): (On, Key)) {
    let w = world(on);
    let gw = w.gateway(Spec::alice());
    let b = unique_bucket("keys");
    gw.mb(&b).await;
    let k = key.name();
    let body = data(1000 + k.len(), k.len() as u64);
    let n = body.len() as i64;

    keyed!(
        gw.client
            .put_object()
            .bucket(&b)
            .body(ByteStream::from(body.clone())),
        &k
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("put {k:?}: {}", S3Err::from(e)));
    assert_eq!(get_body(&gw, &b, &k).await.unwrap(), body, "get {k:?}");
    let h = keyed!(gw.client.head_object().bucket(&b), &k)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {k:?}: {}", S3Err::from(e)));
    assert_eq!(h.content_length(), Some(n), "head {k:?}");

    // CopyObject: the odd key as the source (URL-encoded) and in the target.
    let copy = sibling(&k, ".copy", key.limit());
    keyed!(
        gw.client
            .copy_object()
            .bucket(&b)
            .copy_source(copy_source(&b, &k)),
        &copy
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("copy {k:?}: {}", S3Err::from(e)));
    assert_eq!(
        get_body(&gw, &b, &copy).await.unwrap(),
        body,
        "copy of {k:?}"
    );

    // UploadPartCopy: the odd key as the source of a part.
    let mp = sibling(&k, ".mp", key.limit());
    let id = keyed!(gw.client.create_multipart_upload().bucket(&b), &mp)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {mp:?}: {}", S3Err::from(e)))
        .upload_id()
        .unwrap()
        .to_owned();
    let r = keyed!(
        gw.client
            .upload_part_copy()
            .bucket(&b)
            .upload_id(&id)
            .part_number(1)
            .copy_source(copy_source(&b, &k)),
        &mp
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("upload part copy of {k:?}: {}", S3Err::from(e)));
    let etag = r.copy_part_result().unwrap().e_tag().unwrap().to_owned();
    keyed!(
        gw.client
            .complete_multipart_upload()
            .bucket(&b)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                    .build(),
            ),
        &mp
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("complete {mp:?}: {}", S3Err::from(e)));
    assert_eq!(
        get_body(&gw, &b, &mp).await.unwrap(),
        body,
        "part copy of {k:?}"
    );

    // Listings, whole and under the key as a prefix, plain and url-encoded.
    let mut all = vec![k.clone(), copy.clone(), mp.clone()];
    all.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    let under_k: Vec<String> = all.iter().filter(|x| x.starts_with(&k)).cloned().collect();
    for v1 in [false, true] {
        for url in [false, true] {
            for (prefix, want) in [(None, &all), (Some(k.as_str()), &under_k)] {
                let got = listed(&gw, &b, prefix, v1, url).await;
                let keys: Vec<&String> = got.iter().map(|e| &e.0).collect();
                let want_keys: Vec<&String> = want.iter().collect();
                assert_eq!(
                    keys, want_keys,
                    "listed (v1 {v1}, url {url}, prefix {prefix:?})"
                );
                assert!(got.iter().all(|e| e.1 == n), "listed sizes: {got:?}");
            }
        }
    }

    // DeleteObjects of the three.
    let r = gw
        .client
        .delete_objects()
        .bucket(&b)
        .delete(
            Delete::builder()
                .set_objects(Some(
                    all.iter()
                        .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
                        .collect(),
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete {k:?}: {}", S3Err::from(e)));
    assert!(r.errors().is_empty(), "delete errors: {:?}", r.errors());
    let mut deleted: Vec<String> = r
        .deleted()
        .iter()
        .map(|d| d.key().unwrap().to_owned())
        .collect();
    deleted.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    assert_eq!(deleted, all, "deleted");
    for x in &all {
        let e = get_body(&gw, &b, x).await.expect_err("deleted");
        assert_refused(&e, 404, "NoSuchKey", &format!("get {x:?} after delete"));
    }
    assert!(listed(&gw, &b, None, false, false).await.is_empty());
}

/// One byte over the limit is refused before anything is stored.
#[tokio::test]
async fn a_key_over_1024_bytes_is_refused() {
    let (w, gw) = World::with_bucket("long").await;
    let k = "k".repeat(MAX_KEY + 1);
    let e = must_fail(
        gw.client
            .put_object()
            .bucket("long")
            .key(&k)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        "put of a 1,025-byte key",
    );
    assert_refused(&e, 400, "KeyTooLongError", "1,025-byte key");
    assert!(w.raw_keys("long").await.is_empty());
}

/// A key longer than Garage holds fails at Garage, and sealgate leaves
/// nothing behind (no object, no hidden record).
#[tokio::test]
async fn a_key_longer_than_garage_holds_fails_cleanly_garage() {
    let w = World::garage();
    let gw = w.gateway(Spec::alice());
    let b = unique_bucket("keys");
    gw.mb(&b).await;
    let k = Key::Len(GARAGE_MAX_WRITE + 1).name();
    let e = must_fail(
        gw.client
            .put_object()
            .bucket(&b)
            .key(&k)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        "put of a key Garage cannot hold",
    );
    assert!(e.status >= 500, "{e}");
    assert!(
        w.raw_keys(&b).await.is_empty(),
        "{:?}",
        w.raw_keys(&b).await
    );
}
