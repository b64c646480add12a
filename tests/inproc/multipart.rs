//! Multipart uploads: create, upload, list parts, list uploads, complete,
//! abort, re-uploaded parts, and the part lists Complete must refuse.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::sync::Notify;

use crate::harness::*;

/// Starts an upload; returns its id.
pub async fn create(gw: &Gw, b: &str, k: &str) -> String {
    gw.client
        .create_multipart_upload()
        .bucket(b)
        .key(k)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned()
}

/// Starts an upload with metadata `origin: source` and a Content-Type of
/// `text/x-source`; returns its id.
pub async fn create_with_metadata(gw: &Gw, b: &str, k: &str) -> String {
    gw.client
        .create_multipart_upload()
        .bucket(b)
        .key(k)
        .metadata("origin", "source")
        .content_type("text/x-source")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned()
}

/// Uploads one part; returns its ETag without quotes.
pub async fn part(gw: &Gw, b: &str, k: &str, id: &str, n: i32, d: &[u8]) -> String {
    let r = gw
        .client
        .upload_part()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(d.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("part {n}: {}", S3Err::from(e)));
    unquote(r.e_tag().unwrap())
}

pub fn part_list(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

/// Completes an upload; the object's ETag, or the error.
pub async fn complete(
    gw: &Gw,
    b: &str,
    k: &str,
    id: &str,
    parts: &[(i32, &str)],
) -> Result<String, S3Err> {
    gw.client
        .complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .multipart_upload(part_list(parts))
        .send()
        .await
        .map(|r| unquote(r.e_tag().unwrap()))
        .map_err(S3Err::from)
}

/// A whole upload of parts of the given sizes (content from `k`'s name);
/// returns the parts' plaintexts.
pub async fn upload(gw: &Gw, b: &str, k: &str, sizes: &[usize]) -> Vec<Vec<u8>> {
    let id = create(gw, b, k).await;
    let mut parts = Vec::new();
    let mut etags = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let d = data(*n, k.len() as u64 * 100 + i as u64);
        etags.push(part(gw, b, k, &id, i as i32 + 1, &d).await);
        parts.push(d);
    }
    let list: Vec<(i32, &str)> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i32 + 1, e.as_str()))
        .collect();
    let etag = complete(gw, b, k, &id, &list).await.unwrap();
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    assert_eq!(etag, multipart_etag(&refs), "Complete's ETag");
    parts
}

