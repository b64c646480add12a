//! Checksums of the plaintext (`x-amz-checksum-*`) as current SDKs use them:
//! verified on the way in, kept sealed (never in clear at the store), and
//! answered as S3 does: the composite (`-N`) checksum of a multipart object
//! from CompleteMultipartUpload, HEAD and GET with checksum mode, each part's
//! from ListParts.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::harness::*;

fn crc32(d: &[u8]) -> [u8; 4] {
    crc32fast::hash(d).to_be_bytes()
}

#[tokio::test]
async fn multipart_checksums_are_composite_sealed_and_answered() {
    let (w, gw) = World::with_bucket("sums").await;
    let b = "sums";
    let parts = [data(5 * MIB, 1), data(300_000, 2)];
    let id = gw
        .client
        .create_multipart_upload()
        .bucket(b)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let r = gw
            .client
            .upload_part()
            .bucket(b)
            .key("k")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.checksum_crc32(), Some(STANDARD.encode(crc32(p)).as_str()));
        done.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .checksum_crc32(r.checksum_crc32().unwrap())
                .build(),
        );
    }
    let listed = gw
        .client
        .list_parts()
        .bucket(b)
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    for (p, want) in listed.parts().iter().zip(&parts) {
        assert_eq!(
            p.checksum_crc32(),
            Some(STANDARD.encode(crc32(want)).as_str())
        );
    }
    // A wrong part checksum at completion is refused.
    let mut wrong = done.clone();
    wrong[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag(done[1].e_tag().unwrap())
        .checksum_crc32(STANDARD.encode(crc32(b"other")))
        .build();
    let e = must_fail(
        gw.client
            .complete_multipart_upload()
            .bucket(b)
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(wrong))
                    .build(),
            )
            .send()
            .await,
        "wrong part checksum",
    );
    assert_refused(&e, 400, "InvalidPart", "wrong part checksum");
    let c = gw
        .client
        .complete_multipart_upload()
        .bucket(b)
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut cat = crc32(&parts[0]).to_vec();
    cat.extend_from_slice(&crc32(&parts[1]));
    let composite = format!("{}-2", STANDARD.encode(crc32(&cat)));
    assert_eq!(c.checksum_crc32(), Some(composite.as_str()));
    assert_eq!(c.checksum_type(), Some(&ChecksumType::Composite));
    let fresh = w.gateway(Spec::alice());
    let h = fresh
        .client
        .head_object()
        .bucket(b)
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_crc32(), Some(composite.as_str()));
    let g = fresh
        .client
        .get_object()
        .bucket(b)
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(g.checksum_crc32(), Some(composite.as_str()));
    assert!(collect(g.body).await.unwrap() == parts.concat());
    // Without checksum mode, none.
    let h = fresh
        .client
        .head_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_crc32(), None);
    // Sealed: no part checksum nor the composite is at the store in clear.
    let mut everything = Vec::new();
    for k in w.raw_keys(b).await {
        let (info, body) = w.raw_get(b, &k).await;
        everything.extend(body);
        for v in info.headers.metadata.values() {
            everything.extend_from_slice(v.as_bytes());
        }
    }
    for needle in [
        crc32(&parts[0]).to_vec(),
        crc32(&parts[1]).to_vec(),
        crc32(&cat).to_vec(),
    ] {
        assert!(
            !everything.windows(4).any(|x| x == needle.as_slice()),
            "a checksum in clear"
        );
    }
}

#[tokio::test]
async fn a_single_part_checksum_given_up_front_is_kept_and_answered() {
    let (w, gw) = World::with_bucket("sum1").await;
    let b = "sum1";
    let d = data(200_000, 3);
    let sha = {
        use sha2::Digest;
        STANDARD.encode(sha2::Sha256::digest(&d))
    };
    gw.client
        .put_object()
        .bucket(b)
        .key("k")
        .checksum_sha256(&sha)
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    let h = w
        .gateway(Spec::alice())
        .client
        .head_object()
        .bucket(b)
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_sha256(), Some(sha.as_str()));
    assert_eq!(h.checksum_type(), Some(&ChecksumType::FullObject));
    // A wrong one stores nothing.
    let e = must_fail(
        gw.client
            .put_object()
            .bucket(b)
            .key("bad")
            .checksum_sha256(STANDARD.encode([0u8; 32]))
            .body(ByteStream::from(d))
            .send()
            .await,
        "wrong checksum",
    );
    assert_refused(&e, 400, "BadDigest", "wrong checksum");
    assert!(w.store.head(b, "bad").await.is_err());
}
