//! The persistent listing index: after a restart, a listing of objects the
//! gateway has seen costs no tail read and no unwrap per object, and still
//! shows exact plaintext sizes and ETags; the index is keyed by the store's
//! ETag, so a changed object is resolved afresh.

use std::sync::atomic::Ordering;

use crate::harness::*;

async fn listed(gw: &Gw, b: &str) -> Vec<(String, String, i64)> {
    let r = gw.client.list_objects_v2().bucket(b).send().await.unwrap();
    r.contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap().to_owned(),
                unquote(o.e_tag().unwrap()),
                o.size().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_restarted_gateway_lists_from_its_index_without_reading_objects() {
    let (w, liar) = World::new().lying();
    let state = tempfile::tempdir().unwrap();
    let spec = || Spec {
        state_dir: Some(state.path().to_owned()),
        ..Spec::alice()
    };
    let b = "indexed";
    let mut want = Vec::new();
    {
        let gw = w.gateway(spec());
        gw.mb(b).await;
        for i in 0..20 {
            let d = data(1000 + i * 7, i as u64);
            gw.put(b, &format!("k{i:02}"), &d).await;
            want.push((format!("k{i:02}"), md5_hex(&d), d.len() as i64));
        }
        // The writer task flushes in batches.
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    }
    // The old gateway's index writer lets go of the file.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = liar.tail_reads.load(Ordering::Relaxed);
    let restarted = w.gateway(spec());
    assert_eq!(listed(&restarted, b).await, want);
    assert_eq!(
        liar.tail_reads.load(Ordering::Relaxed),
        before,
        "a restarted gateway read objects to list them"
    );
    // Without the index, each object costs a tail read.
    let cold = w.gateway(Spec::alice());
    assert_eq!(listed(&cold, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before + 20);
    // An object changed at the store (a new store ETag) is resolved afresh.
    let d = data(5, 99);
    cold.put(b, "k03", &d).await;
    let after = liar.tail_reads.load(Ordering::Relaxed);
    let got = listed(&restarted, b).await;
    assert_eq!(got[3], ("k03".into(), md5_hex(&d), 5));
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), after + 1);
}

/// The listing index segments at the store, oldest first.
async fn segments(w: &World, b: &str) -> Vec<String> {
    let mut k: Vec<String> = w
        .raw_keys(b)
        .await
        .into_iter()
        .filter(|k| k.starts_with(".sealgate/ix/"))
        .collect();
    k.sort();
    k
}

async fn fill(gw: &Gw, b: &str, from: usize, n: usize) -> Vec<(String, String, i64)> {
    let mut want = Vec::new();
    for i in from..from + n {
        let d = data(500 + i * 13, 1000 + i as u64);
        gw.put(b, &format!("o{i:03}"), &d).await;
        want.push((format!("o{i:03}"), md5_hex(&d), d.len() as i64));
    }
    want
}

