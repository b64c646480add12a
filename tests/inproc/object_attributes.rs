//! GetObjectAttributes (issue 16, item 9): the plaintext ETag and size, the
//! storage class, the parts of a multipart object with their plaintext sizes
//! (paged by MaxParts and PartNumberMarker), each only when asked for;
//! answered from the object's authenticated resolution, as HEAD is (the
//! store's own ETag and size are the ciphertext's, never answered).

use aws_sdk_s3::operation::get_object_attributes::GetObjectAttributesOutput;
use aws_sdk_s3::types::ObjectAttributes as A;

use crate::harness::*;

async fn attributes(
    gw: &Gw,
    b: &str,
    k: &str,
    wanted: &[A],
    max_parts: Option<i32>,
    marker: Option<i32>,
) -> Result<GetObjectAttributesOutput, S3Err> {
    gw.client
        .get_object_attributes()
        .bucket(b)
        .key(k)
        .set_object_attributes(Some(wanted.to_vec()))
        .set_max_parts(max_parts)
        .set_part_number_marker(marker.map(|m| m.to_string()))
        .send()
        .await
        .map_err(S3Err::from)
}

const ALL: &[A] = &[
    A::Etag,
    A::ObjectSize,
    A::StorageClass,
    A::ObjectParts,
    A::Checksum,
];

table! { single_part;
    single_part_embedded: On::Local,
    single_part_garage: On::Garage,
}

async fn single_part(on: On) {
    let w = world(on);
    let gw = w.gateway(Spec::alice());
    let b = unique_bucket("attrs");
    gw.mb(&b).await;
    let d = data(3 * SEG + 7, 1);
    gw.put(&b, "k", &d).await;
    let store = w.store.head(&b, "k").await.unwrap();
    assert!(store.size > d.len() as u64, "the store holds ciphertext");

    let r = attributes(&gw, &b, "k", ALL, None, None).await.unwrap();
    assert_eq!(r.e_tag().map(unquote), Some(md5_hex(&d)), "ETag");
    assert_ne!(
        r.e_tag().map(unquote),
        Some(store.etag),
        "not the store's ETag"
    );
    assert_eq!(r.object_size(), Some(d.len() as i64), "ObjectSize");
    assert_eq!(
        r.storage_class().map(|s| s.as_str()),
        Some("STANDARD"),
        "StorageClass"
    );
    assert!(
        r.object_parts().is_none(),
        "a single-part object has no parts"
    );
    // The SDK sends a CRC32 of the body by default; sealgate verified it and
    // sealed it with the object, and answers it.
    use base64::Engine;
    let crc = base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&d).to_be_bytes());
    let c = r.checksum().expect("the checksum the SDK sent");
    assert_eq!(c.checksum_crc32(), Some(crc.as_str()));
    assert_eq!(
        c.checksum_type(),
        Some(&aws_sdk_s3::types::ChecksumType::FullObject)
    );
    assert!(r.last_modified().is_some(), "Last-Modified");

    // Only what is asked for.
    let r = attributes(&gw, &b, "k", &[A::ObjectSize], None, None)
        .await
        .unwrap();
    assert_eq!(r.object_size(), Some(d.len() as i64));
    assert!(r.e_tag().is_none() && r.storage_class().is_none());
    let r = attributes(&gw, &b, "k", &[A::Etag], None, None)
        .await
        .unwrap();
    assert!(r.e_tag().is_some() && r.object_size().is_none());

    let e = attributes(&gw, &b, "missing", ALL, None, None)
        .await
        .unwrap_err();
    assert_refused(&e, 404, "NoSuchKey", "a missing key");
}

#[tokio::test]
async fn parts_of_a_multipart_object_page_by_max_parts_and_marker() {
    let (_w, gw) = World::with_bucket("mpattrs").await;
    let sizes = [5 * MIB, 5 * MIB + 1, 10];
    let parts = crate::multipart::upload(&gw, "mpattrs", "m", &sizes).await;
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();

    let r = attributes(&gw, "mpattrs", "m", ALL, None, None)
        .await
        .unwrap();
    assert_eq!(r.e_tag().map(unquote), Some(multipart_etag(&refs)));
    assert_eq!(r.object_size(), Some(sizes.iter().sum::<usize>() as i64));
    let p = r.object_parts().expect("ObjectParts");
    assert_eq!(p.total_parts_count(), Some(3));
    assert_eq!(p.is_truncated(), Some(false));
    let listed: Vec<(i32, i64)> = p
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [(1, 5 * MIB as i64), (2, 5 * MIB as i64 + 1), (3, 10)]
    );
    assert!(p.parts().iter().all(|p| p.checksum_crc32().is_none()));

    // Pages.
    for (max, marker, want, truncated) in [
        (Some(2), None, vec![1, 2], true),
        (Some(2), Some(2), vec![3], false),
        (Some(1), Some(1), vec![2], true),
        (Some(5), Some(3), vec![], false),
        (Some(0), None, vec![], true),
    ] {
        let r = attributes(&gw, "mpattrs", "m", &[A::ObjectParts], max, marker)
            .await
            .unwrap();
        let p = r.object_parts().expect("ObjectParts");
        let got: Vec<i32> = p.parts().iter().map(|p| p.part_number().unwrap()).collect();
        assert_eq!(got, want, "max {max:?} marker {marker:?}");
        assert_eq!(
            p.is_truncated(),
            Some(truncated),
            "max {max:?} marker {marker:?}"
        );
        assert_eq!(p.total_parts_count(), Some(3));
        assert_eq!(p.max_parts(), max);
        if truncated && !want.is_empty() {
            assert_eq!(
                p.next_part_number_marker(),
                Some(want.last().unwrap().to_string().as_str()),
                "NextPartNumberMarker"
            );
        }
        assert!(r.e_tag().is_none() && r.object_size().is_none());
    }
}

#[tokio::test]
async fn refusals_as_s3_and_as_head() {
    let (w, gw) = World::with_bucket("attrsno").await;
    gw.put("attrsno", "k", b"secret").await;
    let e = attributes(&gw, "attrsno", "k", &[A::from("Bogus")], None, None)
        .await
        .unwrap_err();
    assert_refused(&e, 400, "InvalidArgument", "an unknown attribute");
    let e = attributes(&gw, "attrsno", "k", ALL, Some(-1), None)
        .await
        .unwrap_err();
    assert_refused(&e, 400, "InvalidArgument", "negative max-parts");
    // A gateway without the object's key answers as HEAD does.
    let eve = w.gateway(Spec::person("eve"));
    let e = attributes(&eve, "attrsno", "k", ALL, None, None)
        .await
        .unwrap_err();
    assert_refused(&e, 403, "AccessDenied", "a gateway without the key");
    // Sealgate's own objects are not objects.
    let e = attributes(&gw, "attrsno", ".sealgate/x", ALL, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.status, 400, "{e}");
}
