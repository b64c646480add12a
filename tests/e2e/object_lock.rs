//! Object Lock through a real sealgate process, driven by boto3 as a backup
//! tool sets it up (tests/clients/boto3_object_lock.py). Over moto, which
//! enforces Object Lock: a bucket with a default retention, COMPLIANCE
//! retention on single-part and multipart backups (the manifest locked
//! alike), a legal hold, and the store itself refusing to delete any locked
//! version. Over Garage, which has no Object Lock: every request for a lock
//! refused (501), nothing written unlocked.

use crate::common::*;

fn case(store: &Store, case: &str) {
    let gw = Gw::start(&GwSpec::simple(store));
    let bucket = format!("lock-{}-{}-{}", store.kind, case, std::process::id());
    let script = root().join("tests/clients/boto3_object_lock.py");
    let out = run(
        "python3",
        &[
            script.to_str().unwrap(),
            "--endpoint",
            &gw.endpoint,
            "--bucket",
            &bucket,
            "--store",
            &store.endpoint,
            case,
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("PASS {case}")),
        "Object Lock case {case} over {} failed ({}):\n{stdout}\nstderr:\n{}\ngateway log:\n{}",
        store.kind,
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
}

#[test]
fn boto3_object_lock_over_moto_is_enforced_by_the_store() {
    case(moto(), "locked");
}

#[test]
fn boto3_object_lock_over_garage_is_refused() {
    case(garage(), "refused");
}
