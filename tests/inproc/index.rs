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
