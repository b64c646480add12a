//! Conditional writes: `If-None-Match: *` (create only if absent) and
//! `If-Match` (compare-and-swap on the plaintext ETag) on PutObject,
//! CompleteMultipartUpload and CopyObject. The store enforces them: two
//! gateways racing on one key never both win, a writer that comes between a
//! gateway's look and its write makes the store refuse it, and a store that
//! does not enforce a condition gets it refused (501), never a silent
//! overwrite. Over the embedded store, over moto (which enforces some of
//! them) and over Garage (which accepts them and overwrites anyway).

use aws_sdk_s3::primitives::ByteStream;
use sealgate::store::conditional::{Mode, PROBE_PREFIX};

use crate::harness::*;
use crate::multipart::{create, part, part_list};

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// PutObject with the conditions given (header values as sent).
async fn put_if(
    gw: &Gw,
    b: &str,
    k: &str,
    d: &[u8],
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<String, S3Err> {
    gw.client
        .put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(d.to_vec()))
        .set_if_match(if_match.map(str::to_owned))
        .set_if_none_match(if_none_match.map(str::to_owned))
        .send()
        .await
        .map(|r| unquote(r.e_tag().unwrap()))
        .map_err(S3Err::from)
}

/// An upload of one part of `d`, ready to complete: (id, part ETag).
async fn one_part_upload(gw: &Gw, b: &str, k: &str, d: &[u8]) -> (String, String) {
    let id = create(gw, b, k).await;
    let e = part(gw, b, k, &id, 1, d).await;
    (id, e)
}

/// CompleteMultipartUpload of one part with the conditions given.
async fn complete_if(
    gw: &Gw,
    b: &str,
    k: &str,
    (id, e): &(String, String),
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<String, S3Err> {
    gw.client
        .complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .multipart_upload(part_list(&[(1, e.as_str())]))
        .set_if_match(if_match.map(str::to_owned))
        .set_if_none_match(if_none_match.map(str::to_owned))
        .send()
        .await
        .map(|r| unquote(r.e_tag().unwrap()))
        .map_err(S3Err::from)
}

/// CopyObject of `src` to `dst` (same bucket) with conditions on `dst`.
async fn copy_if(
    gw: &Gw,
    b: &str,
    src: &str,
    dst: &str,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<String, S3Err> {
    gw.client
        .copy_object()
        .bucket(b)
        .key(dst)
        .copy_source(format!("{b}/{src}"))
        .set_if_match(if_match.map(str::to_owned))
        .set_if_none_match(if_none_match.map(str::to_owned))
        .send()
        .await
        .map(|r| unquote(r.copy_object_result().unwrap().e_tag().unwrap()))
        .map_err(S3Err::from)
}

#[track_caller]
fn assert_412(r: Result<String, S3Err>, what: &str) {
    match r {
        Ok(e) => panic!("{what}: written (ETag {e}), expected 412"),
        Err(e) => assert_refused(&e, 412, "PreconditionFailed", what),
    }
}

/// Refused because the store does not enforce the condition: 501 naming
/// the operation, the header and the config key.
#[track_caller]
fn assert_not_enforced(r: Result<String, S3Err>, op: &str, header: &str, what: &str) {
    let e = match r {
        Ok(e) => panic!("{what}: written (ETag {e}), expected 501"),
        Err(e) => e,
    };
    assert_refused(&e, 501, "NotImplemented", what);
    for part in [op, header, "store.conditional_writes"] {
        assert!(
            e.message.contains(part),
            "{what}: the refusal does not name {part}: {}",
            e.message
        );
    }
}

/// Racing writers of one key (each with its own content) through the
/// gateways given in turn: exactly one wins, the others get 412, and every
/// gateway reads the winner's content and ETag.
async fn race(
    gws: &[&Gw],
    b: &str,
    k: &str,
    writers: usize,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) {
    let contents: Vec<Vec<u8>> = (0..writers)
        .map(|i| data(20_000 + i, 900 + i as u64))
        .collect();
    let results = futures::future::join_all(
        contents
            .iter()
            .enumerate()
            .map(|(i, d)| put_if(gws[i % gws.len()], b, k, d, if_match, if_none_match)),
    )
    .await;
    let winners: Vec<usize> = (0..writers).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{k}: one winner: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert_refused(e, 412, "PreconditionFailed", "a losing writer");
        }
    }
    let w = winners[0];
    for gw in gws {
        assert!(
            gw.get_ok(b, k).await == contents[w],
            "{k}: the winner's bytes"
        );
        let h = gw
            .client
            .head_object()
            .bucket(b)
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(unquote(h.e_tag().unwrap()), md5_hex(&contents[w]));
    }
}