/// The whole life of an upload, checked at each step: ListParts and
/// ListMultipartUploads answer what UploadPart and Create gave; the object
/// reads back exactly with its `-N` ETag everywhere; nothing of the upload
/// stays at the store.
#[tokio::test]
async fn create_upload_list_complete_read() {
    let (b, k) = ("multipart", "big/object");
    let (w, gw) = World::with_bucket(b).await;
    let id = create(&gw, b, k).await;
    let sizes = [5 * MIB, 5 * MIB + 3, 1000];
    let d: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| data(*n, 40 + i as u64))
        .collect();
    let mut etags = Vec::new();
    for (i, p) in d.iter().enumerate() {
        etags.push(part(&gw, b, k, &id, i as i32 + 1, p).await);
    }

    let lp = gw
        .client
        .list_parts()
        .bucket(b)
        .key(k)
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, String, i64)> = lp
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                unquote(p.e_tag().unwrap()),
                p.size().unwrap(),
            )
        })
        .collect();
    let expect: Vec<(i32, String, i64)> = (0..3)
        .map(|i| (i as i32 + 1, etags[i].clone(), sizes[i] as i64))
        .collect();
    assert_eq!(listed, expect, "ListParts: numbers, ETags, plaintext sizes");

    let lu = gw
        .client
        .list_multipart_uploads()
        .bucket(b)
        .send()
        .await
        .unwrap();
    let ups: Vec<(&str, &str)> = lu
        .uploads()
        .iter()
        .map(|u| (u.key().unwrap(), u.upload_id().unwrap()))
        .collect();
    assert_eq!(ups, [(k, id.as_str())], "ListMultipartUploads");

    let list: Vec<(i32, &str)> = (0..3).map(|i| (i as i32 + 1, etags[i].as_str())).collect();
    let etag = complete(&gw, b, k, &id, &list).await.unwrap();
    let refs: Vec<&[u8]> = d.iter().map(|p| p.as_slice()).collect();
    assert_eq!(etag, multipart_etag(&refs));
    assert!(etag.ends_with("-3"));

    let whole = d.concat();
    let cold = w.gateway(Spec::alice());
    for (which, g) in [("warm", &gw), ("cold", &cold)] {
        let r = g.client.get_object().bucket(b).key(k).send().await.unwrap();
        assert_eq!(r.content_length(), Some(whole.len() as i64), "{which}");
        assert_eq!(unquote(r.e_tag().unwrap()), etag, "{which} GET ETag");
        assert!(collect(r.body).await.unwrap() == whole, "{which}: content");
        let h = g
            .client
            .head_object()
            .bucket(b)
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(h.content_length(), Some(whole.len() as i64));
        assert_eq!(unquote(h.e_tag().unwrap()), etag, "{which} HEAD ETag");
        let l = g.client.list_objects_v2().bucket(b).send().await.unwrap();
        let c = l.contents();
        assert_eq!(c.len(), 1, "{which}: manifests stay hidden: {c:?}");
        assert_eq!(c[0].size(), Some(whole.len() as i64), "{which} listed size");
        assert_eq!(unquote(c[0].e_tag().unwrap()), etag, "{which} listed ETag");
        // GET by part number: the part's bytes.
        let r = g
            .client
            .get_object()
            .bucket(b)
            .key(k)
            .part_number(2)
            .send()
            .await
            .unwrap();
        assert_eq!(r.parts_count(), Some(3));
        assert!(collect(r.body).await.unwrap() == d[1], "{which}: part 2");
    }

    let lu = gw
        .client
        .list_multipart_uploads()
        .bucket(b)
        .send()
        .await
        .unwrap();
    assert!(lu.uploads().is_empty(), "{:?}", lu.uploads());
    assert!(w.store.list_uploads(b, None).await.unwrap().is_empty());
    let keys = w.raw_keys(b).await;
    assert!(
        keys.iter()
            .all(|x| x == k || x.starts_with(".sealgate/mp/")),
        "upload records left: {keys:?}"
    );
}

/// Abort leaves nothing: no upload, no part, no record, no object; the id
/// is dead afterwards.
#[tokio::test]
async fn abort_leaves_nothing() {
    let (b, k) = ("abort", "x");
    let (w, gw) = World::with_bucket(b).await;
    let id = create(&gw, b, k).await;
    part(&gw, b, k, &id, 1, &data(5 * MIB, 1)).await;
    part(&gw, b, k, &id, 2, &data(10, 2)).await;
    gw.client
        .abort_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert!(w.store.list_uploads(b, None).await.unwrap().is_empty());
    assert_eq!(w.raw_keys(b).await, Vec::<String>::new());
    match gw.get(b, k).await {
        Err(Refusal::Response(e)) => assert_refused(&e, 404, "NoSuchKey", "GET"),
        other => panic!("{other:?}"),
    }
    let e = must_fail(
        gw.client
            .upload_part()
            .bucket(b)
            .key(k)
            .upload_id(&id)
            .part_number(3)
            .body(ByteStream::from_static(b"late"))
            .send()
            .await,
        "part after abort",
    );
    assert_refused(&e, 404, "NoSuchUpload", "part after abort");
}

