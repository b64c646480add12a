//! The store cannot steer the gateway (issue: a hostile store): everything
//! the gateway reads back from the store and trusts is authenticated with a
//! key the store lacks, and everything a client said about an object is
//! sealed. Each case plays the store: through the `Store` trait (over the
//! embedded store, and over Garage through its own S3 API), or, for lies a
//! real store never tells on its own, through a lying store in front of it
//! (`liar.rs`).

use aws_sdk_s3::primitives::ByteStream;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sealgate::gateway::records::upload_record_key;
use sealgate::store::ObjectHeaders;

use crate::harness::*;
use crate::multipart::{complete, create, part};

/// A bucket name unique to this case (Garage is shared by every test).
fn bucket(tag: &str) -> String {
    unique_bucket(&format!("trust-{tag}"))
}

/// The store's upload id of the only upload of `key`.
async fn store_upload_id(w: &World, b: &str, key: &str) -> String {
    let ups = w.store.list_uploads(b, None).await.unwrap();
    let mine: Vec<_> = ups.into_iter().filter(|u| u.key == key).collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    mine[0].upload_id.clone()
}

async fn listed_ids(gw: &Gw, b: &str) -> Vec<(String, String)> {
    let r = gw
        .client
        .list_multipart_uploads()
        .bucket(b)
        .send()
        .await
        .unwrap();
    r.uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap().to_owned(),
                u.upload_id().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Upload records: a listing hands out only ids the gateway itself made.

table! { forged_upload_records;
    upload_record_forgeries_never_become_upload_ids_local: On::Local,
    upload_record_forgeries_never_become_upload_ids_garage: On::Garage,
}

async fn forged_upload_records(on: On) {
    let w = world(on);
    let gw = w.gateway(Spec::alice());
    let b = bucket("records");
    gw.mb(&b).await;
    let id = create(&gw, &b, "victim").await;
    let sid = store_upload_id(&w, &b, "victim").await;
    let record = upload_record_key(&sid);
    // Honest: the listing gives back the very id CreateMultipartUpload gave.
    assert_eq!(
        listed_ids(&gw, &b).await,
        vec![("victim".into(), id.clone())]
    );

    // The store plants records a resuming client must never be handed an
    // id from: another upload's genuine record, garbage, and a record of the
    // kind earlier releases kept (a header the store sealed itself, with a
    // data key of its own choosing, for alice's public key).
    let other = create(&gw, &b, "other").await;
    let other_sid = store_upload_id(&w, &b, "other").await;
    let (_, other_record) = w.raw_get(&b, &upload_record_key(&other_sid)).await;
    let alice_pub = sealgate::envelope::RsaOaepRecipient::from_spki_der(&spki("alice")).unwrap();
    let forged = sealgate::envelope::Header::encrypt_for(
        &[&alice_pub],
        sealgate::envelope::NewBinding::Multipart,
        &Default::default(),
        &b,
        "victim",
    )
    .unwrap();
    let store_chosen_key = *forged.dk.expose();
    let plants: Vec<(&str, Vec<u8>)> = vec![
        ("another upload's record", other_record),
        ("garbage", b"\x02\x00\x05abcde\x00\x00\x00\x00".to_vec()),
        (
            "an old-style record with a store-chosen data key",
            forged.header.to_meta_inline().into_bytes(),
        ),
    ];
    for (what, raw) in plants {
        w.raw_put(&b, &record, raw, &ObjectHeaders::default()).await;
        let listed = listed_ids(&gw, &b).await;
        let victim = listed.iter().find(|(k, _)| k == "victim").unwrap();
        assert_eq!(
            victim.1,
            format!("store.{sid}"),
            "{what}: the listing handed out an id"
        );
        // The `store.` id can abort only: no part goes in under it.
        let e = must_fail(
            gw.client
                .upload_part()
                .bucket(&b)
                .key("victim")
                .upload_id(&victim.1)
                .part_number(1)
                .body(ByteStream::from(vec![1u8; 10]))
                .send()
                .await,
            what,
        );
        assert_refused(&e, 404, "NoSuchUpload", what);
        // Another gateway (same secret, cold) agrees.
        let cold = w.gateway(Spec::alice());
        let listed = listed_ids(&cold, &b).await;
        assert!(
            listed.contains(&("victim".into(), format!("store.{sid}"))),
            "{what}: {listed:?}"
        );
    }
    // The genuine id still works, and the object is under the upload's own
    // key: the store-chosen one does not open it.
    let d = data(6 * MIB, 71);
    let e1 = part(&gw, &b, "victim", &id, 1, &d).await;
    complete(&gw, &b, "victim", &id, &[(1, e1.as_str())])
        .await
        .unwrap();
    assert!(gw.get_ok(&b, "victim").await == d);
    let (info, _) = w.raw_get(&b, "victim").await;
    let meta = info.headers.metadata.get("sg").unwrap();
    let raw = URL_SAFE_NO_PAD.decode(meta).unwrap();
    let h = sealgate::envelope::Header::parse(&raw).unwrap();
    let stolen = sealgate::envelope::DataKey::from_bytes(store_chosen_key);
    assert!(h.authenticate(&stolen, &b, "victim").is_err());
    drop(other);
}

// ---------------------------------------------------------------------------
// ETags: HEAD, GET and conditionals answer from authenticated bytes only.

#[tokio::test]
async fn a_store_that_claims_an_old_etag_never_makes_the_gateway_vouch_for_old_content() {
    let (w, liar) = World::new().lying();
    let gw = w.gateway(Spec::alice());
    let cold = w.gateway(Spec::alice());
    let b = "etags";
    gw.mb(b).await;
    let v1 = data(100_000, 1);
    let v2 = data(100_000, 2);
    let e1 = gw.put(b, "k", &v1).await;
    assert_eq!(e1, md5_hex(&v1));
    // Both gateways have seen the first object (the writer by writing it,
    // the other by listing it).
    let _ = cold
        .client
        .list_objects_v2()
        .bucket(b)
        .send()
        .await
        .unwrap();
    let _ = gw
        .client
        .head_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    let s1 = w.store.head(b, "k").await.unwrap().etag;
    gw.put(b, "k", &v2).await;
    // The store now answers the new object with the old object's ETag.
    liar.lies.lock().unwrap().etags.insert("k".into(), s1);
    for (who, g) in [("writer", &gw), ("other", &cold)] {
        let h = g
            .client
            .head_object()
            .bucket(b)
            .key("k")
            .send()
            .await
            .unwrap();
        assert_eq!(unquote(h.e_tag().unwrap()), md5_hex(&v2), "{who}: HEAD");
        let e = must_fail(
            g.client
                .get_object()
                .bucket(b)
                .key("k")
                .if_match(format!("\"{}\"", md5_hex(&v1)))
                .send()
                .await,
            "If-Match old",
        );
        assert_refused(&e, 412, "PreconditionFailed", who);
        let r = g
            .client
            .get_object()
            .bucket(b)
            .key("k")
            .if_none_match(format!("\"{}\"", md5_hex(&v1)))
            .send()
            .await
            .unwrap();
        assert_eq!(unquote(r.e_tag().unwrap()), md5_hex(&v2), "{who}");
        assert!(collect(r.body).await.unwrap() == v2, "{who}: GET");
        let r = g
            .client
            .get_object()
            .bucket(b)
            .key("k")
            .range("bytes=70000-70009")
            .if_match(format!("\"{}\"", md5_hex(&v2)))
            .send()
            .await
            .unwrap();
        assert!(
            collect(r.body).await.unwrap() == v2[70000..70010],
            "{who}: range"
        );
        let e = must_fail(
            g.client
                .get_object()
                .bucket(b)
                .key("k")
                .if_none_match(format!("\"{}\"", md5_hex(&v2)))
                .send()
                .await,
            "If-None-Match new",
        );
        assert_eq!(e.status, 304, "{who}: {e}");
    }
}

// ---------------------------------------------------------------------------
// Sealed attributes: what a client said is neither read nor changed by the
// store.

table! { sealed_attributes;
    attributes_are_sealed_single_part_local: (On::Local, false),
    attributes_are_sealed_multipart_local: (On::Local, true),
    attributes_are_sealed_single_part_garage: (On::Garage, false),
    attributes_are_sealed_multipart_garage: (On::Garage, true),
}

async fn sealed_attributes((on, multipart): (On, bool)) {
    let w = world(on);
    let gw = w.gateway(Spec::alice());
    let b = bucket("attrs");
    gw.mb(&b).await;
    let k = "docs/report.tar";
    let expires = aws_sdk_s3::primitives::DateTime::from_secs(1_900_000_000);
    let body = data(if multipart { 6 * MIB } else { 70_000 }, 3);
    if multipart {
        let id = gw
            .client
            .create_multipart_upload()
            .bucket(&b)
            .key(k)
            .content_type("application/x-tar")
            .content_disposition("attachment; filename=\"secret-plans.tar\"")
            .cache_control("no-store")
            .expires(expires)
            .metadata("owner", "bob-the-owner")
            .metadata("mtime", "1700000000.25")
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_owned();
        let e = part(&gw, &b, k, &id, 1, &body).await;
        complete(&gw, &b, k, &id, &[(1, e.as_str())]).await.unwrap();
    } else {
        gw.client
            .put_object()
            .bucket(&b)
            .key(k)
            .content_type("application/x-tar")
            .content_disposition("attachment; filename=\"secret-plans.tar\"")
            .cache_control("no-store")
            .expires(expires)
            .metadata("owner", "bob-the-owner")
            .metadata("mtime", "1700000000.25")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    // At the store: `sg` and nothing a client said, in clear or anywhere in
    // the stored bytes.
    let (info, raw) = w.raw_get(&b, k).await;
    let keys: Vec<&String> = info.headers.metadata.keys().collect();
    assert_eq!(keys, vec!["sg"], "store metadata");
    assert_ne!(
        info.headers.content_type.as_deref(),
        Some("application/x-tar")
    );
    assert!(info.headers.content_disposition.is_none());
    assert!(info.headers.cache_control.is_none());
    let sg = URL_SAFE_NO_PAD
        .decode(info.headers.metadata["sg"].as_str())
        .unwrap();
    let mut everything = raw.clone();
    everything.extend_from_slice(&sg);
    for k2 in w.raw_keys(&b).await {
        if k2.starts_with(".sealgate/") {
            everything.extend(w.raw_get(&b, &k2).await.1);
        }
    }
    for secret in [
        "bob-the-owner",
        "secret-plans",
        "x-tar",
        "no-store",
        "1700000000",
    ] {
        assert!(
            !everything
                .windows(secret.len())
                .any(|x| x == secret.as_bytes()),
            "{secret} is at the store in clear"
        );
    }
    // The store changes every header it can, keeping `sg` and the body.
    let mut forged = info.headers.clone();
    forged.content_type = Some("text/html".into());
    forged.content_encoding = Some("gzip".into());
    forged.content_disposition = Some("inline".into());
    forged.metadata.insert("owner".into(), "mallory".into());
    forged.metadata.insert("mtime".into(), "1".into());
    w.raw_put(&b, k, raw.clone(), &forged).await;
    let cold = w.gateway(Spec::alice());
    for (who, g) in [("writer", &gw), ("other", &cold)] {
        let h = g
            .client
            .head_object()
            .bucket(&b)
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(h.content_type(), Some("application/x-tar"), "{who}");
        assert_eq!(h.content_encoding(), None, "{who}");
        assert_eq!(
            h.content_disposition(),
            Some("attachment; filename=\"secret-plans.tar\"")
        );
        assert_eq!(h.cache_control(), Some("no-store"));
        let m = h.metadata().unwrap();
        assert_eq!(m.get("owner").map(String::as_str), Some("bob-the-owner"));
        assert_eq!(m.get("mtime").map(String::as_str), Some("1700000000.25"));
        assert_eq!(m.len(), 2, "{m:?}");
        let r = g
            .client
            .get_object()
            .bucket(&b)
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(r.content_type(), Some("application/x-tar"));
        assert_eq!(r.content_encoding(), None);
        assert!(collect(r.body).await.unwrap() == body, "{who}: GET");
    }
    // A change inside the sealed attributes themselves is an integrity
    // error, never other metadata. (For an inline header the attributes are
    // the bytes just before the MAC.)
    if let Ok(sealgate::envelope::header::MetaValue::Inline(mut h)) =
        sealgate::envelope::header::MetaValue::decode(&info.headers.metadata["sg"])
    {
        let at = h.len() - 33;
        h[at] ^= 1;
        let mut bad = info.headers.clone();
        bad.metadata.insert("sg".into(), URL_SAFE_NO_PAD.encode(&h));
        w.raw_put(&b, k, raw, &bad).await;
        let e = must_fail(
            cold.client.head_object().bucket(&b).key(k).send().await,
            "tampered attributes",
        );
        assert_eq!(e.status, 500, "{e}");
    }
}

/// S3 allows 2 KB of user metadata, and so does sealgate, multipart uploads
/// included, whatever the envelope's size: a header too large for metadata
/// goes into the manifest.
#[tokio::test]
async fn a_multipart_upload_with_many_recipients_and_full_metadata_works() {
    let w = World::new();
    let spec = Spec {
        identities: vec!["alice"],
        recipients: vec!["bob", "carol", "eve"],
        policies: vec![("*", "", vec!["alice", "bob", "carol", "eve"])],
        users: vec![alice_user()],
        ..Spec::alice()
    };
    let gw = w.gateway(spec);
    let b = "fullmeta";
    gw.mb(b).await;
    let value = "v".repeat(1900);
    let id = gw
        .client
        .create_multipart_upload()
        .bucket(b)
        .key("big")
        .metadata("note", &value)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let d1 = data(5 * MIB, 8);
    let d2 = data(1000, 9);
    let e1 = part(&gw, b, "big", &id, 1, &d1).await;
    let e2 = part(&gw, b, "big", &id, 2, &d2).await;
    let etag = complete(&gw, b, "big", &id, &[(1, e1.as_str()), (2, e2.as_str())])
        .await
        .unwrap();
    assert_eq!(etag, multipart_etag(&[&d1, &d2]));
    let (info, _) = w.raw_get(b, "big").await;
    let sg = sealgate::envelope::header::MetaValue::decode(&info.headers.metadata["sg"]).unwrap();
    assert!(
        matches!(sg, sealgate::envelope::header::MetaValue::InManifest { .. }),
        "the header should be in the manifest: {sg:?}"
    );
    for who in ["alice", "bob", "carol"] {
        let g = w.gateway(Spec::person(who));
        let h = g
            .client
            .head_object()
            .bucket(b)
            .key("big")
            .send()
            .await
            .unwrap();
        assert_eq!(h.metadata().unwrap()["note"], value, "{who}");
        assert_eq!(h.content_length(), Some((d1.len() + d2.len()) as i64));
        assert!(
            g.get_ok(b, "big").await == [d1.clone(), d2.clone()].concat(),
            "{who}"
        );
    }
    // A copy of it (multipart copy: a new manifest with the header in it).
    gw.client
        .copy_object()
        .bucket(b)
        .key("big-copy")
        .copy_source(format!("{b}/big"))
        .send()
        .await
        .unwrap();
    let bob = w.gateway(Spec::person("bob"));
    let h = bob
        .client
        .head_object()
        .bucket(b)
        .key("big-copy")
        .send()
        .await
        .unwrap();
    assert_eq!(h.metadata().unwrap()["note"], value);
    assert_eq!(unquote(h.e_tag().unwrap()), etag);
}

// ---------------------------------------------------------------------------
// Parts: ETags are the MD5 of the part's plaintext; what completion needs
// comes from sealed records bound to the store's part.

#[tokio::test]
async fn part_etags_are_md5s_and_a_resent_part_completes_with_its_first_etag() {
    let (w, gw) = World::with_bucket("resend").await;
    let b = "resend";
    let d1 = data(5 * MIB, 21);
    let d2 = data(123_456, 22);
    let id = create(&gw, b, "k").await;
    let first = part(&gw, b, "k", &id, 1, &d1).await;
    assert_eq!(first, md5_hex(&d1), "a part's ETag is its plaintext MD5");
    // Unsure whether it arrived, the client sends the same bytes again.
    let again = part(&gw, b, "k", &id, 1, &d1).await;
    assert_eq!(again, first);
    let e2 = part(&gw, b, "k", &id, 2, &d2).await;
    let parts = gw
        .client
        .list_parts()
        .bucket(b)
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, String, i64)> = parts
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
    assert_eq!(
        listed,
        vec![
            (1, md5_hex(&d1), d1.len() as i64),
            (2, md5_hex(&d2), d2.len() as i64)
        ]
    );
    let etag = complete(&gw, b, "k", &id, &[(1, first.as_str()), (2, e2.as_str())])
        .await
        .unwrap();
    assert_eq!(etag, multipart_etag(&[&d1, &d2]));
    assert!(gw.get_ok(b, "k").await == [d1, d2].concat());
    // Completion took away what it kept about the upload.
    let left: Vec<String> = w
        .raw_keys(b)
        .await
        .into_iter()
        .filter(|k| k.starts_with(".sealgate/up/"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_store_that_lies_about_part_sizes_cannot_complete_an_unreadable_object() {
    let (w, liar) = World::new().lying();
    let gw = w.gateway(Spec::alice());
    let b = "sizes";
    gw.mb(b).await;
    let d1 = data(5 * MIB, 31);
    let d2 = data(1000, 32);
    let id = create(&gw, b, "k").await;
    let e1 = part(&gw, b, "k", &id, 1, &d1).await;
    let e2 = part(&gw, b, "k", &id, 2, &d2).await;
    liar.lies.lock().unwrap().part_size_delta = 16;
    let e = complete(&gw, b, "k", &id, &[(1, e1.as_str()), (2, e2.as_str())])
        .await
        .unwrap_err();
    assert_refused(&e, 400, "InvalidPart", "lying sizes");
    assert!(w.store.head(b, "k").await.is_err(), "no object");
    liar.lies.lock().unwrap().part_size_delta = 0;
    complete(&gw, b, "k", &id, &[(1, e1.as_str()), (2, e2.as_str())])
        .await
        .unwrap();
    assert!(gw.get_ok(b, "k").await == [d1, d2].concat());
}

#[tokio::test]
async fn a_part_whose_record_cannot_be_kept_fails_and_cannot_be_completed() {
    let (w, liar) = World::new().lying();
    let gw = w.gateway(Spec::alice());
    let b = "records";
    gw.mb(b).await;
    let d1 = data(5 * MIB, 41);
    let id = create(&gw, b, "k").await;
    liar.lies.lock().unwrap().fail_puts_under = Some(".sealgate/up/".into());
    let e = must_fail(
        gw.client
            .upload_part()
            .bucket(b)
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from(d1.clone()))
            .send()
            .await,
        "part without its record",
    );
    assert_eq!(e.status, 503, "{e}");
    // The store holds the part, but nothing vouches for it.
    let e = complete(&gw, b, "k", &id, &[(1, md5_hex(&d1).as_str())])
        .await
        .unwrap_err();
    assert_refused(&e, 400, "InvalidPart", "part without record");
    // Sent again once the store behaves, it completes.
    liar.lies.lock().unwrap().fail_puts_under = None;
    let e1 = part(&gw, b, "k", &id, 1, &d1).await;
    complete(&gw, b, "k", &id, &[(1, e1.as_str())])
        .await
        .unwrap();
    assert!(gw.get_ok(b, "k").await == d1);
}

// ---------------------------------------------------------------------------
// Part reads.

#[tokio::test]
async fn part_numbers_read_parts_and_an_empty_part_reads_empty() {
    let (_w, gw) = World::with_bucket("partread").await;
    let b = "partread";
    let small = data(5000, 60);
    gw.put(b, "single", &small).await;
    let r = gw
        .client
        .get_object()
        .bucket(b)
        .key("single")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert!(collect(r.body).await.unwrap() == small);
    let e = must_fail(
        gw.client
            .get_object()
            .bucket(b)
            .key("single")
            .part_number(2)
            .send()
            .await,
        "part 2 of a single-part object",
    );
    assert_refused(&e, 400, "InvalidPart", "beyond a single part");
    let d1 = data(5 * MIB, 61);
    let id = create(&gw, b, "multi").await;
    let e1 = part(&gw, b, "multi", &id, 1, &d1).await;
    let e2 = part(&gw, b, "multi", &id, 2, &[]).await;
    complete(&gw, b, "multi", &id, &[(1, e1.as_str()), (2, e2.as_str())])
        .await
        .unwrap();
    let r = gw
        .client
        .get_object()
        .bucket(b)
        .key("multi")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.content_length(), Some(0));
    assert_eq!(r.parts_count(), Some(2));
    assert!(collect(r.body).await.unwrap().is_empty());
    let h = gw
        .client
        .head_object()
        .bucket(b)
        .key("multi")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(0));
    let e = must_fail(
        gw.client
            .get_object()
            .bucket(b)
            .key("multi")
            .part_number(3)
            .send()
            .await,
        "part 3 of 2",
    );
    assert_refused(&e, 400, "InvalidPart", "beyond the parts");
}

// ---------------------------------------------------------------------------
// Copies apply the destination's policy, or refuse.

#[tokio::test]
async fn copies_apply_the_destination_policy_or_refuse_naming_reencrypt() {
    let w = World::new();
    // Four RSA-2048 recipients and 700 bytes of metadata: the envelope
    // does not fit in metadata and leads the body.
    let everyone = vec!["alice", "bob", "carol", "eve"];
    let gw = w.gateway(Spec {
        identities: vec!["alice"],
        recipients: vec!["bob", "carol", "eve"],
        policies: vec![
            ("*", "", everyone.clone()),
            ("copies", "alice-only/", vec!["alice"]),
            ("copies", "escrow/", vec!["alice", "bob"]),
        ],
        users: vec![alice_user()],
        ..Spec::alice()
    });
    let b = "copies";
    gw.mb(b).await;
    let d = data(10_000, 70);
    gw.client
        .put_object()
        .bucket(b)
        .key("big-envelope")
        .metadata("note", "n".repeat(700))
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    let (info, _) = w.raw_get(b, "big-envelope").await;
    assert!(matches!(
        sealgate::envelope::header::MetaValue::decode(&info.headers.metadata["sg"]).unwrap(),
        sealgate::envelope::header::MetaValue::Overflow { .. }
    ));
    // Same recipients: a rename of the envelope works.
    gw.client
        .copy_object()
        .bucket(b)
        .key("renamed")
        .copy_source(format!("{b}/big-envelope"))
        .send()
        .await
        .unwrap();
    assert!(w.gateway(Spec::person("carol")).get_ok(b, "renamed").await == d);
    // Other recipients or new metadata would need the body rewritten: a
    // clear refusal, and nothing at the destination.
    for (dst, replace) in [("alice-only/x", false), ("renamed-2", true)] {
        let mut c = gw
            .client
            .copy_object()
            .bucket(b)
            .key(dst)
            .copy_source(format!("{b}/big-envelope"));
        if replace {
            c = c
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .metadata("note", "short");
        }
        let e = must_fail(c.send().await, dst);
        assert_refused(&e, 400, "InvalidRequest", dst);
        assert!(e.message.contains("reencrypt"), "{e}");
        assert!(w.store.head(b, dst).await.is_err(), "{dst} was written");
    }
    // An inline envelope: the destination's policy (an escrow key) applies.
    gw.put(b, "small", &d).await;
    gw.client
        .copy_object()
        .bucket(b)
        .key("escrow/small")
        .copy_source(format!("{b}/small"))
        .send()
        .await
        .unwrap();
    let bob = w.gateway(Spec::person("bob"));
    assert!(
        bob.get_ok(b, "escrow/small").await == d,
        "escrow reads the copy"
    );
    let carol = w.gateway(Spec::person("carol"));
    match carol.get(b, "escrow/small").await {
        Err(Refusal::Response(e)) => assert_refused(&e, 403, "AccessDenied", "carol"),
        other => panic!("carol: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Offline decryption checks what the gateway checks.

fn spki(person: &str) -> Vec<u8> {
    crate::harness::spki_of(person)
}

#[tokio::test]
async fn offline_decrypt_needs_the_manifest_and_checks_every_digest() {
    use sealgate::commands::decrypt::{decrypt, DecryptOptions, RecoverError};
    let (w, gw) = World::with_bucket("offline").await;
    let b = "offline";
    let parts = [data(5 * MIB, 80), data(5 * MIB, 81), data(777, 82)];
    let id = create(&gw, b, "m").await;
    let mut etags = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        etags.push(part(&gw, b, "m", &id, i as i32 + 1, p).await);
    }
    let list: Vec<(i32, &str)> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i32 + 1, e.as_str()))
        .collect();
    let etag = complete(&gw, b, "m", &id, &list).await.unwrap();
    let (info, body) = w.raw_get(b, "m").await;
    let meta = info.headers.metadata["sg"].clone();
    let mkey = w
        .raw_keys(b)
        .await
        .into_iter()
        .find(|k| k.starts_with(".sealgate/mp/"))
        .unwrap();
    let (_, manifest) = w.raw_get(b, &mkey).await;
    let alice = crate::harness::identity_of("alice");
    let ids = [alice.as_ref()];
    let name = Some((b, "m"));
    let run = |body: &[u8], opts: DecryptOptions<'_>| {
        let mut out = Vec::new();
        decrypt(&ids, &meta, opts, body, &mut out).map(|r| (r, out))
    };
    let (r, out) = run(
        &body,
        DecryptOptions {
            name,
            manifest: Some(&manifest),
            without_manifest: false,
        },
    )
    .unwrap();
    assert!(out == parts.concat());
    assert_eq!(r.etag.as_deref(), Some(etag.as_str()));
    assert!(r.parts_checked && r.name_checked);
    // Without its manifest: refused, naming what it needs.
    match run(
        &body,
        DecryptOptions {
            name,
            ..Default::default()
        },
    ) {
        Err(RecoverError::Input(m)) => assert!(m.contains("--manifest"), "{m}"),
        other => panic!("{:?}", other.map(|(r, _)| r.plaintext_len)),
    }
    // The middle part dropped (as a store re-completing without it would):
    // refused with the manifest; a walk without it cannot tell, and says so.
    let p1 = sealgate::envelope::size::stream_len(parts[0].len() as u64) as usize;
    let p2 = sealgate::envelope::size::stream_len(parts[1].len() as u64) as usize;
    let dropped = [&body[..p1], &body[p1 + p2..]].concat();
    assert!(run(
        &dropped,
        DecryptOptions {
            name,
            manifest: Some(&manifest),
            without_manifest: false
        }
    )
    .is_err());
    let (r, out) = run(
        &dropped,
        DecryptOptions {
            name,
            manifest: None,
            without_manifest: true,
        },
    )
    .unwrap();
    assert!(!r.parts_checked && r.etag.is_none());
    assert_eq!(out.len(), parts[0].len() + parts[2].len());
}