// ---------------------------------------------------------------------------
// Over the embedded store (which enforces every condition itself).

#[tokio::test]
async fn gateways_racing_to_create_one_key_leave_exactly_one_winner() {
    let w = World::new();
    let (g1, g2) = (w.gateway(Spec::alice()), w.gateway(Spec::alice()));
    g1.mb("race").await;
    for round in 0..10 {
        race(
            &[&g1, &g2],
            "race",
            &format!("k{round}"),
            4,
            None,
            Some("*"),
        )
        .await;
    }
}

#[tokio::test]
async fn gateways_racing_to_swap_one_version_leave_exactly_one_winner() {
    let w = World::new();
    let (g1, g2) = (w.gateway(Spec::alice()), w.gateway(Spec::alice()));
    g1.mb("cas").await;
    for round in 0..10 {
        let k = format!("k{round}");
        let e0 = g1.put("cas", &k, &data(100, round)).await;
        race(&[&g1, &g2], "cas", &k, 4, Some(&quoted(&e0)), None).await;
    }
}

#[tokio::test]
async fn if_match_swaps_on_the_plaintext_etag_and_refuses_a_stale_one() {
    let (w, gw) = World::with_bucket("swap").await;
    let b = "swap";
    let (v1, v2, v3) = (data(1000, 1), data(2000, 2), data(3000, 3));
    let e1 = gw.put(b, "k", &v1).await;
    let e2 = put_if(&gw, b, "k", &v2, Some(&quoted(&e1)), None)
        .await
        .unwrap();
    assert_eq!(e2, md5_hex(&v2));
    assert!(gw.get_ok(b, "k").await == v2);
    assert_412(
        put_if(&gw, b, "k", &v3, Some(&quoted(&e1)), None).await,
        "a stale ETag",
    );
    assert!(
        gw.get_ok(b, "k").await == v2,
        "the stale swap wrote nothing"
    );
    // The store's own ETag is not the object's: it addresses nothing.
    let store_etag = w.store.head(b, "k").await.unwrap().etag;
    assert_ne!(store_etag, e2);
    assert_412(
        put_if(&gw, b, "k", &v3, Some(&quoted(&store_etag)), None).await,
        "the store's ETag",
    );
    // Unquoted, as some clients send it; then `*` (any object).
    put_if(&gw, b, "k", &v3, Some(&e2), None).await.unwrap();
    assert!(gw.get_ok(b, "k").await == v3);
    put_if(&gw, b, "k", &v1, Some("*"), None).await.unwrap();
    assert!(gw.get_ok(b, "k").await == v1);
    // Over a multipart object, with its `-N` ETag.
    let parts = crate::multipart::upload(&gw, b, "mp", &[5 * MIB, 10]).await;
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let mp_etag = multipart_etag(&refs);
    put_if(&gw, b, "mp", &v2, Some(&quoted(&mp_etag)), None)
        .await
        .unwrap();
    assert!(gw.get_ok(b, "mp").await == v2);
    // No object: 404, and none is made.
    for m in [quoted(&e1), "*".to_owned()] {
        let e = put_if(&gw, b, "missing", &v1, Some(&m), None)
            .await
            .unwrap_err();
        assert_refused(&e, 404, "NoSuchKey", "If-Match on a missing key");
    }
    assert!(matches!(gw.get(b, "missing").await, Err(Refusal::Response(e)) if e.status == 404));
}