/// A part uploaded twice: the object holds the second upload's bytes, and
/// the first upload's ETag no longer completes.
#[tokio::test]
async fn reuploaded_part_wins_and_its_old_etag_is_refused() {
    let (b, k) = ("again", "x");
    let (w, gw) = World::with_bucket(b).await;
    let id = create(&gw, b, k).await;
    let first = data(5 * MIB, 1);
    let second = data(5 * MIB, 2);
    let tail = data(77, 3);
    let e1 = part(&gw, b, k, &id, 1, &first).await;
    let e2 = part(&gw, b, k, &id, 2, &tail).await;
    let e1b = part(&gw, b, k, &id, 1, &second).await;
    assert_ne!(e1, e1b);
    let e = complete(&gw, b, k, &id, &[(1, e1.as_str()), (2, e2.as_str())])
        .await
        .unwrap_err();
    assert_refused(&e, 400, "InvalidPart", "the replaced part's ETag");
    let etag = complete(&gw, b, k, &id, &[(1, e1b.as_str()), (2, e2.as_str())])
        .await
        .unwrap();
    assert_eq!(etag, multipart_etag(&[&second, &tail]));
    let got = w.gateway(Spec::alice()).get_ok(b, k).await;
    assert!(got == [second, tail].concat());
}

/// What a Complete is given, beside an upload of parts 1..=4 (5 MiB, 1 MiB,
/// 5 MiB, 1000 bytes).
#[derive(Clone, Copy)]
enum PartRef {
    /// The ETag UploadPart gave for this part.
    Own(i32),
    /// Part `.0` with the ETag of part `.1`.
    EtagOf(i32, i32),
    /// Part `.0` with the MD5 of the bytes of part `.0 + 1` (an ETag of
    /// the right form for other content).
    PlainMd5(i32),
    /// Part `.0` with its ETag's last hex digit changed.
    Flipped(i32),
    /// Part `.0` with the ETag of the same part number of another upload of
    /// the same key, holding other bytes.
    OtherUpload(i32),
}

struct BadComplete {
    parts: &'static [PartRef],
    status: u16,
    code: &'static str,
}

table! { bad_complete;
    complete_with_the_md5_of_other_bytes_is_invalid_part: BadComplete {
        parts: &[PartRef::PlainMd5(1), PartRef::Own(3)], status: 400, code: "InvalidPart" },
    complete_with_a_flipped_etag_is_invalid_part: BadComplete {
        parts: &[PartRef::Flipped(1), PartRef::Own(3)], status: 400, code: "InvalidPart" },
    complete_with_another_parts_etag_is_invalid_part: BadComplete {
        parts: &[PartRef::EtagOf(1, 3), PartRef::Own(3)], status: 400, code: "InvalidPart" },
    complete_with_another_uploads_part_is_invalid_part: BadComplete {
        parts: &[PartRef::OtherUpload(1), PartRef::Own(3)], status: 400, code: "InvalidPart" },
    complete_with_a_missing_part_is_invalid_part: BadComplete {
        parts: &[PartRef::Own(1), PartRef::Own(3), PartRef::EtagOf(5, 4)], status: 400, code: "InvalidPart" },
    complete_out_of_order_is_invalid_part_order: BadComplete {
        parts: &[PartRef::Own(3), PartRef::Own(1)], status: 400, code: "InvalidPartOrder" },
    complete_with_a_duplicate_is_invalid_part_order: BadComplete {
        parts: &[PartRef::Own(1), PartRef::Own(1)], status: 400, code: "InvalidPartOrder" },
    complete_with_a_small_part_not_last_is_entity_too_small: BadComplete {
        parts: &[PartRef::Own(1), PartRef::Own(2), PartRef::Own(3)], status: 400, code: "EntityTooSmall" },
    complete_with_no_parts_is_malformed_xml: BadComplete {
        parts: &[], status: 400, code: "MalformedXML" },
}

