//! Versioning over a store that keeps versions (moto): PutBucketVersioning
//! and GetBucketVersioning passed through, every version read back exactly
//! (bytes, ETag, size) by its version id, ListObjectVersions with plaintext
//! sizes and ETags, delete markers, deletes of one version, copies from a
//! version, multipart manifests kept while a version needs them (and by
//! `sealgate gc`); a version of another key refused. Over the embedded
//! store and Garage (no versioning): clear refusals, never the latest object
//! served or deleted in place of a version.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, Delete, ObjectIdentifier, VersioningConfiguration,
};
use sealgate::store::ObjectHeaders;

use crate::harness::*;
use crate::multipart::{complete, create, part};

/// Turns versioning on for the bucket.
pub async fn enable(gw: &Gw, b: &str) {
    gw.client
        .put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("enable versioning: {}", S3Err::from(e)));
}

/// PutObject: (ETag, version id).
async fn put_v(gw: &Gw, b: &str, k: &str, d: &[u8]) -> (String, String) {
    let r = gw
        .client
        .put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(d.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {k}: {}", S3Err::from(e)));
    (
        unquote(r.e_tag().unwrap()),
        r.version_id().expect("a version id").to_owned(),
    )
}

/// A one-part multipart upload of `d`: (ETag, version id).
async fn put_mp(gw: &Gw, b: &str, k: &str, d: &[u8]) -> (String, String) {
    let id = create(gw, b, k).await;
    let e = part(gw, b, k, &id, 1, d).await;
    let r = gw
        .client
        .complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(&id)
        .multipart_upload(crate::multipart::part_list(&[(1, e.as_str())]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete {k}: {}", S3Err::from(e)));
    (
        unquote(r.e_tag().unwrap()),
        r.version_id().expect("a version id").to_owned(),
    )
}

/// GetObject of one version: (bytes, ETag, Content-Length, version id).
async fn get_v(
    gw: &Gw,
    b: &str,
    k: &str,
    v: &str,
) -> Result<(Vec<u8>, String, i64, String), S3Err> {
    let r = gw
        .client
        .get_object()
        .bucket(b)
        .key(k)
        .version_id(v)
        .send()
        .await
        .map_err(S3Err::from)?;
    let etag = unquote(r.e_tag().unwrap());
    let len = r.content_length().unwrap();
    let vid = r.version_id().unwrap_or_default().to_owned();
    let body = collect(r.body).await.expect("the body");
    Ok((body, etag, len, vid))
}

/// Every version of the bucket: (key, version id, ETag, size, latest).
async fn versions(
    gw: &Gw,
    b: &str,
) -> (
    Vec<(String, String, String, i64, bool)>,
    Vec<(String, String, bool)>,
) {
    let r = gw
        .client
        .list_object_versions()
        .bucket(b)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list versions: {}", S3Err::from(e)));
    let vs = r
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().to_owned(),
                v.version_id().unwrap().to_owned(),
                unquote(v.e_tag().unwrap()),
                v.size().unwrap(),
                v.is_latest().unwrap(),
            )
        })
        .collect();
    let ms = r
        .delete_markers()
        .iter()
        .map(|m| {
            (
                m.key().unwrap().to_owned(),
                m.version_id().unwrap().to_owned(),
                m.is_latest().unwrap(),
            )
        })
        .collect();
    (vs, ms)
}

async fn manifests(w: &World, b: &str) -> Vec<String> {
    w.raw_keys(b)
        .await
        .into_iter()
        .filter(|k| k.starts_with(".sealgate/mp/"))
        .collect()
}

