//! Object Lock through sealgate: passed to the store, which enforces it.
//! Over moto (which implements Object Lock): buckets with Object Lock and a
//! default retention, COMPLIANCE and GOVERNANCE retention on single-part and
//! multipart objects (the manifest, read straight from the store, carries
//! the object's lock), deletion of a locked version refused by the store,
//! legal holds, retention read back, `sealgate rewrap` of locked objects.
//! Over the embedded store and Garage (neither can lock): every request for
//! a lock refused, nothing written unlocked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ObjectLockRule,
};
use aws_sdk_s3::Client;
use sealgate::store::lock::{LockMode, ObjectLock};

use crate::harness::*;
use crate::multipart::{complete, part};

/// A date `days` from now, to the second (stores keep seconds).
fn days_from_now(days: u64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(now + days * 86_400)
}

/// A client straight to the world's store (moto), as its operator (or a
/// thief with the store's keys) would use it.
fn store_client() -> Client {
    let s = crate::common::moto();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            &s.access_key,
            &s.secret_key,
            None,
            None,
            "test",
        ))
        .region(Region::new("us-east-1"))
        .endpoint_url(&s.endpoint)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

async fn locked_bucket(gw: &Gw, tag: &str) -> String {
    let b = unique_bucket(tag);
    gw.client
        .create_bucket()
        .bucket(&b)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    b
}

async fn put_locked(
    gw: &Gw,
    b: &str,
    k: &str,
    d: &[u8],
    mode: ObjectLockMode,
    until: SystemTime,
) -> Result<String, S3Err> {
    gw.client
        .put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(d.to_vec()))
        .object_lock_mode(mode)
        .object_lock_retain_until_date(DateTime::from(until))
        .send()
        .await
        .map(|r| unquote(r.e_tag().unwrap()))
        .map_err(S3Err::from)
}

/// A one-part multipart object, its upload asking for `lock` (mode, date);
/// the answer of its completion.
async fn multipart_locked(
    gw: &Gw,
    b: &str,
    k: &str,
    d: &[u8],
    lock: Option<(ObjectLockMode, SystemTime)>,
) -> Result<String, S3Err> {
    let id = gw
        .client
        .create_multipart_upload()
        .bucket(b)
        .key(k)
        .set_object_lock_mode(lock.as_ref().map(|l| l.0.clone()))
        .set_object_lock_retain_until_date(lock.map(|l| DateTime::from(l.1)))
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let e = part(gw, b, k, &id, 1, d).await;
    complete(gw, b, k, &id, &[(1, &e)]).await
}

