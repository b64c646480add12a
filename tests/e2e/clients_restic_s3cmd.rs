//! restic (Debian package; minio-go with STREAMING-AWS4-HMAC-SHA256-PAYLOAD
//! chunk signatures) and s3cmd (SHA-256 payload hashes, SigV4) through a real
//! sealgate in front of Garage: a restic repository's whole life (init, two
//! backups, check --read-data, restore byte for byte, forget --prune) and
//! s3cmd's everyday commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

fn write_files(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (name, data) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same_tree(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: file names"
    );
    for (k, v) in want {
        assert!(
            got[k] == *v,
            "{what}: {k} differs ({} bytes, want {})",
            got[k].len(),
            v.len()
        );
    }
}

fn must(out: Output, what: &str, gw: &Gw) -> String {
    if !out.status.success() {
        let log = gw.log_text();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!(
            "{what} failed ({}):\nstdout: {}\nstderr: {}\ngateway log (newest first):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail.join("\n")
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn restic_backup_check_restore_prune() {
    let gw = Gw::start(&GwSpec::simple(garage()));
    let b = format!("restic-{}", std::process::id());
    let dir = tmpdir("restic");
    let repo = format!("s3:{}/{b}", gw.endpoint);
    let cache = dir.join("cache");
    let cache_s = cache.display().to_string();
    let env = [
        ("RESTIC_REPOSITORY", repo.as_str()),
        ("RESTIC_PASSWORD", "correct horse battery staple"),
        ("RESTIC_CACHE_DIR", cache_s.as_str()),
    ];
    let restic =
        |args: &[&str], what: &str| must(run("restic", args, &env), &format!("restic {what}"), &gw);

    restic(&["init"], "init");
    let src = dir.join("data");
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("small.txt", b"hello restic through sealgate\n".to_vec()),
        ("docs/a.bin", random_bytes(300_000, 1)),
        ("docs/b.bin", random_bytes(70_000, 2)),
        ("large/twenty.bin", random_bytes(20 * 1024 * 1024 + 11, 3)),
    ];
    for i in 0..40 {
        files.push((
            Box::leak(format!("many/f{i:02}").into_boxed_str()),
            random_bytes(100 + i * 97, 100 + i as u64),
        ));
    }
    write_files(&src, &files);
    let v1 = read_tree(&src);
    let src_s = src.display().to_string();
    restic(&["backup", "--host", "sealgate-test", &src_s], "backup 1");
    // Second backup: one file changed, one added, one removed.
    std::fs::write(src.join("small.txt"), b"changed\n").unwrap();
    std::fs::write(src.join("docs/new.bin"), random_bytes(1_500_000, 4)).unwrap();
    std::fs::remove_file(src.join("docs/b.bin")).unwrap();
    let v2 = read_tree(&src);
    restic(&["backup", "--host", "sealgate-test", &src_s], "backup 2");
    let snaps: serde_json::Value =
        serde_json::from_str(&restic(&["snapshots", "--json"], "snapshots")).unwrap();
    let ids: Vec<String> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{snaps}");

    let out = restic(&["check", "--read-data"], "check --read-data");
    assert!(out.contains("no errors were found"), "{out}");

    // Restore both snapshots byte for byte.
    for (id, want, name) in [(&ids[0], &v1, "first"), (&ids[1], &v2, "second")] {
        let target = dir.join(format!("restore-{name}"));
        restic(
            &["restore", id, "--target", target.to_str().unwrap()],
            "restore",
        );
        let restored: PathBuf = target.join(src.strip_prefix("/").unwrap());
        assert_same_tree(
            &read_tree(&restored),
            want,
            &format!("restore of the {name} snapshot"),
        );
    }

    // forget --keep-last 1 --prune, then the repository is still sound and
    // the kept snapshot restores.
    let out = restic(&["forget", "--keep-last", "1", "--prune"], "forget --prune");
    assert!(
        out.contains("remove 1 snapshots") || out.contains("removed"),
        "{out}"
    );
    let snaps: serde_json::Value =
        serde_json::from_str(&restic(&["snapshots", "--json"], "snapshots")).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert_eq!(snaps[0]["id"].as_str().unwrap(), ids[1]);
    let out = restic(&["check", "--read-data"], "check after prune");
    assert!(out.contains("no errors were found"), "{out}");
    let target = dir.join("restore-after-prune");
    restic(
        &["restore", "latest", "--target", target.to_str().unwrap()],
        "restore after prune",
    );
    assert_same_tree(
        &read_tree(&target.join(src.strip_prefix("/").unwrap())),
        &v2,
        "restore after prune",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An s3cmd configuration for the gateway on `port`; over https when `ca`
/// (the certificate to trust) is given.
fn s3cmd_config(dir: &Path, port: u16, ca: Option<&Path>) -> PathBuf {
    let cfg = dir.join("s3cfg");
    let mut t = format!(
        "[default]\naccess_key = {AK}\nsecret_key = {SK}\nhost_base = 127.0.0.1:{port}\nhost_bucket = 127.0.0.1:{port}\n\
         signature_v2 = False\nbucket_location = us-east-1\nprogress_meter = False\n"
    );
    match ca {
        None => t += "use_https = False\n",
        Some(ca) => {
            t += &format!(
                "use_https = True\nca_certs_file = {}\ncheck_ssl_certificate = True\n",
                ca.display()
            )
        }
    }
    std::fs::write(&cfg, t).unwrap();
    cfg
}

#[test]
fn s3cmd_everyday_commands() {
    let gw = Gw::start(&GwSpec::simple(garage()));
    let b = format!("s3cmd-{}", std::process::id());
    let s3b = format!("s3://{b}");
    let dir = tmpdir("s3cmd");
    let cfg = s3cmd_config(&dir, gw.port, None);
    let cfg_s = cfg.display().to_string();
    let s3cmd = |args: &[&str], what: &str| {
        let mut a = vec!["-c", cfg_s.as_str()];
        a.extend_from_slice(args);
        must(run("s3cmd", &a, &[]), &format!("s3cmd {what}"), &gw)
    };
    s3cmd(&["mb", &s3b], "mb");
    let ls = s3cmd(&["ls"], "ls buckets");
    assert!(ls.contains(&s3b), "{ls}");

    // put / get / info, single part and multipart.
    let small = random_bytes(123_456, 1);
    let big = random_bytes(12 * 1024 * 1024 + 9, 2);
    let (fs, fb) = (dir.join("small.bin"), dir.join("big.bin"));
    std::fs::write(&fs, &small).unwrap();
    std::fs::write(&fb, &big).unwrap();
    s3cmd(
        &[
            "put",
            "--mime-type=application/x-test",
            fs.to_str().unwrap(),
            &format!("{s3b}/p/small.bin"),
        ],
        "put",
    );
    s3cmd(
        &[
            "put",
            "--multipart-chunk-size-mb=5",
            fb.to_str().unwrap(),
            &format!("{s3b}/p/big.bin"),
        ],
        "put multipart",
    );
    for (name, data) in [("small.bin", &small), ("big.bin", &big)] {
        let out = dir.join(format!("{name}.back"));
        s3cmd(
            &[
                "get",
                "--force",
                &format!("{s3b}/p/{name}"),
                out.to_str().unwrap(),
            ],
            "get",
        );
        assert!(
            std::fs::read(&out).unwrap() == *data,
            "s3cmd get {name} differs"
        );
    }
    let info = s3cmd(&["info", &format!("{s3b}/p/small.bin")], "info");
    assert!(
        info.contains(&md5_hex(&small)),
        "info shows the plaintext MD5:\n{info}"
    );
    assert!(info.contains("application/x-test"), "{info}");
    let ls = s3cmd(&["ls", &format!("{s3b}/p/")], "ls");
    assert!(
        ls.contains(&format!("{} ", small.len())) || ls.contains(&format!(" {} ", small.len())),
        "ls sizes:\n{ls}"
    );
    assert!(ls.contains(&big.len().to_string()), "ls sizes:\n{ls}");

    // sync up twice (the second uploads nothing), sync down, compare.
    let up = dir.join("up");
    write_files(
        &up,
        &[
            ("a.txt", b"alpha".to_vec()),
            ("d/b.bin", random_bytes(80_000, 3)),
            ("d/e/c.bin", random_bytes(1, 4)),
            ("space name.txt", random_bytes(10, 5)),
        ],
    );
    let want = read_tree(&up);
    let out = s3cmd(
        &[
            "sync",
            &format!("{}/", up.display()),
            &format!("{s3b}/sync/"),
        ],
        "sync",
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("upload:")).count(),
        want.len(),
        "first sync:\n{out}"
    );
    let out = s3cmd(
        &[
            "sync",
            &format!("{}/", up.display()),
            &format!("{s3b}/sync/"),
        ],
        "sync again",
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("upload:")).count(),
        0,
        "second sync uploaded:\n{out}"
    );
    let down = dir.join("down");
    std::fs::create_dir_all(&down).unwrap();
    s3cmd(
        &[
            "sync",
            &format!("{s3b}/sync/"),
            &format!("{}/", down.display()),
        ],
        "sync down",
    );
    assert_same_tree(&read_tree(&down), &want, "s3cmd sync down");
    let ls = s3cmd(&["ls", "-r", &format!("{s3b}/sync/")], "ls -r");
    assert_eq!(ls.lines().count(), want.len(), "ls -r:\n{ls}");

    // del, then the key is gone; a missing key is reported as such.
    s3cmd(&["del", &format!("{s3b}/p/small.bin")], "del");
    let ls = s3cmd(&["ls", &format!("{s3b}/p/")], "ls after del");
    assert!(!ls.contains("small.bin"), "{ls}");
    let miss = run(
        "s3cmd",
        &[
            "-c",
            &cfg_s,
            "get",
            &format!("{s3b}/p/small.bin"),
            dir.join("x").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!miss.status.success());
    let e = String::from_utf8_lossy(&miss.stderr);
    assert!(
        e.contains("404") || e.contains("NoSuchKey") || e.contains("does not exist"),
        "{e}"
    );
    s3cmd(&["del", "--recursive", "--force", &s3b], "del --recursive");
    s3cmd(&["rb", &s3b], "rb");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn s3cmd_over_https() {
    let mut spec = GwSpec::simple(garage());
    spec.tls = true;
    let gw = Gw::start(&spec);
    let b = format!("s3cmd-tls-{}", std::process::id());
    let s3b = format!("s3://{b}");
    let dir = tmpdir("s3cmd-tls");
    let cfg = s3cmd_config(&dir, gw.tls_port.unwrap(), Some(&gw.dir.join("cert.pem")));
    let cfg_s = cfg.display().to_string();
    let s3cmd = |args: &[&str], what: &str| {
        let mut a = vec!["-c", cfg_s.as_str()];
        a.extend_from_slice(args);
        must(run("s3cmd", &a, &[]), &format!("s3cmd {what}"), &gw)
    };
    s3cmd(&["mb", &s3b], "mb");
    let data = random_bytes(11 * 1024 * 1024 + 1, 9);
    let f = dir.join("f.bin");
    std::fs::write(&f, &data).unwrap();
    s3cmd(
        &[
            "put",
            "--multipart-chunk-size-mb=5",
            f.to_str().unwrap(),
            &format!("{s3b}/f.bin"),
        ],
        "put multipart",
    );
    s3cmd(
        &[
            "put",
            dir.join("s3cfg").to_str().unwrap(),
            &format!("{s3b}/cfg"),
        ],
        "put",
    );
    let back = dir.join("f.back");
    s3cmd(
        &["get", &format!("{s3b}/f.bin"), back.to_str().unwrap()],
        "get",
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "s3cmd https round trip differs"
    );
    s3cmd(&["del", "--recursive", "--force", &s3b], "del --recursive");
    s3cmd(&["rb", &s3b], "rb");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restic_over_https() {
    // Over https restic (minio-go) signs UNSIGNED-PAYLOAD instead of chunks.
    let mut spec = GwSpec::simple(garage());
    spec.tls = true;
    let gw = Gw::start(&spec);
    let b = format!("restic-tls-{}", std::process::id());
    let dir = tmpdir("restic-tls");
    let repo = format!("s3:https://127.0.0.1:{}/{b}", gw.tls_port.unwrap());
    let cache = dir.join("cache").display().to_string();
    let env = [
        ("RESTIC_REPOSITORY", repo.as_str()),
        ("RESTIC_PASSWORD", "pw over tls"),
        ("RESTIC_CACHE_DIR", cache.as_str()),
    ];
    let ca = gw.dir.join("cert.pem").display().to_string();
    let restic = |args: &[&str], what: &str| {
        let mut a = vec!["--cacert", ca.as_str()];
        a.extend_from_slice(args);
        must(run("restic", &a, &env), &format!("restic {what}"), &gw)
    };
    restic(&["init"], "init");
    let src = dir.join("data");
    write_files(
        &src,
        &[
            ("a.txt", b"over tls\n".to_vec()),
            ("b/c.bin", random_bytes(3 * 1024 * 1024 + 5, 1)),
            ("b/d.bin", random_bytes(40_000, 2)),
        ],
    );
    let want = read_tree(&src);
    restic(&["backup", src.to_str().unwrap()], "backup");
    let out = restic(&["check", "--read-data"], "check --read-data");
    assert!(out.contains("no errors were found"), "{out}");
    let target = dir.join("restore");
    restic(
        &["restore", "latest", "--target", target.to_str().unwrap()],
        "restore",
    );
    assert_same_tree(
        &read_tree(&target.join(src.strip_prefix("/").unwrap())),
        &want,
        "restore over https",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