/// A refused Complete stores nothing and keeps the upload whole: it then
/// completes with a good list.
async fn bad_complete(case: BadComplete) {
    let (b, k) = ("badlist", "victim");
    let (w, gw) = World::with_bucket(b).await;
    let sizes = [5 * MIB, MIB, 5 * MIB, 1000];
    let d: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| data(*n, 50 + i as u64))
        .collect();
    let id = create(&gw, b, k).await;
    let mut etags = vec![String::new()];
    for (i, p) in d.iter().enumerate() {
        etags.push(part(&gw, b, k, &id, i as i32 + 1, p).await);
    }
    let other = create(&gw, b, k).await;
    // Other bytes under the same part number of another upload.
    let foreign = part(&gw, b, k, &other, 1, &d[1]).await;
    gw.client
        .abort_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(&other)
        .send()
        .await
        .unwrap();

    let list: Vec<(i32, String)> = case
        .parts
        .iter()
        .map(|p| match *p {
            PartRef::Own(n) => (n, etags[n as usize].clone()),
            PartRef::EtagOf(n, m) => (n, etags[m as usize].clone()),
            // The MD5 of other bytes than the part holds.
            PartRef::PlainMd5(n) => (n, md5_hex(&d[n as usize])),
            PartRef::Flipped(n) => {
                let mut e = etags[n as usize].clone();
                let last = if e.ends_with('0') { "1" } else { "0" };
                e.replace_range(e.len() - 1.., last);
                (n, e)
            }
            PartRef::OtherUpload(n) => (n, foreign.clone()),
        })
        .collect();
    let refs: Vec<(i32, &str)> = list.iter().map(|(n, e)| (*n, e.as_str())).collect();
    let e = complete(&gw, b, k, &id, &refs).await.unwrap_err();
    assert_refused(&e, case.status, case.code, "Complete");

    let keys = w.raw_keys(b).await;
    assert!(
        keys.iter().all(|x| x.starts_with(".sealgate/up/")),
        "a refused Complete left {keys:?}"
    );
    match gw.get(b, k).await {
        Err(Refusal::Response(e)) => assert_refused(&e, 404, "NoSuchKey", "GET"),
        other => panic!("{other:?}"),
    }
    // Without part 2 (parts may be skipped).
    let good = [
        (1, etags[1].as_str()),
        (3, etags[3].as_str()),
        (4, etags[4].as_str()),
    ];
    let etag = complete(&gw, b, k, &id, &good).await.unwrap();
    assert_eq!(etag, multipart_etag(&[&d[0], &d[2], &d[3]]));
    assert!(gw.get_ok(b, k).await == [&d[0][..], &d[2], &d[3]].concat());
}

/// Two gateways with the same configuration (and gateway secret) serve one
/// upload, its requests alternating between them: nothing an upload needs
/// lives in one gateway's memory.
#[tokio::test]
async fn two_gateways_share_one_upload() {
    let (b, k) = ("shared-upload", "x");
    let (w, one) = World::with_bucket(b).await;
    let two = w.gateway(Spec::alice());
    let id = create(&one, b, k).await;
    let p1 = data(5 * MIB, 61);
    let p2 = data(5 * MIB, 62);
    let p3 = data(4321, 63);
    let e1 = part(&two, b, k, &id, 1, &p1).await;
    let e3 = part(&one, b, k, &id, 3, &p3).await;
    let e2 = part(&two, b, k, &id, 2, &p2).await;
    let lp = one
        .client
        .list_parts()
        .bucket(b)
        .key(k)
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let listed: Vec<String> = lp
        .parts()
        .iter()
        .map(|p| unquote(p.e_tag().unwrap()))
        .collect();
    assert_eq!(listed, [e1.clone(), e2.clone(), e3.clone()]);
    let etag = complete(&two, b, k, &id, &[(1, e1.as_str()), (2, &e2), (3, &e3)])
        .await
        .unwrap();
    assert_eq!(etag, multipart_etag(&[&p1, &p2, &p3]));
    let got = w.gateway(Spec::alice()).get_ok(b, k).await;
    assert!(got == [p1, p2, p3].concat());
}