/// PutObjectRetention through the gateway.
async fn retain(gw: &Gw, b: &str, k: &str, mode: ObjectLockRetentionMode, until: SystemTime) {
    gw.client
        .put_object_retention()
        .bucket(b)
        .key(k)
        .retention(
            ObjectLockRetention::builder()
                .mode(mode)
                .retain_until_date(DateTime::from(until))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Gives `b` a default retention (GOVERNANCE, one day), through the
/// gateway.
pub async fn default_retention(gw: &Gw, b: &str) {
    gw.client
        .put_object_lock_configuration()
        .bucket(b)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The store's manifest keys in `b`.
async fn manifests(w: &World, b: &str) -> Vec<String> {
    w.raw_keys(b)
        .await
        .into_iter()
        .filter(|k| k.starts_with(".sealgate/mp/"))
        .collect()
}

/// The lock the store reports on `key` (read straight from the store).
async fn store_lock(w: &World, b: &str, key: &str) -> ObjectLock {
    w.store
        .head(b, key)
        .await
        .unwrap()
        .headers
        .lock
        .unwrap_or_default()
}

/// The store's version ids of `key`, newest first.
async fn versions(b: &str, key: &str) -> Vec<String> {
    let out = store_client()
        .list_object_versions()
        .bucket(b)
        .prefix(key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .map(|v| v.version_id().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_bucket_with_object_lock_is_made_and_reported() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-mb").await;
    let c = gw
        .client
        .get_object_lock_configuration()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    let c = c.object_lock_configuration().unwrap();
    assert_eq!(c.object_lock_enabled(), Some(&ObjectLockEnabled::Enabled));
    // A plain bucket has no configuration, as the store says.
    let plain = unique_bucket("lock-plain");
    gw.mb(&plain).await;
    let e = must_fail(
        gw.client
            .get_object_lock_configuration()
            .bucket(&plain)
            .send()
            .await,
        "GetObjectLockConfiguration of a plain bucket",
    );
    assert_refused(
        &e,
        404,
        "ObjectLockConfigurationNotFoundError",
        "a bucket without Object Lock",
    );
    // A lock asked for in a bucket without Object Lock: refused, nothing
    // written.
    let e = put_locked(
        &gw,
        &plain,
        "k",
        b"x",
        ObjectLockMode::Governance,
        days_from_now(1),
    )
    .await
    .unwrap_err();
    assert_refused(&e, 400, "InvalidRequest", "a lock in a plain bucket");
    assert!(w.raw_keys(&plain).await.is_empty());
}

#[tokio::test]
async fn compliance_and_governance_retention_are_kept_and_enforced() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-ret").await;
    let until = days_from_now(1);
    let d = data(70_000, 1);
    for (k, mode) in [
        ("compliance", ObjectLockMode::Compliance),
        ("governance", ObjectLockMode::Governance),
    ] {
        put_locked(&gw, &b, k, &d, mode.clone(), until)
            .await
            .unwrap();
        let h = gw
            .client
            .head_object()
            .bucket(&b)
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(h.object_lock_mode(), Some(&mode), "{k}: HEAD");
        assert_eq!(
            h.object_lock_retain_until_date().map(|t| t.secs()),
            Some(DateTime::from(until).secs()),
            "{k}: HEAD"
        );
        let g = gw
            .client
            .get_object()
            .bucket(&b)
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(g.object_lock_mode(), Some(&mode), "{k}: GET");
        assert_eq!(collect(g.body).await.unwrap(), d, "{k}: content");
        // The store refuses to delete the locked version.
        let v = versions(&b, k).await;
        assert_eq!(v.len(), 1, "{k}");
        let e = store_client()
            .delete_object()
            .bucket(&b)
            .key(k)
            .version_id(&v[0])
            .send()
            .await
            .map_err(S3Err::from)
            .unwrap_err();
        assert_eq!(e.status, 403, "{k}: deleting the locked version: {e}");
        assert_eq!(gw.get_ok(&b, k).await, d, "{k}: still there");
    }
    // GOVERNANCE may be shortened with the bypass, through sealgate.
    let shorter = days_from_now(0) + Duration::from_secs(3600);
    gw.client
        .put_object_retention()
        .bucket(&b)
        .key("governance")
        .bypass_governance_retention(true)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .retain_until_date(DateTime::from(shorter))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let l = store_lock(&w, &b, "governance").await;
    assert_eq!(l.retain_until, Some(shorter));
    assert_eq!(l.mode, Some(LockMode::Governance));
}

#[tokio::test]
async fn a_locked_multipart_objects_manifest_carries_its_retention() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-mp").await;
    let until = days_from_now(2);
    let d = data(100_000, 2);
    // moto accepts the lock headers of CreateMultipartUpload and completes
    // the object without a lock: the client is told, not left believing
    // its object is locked.
    let e = multipart_locked(
        &gw,
        &b,
        "big",
        &d,
        Some((ObjectLockMode::Compliance, until)),
    )
    .await
    .unwrap_err();
    assert_refused(&e, 501, "NotImplemented", "a multipart lock moto drops");
    assert!(e.message.contains("NOT locked"), "{e}");
    assert_eq!(store_lock(&w, &b, "big").await, ObjectLock::default());
    assert_eq!(gw.get_ok(&b, "big").await, d);
    let want = ObjectLock {
        mode: Some(LockMode::Compliance),
        retain_until: Some(until),
        legal_hold: None,
    };
    // The manifest got the lock the upload asked for (from the upload id).
    let ms = manifests(&w, &b).await;
    assert_eq!(ms.len(), 1, "{ms:?}");
    let m = store_lock(&w, &b, &ms[0]).await;
    assert_eq!((m.mode, m.retain_until), (want.mode, want.retain_until));
    // A retention set on the object through sealgate locks both.
    let until = days_from_now(3);
    let want = ObjectLock {
        retain_until: Some(until),
        ..want
    };
    retain(&gw, &b, "big", ObjectLockRetentionMode::Compliance, until).await;
    let obj = store_lock(&w, &b, "big").await;
    assert_eq!((obj.mode, obj.retain_until), (want.mode, want.retain_until));
    let ms = manifests(&w, &b).await;
    assert_eq!(ms.len(), 1, "{ms:?}");
    let m = store_lock(&w, &b, &ms[0]).await;
    assert_eq!(
        (m.mode, m.retain_until),
        (want.mode, want.retain_until),
        "the manifest is as locked as its object"
    );
    // And the store refuses to delete the manifest's version.
    let v = versions(&b, &ms[0]).await;
    let e = store_client()
        .delete_object()
        .bucket(&b)
        .key(&ms[0])
        .version_id(&v[0])
        .send()
        .await
        .map_err(S3Err::from)
        .unwrap_err();
    assert_eq!(e.status, 403, "deleting the locked manifest: {e}");
    // Deleting the object through sealgate (a delete marker, as S3 makes
    // on a versioned bucket) leaves the locked manifest in place.
    gw.client
        .delete_object()
        .bucket(&b)
        .key("big")
        .send()
        .await
        .unwrap();
    let h = store_client()
        .head_object()
        .bucket(&b)
        .key(&ms[0])
        .send()
        .await;
    assert!(h.is_ok(), "the locked manifest is still the latest version");
}

#[tokio::test]
async fn default_retention_reaches_objects_and_manifests() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-def").await;
    default_retention(&gw, &b).await;
    let c = gw
        .client
        .get_object_lock_configuration()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    let rule = c
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .unwrap();
    assert_eq!(rule.days(), Some(1));
    // Writes asking for nothing get the default (and carry the checksum the
    // store asks of writes to such a bucket).
    let d = data(1000, 3);
    gw.put(&b, "plain", &d).await;
    assert_eq!(
        store_lock(&w, &b, "plain").await.mode,
        Some(LockMode::Governance)
    );
    // A conditional write there works too (the probe of what the store
    // enforces writes with the checksum as well).
    let create = |k: &'static str| {
        gw.client
            .put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from_static(b"only once"))
            .if_none_match("*")
            .send()
    };
    create("once").await.unwrap();
    let e = create("once").await.map_err(S3Err::from).unwrap_err();
    assert_refused(&e, 412, "PreconditionFailed", "a second create");
    // (moto gives a multipart object no default retention; AWS does.)
    multipart_locked(&gw, &b, "mp", &d, None).await.unwrap();
    assert_eq!(gw.get_ok(&b, "mp").await, d);
    let ms = manifests(&w, &b).await;
    assert_eq!(ms.len(), 1);
    let m = store_lock(&w, &b, &ms[0]).await;
    assert_eq!(m.mode, Some(LockMode::Governance), "the manifest's default");
    assert!(m.retain_until.unwrap() > days_from_now(0));
}

