//! Read-back keys (docs/BACKUPS.md): a host whose policy names
//! `readback:7d` beside the offline key reads back what it wrote in the
//! current window and the previous one, never older objects (even those it
//! read a moment ago, still in its caches), never another host's; the
//! offline key reads everything. The clock is the test's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sealgate::readback::{Clock, Readback};

use crate::harness::*;

const DAY: u64 = 86_400;

fn host_spec() -> Spec {
    Spec {
        identities: vec!["carol"],
        recipients: vec!["bob"],
        policies: vec![("*", "", vec!["bob", "readback:7d"])],
        users: vec![alice_user()],
        sharing: None,
        groups: vec![],
        state_dir: None,
    }
}

fn denied(r: Result<Vec<u8>, Refusal>, what: &str) {
    match r {
        Err(Refusal::Response(e)) => {
            assert_refused(&e, 403, "AccessDenied", what);
            assert!(e.message.contains(key_id("bob")), "{what}: {}", e.message);
        }
        other => panic!(
            "{what}: expected AccessDenied, got {:?}",
            other.map(|d| d.len())
        ),
    }
}

#[tokio::test]
async fn an_object_is_readable_in_its_window_and_the_next_and_never_after() {
    let w = World::new();
    let t = Arc::new(AtomicU64::new(3000 * 7 * DAY + 123));
    let clock: Clock = {
        let t = t.clone();
        Arc::new(move || t.load(Ordering::SeqCst))
    };
    let root = [42u8; 32];
    let keys1 = tempfile::tempdir().unwrap();
    let keys2 = tempfile::tempdir().unwrap();
    let rb = |dir: &std::path::Path| Arc::new(Readback::open(dir, &root, clock.clone()).unwrap());
    let host1 = w.gateway_with_readback(host_spec(), rb(keys1.path()));
    let host2 = w.gateway_with_readback(host_spec(), rb(keys2.path()));
    let restore = w.gateway(Spec::person("bob"));
    let b = unique_bucket("readback");
    host1.mb(&b).await;

    // Window N: written and read back by its host, not by another host.
    let d1 = data(200_000, 1);
    host1.put(&b, "n/obj", &d1).await;
    assert_eq!(host1.get_ok(&b, "n/obj").await, d1);
    denied(host2.get(&b, "n/obj").await, "another host, window N");
    // A restart of the host (its keys from disk, sealed) still reads it.
    let host1 = w.gateway_with_readback(host_spec(), rb(keys1.path()));
    assert_eq!(host1.get_ok(&b, "n/obj").await, d1);

    // Window N+1: still readable; a new object gets the new window's key.
    t.fetch_add(7 * DAY, Ordering::SeqCst);
    assert_eq!(host1.get_ok(&b, "n/obj").await, d1);
    let d2 = data(70_000, 2);
    host1.put(&b, "n1/obj", &d2).await;
    assert_eq!(host1.get_ok(&b, "n1/obj").await, d2);

    // Window N+2: the object of window N is closed to its host, although
    // the host read it a moment ago (its caches hold that view); the one of
    // window N+1 is still open.
    t.fetch_add(7 * DAY, Ordering::SeqCst);
    denied(host1.get(&b, "n/obj").await, "window N+2");
    let head = host1
        .client
        .head_object()
        .bucket(&b)
        .key("n/obj")
        .send()
        .await;
    assert!(head.is_err(), "HEAD in window N+2");
    assert_eq!(host1.get_ok(&b, "n1/obj").await, d2);
    // A restart does not bring it back: the key's file is gone.
    let host1 = w.gateway_with_readback(host_spec(), rb(keys1.path()));
    denied(host1.get(&b, "n/obj").await, "window N+2 after a restart");
    assert_eq!(
        std::fs::read_dir(keys1.path()).unwrap().count(),
        1,
        "only window N+1's key is left on disk"
    );

    // Window N+3: nothing the host wrote is readable to it; the offline key
    // reads everything.
    t.fetch_add(7 * DAY, Ordering::SeqCst);
    denied(host1.get(&b, "n1/obj").await, "window N+3");
    assert_eq!(restore.get_ok(&b, "n/obj").await, d1);
    assert_eq!(restore.get_ok(&b, "n1/obj").await, d2);
}
