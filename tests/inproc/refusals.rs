//! Requests the gateway refuses with an S3 error, storing nothing: sealgate's
//! reserved keys and metadata, bad digests, missing objects and buckets.

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::*;

const B: &str = "refuse";

#[derive(Clone, Copy)]
enum Op {
    Put { key: &'static str },
    PutMeta { meta: &'static str },
    PutContentMd5 { md5: &'static str },
    Get { key: &'static str },
    Head { key: &'static str },
    CreateUpload { key: &'static str },
    CreateUploadMeta { meta: &'static str },
    ListBucket { bucket: &'static str },
    PutIn { bucket: &'static str },
    Delete { key: &'static str },
    PutTagged,
    CreateUploadTagged,
    CopyReplacingTags,
}

struct Refused {
    op: Op,
    status: u16,
    /// The S3 error code (HEAD answers carry none).
    code: &'static str,
}

const fn r(op: Op, status: u16, code: &'static str) -> Refused {
    Refused { op, status, code }
}

table! { refused;
    put_under_the_reserved_prefix: r(Op::Put { key: ".sealgate/x" }, 400, "InvalidArgument"),
    put_over_a_manifest_key: r(Op::Put { key: ".sealgate/m/0123" }, 400, "InvalidArgument"),
    get_under_the_reserved_prefix: r(Op::Get { key: ".sealgate/m/0123" }, 400, "InvalidArgument"),
    head_under_the_reserved_prefix: r(Op::Head { key: ".sealgate/x" }, 400, ""),
    delete_under_the_reserved_prefix: r(Op::Delete { key: ".sealgate/up/x" }, 400, "InvalidArgument"),
    create_upload_under_the_reserved_prefix: r(Op::CreateUpload { key: ".sealgate/up/x" }, 400,
        "InvalidArgument"),
    put_with_metadata_sg: r(Op::PutMeta { meta: "sg" }, 400, "InvalidArgument"),
    put_with_metadata_sg_uppercase: r(Op::PutMeta { meta: "SG" }, 400, "InvalidArgument"),
    put_with_metadata_sg_dash_anything: r(Op::PutMeta { meta: "sg-anything" }, 400,
        "InvalidArgument"),
    create_upload_with_metadata_sg: r(Op::CreateUploadMeta { meta: "sg" }, 400, "InvalidArgument"),
    put_with_a_wrong_content_md5: r(Op::PutContentMd5 { md5: "AAAAAAAAAAAAAAAAAAAAAA==" }, 400,
        "BadDigest"),
    put_with_a_malformed_content_md5: r(Op::PutContentMd5 { md5: "not-base64!" }, 400,
        "InvalidDigest"),
    get_missing_key: r(Op::Get { key: "nope" }, 404, "NoSuchKey"),
    head_missing_key: r(Op::Head { key: "nope" }, 404, "NotFound"),
    list_missing_bucket: r(Op::ListBucket { bucket: "no-such-bucket" }, 404, "NoSuchBucket"),
    put_in_missing_bucket: r(Op::PutIn { bucket: "no-such-bucket" }, 404, "NoSuchBucket"),
    put_with_tags: r(Op::PutTagged, 501, "NotImplemented"),
    create_upload_with_tags: r(Op::CreateUploadTagged, 501, "NotImplemented"),
    copy_replacing_tags: r(Op::CopyReplacingTags, 501, "NotImplemented"),
}

async fn refused(case: Refused) {
    let (w, gw) = World::with_bucket(B).await;
    gw.put(B, "present", b"present").await;
    let c = &gw.client;
    let body = || ByteStream::from_static(b"refused content");
    let e: S3Err = match case.op {
        Op::Put { key } => must_fail(
            c.put_object().bucket(B).key(key).body(body()).send().await,
            key,
        ),
        Op::PutMeta { meta } => must_fail(
            c.put_object()
                .bucket(B)
                .key("k")
                .metadata(meta, "AAAA")
                .body(body())
                .send()
                .await,
            meta,
        ),
        Op::PutContentMd5 { md5 } => must_fail(
            c.put_object()
                .bucket(B)
                .key("k")
                .content_md5(md5)
                .body(body())
                .send()
                .await,
            md5,
        ),
        Op::Get { key } => must_fail(c.get_object().bucket(B).key(key).send().await, key),
        Op::Head { key } => must_fail(c.head_object().bucket(B).key(key).send().await, key),
        Op::Delete { key } => must_fail(c.delete_object().bucket(B).key(key).send().await, key),
        Op::CreateUpload { key } => must_fail(
            c.create_multipart_upload().bucket(B).key(key).send().await,
            key,
        ),
        Op::CreateUploadMeta { meta } => must_fail(
            c.create_multipart_upload()
                .bucket(B)
                .key("k")
                .metadata(meta, "AAAA")
                .send()
                .await,
            meta,
        ),
        Op::ListBucket { bucket } => {
            must_fail(c.list_objects_v2().bucket(bucket).send().await, bucket)
        }
        Op::PutIn { bucket } => must_fail(
            c.put_object()
                .bucket(bucket)
                .key("k")
                .body(body())
                .send()
                .await,
            bucket,
        ),
        Op::PutTagged => must_fail(
            c.put_object()
                .bucket(B)
                .key("k")
                .tagging("project=secret")
                .body(body())
                .send()
                .await,
            "tagged put",
        ),
        Op::CreateUploadTagged => must_fail(
            c.create_multipart_upload()
                .bucket(B)
                .key("k")
                .tagging("project=secret")
                .send()
                .await,
            "tagged upload",
        ),
        Op::CopyReplacingTags => must_fail(
            c.copy_object()
                .bucket(B)
                .key("k")
                .copy_source(format!("{B}/present"))
                .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
                .tagging("project=secret")
                .send()
                .await,
            "copy with tags",
        ),
    };
    assert_refused(&e, case.status, case.code, "refusal");
    assert_eq!(w.raw_keys(B).await, ["present"], "nothing else stored");
    assert!(w.store.list_uploads(B, None).await.unwrap().is_empty());
    assert!(gw.get_ok(B, "present").await == b"present");
}