#[tokio::test]
async fn if_none_match_creates_once() {
    let (_w, gw) = World::with_bucket("create").await;
    let b = "create";
    let (v1, v2) = (data(1000, 1), data(1000, 2));
    let e1 = put_if(&gw, b, "k", &v1, None, Some("*")).await.unwrap();
    assert_eq!(e1, md5_hex(&v1));
    assert_412(
        put_if(&gw, b, "k", &v2, None, Some("*")).await,
        "over an object",
    );
    assert!(gw.get_ok(b, "k").await == v1);
    // Deleted, it can be created again.
    gw.client
        .delete_object()
        .bucket(b)
        .key("k")
        .send()
        .await
        .unwrap();
    put_if(&gw, b, "k", &v2, None, Some("*")).await.unwrap();
    assert!(gw.get_ok(b, "k").await == v2);
}

#[tokio::test]
async fn a_writer_between_the_gateways_look_and_its_write_makes_the_store_refuse() {
    // The gateway resolves the object and compares the plaintext ETag; the
    // store then sees `If-Match: <store ETag of that version>`. Another
    // writer in between changes the store's ETag, so the store refuses:
    // the gateway's own check alone would have let the write through.
    let (w, liar) = World::new().lying();
    let gw = w.gateway(Spec::alice());
    gw.mb("between").await;
    let b = "between";
    let e1 = gw.put(b, "k", &data(1000, 1)).await;
    liar.lies.lock().unwrap().intrude = Some(b"the intruder".to_vec());
    assert_412(
        put_if(&gw, b, "k", &data(1000, 2), Some(&quoted(&e1)), None).await,
        "a swap overtaken",
    );
    assert_eq!(w.raw_get(b, "k").await.1, b"the intruder");
    liar.lies.lock().unwrap().intrude = Some(b"the first".to_vec());
    assert_412(
        put_if(&gw, b, "new", &data(1000, 3), None, Some("*")).await,
        "a create overtaken",
    );
    assert_eq!(w.raw_get(b, "new").await.1, b"the first");
    // The same for a completion.
    let up = one_part_upload(&gw, b, "mp", &data(1000, 4)).await;
    liar.lies.lock().unwrap().intrude = Some(b"the first".to_vec());
    assert_412(
        complete_if(&gw, b, "mp", &up, None, Some("*")).await,
        "a completion overtaken",
    );
    assert_eq!(w.raw_get(b, "mp").await.1, b"the first");
}

#[tokio::test]
async fn conditional_completions_create_once_and_swap_on_the_plaintext_etag() {
    let (w, gw) = World::with_bucket("cmp").await;
    let b = "cmp";
    let (da, db, dc) = (data(1000, 1), data(2000, 2), data(3000, 3));
    let a = one_part_upload(&gw, b, "k", &da).await;
    let ea = complete_if(&gw, b, "k", &a, None, Some("*")).await.unwrap();
    let up_b = one_part_upload(&gw, b, "k", &db).await;
    assert_412(
        complete_if(&gw, b, "k", &up_b, None, Some("*")).await,
        "a completion over an object",
    );
    assert!(gw.get_ok(b, "k").await == da);
    // The refused upload is still there, and completes with If-Match.
    let eb = complete_if(&gw, b, "k", &up_b, Some(&quoted(&ea)), None)
        .await
        .unwrap();
    assert!(gw.get_ok(b, "k").await == db);
    let up_c = one_part_upload(&gw, b, "k", &dc).await;
    assert_412(
        complete_if(&gw, b, "k", &up_c, Some(&quoted(&ea)), None).await,
        "a completion with a stale ETag",
    );
    assert!(gw.get_ok(b, "k").await == db);
    gw.client
        .abort_multipart_upload()
        .bucket(b)
        .key("k")
        .upload_id(&up_c.0)
        .send()
        .await
        .unwrap();
    // What the refused completions wrote before asking the store (their
    // manifests) is gone: one manifest, the object's, and no records.
    let keys = w.raw_keys(b).await;
    let manifests = keys
        .iter()
        .filter(|k| k.starts_with(".sealgate/mp/"))
        .count();
    assert_eq!(manifests, 1, "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.starts_with(".sealgate/up/")),
        "{keys:?}"
    );
    // A retry of a completion that succeeded answers as the first did.
    let again = complete_if(&gw, b, "k", &up_b, Some(&quoted(&ea)), None)
        .await
        .unwrap();
    assert_eq!(again, eb);
}