#[test]
fn offline_decrypt_refuses_content_whose_sealed_md5_lies() {
    use bytes::BytesMut;
    use sealgate::commands::decrypt::{decrypt, DecryptOptions, RecoverError};
    use sealgate::envelope::segment::{seal_segment_into, seal_trailer};
    use sealgate::envelope::{Header, NewBinding};
    // A writer holding the data key (any writer: recipients' keys are public)
    // seals honest segments but the MD5 of other content in the trailer.
    let alice = crate::harness::identity_of("alice");
    let r = alice.recipient().unwrap();
    let pt = data(1000, 90);
    let s = Header::encrypt_for(
        &[r.as_ref()],
        NewBinding::Single {
            plaintext_len: 1000,
        },
        &Default::default(),
        "b",
        "k",
    )
    .unwrap();
    let sealgate::envelope::BodyBinding::Single { salt, .. } = s.header.binding else {
        unreachable!()
    };
    let pk = s.dk.payload_key(&salt, 0, 1000);
    let mut body = BytesMut::new();
    body.extend_from_slice(&salt);
    body.extend_from_slice(&1000u64.to_be_bytes());
    let mut seg = vec![0u8; 1000 + 16];
    seal_segment_into(&pk, 0, true, &pt, &mut seg).unwrap();
    body.extend_from_slice(&seg);
    body.extend_from_slice(&seal_trailer(&pk, 1, &[0x42; 16]).unwrap());
    let ids = [alice.as_ref()];
    let mut out = Vec::new();
    match decrypt(
        &ids,
        &s.header.to_meta_inline(),
        DecryptOptions {
            name: Some(("b", "k")),
            ..Default::default()
        },
        &body[..],
        &mut out,
    ) {
        Err(RecoverError::Digest(m)) => assert!(m.contains("MD5"), "{m}"),
        other => panic!("{:?}", other.map(|r| r.plaintext_len)),
    }
}