#[tokio::test]
async fn legal_hold_and_later_retention_reach_the_manifest() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-hold").await;
    let d = data(5000, 4);
    gw.put(&b, "single", &d).await;
    multipart_locked(&gw, &b, "mp", &d, None).await.unwrap();
    let m = manifests(&w, &b).await.remove(0);
    for on in [true, false] {
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        for k in ["single", "mp"] {
            gw.client
                .put_object_legal_hold()
                .bucket(&b)
                .key(k)
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(status.clone())
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let got = gw
                .client
                .get_object_legal_hold()
                .bucket(&b)
                .key(k)
                .send()
                .await
                .unwrap();
            assert_eq!(
                got.legal_hold().and_then(|h| h.status()),
                Some(&status),
                "{k}"
            );
            let h = gw
                .client
                .head_object()
                .bucket(&b)
                .key(k)
                .send()
                .await
                .unwrap();
            assert_eq!(h.object_lock_legal_hold_status(), Some(&status), "{k}");
        }
        assert_eq!(
            store_lock(&w, &b, &m).await.legal_hold,
            Some(on),
            "the manifest's legal hold follows its object's"
        );
    }
    // A retention set later reaches the manifest too, and reads back (as
    // HEAD reports it: moto has no GetObjectRetention).
    let until = days_from_now(3);
    retain(&gw, &b, "mp", ObjectLockRetentionMode::Compliance, until).await;
    let h = gw
        .client
        .head_object()
        .bucket(&b)
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        h.object_lock_retain_until_date().map(|t| t.secs()),
        Some(DateTime::from(until).secs())
    );
    let ml = store_lock(&w, &b, &m).await;
    assert_eq!(
        (ml.mode, ml.retain_until),
        (Some(LockMode::Compliance), Some(until))
    );
}

