//! The audit log through the real `sealgate serve` (docs/AUDIT.md): peer
//! addresses from real sockets, restic's signed aws-chunked uploads counted
//! by their payload, the file's mode, SIGHUP reopening it after a rotation,
//! audit lines on stderr apart from the diagnostic log, and bad `[audit]`
//! values stopping the gateway at start-up. The fields themselves, request by
//! request, are checked in process (`tests/inproc/audit.rs`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// A gateway over a local store, with `audit` as its `[audit]` section.
fn gateway(audit: &str) -> Gw {
    Gw::start(&GwSpec {
        store: None,
        identities: vec![key("alice", 2048)],
        recipients: vec![],
        policies: vec![("*".into(), "".into(), vec!["alice".into()])],
        extra_users: vec![],
        tls: false,
        extra_toml: format!("[audit]\n{audit}"),
    })
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Waits until `f` holds (lines reach the file a few ms after a response).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(gw: &Gw, signal: &str) {
    let pid = gw.child.id().to_string();
    let out = Command::new("kill").args([signal, &pid]).output().unwrap();
    assert!(out.status.success(), "kill {signal} {pid}");
}

#[test]
fn serve_audits_real_clients_and_reopens_on_sighup() {
    let dir = tmpdir("audit-serve");
    let path = dir.join("audit.log");
    let gw = gateway(&format!("path = {path:?}\n"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "created 0600"
    );

    // restic over http: minio-go's STREAMING-AWS4-HMAC-SHA256-PAYLOAD (chunk
    // signatures), so every pack and index is an aws-chunked upload.
    let b = "restic";
    let password = "audit restic password 8c1f";
    let repo = format!("s3:{}/{b}", gw.endpoint);
    let cache = dir.join("cache").display().to_string();
    let env = [
        ("RESTIC_REPOSITORY", repo.as_str()),
        ("RESTIC_PASSWORD", password),
        ("RESTIC_CACHE_DIR", cache.as_str()),
    ];
    ok(&run("restic", &["init"], &env), "restic init");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(3 * 1024 * 1024 + 7, 1)).unwrap();
    std::fs::write(src.join("b.txt"), b"small file\n").unwrap();
    let src_s = src.display().to_string();
    ok(
        &run("restic", &["backup", "--host", "audit", &src_s], &env),
        "restic backup",
    );

    // Every stored object's upload counted exactly its plaintext size.
    let listing = ok(
        &aws2(&gw.endpoint, &["s3api", "list-objects-v2", "--bucket", b]),
        "list",
    );
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let sizes: BTreeMap<String, u64> = listing["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["Key"].as_str().unwrap().to_owned(),
                o["Size"].as_u64().unwrap(),
            )
        })
        .collect();
    eventually("the list's line", || {
        lines(&path)
            .iter()
            .any(|l| l["operation"] == "ListObjectsV2" && l["bucket"] == b)
    });
    let all = lines(&path);
    let puts: Vec<&Value> = all
        .iter()
        .filter(|l| l["operation"] == "PutObject" && l["status"] == 200)
        .collect();
    assert!(
        puts.len() >= 4,
        "config, keys, data, index, snapshot: {all:#?}"
    );
    for p in &puts {
        let key = p["key"].as_str().unwrap();
        let Some(size) = sizes.get(key) else {
            continue; // restic deletes its lock files
        };
        assert_eq!(p["bytes_in"].as_u64(), Some(*size), "{p}");
    }
    assert!(
        puts.iter()
            .any(|p| p["bytes_in"].as_u64().unwrap() > 3 * 1024 * 1024),
        "the data pack: {puts:#?}"
    );
    for l in &all {
        assert_eq!(l["access_key"], AK, "{l}");
        assert_eq!(l["authenticated"], true, "{l}");
        assert_eq!(l["source"], "127.0.0.1", "{l}");
        let peer: std::net::SocketAddr = l["peer"].as_str().unwrap().parse().unwrap();
        assert!(peer.ip().is_loopback() && peer.port() != gw.port, "{l}");
        assert_eq!(l["complete"], true, "{l}");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        SK,
        GATEWAY_SECRET,
        password,
        "Signature=",
        "chunk-signature",
    ] {
        assert!(!text.contains(secret), "the audit log contains {secret:?}");
    }

    // Rotation: move the file away, SIGHUP, and later lines go to a new one.
    let rotated = dir.join("audit.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    kill(&gw, "-HUP");
    eventually("SIGHUP: audit log reopened", || {
        gw.log_text().contains("audit log reopened")
    });
    assert!(path.exists(), "a new file");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "the new file is 0600"
    );
    let before = lines(&rotated).len();
    ok(
        &aws2(&gw.endpoint, &["s3", "ls", &format!("s3://{b}")]),
        "ls",
    );
    eventually("the ls's line in the new file", || {
        lines(&path)
            .iter()
            .any(|l| l["operation"] == "ListObjectsV2")
    });
    assert_eq!(
        lines(&rotated).len(),
        before,
        "nothing more in the rotated file"
    );
    assert_eq!(lines(&path).len(), 1, "{:?}", lines(&path));

    // SIGHUP did not end the gateway; SIGTERM does, after writing the queue.
    ok(&aws2(&gw.endpoint, &["s3", "ls"]), "ls after SIGHUP");
    kill(&gw, "-TERM");
    let mut gw = gw;
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let after = lines(&path);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1]["operation"], "ListBuckets");
}