// ---------------------------------------------------------------------------
// Objects written by earlier releases (headers without sealed attributes,
// layout-1 manifests) stay readable, with the store's headers as before.

#[tokio::test]
async fn objects_of_earlier_releases_still_read_and_reencrypt_seals_their_attributes() {
    use sealgate::envelope::manifest::{Manifest, ManifestPart};
    use sealgate::envelope::stream::seal_all;
    use sealgate::envelope::{BodyBinding, DataKey, Header};
    let (w, gw) = World::with_bucket("legacy").await;
    let b = "legacy";
    let alice = crate::harness::identity_of("alice").recipient().unwrap();
    // A single-part object as releases before sealed attributes wrote it:
    // the header inline without attributes, the client's headers in clear.
    let pt = data(150_000, 100);
    let dk = DataKey::generate().unwrap();
    let salt = sealgate::envelope::keys::random_salt().unwrap();
    let binding = BodyBinding::Single {
        salt,
        plaintext_len: pt.len() as u64,
    };
    let h = Header::seal(&dk, &[alice.as_ref()], binding, b, "old").unwrap();
    let mut headers = ObjectHeaders::default();
    headers.metadata.insert("sg".into(), h.to_meta_inline());
    headers
        .metadata
        .insert("origin".into(), "old-release".into());
    headers.content_type = Some("text/x-old".into());
    w.raw_put(b, "old", seal_all(&dk, salt, 0, &pt).unwrap(), &headers)
        .await;
    // A multipart object with a layout-1 manifest.
    let parts = [data(70_000, 101), data(5, 102)];
    let mdk = DataKey::generate().unwrap();
    let upload_id = sealgate::envelope::keys::random_salt().unwrap();
    let mh = Header::seal(
        &mdk,
        &[alice.as_ref()],
        BodyBinding::Multipart { upload_id },
        b,
        "old-mp",
    )
    .unwrap();
    let mut body = Vec::new();
    let mut table = Vec::new();
    let mut md5s = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let s = sealgate::envelope::keys::random_salt().unwrap();
        body.extend(seal_all(&mdk, s, i as u32 + 1, p).unwrap());
        table.push(ManifestPart {
            number: i as u32 + 1,
            plaintext_len: p.len() as u64,
            salt: s,
        });
        md5s.extend_from_slice(&hex::decode(md5_hex(p)).unwrap());
    }
    let etag_md5: [u8; 16] = hex::decode(md5_hex(&md5s)).unwrap().try_into().unwrap();
    let m = Manifest::seal_layout1(&mdk, None, table, &etag_md5, b, "old-mp", &upload_id).unwrap();
    assert_eq!(m.raw()[0], 1, "layout 1");
    w.raw_put(
        b,
        &format!(".sealgate/mp/{}", hex::encode(upload_id)),
        m.raw().to_vec(),
        &ObjectHeaders::default(),
    )
    .await;
    let mut mheaders = ObjectHeaders::default();
    mheaders.metadata.insert("sg".into(), mh.to_meta_inline());
    w.raw_put(b, "old-mp", body, &mheaders).await;

    let fresh = w.gateway(Spec::alice());
    for g in [&gw, &fresh] {
        let r = g
            .client
            .get_object()
            .bucket(b)
            .key("old")
            .send()
            .await
            .unwrap();
        assert_eq!(r.content_type(), Some("text/x-old"));
        assert_eq!(r.metadata().unwrap()["origin"], "old-release");
        assert_eq!(unquote(r.e_tag().unwrap()), md5_hex(&pt));
        assert!(collect(r.body).await.unwrap() == pt);
        assert!(g.get_ok(b, "old-mp").await == parts.concat());
        let h = g
            .client
            .head_object()
            .bucket(b)
            .key("old-mp")
            .send()
            .await
            .unwrap();
        assert_eq!(
            unquote(h.e_tag().unwrap()),
            multipart_etag(&[&parts[0], &parts[1]])
        );
    }
    // A copy keeps the old object's kind; reencrypt seals its attributes.
    gw.client
        .copy_object()
        .bucket(b)
        .key("old-copy")
        .copy_source(format!("{b}/old"))
        .send()
        .await
        .unwrap();
    let h = fresh
        .client
        .head_object()
        .bucket(b)
        .key("old-copy")
        .send()
        .await
        .unwrap();
    assert_eq!(h.metadata().unwrap()["origin"], "old-release");
    let cmd = w.command_gateway(Spec::alice());
    let s = sealgate::commands::reencrypt::reencrypt(&cmd, b, "old", 1)
        .await
        .unwrap();
    assert!(s.failed.is_empty(), "{s}");
    let (info, _) = w.raw_get(b, "old").await;
    assert_eq!(info.headers.metadata.keys().collect::<Vec<_>>(), vec!["sg"]);
    let h = w
        .gateway(Spec::alice())
        .client
        .head_object()
        .bucket(b)
        .key("old")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/x-old"));
    assert_eq!(h.metadata().unwrap()["origin"], "old-release");
}