#[tokio::test]
async fn every_version_reads_back_exactly_and_lists_with_plaintext_sizes() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-read");
    gw.mb(b).await;
    let got = gw
        .client
        .get_bucket_versioning()
        .bucket(b)
        .send()
        .await
        .unwrap();
    assert!(got.status().is_none(), "never enabled: {:?}", got.status());
    enable(&gw, b).await;
    let got = gw
        .client
        .get_bucket_versioning()
        .bucket(b)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), Some(&BucketVersioningStatus::Enabled));

    let (d1, d2, d3) = (data(1000, 1), data(3 * SEG + 7, 2), data(0, 3));
    let (e1, v1) = put_v(&gw, b, "k", &d1).await;
    let (e2, v2) = put_mp(&gw, b, "k", &d2).await;
    let (e3, v3) = put_v(&gw, b, "k", &d3).await;
    assert_eq!(e1, md5_hex(&d1));
    assert_eq!(e2, multipart_etag(&[&d2]));
    assert!(v1 != v2 && v2 != v3 && v1 != v3);

    for (v, d, e) in [(&v1, &d1, &e1), (&v2, &d2, &e2), (&v3, &d3, &e3)] {
        let (body, etag, len, vid) = get_v(&gw, b, "k", v).await.unwrap();
        assert!(&body == d, "version {v}: the bytes");
        assert_eq!((&etag, len, &vid), (e, d.len() as i64, v), "version {v}");
        let h = gw
            .client
            .head_object()
            .bucket(b)
            .key("k")
            .version_id(v)
            .send()
            .await
            .unwrap();
        assert_eq!(unquote(h.e_tag().unwrap()), *e, "HEAD of {v}");
        assert_eq!(h.content_length(), Some(d.len() as i64), "HEAD of {v}");
        assert_eq!(h.version_id(), Some(v.as_str()), "HEAD of {v}");
        // A range of an old version, decrypted from that version.
        if d.len() > 10 {
            let r = gw
                .client
                .get_object()
                .bucket(b)
                .key("k")
                .version_id(v)
                .range("bytes=3-9")
                .send()
                .await
                .unwrap();
            assert_eq!(collect(r.body).await.unwrap(), d[3..10], "range of {v}");
        }
    }
    // The latest, without a version id, is the last write and says so.
    let latest = gw
        .client
        .get_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(latest.version_id(), Some(v3.as_str()));

    let (vs, ms) = versions(&gw, b).await;
    assert!(ms.is_empty());
    let mut want = vec![
        (
            "k".to_owned(),
            v1.clone(),
            e1.clone(),
            d1.len() as i64,
            false,
        ),
        (
            "k".to_owned(),
            v2.clone(),
            e2.clone(),
            d2.len() as i64,
            false,
        ),
        ("k".to_owned(), v3.clone(), e3.clone(), 0, true),
    ];
    let mut vs_sorted = vs.clone();
    vs_sorted.sort_by(|a, b| a.1.cmp(&b.1));
    want.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        vs_sorted, want,
        "exact sizes and ETags, sealgate's keys hidden"
    );
    // The multipart version's manifest is there, hidden.
    assert_eq!(manifests(&w, b).await.len(), 1);

    // Paging with the store's markers passes through (a page may show
    // nothing when it held only sealgate's own keys).
    let mut paged: Vec<String> = Vec::new();
    let mut markers: (Option<String>, Option<String>) = (None, None);
    for _ in 0..50 {
        let p = gw
            .client
            .list_object_versions()
            .bucket(b)
            .max_keys(2)
            .set_key_marker(markers.0.clone())
            .set_version_id_marker(markers.1.clone())
            .send()
            .await
            .unwrap();
        assert!(p.versions().len() <= 2);
        paged.extend(
            p.versions()
                .iter()
                .map(|v| v.version_id().unwrap().to_owned()),
        );
        if p.is_truncated() != Some(true) {
            break;
        }
        markers = (
            p.next_key_marker().map(str::to_owned),
            p.next_version_id_marker().map(str::to_owned),
        );
    }
    paged.sort();
    let mut all = vec![v1, v2, v3];
    all.sort();
    assert_eq!(paged, all);
}