#[tokio::test]
async fn rewrap_of_a_locked_object_keeps_its_lock_and_its_old_version() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-rewrap").await;
    let until = days_from_now(1);
    let d = data(80_000, 5);
    put_locked(&gw, &b, "single", &d, ObjectLockMode::Compliance, until)
        .await
        .unwrap();
    multipart_locked(&gw, &b, "mp", &d, None).await.unwrap();
    retain(&gw, &b, "mp", ObjectLockRetentionMode::Compliance, until).await;
    let old_manifest = manifests(&w, &b).await.remove(0);
    let mut spec = Spec::alice();
    spec.recipients = vec!["bob"];
    let cmd = w.command_gateway(spec);
    let s = sealgate::commands::rewrap::rewrap(&cmd, &b, "", &["bob".into()], &[], 2)
        .await
        .unwrap();
    assert!(s.failed.is_empty(), "{:?}", s.failed);
    assert_eq!(s.changed, 2);
    for k in ["single", "mp"] {
        // A new version, as locked as the old one, readable as before.
        let l = store_lock(&w, &b, k).await;
        assert_eq!(
            (l.mode, l.retain_until),
            (Some(LockMode::Compliance), Some(until)),
            "{k}: the new version's lock"
        );
        assert_eq!(gw.get_ok(&b, k).await, d, "{k}");
        let v = versions(&b, k).await;
        assert_eq!(v.len(), 2, "{k}: the old version stays");
        // Neither version can be deleted.
        for id in &v {
            let e = store_client()
                .delete_object()
                .bucket(&b)
                .key(k)
                .version_id(id)
                .send()
                .await
                .map_err(S3Err::from)
                .unwrap_err();
            assert_eq!(e.status, 403, "{k}: version {id}: {e}");
        }
    }
    // The multipart object got a new manifest, locked; the old version's
    // manifest is still there (not hidden under a delete marker).
    let ms = manifests(&w, &b).await;
    assert_eq!(ms.len(), 2, "{ms:?}");
    assert!(ms.contains(&old_manifest));
    for m in &ms {
        let l = store_lock(&w, &b, m).await;
        assert_eq!(
            (l.mode, l.retain_until),
            (Some(LockMode::Compliance), Some(until)),
            "{m}"
        );
    }
    // reencrypt (a fresh data key, content through sealgate) likewise
    // writes a new version with the lock the object has now, and leaves the
    // locked manifest of the multipart version it replaces.
    let s = sealgate::commands::reencrypt::reencrypt(&cmd, &b, "", 2)
        .await
        .unwrap();
    assert!(s.failed.is_empty(), "{:?}", s.failed);
    for k in ["single", "mp"] {
        let l = store_lock(&w, &b, k).await;
        assert_eq!(
            (l.mode, l.retain_until),
            (Some(LockMode::Compliance), Some(until)),
            "{k}: reencrypted"
        );
        assert_eq!(versions(&b, k).await.len(), 3, "{k}");
        assert_eq!(gw.get_ok(&b, k).await, d, "{k}");
    }
    assert_eq!(manifests(&w, &b).await.len(), 2, "no manifest deleted");
}

