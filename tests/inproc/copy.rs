//! CopyObject through the gateway: within a bucket, across buckets, with
//! metadata copied or replaced, onto itself (how rewrap works), of a
//! multipart object. The copy's header is rewritten for its new name: its
//! ciphertext under the new name reads back, under any other name it does
//! not.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;

use crate::harness::*;

#[derive(Clone, Copy)]
struct CopyCase {
    /// The source is a multipart object (5 MiB + 100 bytes).
    multipart: bool,
    dst_bucket: &'static str,
    dst_key: &'static str,
    /// REPLACE with new metadata, else COPY.
    replace: bool,
}

const SRC_B: &str = "src";
const SRC_K: &str = "dir/source";

table! { copy;
    copy_within_a_bucket: CopyCase {
        multipart: false, dst_bucket: SRC_B, dst_key: "dir/copy", replace: false },
    copy_to_another_bucket: CopyCase {
        multipart: false, dst_bucket: "other", dst_key: "copy", replace: false },
    copy_replacing_metadata: CopyCase {
        multipart: false, dst_bucket: SRC_B, dst_key: "dir/copy", replace: true },
    copy_onto_itself_replacing_metadata: CopyCase {
        multipart: false, dst_bucket: SRC_B, dst_key: SRC_K, replace: true },
    copy_of_a_multipart_object: CopyCase {
        multipart: true, dst_bucket: "other", dst_key: "copy", replace: false },
    copy_of_a_multipart_object_onto_itself_replacing_metadata: CopyCase {
        multipart: true, dst_bucket: SRC_B, dst_key: SRC_K, replace: true },
}

async fn copy(case: CopyCase) {
    let (w, gw) = World::with_bucket(SRC_B).await;
    gw.mb("other").await;
    let (d, etag) = if case.multipart {
        let id = crate::multipart::create_with_metadata(&gw, SRC_B, SRC_K).await;
        let p1 = data(5 * MIB, 1);
        let p2 = data(100, 2);
        let e1 = crate::multipart::part(&gw, SRC_B, SRC_K, &id, 1, &p1).await;
        let e2 = crate::multipart::part(&gw, SRC_B, SRC_K, &id, 2, &p2).await;
        let etag = crate::multipart::complete(
            &gw,
            SRC_B,
            SRC_K,
            &id,
            &[(1, e1.as_str()), (2, e2.as_str())],
        )
        .await
        .unwrap();
        ([p1, p2].concat(), etag)
    } else {
        let d = data(3 * SEG + 17, 9);
        let r = gw
            .client
            .put_object()
            .bucket(SRC_B)
            .key(SRC_K)
            .body(ByteStream::from(d.clone()))
            .metadata("origin", "source")
            .content_type("text/x-source")
            .send()
            .await
            .unwrap();
        (d, unquote(r.e_tag().unwrap()))
    };
    let same = (case.dst_bucket, case.dst_key) == (SRC_B, SRC_K);

    let mut req = gw
        .client
        .copy_object()
        .copy_source(format!("{SRC_B}/{SRC_K}"))
        .bucket(case.dst_bucket)
        .key(case.dst_key);
    if case.replace {
        req = req
            .metadata_directive(MetadataDirective::Replace)
            .metadata("origin", "replaced")
            .metadata("extra", "yes")
            .content_type("text/x-replaced");
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy: {}", S3Err::from(e)));
    let copy_etag = unquote(r.copy_object_result().unwrap().e_tag().unwrap());
    assert_eq!(copy_etag, etag, "a copy keeps the plaintext ETag");

    let cold = w.gateway(Spec::alice());
    for (which, g) in [("warm", &gw), ("cold", &cold)] {
        let r = g
            .client
            .get_object()
            .bucket(case.dst_bucket)
            .key(case.dst_key)
            .send()
            .await
            .unwrap();
        assert_eq!(unquote(r.e_tag().unwrap()), etag, "{which} ETag");
        let meta = r.metadata().cloned().unwrap_or_default();
        let ct = r.content_type().map(str::to_owned);
        assert!(collect(r.body).await.unwrap() == d, "{which}: copy content");
        if case.replace {
            assert_eq!(meta.len(), 2, "{which}: {meta:?}");
            assert_eq!(meta["origin"], "replaced");
            assert_eq!(meta["extra"], "yes");
            assert_eq!(ct.as_deref(), Some("text/x-replaced"));
        } else {
            assert_eq!(meta.len(), 1, "{which}: {meta:?}");
            assert_eq!(meta["origin"], "source");
            assert_eq!(ct.as_deref(), Some("text/x-source"));
        }
        let l = g
            .client
            .list_objects_v2()
            .bucket(case.dst_bucket)
            .prefix(case.dst_key)
            .send()
            .await
            .unwrap();
        let c = &l.contents()[0];
        assert_eq!(c.key(), Some(case.dst_key));
        assert_eq!(c.size(), Some(d.len() as i64), "{which} listed size");
        assert_eq!(unquote(c.e_tag().unwrap()), etag, "{which} listed ETag");
        if !same {
            assert!(g.get_ok(SRC_B, SRC_K).await == d, "{which}: source intact");
        }
    }

    // The header was rewritten for the new name: the copy's stored form
    // (ciphertext and metadata) moved by the store to yet another name is
    // refused, like any object moved at the store.
    let (info, raw) = w.raw_get(case.dst_bucket, case.dst_key).await;
    if !case.multipart {
        w.raw_put(case.dst_bucket, "moved-by-the-store", raw, &info.headers)
            .await;
        match cold.get(case.dst_bucket, "moved-by-the-store").await {
            Ok(_) => panic!("the copy's ciphertext was served under another name"),
            Err(r) => eprintln!("moved copy: {r:?}"),
        }
    }
}

/// Copies that must be refused, and leave nothing at the destination.
#[tokio::test]
async fn copy_refusals() {
    let (w, gw) = World::with_bucket(SRC_B).await;
    gw.put(SRC_B, "x", b"content").await;
    type Case = (&'static str, &'static str, &'static str, u16, &'static str);
    let cases: [Case; 4] = [
        ("missing source", "src/nope", "dst1", 404, "NoSuchKey"),
        (
            "missing source bucket",
            "nobucket/x",
            "dst2",
            404,
            "NoSuchBucket",
        ),
        (
            "reserved destination",
            "src/x",
            ".sealgate/m/x",
            400,
            "InvalidArgument",
        ),
        (
            "onto itself without REPLACE",
            "src/x",
            "x",
            400,
            "InvalidRequest",
        ),
    ];
    for (what, source, dst, status, code) in cases {
        let e = must_fail(
            gw.client
                .copy_object()
                .copy_source(source)
                .bucket(SRC_B)
                .key(dst)
                .send()
                .await,
            what,
        );
        assert_refused(&e, status, code, what);
    }
    let e = must_fail(
        gw.client
            .copy_object()
            .copy_source("src/x")
            .bucket(SRC_B)
            .key("y")
            .metadata_directive(MetadataDirective::Replace)
            .metadata("sg", "AAAA")
            .send()
            .await,
        "REPLACE with sealgate's metadata key",
    );
    assert_refused(&e, 400, "InvalidArgument", "REPLACE with x-amz-meta-sg");
    assert_eq!(w.raw_keys(SRC_B).await, ["x"], "nothing else stored");
}