#[tokio::test]
async fn deletes_leave_markers_and_keep_old_multipart_versions_readable() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-delete");
    gw.mb(b).await;
    enable(&gw, b).await;
    let (d1, d2, d3) = (data(2 * SEG, 1), data(500, 2), data(SEG + 1, 3));
    let (_, v1) = put_mp(&gw, b, "k", &d1).await;
    // Overwritten by a single-part object, then by a multipart completion:
    // the old manifests stay (each version needs its own).
    let (_, v2) = put_v(&gw, b, "k", &d2).await;
    let (_, v3) = put_mp(&gw, b, "k", &d3).await;
    assert_eq!(manifests(&w, b).await.len(), 2);
    assert_eq!(get_v(&gw, b, "k", &v1).await.unwrap().0, d1);

    // A delete without a version id: a delete marker, the object gone for
    // plain reads, every version still there.
    let del = gw
        .client
        .delete_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().expect("the marker's version").to_owned();
    match gw.get(b, "k").await {
        Err(Refusal::Response(e)) => assert_refused(&e, 404, "NoSuchKey", "after a delete"),
        other => panic!("after a delete: {other:?}"),
    }
    assert_eq!(manifests(&w, b).await.len(), 2, "kept behind the marker");
    assert_eq!(get_v(&gw, b, "k", &v1).await.unwrap().0, d1);
    assert_eq!(get_v(&gw, b, "k", &v3).await.unwrap().0, d3);
    let (vs, ms) = versions(&gw, b).await;
    assert_eq!(vs.len(), 3);
    assert_eq!(ms, [("k".to_owned(), marker.clone(), true)]);

    // Removing the marker brings the latest back.
    let undel = gw
        .client
        .delete_object()
        .bucket(b)
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(undel.version_id(), Some(marker.as_str()));
    assert_eq!(gw.get_ok(b, "k").await, d3);

    // Deleting one multipart version for good leaves its manifest (no
    // request deletes a manifest on a bucket that keeps versions: another
    // version may share it); gc removes it below.
    gw.client
        .delete_object()
        .bucket(b)
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert!(get_v(&gw, b, "k", &v1).await.is_err(), "v1 is gone");
    assert_eq!(manifests(&w, b).await.len(), 2, "v1's manifest is gc's");
    assert_eq!(get_v(&gw, b, "k", &v2).await.unwrap().0, d2);
    assert_eq!(get_v(&gw, b, "k", &v3).await.unwrap().0, d3);

    // DeleteObjects with version ids: v2 for good, a marker over the rest.
    let r = gw
        .client
        .delete_objects()
        .bucket(b)
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v2)
                        .build()
                        .unwrap(),
                )
                .objects(ObjectIdentifier::builder().key("k").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.errors().is_empty(), "{:?}", r.errors());
    let gone: Vec<_> = r
        .deleted()
        .iter()
        .filter(|d| d.version_id() == Some(v2.as_str()))
        .collect();
    assert_eq!(gone.len(), 1, "{:?}", r.deleted());
    let marked: Vec<_> = r
        .deleted()
        .iter()
        .filter(|d| d.version_id().is_none() && d.delete_marker() == Some(true))
        .collect();
    assert_eq!(marked.len(), 1, "{:?}", r.deleted());
    assert!(marked[0].delete_marker_version_id().is_some());
    assert!(get_v(&gw, b, "k", &v2).await.is_err(), "v2 is gone");
    assert_eq!(get_v(&gw, b, "k", &v3).await.unwrap().0, d3);
    assert_eq!(manifests(&w, b).await.len(), 2);
    // gc removes v1's manifest (no version names it) and keeps v3's.
    let r = w.gc_now(b).await;
    assert_eq!(r.orphan_manifests.len(), 1, "{:?}", r.orphan_manifests);
    assert_eq!(manifests(&w, b).await.len(), 1, "v3's manifest stays");
    assert_eq!(get_v(&gw, b, "k", &v3).await.unwrap().0, d3);
}