#[tokio::test]
async fn a_new_instance_lists_from_the_index_at_the_store_without_reading_objects() {
    let (w, liar) = World::new().lying();
    let b = "shared-index";
    let first = w.gateway(Spec::alice());
    first.mb(b).await;
    let mut want = fill(&first, b, 0, 25).await;
    first.flush_store_index().await;
    let segs = segments(&w, b).await;
    assert_eq!(segs.len(), 1, "one segment per bucket and flush");
    // The segment is sealed: no key, no plaintext ETag in clear.
    let (_, raw) = w.raw_get(b, &segs[0]).await;
    assert!(!raw.windows(4).any(|x| x == b"o000"));
    let etag16 = &want[0].1.as_bytes()[..16];
    assert!(!raw.windows(16).any(|x| x == etag16));

    // A new instance (no state directory): no object read to list them, and
    // the segment is not shown.
    let before = liar.tail_reads.load(Ordering::Relaxed);
    let fresh = w.gateway(Spec::alice());
    assert_eq!(listed(&fresh, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before);

    // What a listing had to resolve (objects written by a gateway that
    // keeps no index at the store) is written too, for the next instance.
    let quiet = w.gateway_edit(Spec::alice(), |c| c.gateway.store_index_secs = 0);
    want.extend(fill(&quiet, b, 25, 5).await);
    let learner = w.gateway(Spec::alice());
    assert_eq!(listed(&learner, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before + 5);
    learner.flush_store_index().await;
    let third = w.gateway(Spec::alice());
    assert_eq!(listed(&third, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before + 5);

    // A gateway with another secret cannot read the index: it resolves.
    let other = w.gateway_edit(Spec::alice(), |c| {
        c.gateway.secret = Some("another-gateway-secret-0123456789abcdef".into())
    });
    assert_eq!(listed(&other, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before + 5 + 30);
}

#[tokio::test]
async fn a_store_that_alters_moves_or_replays_segments_never_changes_a_listing() {
    let (w, liar) = World::new().lying();
    let (b, elsewhere) = ("ix-victim", "ix-elsewhere");
    let gw = w.gateway(Spec::alice());
    gw.mb(b).await;
    gw.mb(elsewhere).await;
    let want = fill(&gw, b, 0, 10).await;
    // The same keys with other contents in another bucket, indexed there.
    let mut other = Vec::new();
    for i in 0..10 {
        let d = data(77 + i, 5000 + i as u64);
        gw.put(elsewhere, &format!("o{i:03}"), &d).await;
        other.push(md5_hex(&d));
    }
    gw.flush_store_index().await;
    let seg = segments(&w, b).await.pop().unwrap();
    let foreign = segments(&w, elsewhere).await.pop().unwrap();
    let (_, good) = w.raw_get(b, &seg).await;
    let (_, bad) = w.raw_get(elsewhere, &foreign).await;
    let none = sealgate::store::ObjectHeaders::default();
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        // The other bucket's segment under this bucket's name for it.
        ("moved from another bucket", seg.clone(), bad.clone()),
        // This bucket's segment under another segment name.
        (
            "renamed",
            ".sealgate/ix/0009999999999999-00000000000000ff".into(),
            good.clone(),
        ),
        ("one byte changed", seg.clone(), {
            let mut t = good.clone();
            let n = t.len();
            t[n / 2] ^= 0x20;
            t
        }),
        ("cut short", seg.clone(), good[..good.len() - 1].to_vec()),
    ];
    for (what, name, body) in cases {
        // Only the planted segment is there to read.
        for s in segments(&w, b).await {
            w.store.delete(b, &s).await.unwrap();
        }
        w.raw_put(b, &name, body, &none).await;
        let before = liar.tail_reads.load(Ordering::Relaxed);
        let fresh = w.gateway(Spec::alice());
        assert_eq!(listed(&fresh, b).await, want, "{what}");
        assert_eq!(
            liar.tail_reads.load(Ordering::Relaxed),
            before + 10,
            "{what}: the segment was used"
        );
    }
    // Replayed into place, the genuine segment is used again; the other
    // bucket's listing still shows its own objects.
    for s in segments(&w, b).await {
        w.store.delete(b, &s).await.unwrap();
    }
    w.raw_put(b, &seg, good, &none).await;
    let before = liar.tail_reads.load(Ordering::Relaxed);
    let fresh = w.gateway(Spec::alice());
    assert_eq!(listed(&fresh, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before);
    let got: Vec<String> = listed(&fresh, elsewhere)
        .await
        .into_iter()
        .map(|(_, e, _)| e)
        .collect();
    assert_eq!(got, other);
}

#[tokio::test]
async fn many_segments_are_merged_by_the_next_reader_and_a_bucket_of_segments_deletes() {
    let (w, liar) = World::new().lying();
    let b = "ix-many";
    let gw = w.gateway(Spec::alice());
    gw.mb(b).await;
    let mut want = Vec::new();
    for round in 0..20 {
        want.extend(fill(&gw, b, round * 2, 2).await);
        gw.flush_store_index().await;
    }
    assert_eq!(segments(&w, b).await.len(), 20);
    let before = liar.tail_reads.load(Ordering::Relaxed);
    let fresh = w.gateway(Spec::alice());
    assert_eq!(listed(&fresh, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before);
    let merged = segments(&w, b).await;
    assert_eq!(merged.len(), 1, "the reader merged the 20 it read");
    let again = w.gateway(Spec::alice());
    assert_eq!(listed(&again, b).await, want);
    assert_eq!(liar.tail_reads.load(Ordering::Relaxed), before);

    // Every object deleted, then its entries written: the bucket holds only
    // sealgate's segments, and DeleteBucket removes them.
    for (k, _, _) in &want {
        gw.client
            .delete_object()
            .bucket(b)
            .key(k)
            .send()
            .await
            .unwrap();
    }
    gw.put(b, "last", b"x").await;
    gw.client
        .delete_object()
        .bucket(b)
        .key("last")
        .send()
        .await
        .unwrap();
    gw.flush_store_index().await;
    assert!(!segments(&w, b).await.is_empty());
    assert!(listed(&gw, b).await.is_empty());
    gw.client.delete_bucket().bucket(b).send().await.unwrap();
    assert!(w.store.head_bucket(b).await.is_err());
}

/// A fleet whose instances only ever list what they wrote never reads the
/// segments, so writers merge them: two gateways that each flush after
/// every write leave fewer segments than they wrote, and a new instance
/// still lists every object from them.
#[tokio::test]
async fn writers_merge_segments_that_no_reader_ever_reads() {
    let (w, liar) = World::new().lying();
    let b = "ix-fleet";
    let (one, two) = (w.gateway(Spec::alice()), w.gateway(Spec::alice()));
    one.mb(b).await;
    let mut want = Vec::new();
    let tidy_at = sealgate::gateway::store_index::TIDY_AT;
    let mut counts = Vec::new();
    for round in 0..2 * tidy_at {
        let gw = if round % 2 == 0 { &one } else { &two };
        want.extend(fill(gw, b, round, 1).await);
        gw.flush_store_index().await;
        counts.push(segments(&w, b).await.len());
    }
    // One segment per write up to the bound, then one merge to a single
    // segment, then one per write again.
    let expected: Vec<usize> = (1..=tidy_at).chain(1..=tidy_at).collect();
    assert_eq!(counts, expected);
    let before = liar.tail_reads.load(Ordering::Relaxed);
    let fresh = w.gateway(Spec::alice());
    assert_eq!(listed(&fresh, b).await, want);
    assert_eq!(
        liar.tail_reads.load(Ordering::Relaxed),
        before,
        "every entry survived the merges"
    );
}

#[tokio::test]
async fn on_a_versioned_bucket_merged_segments_leave_versions_that_gc_removes() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = &unique_bucket("ix-ver");
    gw.mb(b).await;
    crate::versioning::enable(&gw, b).await;
    let mut want = Vec::new();
    for round in 0..18 {
        want.extend(fill(&gw, b, round, 1).await);
        gw.flush_store_index().await;
    }
    let fresh = w.gateway(Spec::alice());
    assert_eq!(listed(&fresh, b).await, want);
    assert_eq!(segments(&w, b).await.len(), 1, "merged");
    let versions = |w: &World| {
        let (store, b) = (w.store.clone(), b.clone());
        async move {
            store
                .list_versions(
                    &b,
                    &sealgate::store::versions::ListVersionsRequest {
                        prefix: Some(".sealgate/ix/".into()),
                        max_keys: 1000,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .entries
        }
    };
    assert!(
        versions(&w).await.len() > 18,
        "the merged ones stay as versions"
    );
    let r = w.gc_now(b).await;
    assert!(r.unknown.is_empty(), "{:?}", r.unknown);
    assert!(r.old_versions >= 18, "{}", r.old_versions);
    let left = versions(&w).await;
    assert_eq!(left.len(), 1, "only the current segment: {left:?}");
    assert!(!left[0].delete_marker);
    let again = w.gateway(Spec::alice());
    assert_eq!(listed(&again, b).await, want);
}

#[tokio::test]
async fn no_segment_is_written_to_a_bucket_with_object_lock() {
    use sealgate::gateway::object::ListInfo;
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let (locked, plain) = (&unique_bucket("ix-lock"), &unique_bucket("ix-nolock"));
    gw.client
        .create_bucket()
        .bucket(locked)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    gw.mb(plain).await;
    // A gateway that has not asked about either bucket yet (its lock cache
    // is empty): the check is made when the segment is written.
    let si = w
        .command_gateway(Spec::alice())
        .store_index()
        .expect("a store-side index");
    let info = ListInfo {
        etag: "0123456789abcdef0123456789abcdef".into(),
        size: 7,
    };
    for b in [locked, plain] {
        si.queue(b, "k", "store-etag", &info);
    }
    si.flush().await;
    assert!(segments(&w, locked).await.is_empty());
    assert_eq!(segments(&w, plain).await.len(), 1);
}