/// Over a store that cannot lock, every request for one is refused with a
/// clear answer and nothing is written unlocked.
async fn refused_without_object_lock(w: World, what: &str) {
    let gw = w.gateway(Spec::alice());
    let lb = unique_bucket("lock-none");
    let e = must_fail(
        gw.client
            .create_bucket()
            .bucket(&lb)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await,
        what,
    );
    assert_refused(&e, 501, "NotImplemented", what);
    let gone = gw.client.head_bucket().bucket(&lb).send().await;
    assert!(gone.is_err(), "{what}: no bucket without its lock is left");
    let b = unique_bucket("lock-none");
    gw.mb(&b).await;
    let e = put_locked(
        &gw,
        &b,
        "k",
        b"x",
        ObjectLockMode::Compliance,
        days_from_now(1),
    )
    .await
    .unwrap_err();
    assert_refused(&e, 501, "NotImplemented", what);
    assert!(
        gw.get(&b, "k").await.is_err(),
        "{what}: nothing was written"
    );
    let e = must_fail(
        gw.client
            .create_multipart_upload()
            .bucket(&b)
            .key("m")
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
            .send()
            .await,
        what,
    );
    assert_refused(&e, 501, "NotImplemented", what);
    gw.put(&b, "plain", b"y").await;
    let e = must_fail(
        gw.client
            .put_object_legal_hold()
            .bucket(&b)
            .key("plain")
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await,
        what,
    );
    assert_refused(&e, 501, "NotImplemented", what);
    let e = must_fail(
        gw.client
            .get_object_retention()
            .bucket(&b)
            .key("plain")
            .send()
            .await,
        what,
    );
    assert_refused(&e, 501, "NotImplemented", what);
}

#[tokio::test]
async fn the_embedded_store_refuses_object_lock() {
    refused_without_object_lock(World::new(), "the embedded store").await;
}

#[tokio::test]
async fn garage_gets_object_lock_refused() {
    refused_without_object_lock(World::garage(), "Garage").await;
}

/// Starts a one-part upload of `d` asking for `lock`; its id and the part's
/// ETag.
async fn locked_upload(
    gw: &Gw,
    b: &str,
    k: &str,
    d: &[u8],
    lock: (ObjectLockMode, SystemTime),
) -> (String, String) {
    let id = gw
        .client
        .create_multipart_upload()
        .bucket(b)
        .key(k)
        .object_lock_mode(lock.0)
        .object_lock_retain_until_date(DateTime::from(lock.1))
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let e = part(gw, b, k, &id, 1, d).await;
    (id, e)
}

/// CompleteMultipartUpload of a one-part upload: the version id answered.
async fn complete_versioned(
    gw: &Gw,
    b: &str,
    k: &str,
    id: &str,
    etag: &str,
) -> Result<Option<String>, S3Err> {
    gw.client
        .complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .multipart_upload(crate::multipart::part_list(&[(1, etag)]))
        .send()
        .await
        .map(|r| r.version_id().map(str::to_owned))
        .map_err(S3Err::from)
}

/// The lock the store reports on one version of `key`.
async fn version_lock(b: &str, key: &str, version: &str) -> (Option<String>, Option<i64>) {
    let h = store_client()
        .head_object()
        .bucket(b)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap();
    (
        h.object_lock_mode().map(|m| m.as_str().to_owned()),
        h.object_lock_retain_until_date().map(|t| t.secs()),
    )
}