#[tokio::test]
async fn copies_read_the_version_named() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-copy");
    gw.mb(b).await;
    enable(&gw, b).await;
    let (d1, d2) = (data(3000, 1), data(SEG + 5, 2));
    let (e1, v1) = put_mp(&gw, b, "src", &d1).await;
    put_v(&gw, b, "src", &d2).await;
    let r = gw
        .client
        .copy_object()
        .bucket(b)
        .key("dst")
        .copy_source(format!("{b}/src?versionId={v1}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy: {}", S3Err::from(e)));
    assert_eq!(r.copy_source_version_id(), Some(v1.as_str()));
    assert!(r.version_id().is_some(), "the copy's own version");
    assert_eq!(
        unquote(r.copy_object_result().unwrap().e_tag().unwrap()),
        e1
    );
    assert_eq!(gw.get_ok(b, "dst").await, d1);

    // UploadPartCopy from the old version.
    let id = create(&gw, b, "assembled").await;
    let pc = gw
        .client
        .upload_part_copy()
        .bucket(b)
        .key("assembled")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{b}/src?versionId={v1}"))
        .copy_source_range("bytes=10-2009")
        .send()
        .await
        .unwrap_or_else(|e| panic!("part copy: {}", S3Err::from(e)));
    let pe = unquote(pc.copy_part_result().unwrap().e_tag().unwrap());
    complete(&gw, b, "assembled", &id, &[(1, pe.as_str())])
        .await
        .unwrap();
    assert_eq!(gw.get_ok(b, "assembled").await, d1[10..2010]);
}