/// Holds the next ListParts once the store has answered it: the first
/// notify says it is held, the second lets it go on.
fn hold_next_list_parts(liar: &crate::liar::Liar) -> (Arc<Notify>, Arc<Notify>) {
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    liar.lies.lock().unwrap().hold_list_parts = Some((reached.clone(), release.clone()));
    (reached, release)
}

/// Two Completes of one upload with the same part list on two gateways,
/// the second read its part list before the first finished and goes on
/// after the first has completed and tidied the upload's records away: it
/// answers as the first did (a retried Complete), and the object reads
/// back. With the envelope in the object's metadata and in the manifest
/// (much metadata).
#[tokio::test]
async fn a_complete_overtaken_by_another_answers_as_that_one() {
    use sealgate::envelope::header::MetaValue;

    let (w, liar) = World::new().lying();
    let (gw, other) = (w.gateway(Spec::alice()), w.gateway(Spec::alice()));
    let b = "overtaken";
    gw.mb(b).await;
    for meta in [1, 1800] {
        let k = format!("k-{meta}");
        let id = gw
            .client
            .create_multipart_upload()
            .bucket(b)
            .key(&k)
            .metadata("note", "n".repeat(meta))
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_owned();
        let (d1, d2) = (data(5 * MIB, 1), data(1000, 2));
        let e1 = part(&gw, b, &k, &id, 1, &d1).await;
        let e2 = part(&gw, b, &k, &id, 2, &d2).await;
        let (reached, release) = hold_next_list_parts(&liar);
        let list = [(1, e1.as_str()), (2, e2.as_str())];
        let (second, first) = tokio::join!(complete(&gw, b, &k, &id, &list), async {
            reached.notified().await;
            let first = complete(&other, b, &k, &id, &list).await.unwrap();
            release.notify_one();
            first
        });
        assert_eq!(second.map_err(|e| e.code), Ok(first), "{k}");
        assert!(gw.get_ok(b, &k).await == [d1, d2].concat(), "{k}");
        let info = w.store.head(b, &k).await.unwrap();
        let home = MetaValue::decode(&info.headers.metadata["sg"]).unwrap();
        assert_eq!(
            matches!(home, MetaValue::InManifest { .. }),
            meta > 1,
            "{k}: where the envelope is"
        );
    }
}

/// Two Completes of one upload on one gateway, with different part lists:
/// the second waits for the first, which makes the object, and is then
/// told the upload is gone; the object is the first's.
#[tokio::test]
async fn completes_of_one_upload_on_one_gateway_take_turns() {
    let (w, liar) = World::new().lying();
    let gw = w.gateway(Spec::alice());
    let b = "turns";
    gw.mb(b).await;
    let k = "k";
    let id = create(&gw, b, k).await;
    let (d1, d2) = (data(5 * MIB, 1), data(1000, 2));
    let e1 = part(&gw, b, k, &id, 1, &d1).await;
    let e2 = part(&gw, b, k, &id, 2, &d2).await;
    let (reached, release) = hold_next_list_parts(&liar);
    let both = [(1, e1.as_str()), (2, e2.as_str())];
    let one = [(1, e1.as_str())];
    let (first, second) = tokio::join!(complete(&gw, b, k, &id, &both), async {
        reached.notified().await;
        let second = complete(&gw, b, k, &id, &one);
        tokio::pin!(second);
        // The first is held at the store: the second waits its turn.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(300), second.as_mut()).await;
        assert!(
            waited.is_err(),
            "the second Complete did not wait: {waited:?}"
        );
        release.notify_one();
        second.await
    });
    assert_eq!(first.unwrap(), multipart_etag(&[&d1, &d2]));
    assert_eq!(second.map_err(|e| e.code), Err("NoSuchUpload".to_owned()));
    assert!(gw.get_ok(b, k).await == [d1, d2].concat());
    let _ = w;
}