#[tokio::test]
async fn gateways_racing_to_complete_one_key_leave_exactly_one_winner() {
    let w = World::new();
    let (g1, g2) = (w.gateway(Spec::alice()), w.gateway(Spec::alice()));
    g1.mb("cmprace").await;
    let b = "cmprace";
    for round in 0..5u64 {
        let k = format!("k{round}");
        let (d1, d2) = (data(1000, round * 2), data(1000, round * 2 + 1));
        let u1 = one_part_upload(&g1, b, &k, &d1).await;
        let u2 = one_part_upload(&g2, b, &k, &d2).await;
        let (r1, r2) = futures::join!(
            complete_if(&g1, b, &k, &u1, None, Some("*")),
            complete_if(&g2, b, &k, &u2, None, Some("*"))
        );
        let (won, lost, d) = match (&r1, &r2) {
            (Ok(_), Err(e)) => (&g1, e, &d1),
            (Err(e), Ok(_)) => (&g2, e, &d2),
            _ => panic!("{k}: one winner: {r1:?} {r2:?}"),
        };
        assert_refused(lost, 412, "PreconditionFailed", "the losing completion");
        assert!(won.get_ok(b, &k).await == *d);
        assert!(g1.get_ok(b, &k).await == *d && g2.get_ok(b, &k).await == *d);
    }
    let manifests = w
        .raw_keys(b)
        .await
        .into_iter()
        .filter(|k| k.starts_with(".sealgate/mp/"))
        .count();
    assert_eq!(manifests, 5, "one manifest per object, none of the losers");
}

#[tokio::test]
async fn conditional_copies_create_once_and_swap_on_the_plaintext_etag() {
    let (_w, gw) = World::with_bucket("cpy").await;
    let b = "cpy";
    let (src, dst) = (data(1000, 1), data(2000, 2));
    gw.put(b, "src", &src).await;
    let e_dst = gw.put(b, "dst", &dst).await;
    assert_412(
        copy_if(&gw, b, "src", "dst", None, Some("*")).await,
        "a copy over an object",
    );
    assert!(gw.get_ok(b, "dst").await == dst);
    copy_if(&gw, b, "src", "fresh", None, Some("*"))
        .await
        .unwrap();
    assert!(gw.get_ok(b, "fresh").await == src);
    assert_412(
        copy_if(
            &gw,
            b,
            "src",
            "dst",
            Some(&quoted(&md5_hex(b"other"))),
            None,
        )
        .await,
        "a copy with a stale ETag",
    );
    assert!(gw.get_ok(b, "dst").await == dst);
    copy_if(&gw, b, "src", "dst", Some(&quoted(&e_dst)), None)
        .await
        .unwrap();
    assert!(gw.get_ok(b, "dst").await == src);
}