#[tokio::test]
async fn gc_keeps_the_manifests_old_versions_need() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-gc");
    gw.mb(b).await;
    enable(&gw, b).await;
    let d1 = data(SEG + 3, 1);
    let (_, v1) = put_mp(&gw, b, "k", &d1).await;
    put_v(&gw, b, "k", &data(10, 2)).await;
    gw.client
        .delete_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    // A manifest no version names (a completion cut off), and one hidden
    // behind a delete marker.
    let orphan = format!(".sealgate/mp/{}", "ab".repeat(16));
    w.raw_put(
        b,
        &orphan,
        b"nothing needs this".to_vec(),
        &ObjectHeaders::default(),
    )
    .await;
    let hidden = format!(".sealgate/mp/{}", "cd".repeat(16));
    w.raw_put(b, &hidden, b"nor this".to_vec(), &ObjectHeaders::default())
        .await;
    w.store.delete(b, &hidden).await.unwrap();

    let r = w.gc_now(b).await;
    let mut found: Vec<&str> = r.orphan_manifests.iter().map(|(k, _)| k.as_str()).collect();
    found.sort();
    assert_eq!(found, [orphan.as_str(), hidden.as_str()]);
    assert_eq!(r.objects, 2, "both versions of k counted");
    assert_eq!(
        get_v(&gw, b, "k", &v1).await.unwrap().0,
        d1,
        "v1's manifest kept"
    );
    let page = w
        .store
        .list_versions(
            b,
            &sealgate::store::versions::ListVersionsRequest {
                prefix: Some(".sealgate/mp/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let left: std::collections::BTreeSet<String> =
        page.entries.into_iter().map(|e| e.key).collect();
    assert_eq!(
        left.len(),
        1,
        "only v1's manifest is left, in every version: {left:?}"
    );
    // The upload's records, deleted at completion, stayed as versions
    // behind delete markers: gone now.
    assert!(r.old_versions > 0, "the records' old versions were found");
    let records = w
        .store
        .list_versions(
            b,
            &sealgate::store::versions::ListVersionsRequest {
                prefix: Some(".sealgate/up/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(records.entries.is_empty(), "{:?}", records.entries);
}

#[tokio::test]
async fn a_version_of_another_key_is_refused() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-hostile");
    gw.mb(b).await;
    enable(&gw, b).await;
    let da = data(2000, 1);
    let (_, va) = put_v(&gw, b, "a", &da).await;
    put_v(&gw, b, "b", &data(2000, 2)).await;
    put_mp(&gw, b, "b-mp", &data(SEG + 9, 3)).await;
    for other in ["b", "b-mp"] {
        // The operator writes the other key's object, bytes and metadata
        // (for the multipart one: pointing at its manifest), as a new
        // version of a.
        let (info, raw) = w.raw_get(b, other).await;
        let len = raw.len() as u64;
        let stream: sealgate::store::ByteStream = Box::pin(futures::stream::once(async move {
            Ok::<_, std::io::Error>(bytes::Bytes::from(raw))
        }));
        let forged = w
            .store
            .put_versioned(b, "a", stream, len, &info.headers, None)
            .await
            .unwrap()
            .version_id
            .expect("a version id");
        match get_v(&gw, b, "a", &forged).await {
            Err(e) => assert_eq!(e.status, 500, "{other}'s object as a version of a: {e}"),
            Ok(_) => panic!("{other}'s object served as a version of a"),
        }
        let h = gw
            .client
            .head_object()
            .bucket(b)
            .key("a")
            .version_id(&forged)
            .send()
            .await;
        assert!(h.is_err(), "HEAD of the forged version ({other})");
        // Nor does a copy from it, or the listing, vouch for it.
        let c = gw
            .client
            .copy_object()
            .bucket(b)
            .key("copied")
            .copy_source(format!("{b}/a?versionId={forged}"))
            .send()
            .await;
        assert!(c.is_err(), "a copy of the forged version ({other})");
        // a's own version still reads.
        assert_eq!(get_v(&gw, b, "a", &va).await.unwrap().0, da);
    }
}

/// What a store without versioning answers: refusals, never the latest
/// object served or deleted in place of a version.
async fn refuses_versioning(w: World) {
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-none");
    gw.mb(b).await;
    let d = data(100, 1);
    gw.put(b, "k", &d).await;
    let got = gw
        .client
        .get_bucket_versioning()
        .bucket(b)
        .send()
        .await
        .unwrap();
    assert!(got.status().is_none(), "never enabled");
    let e = must_fail(
        gw.client
            .put_bucket_versioning()
            .bucket(b)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await,
        "enabling versioning",
    );
    assert_eq!(e.status, 501, "enabling versioning: {e}");
    let e = get_v(&gw, b, "k", "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")
        .await
        .unwrap_err();
    assert_refused(
        &e,
        501,
        "NotImplemented",
        "a version of an unversioned object",
    );
    let e = must_fail(
        gw.client
            .delete_object()
            .bucket(b)
            .key("k")
            .version_id("3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")
            .send()
            .await,
        "a delete of a version",
    );
    assert_refused(&e, 400, "InvalidArgument", "a delete of a version");
    assert_eq!(gw.get_ok(b, "k").await, d, "the object was not deleted");
    let e = must_fail(
        gw.client.list_object_versions().bucket(b).send().await,
        "ListObjectVersions",
    );
    assert_eq!(e.status, 501, "ListObjectVersions: {e}");
    // `null` names the one object there is.
    gw.client
        .delete_object()
        .bucket(b)
        .key("k")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert!(gw.get(b, "k").await.is_err(), "deleted as version null");
}

#[tokio::test]
async fn the_embedded_store_refuses_versioning_clearly() {
    refuses_versioning(World::new()).await
}

#[tokio::test]
async fn garage_refuses_versioning_clearly() {
    refuses_versioning(World::garage()).await
}

#[tokio::test]
async fn a_bucket_whose_versions_are_all_deleted_can_be_deleted() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-rb");
    gw.mb(b).await;
    enable(&gw, b).await;
    put_mp(&gw, b, "k", &data(100, 1)).await;
    put_mp(&gw, b, "k", &data(200, 2)).await;
    gw.client
        .delete_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    // Not empty while a version of the client's remains.
    let e = must_fail(gw.client.delete_bucket().bucket(b).send().await, "rb");
    assert_refused(&e, 409, "BucketNotEmpty", "versions remain");
    let (vs, ms) = versions(&gw, b).await;
    let mut del = Delete::builder();
    for id in vs.iter().map(|v| &v.1).chain(ms.iter().map(|m| &m.1)) {
        del = del.objects(
            ObjectIdentifier::builder()
                .key("k")
                .version_id(id)
                .build()
                .unwrap(),
        );
    }
    let r = gw
        .client
        .delete_objects()
        .bucket(b)
        .delete(del.build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.errors().is_empty(), "{:?}", r.errors());
    // What is left is sealgate's own (upload records' old versions): the
    // bucket goes.
    gw.client
        .delete_bucket()
        .bucket(b)
        .send()
        .await
        .unwrap_or_else(|e| panic!("rb: {}", S3Err::from(e)));
}

#[tokio::test]
async fn a_version_this_gateway_cannot_open_lists_as_the_store_has_it() {
    let w = World::moto();
    let alice = w.gateway(Spec::alice());
    let bob = w.gateway(Spec::person("bob"));
    let b = &unique_bucket("ver-foreign");
    alice.mb(b).await;
    enable(&alice, b).await;
    // Bob's version first (encrypted for bob only), then alice's.
    let db = data(5000, 1);
    let (_, vb) = put_v(&bob, b, "k", &db).await;
    let (ea, va) = put_v(&alice, b, "k", &data(700, 2)).await;
    let (vs, _) = versions(&alice, b).await;
    let bobs = vs.iter().find(|v| v.1 == vb).expect("bob's version");
    let alices = vs.iter().find(|v| v.1 == va).expect("alice's version");
    assert_eq!((&alices.2, alices.3), (&ea, 700));
    // Not the latest's ETag: the store's, and the size from the ciphertext.
    assert_ne!(bobs.2, ea, "the latest object's ETag for another version");
    assert_eq!(bobs.3, db.len() as i64);
    let e = get_v(&alice, b, "k", &vb).await.unwrap_err();
    assert_refused(&e, 403, "AccessDenied", "bob's version, read by alice");
}

#[tokio::test]
async fn suspended_versioning_keeps_the_replaced_objects_manifest() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-suspend");
    gw.mb(b).await;
    enable(&gw, b).await;
    let d1 = data(SEG + 2, 1);
    let (_, v1) = put_mp(&gw, b, "k", &d1).await;
    gw.client
        .put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = gw
        .client
        .get_bucket_versioning()
        .bucket(b)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), Some(&BucketVersioningStatus::Suspended));
    // An overwrite while suspended: sealgate keeps the replaced multipart
    // object's manifest (at S3 the versioned object stays; moto 5.2 drops
    // every earlier version on a suspended overwrite, so only sealgate's
    // side is checked here).
    assert_eq!(get_v(&gw, b, "k", &v1).await.unwrap().0, d1);
    let d2 = data(300, 2);
    gw.put(b, "k", &d2).await;
    assert_eq!(gw.get_ok(b, "k").await, d2);
    assert_eq!(manifests(&w, b).await.len(), 1, "the manifest stays");
}