#[tokio::test]
async fn a_retried_completion_of_a_locked_upload_is_verified() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-retry").await;
    let until = days_from_now(1);
    let d = data(60_000, 6);
    // moto completes the upload and drops its lock: the first Complete is
    // refused; its retry (the store has no such upload any more, the object
    // is this upload's) must not turn that into a success.
    let (id, e) = locked_upload(&gw, &b, "k", &d, (ObjectLockMode::Compliance, until)).await;
    for attempt in ["first", "retried"] {
        let err = complete_versioned(&gw, &b, "k", &id, &e).await.unwrap_err();
        assert_refused(&err, 501, "NotImplemented", attempt);
        assert!(err.message.contains("NOT locked"), "{attempt}: {err}");
    }
    assert_eq!(store_lock(&w, &b, "k").await, ObjectLock::default());
}

#[tokio::test]
async fn a_completion_whose_answer_was_lost_is_verified_on_its_version() {
    let (w, liar) = World::moto().lying();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-lost").await;
    let until = days_from_now(1);
    let d = data(60_000, 7);
    // A store that keeps the upload's lock; the completion's answer is lost
    // and another writer puts an unlocked version on top right after: the
    // gateway finds the upload completed, and checks the lock of the
    // version the upload made, not of the latest.
    let (id, e) = locked_upload(&gw, &b, "k", &d, (ObjectLockMode::Governance, until)).await;
    {
        let mut f = liar.lies.lock().unwrap();
        f.keep_multipart_locks = true;
        f.lose_complete_answer = true;
    }
    let v = complete_versioned(&gw, &b, "k", &id, &e)
        .await
        .unwrap()
        .expect("the version id of the completed upload");
    assert_eq!(
        version_lock(&b, "k", &v).await,
        (
            Some("GOVERNANCE".into()),
            Some(DateTime::from(until).secs())
        )
    );
    assert_eq!(versions(&b, "k").await, vec![v.clone()]);
    // Its retry (the store has no such upload now) answers the same, lock
    // verified again, version id included.
    let again = complete_versioned(&gw, &b, "k", &id, &e).await.unwrap();
    assert_eq!(again.as_deref(), Some(v.as_str()));
    // The same store dropping the lock: the lost answer is no success.
    liar.lies.lock().unwrap().keep_multipart_locks = false;
    let (id, e) = locked_upload(&gw, &b, "dropped", &d, (ObjectLockMode::Governance, until)).await;
    liar.lies.lock().unwrap().lose_complete_answer = true;
    let err = complete_versioned(&gw, &b, "dropped", &id, &e)
        .await
        .unwrap_err();
    assert_refused(&err, 501, "NotImplemented", "a lost answer, lock dropped");
}

#[tokio::test]
async fn the_lock_checked_is_the_written_versions() {
    let (w, liar) = World::moto().lying();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-ver").await;
    let until = days_from_now(1);
    let want = (
        Some("COMPLIANCE".to_owned()),
        Some(DateTime::from(until).secs()),
    );
    let d = data(3000, 8);
    // Another writer puts an unlocked version right after each locked
    // write: the check reads the version the write made, so the write is
    // neither refused for the other's nor passed on its word.
    liar.lies.lock().unwrap().overwrite_after = Some("single".into());
    let v = gw
        .client
        .put_object()
        .bucket(&b)
        .key("single")
        .body(ByteStream::from(d.clone()))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(DateTime::from(until))
        .send()
        .await
        .map_err(S3Err::from)
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    assert_eq!(version_lock(&b, "single", &v).await, want);
    let vs = versions(&b, "single").await;
    assert_eq!(vs.len(), 2, "{vs:?}");
    assert_eq!(vs[1], v, "the other writer's version is the latest");
    assert_eq!(store_lock(&w, &b, "single").await.mode, None);
    // A copy likewise.
    gw.put(&b, "src", &d).await;
    liar.lies.lock().unwrap().overwrite_after = Some("copy".into());
    let v = gw
        .client
        .copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/src"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(DateTime::from(until))
        .send()
        .await
        .map_err(S3Err::from)
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    assert_eq!(version_lock(&b, "copy", &v).await, want);
    assert_eq!(store_lock(&w, &b, "copy").await.mode, None);
    // And a completion (the store keeping the upload's lock).
    liar.lies.lock().unwrap().keep_multipart_locks = true;
    let (id, e) = locked_upload(&gw, &b, "mp", &d, (ObjectLockMode::Compliance, until)).await;
    liar.lies.lock().unwrap().overwrite_after = Some("mp".into());
    let v = complete_versioned(&gw, &b, "mp", &id, &e)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(version_lock(&b, "mp", &v).await, want);
    assert_eq!(store_lock(&w, &b, "mp").await.mode, None);
}