#[tokio::test]
async fn conditions_sealgate_cannot_honour_are_refused_not_ignored() {
    let (_w, gw) = World::with_bucket("odd").await;
    let b = "odd";
    let v = data(100, 1);
    let e = gw.put(b, "k", &v).await;
    for (m, nm, what) in [
        (None, Some(quoted(&e)), "If-None-Match with an ETag"),
        (Some(quoted(&e)), Some("*".to_owned()), "both"),
    ] {
        let r = put_if(&gw, b, "k", &data(100, 2), m.as_deref(), nm.as_deref()).await;
        assert_refused(&r.unwrap_err(), 501, "NotImplemented", what);
    }
    let r = gw
        .client
        .delete_object()
        .bucket(b)
        .key("k")
        .if_match(quoted(&e))
        .send()
        .await;
    assert_refused(
        &must_fail(r, "a conditional delete"),
        501,
        "NotImplemented",
        "delete",
    );
    assert!(
        gw.get_ok(b, "k").await == v,
        "nothing was written or deleted"
    );
}

// ---------------------------------------------------------------------------
// Finding what a store enforces (a store that is not the embedded one).

#[tokio::test]
async fn a_store_that_ignores_conditions_is_found_out_and_never_overwrites() {
    let (w, liar) = World::new().lying();
    liar.lies.lock().unwrap().ignore_conditions = true;
    let gw = w.gateway(Spec::alice());
    gw.mb("ignores").await;
    let b = "ignores";
    let v1 = data(1000, 1);
    let e1 = gw.put(b, "k", &v1).await;
    assert_not_enforced(
        put_if(&gw, b, "k", &data(1000, 2), None, Some("*")).await,
        "PutObject",
        "If-None-Match",
        "create over an object",
    );
    let probed = liar.lies.lock().unwrap().probe_puts;
    assert!(probed > 0, "the store was probed");
    assert_not_enforced(
        put_if(&gw, b, "k", &data(1000, 3), Some(&quoted(&e1)), None).await,
        "PutObject",
        "If-Match",
        "swap",
    );
    let up = one_part_upload(&gw, b, "k", &data(1000, 4)).await;
    assert_not_enforced(
        complete_if(&gw, b, "k", &up, None, Some("*")).await,
        "CompleteMultipartUpload",
        "If-None-Match",
        "completion",
    );
    assert_not_enforced(
        copy_if(&gw, b, "k", "k2", None, Some("*")).await,
        "CopyObject",
        "If-None-Match",
        "copy",
    );
    assert!(gw.get_ok(b, "k").await == v1, "nothing was overwritten");
    assert_eq!(
        liar.lies.lock().unwrap().probe_puts,
        probed,
        "the answer is kept: one probe"
    );
    // Unconditional writes are not affected; the probe left nothing.
    gw.put(b, "k", &data(10, 5)).await;
    assert!(!w
        .raw_keys(b)
        .await
        .iter()
        .any(|k| k.starts_with(PROBE_PREFIX)));
    let uploads = w.store.list_uploads(b, Some(PROBE_PREFIX)).await.unwrap();
    assert!(uploads.is_empty(), "probe uploads left: {}", uploads.len());
}