#[test]
fn stderr_lines_are_whole_json_apart_from_the_diagnostic_log() {
    let gw = gateway("stderr = true\n");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", "s3://stderr-audit"]),
        "mb",
    );
    let _ = aws2(&gw.endpoint, &["s3", "ls", "s3://no-such-bucket"]);
    eventually("two audit lines on stderr", || {
        gw.log_text()
            .lines()
            .filter(|l| l.starts_with("{\"log\":\"audit\""))
            .count()
            >= 2
    });
    let log = gw.log_text();
    let audit: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with("{\"log\":\"audit\""))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(audit[0]["operation"], "CreateBucket");
    assert_eq!(audit[0]["bucket"], "stderr-audit");
    assert_eq!(audit[0]["status"], 200);
    assert_eq!(audit[1]["operation"], "ListObjectsV2");
    assert_eq!(audit[1]["status"], 404);
    assert_eq!(audit[1]["error"], "NoSuchBucket");
    // The diagnostic log is there too, in its own lines.
    assert!(
        log.lines()
            .any(|l| l.contains("sealgate is serving") && !l.starts_with('{')),
        "{log}"
    );
    assert!(!log.contains(SK) && !log.contains(GATEWAY_SECRET));
}

#[test]
fn bad_audit_values_stop_serve_naming_the_key() {
    let dir = tmpdir("audit-bad");
    for (audit, named) in [
        (
            format!("path = {:?}\n", dir.join("no-such-dir/audit.log")),
            "audit.path",
        ),
        (
            "path = \"a.log\"\nstderr = true\n".to_owned(),
            "audit.stderr",
        ),
        (
            "stderr = true\nqueue_lines = 0\n".to_owned(),
            "audit.queue_lines",
        ),
        ("bogus = 1\n".to_owned(), "bogus"),
    ] {
        let port = free_port();
        let config = dir.join("sealgate.toml");
        let k = key("alice", 2048);
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[[users]]\naccess_key = \"{AK}\"\nsecret_key = \"{SK}\"\n[store]\nkind = \"local\"\npath = {:?}\n[gateway]\nsecret = \"{GATEWAY_SECRET}\"\n[[identities]]\nname = \"alice\"\nkey_file = {:?}\npassphrase_file = {:?}\n[[policies]]\nbucket = \"*\"\nrecipients = [\"alice\"]\n[audit]\n{audit}",
                dir.join("store"),
                k.key_file,
                k.pass_file
            ),
        )
        .unwrap();
        let out = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{audit:?} was accepted:\n{stderr}");
        assert!(
            stderr.contains(named),
            "{audit:?}: no mention of {named}:\n{stderr}"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{audit:?}: it listened"
        );
    }
}