#[tokio::test]
async fn a_whitespace_only_keys_lock_round_trips() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-blank").await;
    let d = data(2000, 9);
    // (The test client sends such keys as sealgate's store client does.)
    for k in [" ", "\t \t"] {
        keyed!(
            gw.client
                .put_object()
                .bucket(&b)
                .body(ByteStream::from(d.clone()))
                .object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(DateTime::from(days_from_now(1))),
            k
        )
        .send()
        .await
        .map_err(S3Err::from)
        .unwrap_or_else(|e| panic!("{k:?}: {e}"));
        let until = days_from_now(2);
        keyed!(
            gw.client.put_object_retention().bucket(&b).retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Governance)
                    .retain_until_date(DateTime::from(until))
                    .build(),
            ),
            k
        )
        .send()
        .await
        .map_err(S3Err::from)
        .unwrap_or_else(|e| panic!("{k:?}: {e}"));
        let h = keyed!(gw.client.head_object().bucket(&b), k)
            .send()
            .await
            .unwrap();
        assert_eq!(
            h.object_lock_retain_until_date().map(|t| t.secs()),
            Some(DateTime::from(until).secs()),
            "{k:?}"
        );
        assert_eq!(store_lock(&w, &b, k).await.retain_until, Some(until));
        for status in [
            ObjectLockLegalHoldStatus::On,
            ObjectLockLegalHoldStatus::Off,
        ] {
            keyed!(
                gw.client.put_object_legal_hold().bucket(&b).legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(status.clone())
                        .build(),
                ),
                k
            )
            .send()
            .await
            .map_err(S3Err::from)
            .unwrap_or_else(|e| panic!("{k:?}: {e}"));
            let got = keyed!(gw.client.get_object_legal_hold().bucket(&b), k)
                .send()
                .await
                .map_err(S3Err::from)
                .unwrap_or_else(|e| panic!("{k:?}: {e}"));
            assert_eq!(
                got.legal_hold().and_then(|h| h.status()),
                Some(&status),
                "{k:?}"
            );
            assert_eq!(
                store_lock(&w, &b, k).await.legal_hold,
                Some(status == ObjectLockLegalHoldStatus::On),
                "{k:?}: at the store"
            );
        }
        let g = keyed!(gw.client.get_object().bucket(&b), k)
            .send()
            .await
            .unwrap();
        assert_eq!(collect(g.body).await.unwrap(), d, "{k:?}");
    }
}

#[tokio::test]
async fn a_gateways_create_if_absent_write_works_on_a_bucket_with_default_retention() {
    let w = World::moto();
    let gw = w.gateway(Spec::alice());
    let b = locked_bucket(&gw, "lock-absent").await;
    default_retention(&gw, &b).await;
    // What `sealgate group create/add` writes group documents with.
    let cmd = w.command_gateway(Spec::alice());
    let key = ".sealgate/test/once";
    assert!(cmd
        .put_small_if_absent(&b, key, bytes::Bytes::from_static(b"first"))
        .await
        .unwrap());
    assert!(!cmd
        .put_small_if_absent(&b, key, bytes::Bytes::from_static(b"second"))
        .await
        .unwrap());
    assert_eq!(w.raw_get(&b, key).await.1, b"first");
    assert_eq!(
        store_lock(&w, &b, key).await.mode,
        Some(LockMode::Governance)
    );
}