#[tokio::test]
async fn a_store_that_enforces_conditions_is_probed_once_and_the_probe_leaves_nothing() {
    let (w, liar) = World::new().lying();
    let gw = w.gateway(Spec::alice());
    gw.mb("honest").await;
    let b = "honest";
    put_if(&gw, b, "k", &data(100, 1), None, Some("*"))
        .await
        .unwrap();
    let probed = liar.lies.lock().unwrap().probe_puts;
    assert!(probed > 0, "the store was probed");
    assert_412(
        put_if(&gw, b, "k", &data(100, 2), None, Some("*")).await,
        "over an object",
    );
    let up = one_part_upload(&gw, b, "mp", &data(100, 3)).await;
    complete_if(&gw, b, "mp", &up, None, Some("*"))
        .await
        .unwrap();
    assert_eq!(liar.lies.lock().unwrap().probe_puts, probed, "one probe");
    assert!(!w
        .raw_keys(b)
        .await
        .iter()
        .any(|k| k.starts_with(PROBE_PREFIX)));
    assert!(w.store.list_uploads(b, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn conditional_writes_set_unsupported_are_refused_without_asking_the_store() {
    let (w, liar) = World::new().lying();
    let gw = w.gateway_with(Spec::alice(), Mode::Unsupported);
    gw.mb("unsupported").await;
    let e = put_if(&gw, "unsupported", "k", b"x", None, Some("*"))
        .await
        .unwrap_err();
    assert_refused(&e, 501, "NotImplemented", "create");
    assert!(
        e.message
            .contains("store.conditional_writes = \"unsupported\""),
        "{}",
        e.message
    );
    assert_eq!(liar.lies.lock().unwrap().probe_puts, 0, "no probe");
    assert!(w.raw_keys("unsupported").await.is_empty());
    // `enforced`: the operator's word, no probe either.
    let gw = w.gateway_with(Spec::alice(), Mode::Enforced);
    put_if(&gw, "unsupported", "k", b"x", None, Some("*"))
        .await
        .unwrap();
    assert_eq!(liar.lies.lock().unwrap().probe_puts, 0, "no probe");
}

// ---------------------------------------------------------------------------
// Over moto: it enforces both conditions on PutObject and If-None-Match on
// CompleteMultipartUpload, and ignores If-Match there and both on CopyObject.

#[tokio::test]
async fn moto_create_races_between_gateways_leave_exactly_one_winner() {
    let w = World::moto();
    let (g1, g2) = (w.gateway(Spec::alice()), w.gateway(Spec::alice()));
    g1.mb("cw-moto-race").await;
    for round in 0..5 {
        race(
            &[&g1, &g2],
            "cw-moto-race",
            &format!("k{round}"),
            2,
            None,
            Some("*"),
        )
        .await;
    }
    let e0 = g1.put("cw-moto-race", "cas", b"v0").await;
    race(
        &[&g1, &g2],
        "cw-moto-race",
        "cas",
        2,
        Some(&quoted(&e0)),
        None,
    )
    .await;
}

#[tokio::test]
async fn moto_swaps_on_the_plaintext_etag_and_refuses_a_stale_one() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = "cw-moto-swap";
    gw.mb(b).await;
    let (v1, v2) = (data(1000, 1), data(1000, 2));
    let e1 = gw.put(b, "k", &v1).await;
    put_if(&gw, b, "k", &v2, Some(&quoted(&e1)), None)
        .await
        .unwrap();
    assert_412(
        put_if(&gw, b, "k", &v1, Some(&quoted(&e1)), None).await,
        "a stale ETag",
    );
    assert!(gw.get_ok(b, "k").await == v2);
    let e = put_if(&gw, b, "missing", &v1, Some(&quoted(&e1)), None)
        .await
        .unwrap_err();
    assert_refused(&e, 404, "NoSuchKey", "If-Match on a missing key");
}

#[tokio::test]
async fn moto_completions_if_none_match_is_enforced_and_if_match_refused() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = "cw-moto-complete";
    gw.mb(b).await;
    let (va, vb) = (data(1000, 1), data(2000, 2));
    let a = one_part_upload(&gw, b, "k", &va).await;
    let ea = complete_if(&gw, b, "k", &a, None, Some("*")).await.unwrap();
    let up = one_part_upload(&gw, b, "k", &vb).await;
    assert_412(
        complete_if(&gw, b, "k", &up, None, Some("*")).await,
        "a completion over an object",
    );
    assert!(gw.get_ok(b, "k").await == va);
    assert_not_enforced(
        complete_if(&gw, b, "k", &up, Some(&quoted(&ea)), None).await,
        "CompleteMultipartUpload",
        "If-Match",
        "a swap by completion",
    );
    assert_not_enforced(
        copy_if(&gw, b, "k", "k2", None, Some("*")).await,
        "CopyObject",
        "If-None-Match",
        "a copy",
    );
    assert!(gw.get_ok(b, "k").await == va, "nothing was overwritten");
    // Unconditionally, the upload completes (it was left as it was).
    crate::multipart::complete(&gw, b, "k", &up.0, &[(1, up.1.as_str())])
        .await
        .unwrap();
    assert!(gw.get_ok(b, "k").await == vb);
    assert!(!w
        .raw_keys(b)
        .await
        .iter()
        .any(|k| k.starts_with(PROBE_PREFIX)));
}

// ---------------------------------------------------------------------------
// Over Garage 2.5: it accepts the headers and overwrites anyway.

#[tokio::test]
async fn garage_is_found_not_to_enforce_conditions_and_nothing_is_overwritten() {
    let (w, liar) = World::garage().lying();
    let gw = w.gateway(Spec::alice());
    let b = "cw-garage";
    gw.mb(b).await;
    let v1 = data(1000, 1);
    let e1 = gw.put(b, "k", &v1).await;
    assert_not_enforced(
        put_if(&gw, b, "k", &data(1000, 2), None, Some("*")).await,
        "PutObject",
        "If-None-Match",
        "create over an object",
    );
    let probed = liar.lies.lock().unwrap().probe_puts;
    assert!(probed > 0, "the store was probed");
    assert_not_enforced(
        put_if(&gw, b, "k", &data(1000, 3), Some(&quoted(&e1)), None).await,
        "PutObject",
        "If-Match",
        "swap",
    );
    let up = one_part_upload(&gw, b, "k", &data(1000, 4)).await;
    assert_not_enforced(
        complete_if(&gw, b, "k", &up, None, Some("*")).await,
        "CompleteMultipartUpload",
        "If-None-Match",
        "completion",
    );
    assert_not_enforced(
        copy_if(&gw, b, "k", "k2", Some(&quoted(&e1)), None).await,
        "CopyObject",
        "If-Match",
        "copy",
    );
    assert!(gw.get_ok(b, "k").await == v1, "nothing was overwritten");
    assert_eq!(liar.lies.lock().unwrap().probe_puts, probed, "one probe");
    assert!(!w
        .raw_keys(b)
        .await
        .iter()
        .any(|k| k.starts_with(PROBE_PREFIX)));
    let left = w.store.list_uploads(b, Some(PROBE_PREFIX)).await.unwrap();
    assert!(left.is_empty(), "probe uploads left: {}", left.len());
}

#[tokio::test]
async fn gc_removes_what_a_probe_cut_short_left() {
    // A gateway stopped mid-probe leaves its scratch key and uploads.
    let (w, gw) = World::with_bucket("leftovers").await;
    let b = "leftovers";
    gw.put(b, "k", &data(100, 1)).await;
    let key = format!("{PROBE_PREFIX}cut-short");
    w.raw_put(b, &key, b"probe".to_vec(), &Default::default())
        .await;
    let id = w
        .store
        .create_multipart(b, &key, &Default::default())
        .await
        .unwrap();
    let cmd = w.command_gateway(Spec::alice());
    let opts = |apply, min_age| sealgate::gateway::gc::GcOptions {
        apply,
        min_age: std::time::Duration::from_secs(min_age),
        concurrency: 4,
    };
    let young = sealgate::gateway::gc::gc(&cmd, b, &opts(true, 3600))
        .await
        .unwrap();
    assert!(young.probe_leftovers.is_empty() && young.probe_uploads.is_empty());
    assert_eq!(young.deleted, 0, "too young to go");
    assert!(w.raw_keys(b).await.contains(&key));
    let r = sealgate::gateway::gc::gc(&cmd, b, &opts(true, 0))
        .await
        .unwrap();
    assert_eq!(r.probe_leftovers.len(), 1);
    assert_eq!(r.probe_uploads, [(key.clone(), id)]);
    assert!(!w.raw_keys(b).await.contains(&key));
    assert!(w.store.list_uploads(b, None).await.unwrap().is_empty());
    assert_eq!(
        gw.get_ok(b, "k").await,
        data(100, 1),
        "objects are not touched"
    );
}