/// The version ids of `k` at the store, newest first (delete markers left
/// out).
async fn store_versions(w: &World, b: &str, k: &str) -> Vec<String> {
    let page = w
        .store
        .list_versions(
            b,
            &sealgate::store::versions::ListVersionsRequest {
                prefix: Some(k.to_owned()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    page.entries
        .into_iter()
        .filter(|e| e.key == k && !e.delete_marker)
        .map(|e| e.version_id)
        .collect()
}

#[tokio::test]
async fn deleting_every_key_then_the_bucket_keeps_every_multipart_version() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-rb-keep");
    gw.mb(b).await;
    enable(&gw, b).await;
    let (d1, d2, d3) = (data(SEG + 1, 1), data(700, 2), data(2 * SEG, 3));
    let (_, v1) = put_mp(&gw, b, "a", &d1).await;
    let (_, v2) = put_mp(&gw, b, "a", &d2).await;
    let (_, v3) = put_mp(&gw, b, "b", &d3).await;
    // Every key deleted (delete markers over them), then the bucket: the
    // store refuses, and sealgate's look for leftovers must not hide a
    // manifest the versions need.
    for k in ["a", "b"] {
        gw.client
            .delete_object()
            .bucket(b)
            .key(k)
            .send()
            .await
            .unwrap();
    }
    let e = must_fail(gw.client.delete_bucket().bucket(b).send().await, "rb");
    assert_refused(&e, 409, "BucketNotEmpty", "the client's versions remain");
    assert_eq!(manifests(&w, b).await.len(), 3, "no manifest hidden");
    let fresh = w.gateway(Spec::alice());
    for (k, v, d) in [("a", &v1, &d1), ("a", &v2, &d2), ("b", &v3, &d3)] {
        assert_eq!(&get_v(&fresh, b, k, v).await.unwrap().0, d, "{k} {v}");
    }
}

#[tokio::test]
async fn a_manifest_behind_a_store_delete_marker_still_reads() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-mp-marker");
    gw.mb(b).await;
    enable(&gw, b).await;
    let (d1, d2) = (data(SEG + 7, 1), data(3 * SEG, 2));
    let (_, v1) = put_mp(&gw, b, "k", &d1).await;
    put_mp(&gw, b, "k", &d2).await;
    // The store's operator puts a delete marker over both manifests (on a
    // bucket with Object Lock, allowed even over a locked version).
    let ms = manifests(&w, b).await;
    assert_eq!(ms.len(), 2);
    for m in &ms {
        w.store.delete(b, m).await.unwrap();
    }
    assert!(manifests(&w, b).await.is_empty(), "hidden behind markers");
    let fresh = w.gateway(Spec::alice());
    assert_eq!(get_v(&fresh, b, "k", &v1).await.unwrap().0, d1);
    assert_eq!(fresh.get_ok(b, "k").await, d2, "the latest too");
    // gc counts a hidden manifest a version names as live.
    let r = w.gc_now(b).await;
    assert!(r.orphan_manifests.is_empty(), "{:?}", r.orphan_manifests);
    assert_eq!(get_v(&fresh, b, "k", &v1).await.unwrap().0, d1);
}

#[tokio::test]
async fn a_version_delete_the_store_refuses_keeps_its_manifest() {
    let (w, liar) = World::moto().lying();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-refused");
    gw.mb(b).await;
    enable(&gw, b).await;
    let d = data(SEG + 11, 1);
    let id = create(&gw, b, "k").await;
    let e = part(&gw, b, "k", &id, 1, &d).await;
    complete(&gw, b, "k", &id, &[(1, e.as_str())])
        .await
        .unwrap();
    put_v(&gw, b, "k", &data(10, 2)).await;
    let vs = store_versions(&w, b, "k").await;
    assert_eq!(vs.len(), 2);
    let v1 = vs[1].clone();
    liar.lies.lock().unwrap().refuse_version_deletes_of = Some("k".into());
    let r = gw
        .client
        .delete_objects()
        .bucket(b)
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v1)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.deleted().is_empty(), "{:?}", r.deleted());
    assert_eq!(r.errors().len(), 1, "{:?}", r.errors());
    assert_eq!(r.errors()[0].code(), Some("AccessDenied"));
    assert_eq!(r.errors()[0].version_id(), Some(v1.as_str()));
    assert_eq!(manifests(&w, b).await.len(), 1, "the manifest stays");
    assert_eq!(get_v(&gw, b, "k", &v1).await.unwrap().0, d);
}

