//! Versioning through the real binary. Over moto, which keeps versions:
//! boto3 (tests/clients/boto3_versioning.py) protects a backup from a
//! compromised client's delete and reads every version back exactly, and aws
//! cli's `s3api list-object-versions` shows plaintext sizes. Over Garage,
//! which has no versioning: clear refusals, and the object is never served
//! or deleted in a version's place.

use crate::common::*;

fn boto3(store: &Store, case: &str) -> Gw {
    let gw = Gw::start(&GwSpec::simple(store));
    let bucket = format!("ver-{}-{case}-{}", store.kind, std::process::id());
    let script = root().join("tests/clients/boto3_versioning.py");
    let out = run(
        "python3",
        &[
            script.to_str().unwrap(),
            "--endpoint",
            &gw.endpoint,
            "--bucket",
            &bucket,
            case,
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("PASS {case}")),
        "boto3 versioning case {case} over {} failed ({}):\n{stdout}\nstderr:\n{}\ngateway log:\n{}",
        store.kind,
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
    gw
}

#[test]
fn boto3_versions_over_moto_survive_a_delete_and_read_back_exactly() {
    boto3(moto(), "versions");
}

#[test]
fn boto3_versioning_over_garage_is_refused_clearly() {
    boto3(garage(), "refused");
}

#[test]
fn awscli_lists_versions_with_plaintext_sizes_over_moto() {
    let gw = Gw::start(&GwSpec::simple(moto()));
    let b = format!("ver-cli-{}", std::process::id());
    let e = gw.endpoint.as_str();
    ok(&aws2(e, &["s3api", "create-bucket", "--bucket", &b]), "mb");
    ok(
        &aws2(
            e,
            &[
                "s3api",
                "put-bucket-versioning",
                "--bucket",
                &b,
                "--versioning-configuration",
                "Status=Enabled",
            ],
        ),
        "put-bucket-versioning",
    );
    let dir = tmpdir("ver-cli");
    let mut sizes = Vec::new();
    for (i, n) in [1000usize, 70_000].iter().enumerate() {
        let f = dir.join(format!("v{i}"));
        std::fs::write(&f, random_bytes(*n, i as u64)).unwrap();
        ok(
            &aws2(
                e,
                &[
                    "s3api",
                    "put-object",
                    "--bucket",
                    &b,
                    "--key",
                    "k",
                    "--body",
                    f.to_str().unwrap(),
                ],
            ),
            "put-object",
        );
        sizes.push(*n as u64);
    }
    let out = ok(
        &aws2(
            e,
            &[
                "s3api",
                "list-object-versions",
                "--bucket",
                &b,
                "--query",
                "Versions[].Size",
                "--output",
                "text",
            ],
        ),
        "list-object-versions",
    );
    let mut listed: Vec<u64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    listed.sort();
    assert_eq!(listed, sizes, "plaintext sizes of both versions");
    let _ = std::fs::remove_dir_all(&dir);
}
