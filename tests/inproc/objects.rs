//! PutObject, GetObject, HeadObject, listings and deletes of single objects:
//! bytes, sizes and ETags exact, and only ciphertext at the store.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::harness::*;

table! { round_trip;
    round_trip_empty: 0,
    round_trip_1_byte: 1,
    round_trip_one_segment_minus_1: SEG - 1,
    round_trip_one_segment: SEG,
    round_trip_one_segment_plus_1: SEG + 1,
    round_trip_3_segments_plus_5: 3 * SEG + 5,
    round_trip_3_mib_plus_7: 3 * MIB + 7,
}

/// Puts `n` bytes and reads them back through GET, HEAD and a listing, from
/// the gateway that wrote them (warm caches) and from a fresh one (cold).
async fn round_trip(n: usize) {
    let b = "round-trip";
    let (w, gw) = World::with_bucket(b).await;
    let d = data(n, n as u64 + 1);
    let etag = gw.put(b, "obj", &d).await;
    assert_eq!(etag, md5_hex(&d), "PutObject's ETag is the plaintext MD5");

    let cold = w.gateway(Spec::alice());
    for (which, g) in [("warm", &gw), ("cold", &cold)] {
        let r = g
            .client
            .get_object()
            .bucket(b)
            .key("obj")
            .send()
            .await
            .unwrap();
        assert_eq!(r.content_length(), Some(n as i64), "{which} GET length");
        assert_eq!(unquote(r.e_tag().unwrap()), etag, "{which} GET ETag");
        let got = collect(r.body).await.unwrap();
        assert!(got == d, "{which}: GET returned other bytes");

        let h = g
            .client
            .head_object()
            .bucket(b)
            .key("obj")
            .send()
            .await
            .unwrap();
        assert_eq!(h.content_length(), Some(n as i64), "{which} HEAD length");
        assert_eq!(unquote(h.e_tag().unwrap()), etag, "{which} HEAD ETag");

        let l = g.client.list_objects_v2().bucket(b).send().await.unwrap();
        let c = l.contents();
        assert_eq!(c.len(), 1, "{which}: {c:?}");
        assert_eq!(c[0].key(), Some("obj"));
        assert_eq!(c[0].size(), Some(n as i64), "{which} listed size");
        assert_eq!(unquote(c[0].e_tag().unwrap()), etag, "{which} listed ETag");
    }

    // The store holds ciphertext: longer than the plaintext, without any run
    // of it, and no plaintext MD5 in its metadata.
    let (info, raw) = w.raw_get(b, "obj").await;
    assert!(
        raw.len() > n,
        "ciphertext ({}) <= plaintext ({n})",
        raw.len()
    );
    if n >= 32 {
        let run = &d[n / 2 - 16..n / 2 + 16];
        assert!(
            !raw.windows(32).any(|x| x == run),
            "plaintext found at the store"
        );
    }
    let md5 = md5::Md5::digest(&d);
    let md5_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, md5);
    let meta_text = format!("{:?} {}", info.headers, info.etag);
    assert!(
        !meta_text.contains(&etag),
        "plaintext MD5 (hex) at the store"
    );
    assert!(
        !meta_text.contains(&md5_b64),
        "plaintext MD5 (base64) at the store"
    );
}

use md5::Digest as _;

/// User metadata and the standard headers a client sets come back exactly;
/// sealgate's own metadata stays hidden.
#[tokio::test]
async fn metadata_and_standard_headers_round_trip() {
    let b = "meta";
    let (w, gw) = World::with_bucket(b).await;
    let expires = DateTime::from_secs(2_000_000_000);
    let d = data(1000, 3);
    gw.client
        .put_object()
        .bucket(b)
        .key("m")
        .body(ByteStream::from(d.clone()))
        .metadata("color", "blue")
        .metadata("Owner", "Me")
        .metadata("encoded", "caf=C3=A9")
        .content_type("text/x-test")
        .cache_control("no-cache")
        .content_disposition("attachment; filename=\"m.txt\"")
        .content_encoding("identity")
        .content_language("fr")
        .expires(expires)
        .send()
        .await
        .unwrap();
    let cold = w.gateway(Spec::alice());
    for (which, g) in [("warm", &gw), ("cold", &cold)] {
        let h = g
            .client
            .head_object()
            .bucket(b)
            .key("m")
            .send()
            .await
            .unwrap();
        let meta = h.metadata().unwrap();
        assert_eq!(meta.len(), 3, "{which}: only the user's metadata: {meta:?}");
        assert_eq!(meta["color"], "blue");
        assert_eq!(
            meta["owner"], "Me",
            "{which}: keys lowercase, values as sent"
        );
        assert_eq!(meta["encoded"], "caf=C3=A9");
        assert_eq!(h.content_type(), Some("text/x-test"));
        assert_eq!(h.cache_control(), Some("no-cache"));
        assert_eq!(
            h.content_disposition(),
            Some("attachment; filename=\"m.txt\"")
        );
        assert_eq!(h.content_encoding(), Some("identity"));
        assert_eq!(h.content_language(), Some("fr"));
        assert_eq!(h.expires_string(), Some("Wed, 18 May 2033 03:33:20 GMT"));

        let r = g
            .client
            .get_object()
            .bucket(b)
            .key("m")
            .send()
            .await
            .unwrap();
        assert_eq!(r.metadata(), h.metadata(), "{which}: GET and HEAD agree");
        assert_eq!(r.content_type(), Some("text/x-test"));
        assert_eq!(r.cache_control(), Some("no-cache"));
        assert_eq!(r.content_language(), Some("fr"));
        assert!(collect(r.body).await.unwrap() == d);
    }
}

/// DeleteObject and DeleteObjects remove the objects (a multipart object's
/// manifest too), report every key asked for, and leave the others.
#[tokio::test]
async fn delete_object_and_delete_objects() {
    let b = "del";
    let (w, gw) = World::with_bucket(b).await;
    for k in ["a", "b", "c", "d"] {
        gw.put(b, k, &data(100, k.len() as u64)).await;
    }
    crate::multipart::upload(&gw, b, "m", &[5 * MIB, 10]).await;
    assert!(
        w.raw_keys(b)
            .await
            .iter()
            .any(|k| k.starts_with(".sealgate/")),
        "the multipart object has a manifest"
    );

    gw.client
        .delete_object()
        .bucket(b)
        .key("d")
        .send()
        .await
        .unwrap();
    let ids = ["a", "c", "m", "never-existed", ".sealgate/x"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect();
    let r = gw
        .client
        .delete_objects()
        .bucket(b)
        .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
        .send()
        .await
        .unwrap();
    let mut deleted: Vec<&str> = r.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["a", "c", "m", "never-existed"]);
    let errors: Vec<(&str, &str)> = r
        .errors()
        .iter()
        .map(|e| (e.key().unwrap(), e.code().unwrap()))
        .collect();
    assert_eq!(errors, [(".sealgate/x", "AccessDenied")], "reserved keys");

    let l = gw.client.list_objects_v2().bucket(b).send().await.unwrap();
    let keys: Vec<&str> = l.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b"]);
    assert_eq!(w.raw_keys(b).await, ["b"], "nothing else left at the store");
    for k in ["a", "d", "m"] {
        match gw.get(b, k).await {
            Err(Refusal::Response(e)) => assert_refused(&e, 404, "NoSuchKey", k),
            other => panic!("{k}: {other:?}"),
        }
    }
}