/// An object planted at the store naming another object's upload id (its
/// envelope copied under another key), deleted or replaced by a client:
/// the victim's manifest stays (it was never authenticated as the planted
/// object's). The victim's own delete still takes its manifest on a bucket
/// that has never kept versions.
async fn a_planted_object_cannot_name_a_manifest_to_delete(w: World, versioned: bool) {
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-planted");
    gw.mb(b).await;
    if versioned {
        enable(&gw, b).await;
    }
    let d = data(SEG + 21, 1);
    let id = create(&gw, b, "victim").await;
    let e = part(&gw, b, "victim", &id, 1, &d).await;
    complete(&gw, b, "victim", &id, &[(1, e.as_str())])
        .await
        .unwrap();
    let (info, raw) = w.raw_get(b, "victim").await;
    let plant = |k: &'static str| {
        let (w, info, raw) = (&w, info.clone(), raw.clone());
        async move { w.raw_put(b, k, raw, &info.headers).await }
    };
    // Deleted by DeleteObject, then by DeleteObjects.
    plant("planted").await;
    gw.client
        .delete_object()
        .bucket(b)
        .key("planted")
        .send()
        .await
        .unwrap();
    plant("planted").await;
    let r = gw
        .client
        .delete_objects()
        .bucket(b)
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("planted").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.errors().is_empty(), "{:?}", r.errors());
    if versioned {
        // Deleted for good, by its version id.
        plant("planted").await;
        let v = store_versions(&w, b, "planted").await[0].clone();
        gw.client
            .delete_object()
            .bucket(b)
            .key("planted")
            .version_id(&v)
            .send()
            .await
            .unwrap();
    }
    // Replaced by a multipart completion.
    plant("planted").await;
    let id = create(&gw, b, "planted").await;
    let e = part(&gw, b, "planted", &id, 1, &data(100, 2)).await;
    complete(&gw, b, "planted", &id, &[(1, e.as_str())])
        .await
        .unwrap();
    let fresh = w.gateway(Spec::alice());
    assert_eq!(fresh.get_ok(b, "victim").await, d, "the victim still reads");
    let victims = format!(".sealgate/mp/{}", &id_hex_of(&info));
    assert!(
        manifests(&w, b).await.contains(&victims),
        "the victim's manifest stays"
    );
    if !versioned {
        // The victim's own delete takes its manifest (authenticated).
        gw.client
            .delete_object()
            .bucket(b)
            .key("victim")
            .send()
            .await
            .unwrap();
        assert!(
            !manifests(&w, b).await.contains(&victims),
            "the victim's manifest went with it"
        );
    }
}

