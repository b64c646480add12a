//! Runs the independent Python decryptor (`tests/interop/sealgate_decrypt.py`,
//! written from `docs/FORMAT.md` only) over every format vector. It must open
//! every pass vector and refuse every must-fail vector with the declared error.
//!
//! Needs `python3` with the `cryptography` package (CI installs it with pip).
//! Their absence fails the test, with a message saying what to install: a
//! skipped interop check would look like a passing one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_decryptor(vectors: &Path) -> Output {
    let script = root().join("tests/interop/sealgate_decrypt.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--vectors")
        .arg(vectors)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 ({e}): the interop test needs python3 with the \
                 'cryptography' package (pip install cryptography)"
            )
        });
    if out.status.code() == Some(3) {
        panic!(
            "python3 lacks the 'cryptography' package (pip install cryptography):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Parses `RESULT pass=N fail=N wrong=N`.
fn result_line(stdout: &str) -> (usize, usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"));
    let mut n = [0usize; 3];
    for (slot, field) in n.iter_mut().zip(["pass=", "fail=", "wrong="]) {
        *slot = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(field))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad RESULT line: {line}"));
    }
    (n[0], n[1], n[2])
}

fn declared_counts(dir: &Path) -> (usize, usize) {
    let (mut pass, mut fail) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") && !p.ends_with("keys.json") {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            match v["expect"].as_str() {
                Some("pass") => pass += 1,
                Some("fail") => fail += 1,
                other => panic!("{}: expect = {other:?}", p.display()),
            }
        }
    }
    (pass, fail)
}

#[test]
fn python_decryptor_agrees_with_every_vector() {
    let dir = root().join("tests/vectors");
    let (want_pass, want_fail) = declared_counts(&dir);
    assert!(
        want_pass > 0 && want_fail > 0,
        "no vectors in {}",
        dir.display()
    );
    let out = run_decryptor(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python decryptor failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(
        result_line(&stdout),
        (want_pass, want_fail, 0),
        "python decryptor verdicts:\n{stdout}"
    );
}

/// The harness is not vacuous: a tampered pass vector and a wrongly declared
/// must-fail vector are both reported.
#[test]
fn python_decryptor_notices_wrong_vectors() {
    let src = root().join("tests/vectors");
    let tmp = tempfile::tempdir().unwrap();
    for name in ["keys.json", "pass-1-byte.json", "fail-tag-bit.json"] {
        std::fs::copy(src.join(name), tmp.path().join(name)).unwrap();
    }
    // Flip the one ciphertext byte of pass-1-byte (keeping its checksum right).
    let p = tmp.path().join("pass-1-byte.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let mut body = hex::decode(v["body_hex"].as_str().unwrap()).unwrap();
    body[24] ^= 1;
    v["body_hex"] = hex::encode(&body).into();
    v["body_sha256"] = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body)).into()
    };
    std::fs::write(&p, v.to_string()).unwrap();
    // Declare the wrong error kind for fail-tag-bit.
    let p = tmp.path().join("fail-tag-bit.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["error"] = "HeaderMac".into();
    std::fs::write(&p, v.to_string()).unwrap();

    let out = run_decryptor(tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "wrong vectors went unnoticed:\n{stdout}"
    );
    assert_eq!(result_line(&stdout), (0, 0, 2), "{stdout}");
}