// ---------------------------------------------------------------------------
// gc: finds what nothing needs, keeps what anything needs.

#[tokio::test]
async fn gc_removes_only_what_nothing_needs() {
    use sealgate::gateway::gc::{gc, GcOptions};
    let (w, gw) = World::with_bucket("gcbucket").await;
    let b = "gcbucket";
    // A live multipart object (its manifest is needed) and a live upload
    // (its records are needed).
    let d = data(5 * MIB, 1);
    let id = create(&gw, b, "live-mp").await;
    let e = part(&gw, b, "live-mp", &id, 1, &d).await;
    complete(&gw, b, "live-mp", &id, &[(1, e.as_str())])
        .await
        .unwrap();
    let open = create(&gw, b, "in-progress").await;
    let first = data(1000, 2);
    part(&gw, b, "in-progress", &open, 1, &first).await;
    // Orphans: a manifest whose object is gone, the records of an upload the
    // store expired (aborted behind the gateway's back), and a stranger.
    let id2 = create(&gw, b, "gone").await;
    let e2 = part(&gw, b, "gone", &id2, 1, &d).await;
    complete(&gw, b, "gone", &id2, &[(1, e2.as_str())])
        .await
        .unwrap();
    w.store.delete(b, "gone").await.unwrap();
    let expired = create(&gw, b, "expired").await;
    part(&gw, b, "expired", &expired, 1, &data(1000, 3)).await;
    let sid = w
        .store
        .list_uploads(b, None)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.key == "expired")
        .unwrap()
        .upload_id;
    w.store.abort_multipart(b, "expired", &sid).await.unwrap();
    w.raw_put(
        b,
        ".sealgate/stranger",
        b"x".to_vec(),
        &ObjectHeaders::default(),
    )
    .await;
    let cmd = w.command_gateway(Spec::alice());
    let before = w.raw_keys(b).await;
    // Young things are kept whatever they look like.
    let r = gc(
        &cmd,
        b,
        &GcOptions {
            apply: true,
            min_age: std::time::Duration::from_secs(3600),
            concurrency: 4,
        },
    )
    .await
    .unwrap();
    assert!(r.orphan_manifests.is_empty() && r.orphan_records.is_empty());
    assert!(r.too_young >= 3, "{r:?}");
    assert_eq!(w.raw_keys(b).await, before);
    // A dry run reports and deletes nothing.
    let opts = |apply| GcOptions {
        apply,
        min_age: std::time::Duration::ZERO,
        concurrency: 4,
    };
    let r = gc(&cmd, b, &opts(false)).await.unwrap();
    assert_eq!(r.orphan_manifests.len(), 1, "{r:?}");
    assert_eq!(
        r.orphan_records.len(),
        2,
        "the upload record and one part record: {r:?}"
    );
    assert_eq!(r.unknown, vec![".sealgate/stranger".to_owned()]);
    assert_eq!(r.deleted, 0);
    assert_eq!(w.raw_keys(b).await, before);
    let r = gc(&cmd, b, &opts(true)).await.unwrap();
    assert_eq!(r.deleted, 3);
    let after = w.raw_keys(b).await;
    assert!(after.contains(&".sealgate/stranger".to_owned()));
    // What is needed stayed: the live object reads, the upload completes.
    assert!(gw.get_ok(b, "live-mp").await == d);
    let second = data(10, 4);
    part(&gw, b, "in-progress", &open, 2, &second).await;
    let listed = gw
        .client
        .list_parts()
        .bucket(b)
        .key("in-progress")
        .upload_id(&open)
        .send()
        .await
        .unwrap();
    // Both parts are vouched for by their records (a part without one
    // would list the store's ETag).
    let etags: Vec<String> = listed
        .parts()
        .iter()
        .map(|p| unquote(p.e_tag().unwrap()))
        .collect();
    assert_eq!(etags, vec![md5_hex(&first), md5_hex(&second)]);
}

/// A 304 carries the ETag and Last-Modified, as S3's do.
#[tokio::test]
async fn not_modified_answers_carry_the_etag() {
    let (_w, gw) = World::with_bucket("notmod").await;
    let d = data(100, 5);
    let etag = gw.put("notmod", "k", &d).await;
    let e = gw
        .client
        .get_object()
        .bucket("notmod")
        .key("k")
        .if_none_match(format!("\"{etag}\""))
        .send()
        .await
        .unwrap_err();
    let raw = e.raw_response().expect("a response");
    assert_eq!(raw.status().as_u16(), 304);
    assert_eq!(
        raw.headers().get("etag"),
        Some(format!("\"{etag}\"").as_str())
    );
    assert!(raw.headers().get("last-modified").is_some());
}