/// The upload id (hex) a stored multipart object's envelope names.
fn id_hex_of(info: &sealgate::store::ObjectInfo) -> String {
    use sealgate::envelope::header::MetaValue;
    let meta = info.headers.metadata.get("sg").expect("an envelope");
    match MetaValue::decode(meta).unwrap() {
        MetaValue::InManifest { upload_id, .. } => hex::encode(upload_id),
        MetaValue::Inline(raw) => match sealgate::envelope::Header::parse(&raw).unwrap().binding {
            sealgate::envelope::BodyBinding::Multipart { upload_id } => hex::encode(upload_id),
            other => panic!("not multipart: {other:?}"),
        },
        _ => panic!("an overflow envelope"),
    }
}

#[tokio::test]
async fn a_planted_object_cannot_name_a_manifest_to_delete_on_moto() {
    a_planted_object_cannot_name_a_manifest_to_delete(World::moto(), false).await
}

#[tokio::test]
async fn a_planted_object_cannot_name_a_manifest_to_delete_on_moto_with_versions() {
    a_planted_object_cannot_name_a_manifest_to_delete(World::moto(), true).await
}

#[tokio::test]
async fn a_planted_object_cannot_name_a_manifest_to_delete_on_the_embedded_store() {
    a_planted_object_cannot_name_a_manifest_to_delete(World::new(), false).await
}

/// GetObjectTagging and GetObjectAcl answer for the version named: one
/// that exists (the latest deleted meanwhile) and one that does not.
#[tokio::test]
async fn tagging_and_acl_answer_for_the_version_named() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ver-tags");
    gw.mb(b).await;
    enable(&gw, b).await;
    let (_, v1) = put_v(&gw, b, "k", &data(100, 1)).await;
    gw.client
        .delete_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    let t = gw
        .client
        .get_object_tagging()
        .bucket(b)
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("tagging: {}", S3Err::from(e)));
    assert_eq!(t.version_id(), Some(v1.as_str()));
    assert!(t.tag_set().is_empty());
    gw.client
        .get_object_acl()
        .bucket(b)
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("acl: {}", S3Err::from(e)));
    // The latest is a delete marker; a version that never was is an error.
    let latest = gw
        .client
        .get_object_tagging()
        .bucket(b)
        .key("k")
        .send()
        .await;
    assert!(latest.is_err(), "the latest is deleted");
    let none = gw
        .client
        .get_object_tagging()
        .bucket(b)
        .key("k")
        .version_id("no-such-version")
        .send()
        .await
        .map_err(S3Err::from);
    assert!(none.is_err(), "{none:?}");
    // Keys under .sealgate/ are not a client's to ask about.
    let hidden = gw
        .client
        .get_object_acl()
        .bucket(b)
        .key(".sealgate/anything")
        .send()
        .await
        .map_err(S3Err::from)
        .unwrap_err();
    assert_eq!(hidden.code, "InvalidArgument");
}
