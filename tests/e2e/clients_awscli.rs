//! aws cli v1 (PyPI, `python3 -m awscli`) through a real sealgate in front of
//! Garage, over http (SHA-256 payload hashes) and over https (aws-chunked
//! bodies with trailing checksums): `s3 cp` of a 30 MiB file up and down
//! (multipart both ways), `s3 sync` twice each way (the second one transfers
//! nothing), `s3 ls --recursive`, `s3 rm --recursive`, and s3api calls.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// A tree of files, relative path -> content; names with spaces and non-ASCII.
fn tree(seed: u64) -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    for (i, (name, size)) in [
        ("empty", 0usize),
        ("one.txt", 1),
        ("a/b/c.bin", 65_537),
        ("dir with space/f 1.dat", 100_000),
        ("ünïcödé/ß.txt", 3000),
        ("big/nine.bin", 9 * 1024 * 1024 + 7),
    ]
    .into_iter()
    .enumerate()
    {
        t.insert(name.to_owned(), random_bytes(size, seed + i as u64));
    }
    t
}

fn write_tree(dir: &Path, t: &BTreeMap<String, Vec<u8>>) {
    for (k, v) in t {
        let p = dir.join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
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
    let gk: Vec<_> = got.keys().collect();
    let wk: Vec<_> = want.keys().collect();
    assert_eq!(gk, wk, "{what}: file names");
    for (k, v) in want {
        assert!(
            got[k] == *v,
            "{what}: {k} differs ({} bytes, want {})",
            got[k].len(),
            v.len()
        );
    }
}

/// The aws cli v1 with extra global options (e.g. a CA bundle).
fn aws(endpoint: &str, extra: &[&str], args: &[&str]) -> std::process::Output {
    let mut a: Vec<&str> = extra.to_vec();
    a.extend_from_slice(args);
    aws1(endpoint, &a)
}

fn scenario(endpoint: &str, extra: &[&str], name: &str, gw: &Gw) {
    let b = format!("cli1-{name}-{}", std::process::id());
    let s3b = format!("s3://{b}");
    let dir = tmpdir(&format!("awscli-{name}"));
    let cli = |args: &[&str], what: &str| -> String {
        let out = aws(endpoint, extra, args);
        if !out.status.success() {
            let log = gw.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "aws cli v1 {what} failed ({}):\nstdout: {}\nstderr: {}\ngateway log (last lines, newest first):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.join("\n")
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["s3", "mb", &s3b], "mb");

    // 30 MiB up and down: multipart upload (8 MiB parts), ranged parallel download.
    let big = random_bytes(30 * 1024 * 1024 + 5, 77);
    let src = dir.join("big30");
    std::fs::write(&src, &big).unwrap();
    cli(
        &[
            "s3",
            "cp",
            "--only-show-errors",
            src.to_str().unwrap(),
            &format!("{s3b}/big30"),
        ],
        "cp up 30 MiB",
    );
    let back = dir.join("big30.back");
    cli(
        &[
            "s3",
            "cp",
            "--only-show-errors",
            &format!("{s3b}/big30"),
            back.to_str().unwrap(),
        ],
        "cp down 30 MiB",
    );
    assert!(
        std::fs::read(&back).unwrap() == big,
        "30 MiB round trip differs"
    );
    let head: serde_json::Value = serde_json::from_str(&cli(
        &["s3api", "head-object", "--bucket", &b, "--key", "big30"],
        "head-object",
    ))
    .unwrap();
    assert_eq!(head["ContentLength"].as_u64(), Some(big.len() as u64));
    let md5s: Vec<u8> = big
        .chunks(8 * 1024 * 1024)
        .flat_map(|c| hex::decode(md5_hex(c)).unwrap())
        .collect();
    assert_eq!(
        head["ETag"].as_str().unwrap().trim_matches('"'),
        format!("{}-4", md5_hex(&md5s)),
        "multipart ETag is the md5 of the part md5s"
    );
    // s3-to-s3 copy of it: a multipart copy (UploadPartCopy) through sealgate.
    cli(
        &[
            "s3",
            "cp",
            "--only-show-errors",
            &format!("{s3b}/big30"),
            &format!("{s3b}/big30.copy"),
        ],
        "cp s3 to s3 (multipart copy)",
    );
    let copy = aws(
        endpoint,
        extra,
        &["s3", "cp", &format!("{s3b}/big30.copy"), "-"],
    );
    ok(&copy, "cp copy to stdout");
    assert!(copy.stdout == big, "multipart copy differs");
    // Streams: `cp - s3://` from stdin (multipart, length unknown) and
    // `cp s3:// -` to stdout.
    let streamed = random_bytes(9 * 1024 * 1024 + 99, 78);
    let sf = dir.join("streamed");
    std::fs::write(&sf, &streamed).unwrap();
    let dest = format!("{s3b}/streamed");
    let mut a = vec!["-m", "awscli", "--endpoint-url", endpoint];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["s3", "cp", "--only-show-errors", "-", &dest]);
    let out = std::process::Command::new("python3")
        .args(&a)
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stdin(std::fs::File::open(&sf).unwrap())
        .output()
        .unwrap();
    ok(&out, "cp - (stdin)");
    let out = aws(
        endpoint,
        extra,
        &["s3", "cp", &format!("{s3b}/streamed"), "-"],
    );
    ok(&out, "cp to stdout");
    assert!(
        out.stdout == streamed,
        "stdin upload / stdout download differ"
    );
    // A presigned URL, used with curl.
    let url = cli(
        &[
            "s3",
            "presign",
            "--expires-in",
            "300",
            &format!("{s3b}/streamed"),
        ],
        "presign",
    );
    let mut curl = vec!["-sS", "--fail"];
    if let Some(i) = extra.iter().position(|x| *x == "--ca-bundle") {
        curl.extend_from_slice(&["--cacert", extra[i + 1]]);
    }
    curl.push(url.trim());
    let got = run("curl", &curl, &[]);
    ok(&got, "curl of a presigned URL");
    assert!(got.stdout == streamed, "presigned GET differs");
    // mv: the source goes, the content stays.
    cli(
        &[
            "s3",
            "mv",
            "--only-show-errors",
            &format!("{s3b}/streamed"),
            &format!("{s3b}/moved"),
        ],
        "mv",
    );
    let moved = aws(endpoint, extra, &["s3", "cp", &format!("{s3b}/moved"), "-"]);
    ok(&moved, "cp moved");
    assert!(moved.stdout == streamed, "moved object differs");
    let gone = aws(
        endpoint,
        extra,
        &["s3api", "head-object", "--bucket", &b, "--key", "streamed"],
    );
    assert!(!gone.status.success(), "mv left its source");
    // cp of a small file with metadata and a content type.
    let small = dir.join("small.json");
    std::fs::write(&small, b"{\"hello\": \"world\"}").unwrap();
    cli(
        &[
            "s3",
            "cp",
            "--only-show-errors",
            "--metadata",
            "purpose=test,owner=cli",
            "--content-type",
            "application/json",
            small.to_str().unwrap(),
            &format!("{s3b}/meta/small.json"),
        ],
        "cp with metadata",
    );
    let head: serde_json::Value = serde_json::from_str(&cli(
        &[
            "s3api",
            "head-object",
            "--bucket",
            &b,
            "--key",
            "meta/small.json",
        ],
        "head-object",
    ))
    .unwrap();
    assert_eq!(head["ContentType"], "application/json");
    assert_eq!(head["Metadata"]["purpose"], "test");
    assert_eq!(head["Metadata"]["owner"], "cli");
    // Server-side copy inside the bucket keeps content and metadata.
    cli(
        &[
            "s3",
            "cp",
            "--only-show-errors",
            &format!("{s3b}/meta/small.json"),
            &format!("{s3b}/meta/copy.json"),
        ],
        "cp s3 to s3",
    );
    let c2 = dir.join("copy.json");
    cli(
        &[
            "s3",
            "cp",
            "--only-show-errors",
            &format!("{s3b}/meta/copy.json"),
            c2.to_str().unwrap(),
        ],
        "cp copy down",
    );
    assert_eq!(std::fs::read(&c2).unwrap(), b"{\"hello\": \"world\"}");

    // sync up twice: the second run transfers nothing.
    let up = dir.join("up");
    let t = tree(1000);
    write_tree(&up, &t);
    let out = cli(
        &[
            "s3",
            "sync",
            "--no-progress",
            up.to_str().unwrap(),
            &format!("{s3b}/tree/"),
        ],
        "sync up",
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("upload:")).count(),
        t.len(),
        "first sync: {out}"
    );
    let out = cli(
        &[
            "s3",
            "sync",
            "--no-progress",
            up.to_str().unwrap(),
            &format!("{s3b}/tree/"),
        ],
        "sync up again",
    );
    assert!(
        out.trim().is_empty(),
        "second sync up transferred something:\n{out}"
    );
    // ls --recursive shows every file with its plaintext size.
    let ls = cli(
        &["s3", "ls", "--recursive", &format!("{s3b}/tree/")],
        "ls --recursive",
    );
    let mut listed = BTreeMap::new();
    for line in ls.lines() {
        // "2024-01-01 00:00:00       1234 tree/a/b/c.bin"
        let mut it = line
            .splitn(4, char::is_whitespace)
            .filter(|s| !s.is_empty());
        let (_d, _t) = (it.next(), it.next());
        let rest = it.next().unwrap_or_default().trim_start();
        let (size, key) = rest.split_once(' ').unwrap_or(("", ""));
        listed.insert(
            key.trim_start().to_owned(),
            size.parse::<usize>().unwrap_or(usize::MAX),
        );
    }
    let want: BTreeMap<String, usize> = t
        .iter()
        .map(|(k, v)| (format!("tree/{k}"), v.len()))
        .collect();
    assert_eq!(listed, want, "ls --recursive:\n{ls}");
    // sync down twice into an empty directory: same tree, then nothing.
    let down = dir.join("down");
    std::fs::create_dir_all(&down).unwrap();
    cli(
        &[
            "s3",
            "sync",
            "--no-progress",
            &format!("{s3b}/tree/"),
            down.to_str().unwrap(),
        ],
        "sync down",
    );
    assert_same_tree(&read_tree(&down), &t, "sync down");
    let out = cli(
        &[
            "s3",
            "sync",
            "--no-progress",
            &format!("{s3b}/tree/"),
            down.to_str().unwrap(),
        ],
        "sync down again",
    );
    assert!(
        out.trim().is_empty(),
        "second sync down transferred something:\n{out}"
    );
    // A changed file and a deleted one: sync --delete moves exactly those.
    std::fs::write(up.join("one.txt"), b"changed!").unwrap();
    std::fs::remove_file(up.join("a/b/c.bin")).unwrap();
    let out = cli(
        &[
            "s3",
            "sync",
            "--no-progress",
            "--delete",
            up.to_str().unwrap(),
            &format!("{s3b}/tree/"),
        ],
        "sync --delete",
    );
    let mut lines: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    lines.sort();
    assert_eq!(lines, ["delete:", "upload:"], "sync --delete:\n{out}");
    let one = dir.join("one.back");
    cli(
        &[
            "s3",
            "cp",
            "--only-show-errors",
            &format!("{s3b}/tree/one.txt"),
            one.to_str().unwrap(),
        ],
        "cp changed",
    );
    assert_eq!(std::fs::read(&one).unwrap(), b"changed!");

    // A missing key: a 404 the cli reports.
    let miss = aws(
        endpoint,
        extra,
        &[
            "s3",
            "cp",
            &format!("{s3b}/nope"),
            dir.join("nope").to_str().unwrap(),
        ],
    );
    assert!(!miss.status.success());
    let e = String::from_utf8_lossy(&miss.stderr);
    assert!(e.contains("404") || e.contains("Not Found"), "{e}");
    let miss = aws(
        endpoint,
        extra,
        &[
            "s3api",
            "get-object",
            "--bucket",
            &b,
            "--key",
            "nope",
            "/dev/null",
        ],
    );
    assert!(String::from_utf8_lossy(&miss.stderr).contains("NoSuchKey"));

    // rm --recursive removes everything; rb then succeeds.
    let out = cli(&["s3", "rm", "--recursive", &s3b], "rm --recursive");
    assert!(out.lines().all(|l| l.starts_with("delete:")), "{out}");
    let ls = aws(endpoint, extra, &["s3", "ls", "--recursive", &s3b]);
    assert!(
        String::from_utf8_lossy(&ls.stdout).trim().is_empty(),
        "objects left after rm --recursive"
    );
    cli(&["s3", "rb", &s3b], "rb");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn awscli_v1_over_http() {
    let gw = Gw::start(&GwSpec::simple(garage()));
    scenario(&gw.endpoint, &[], "http", &gw);
}

#[test]
fn awscli_v1_over_https() {
    let mut spec = GwSpec::simple(garage());
    spec.tls = true;
    let gw = Gw::start(&spec);
    let ep = format!("https://127.0.0.1:{}", gw.tls_port.unwrap());
    let ca = gw.dir.join("cert.pem").display().to_string();
    scenario(&ep, &["--ca-bundle", &ca], "https", &gw);
}

#[test]
fn awscli_v1_over_https_no_verify() {
    // `--no-verify-ssl`, as people do with self-signed certificates; a
    // shorter run: a multipart cp and a sync.
    let mut spec = GwSpec::simple(garage());
    spec.tls = true;
    let gw = Gw::start(&spec);
    let ep = format!("https://127.0.0.1:{}", gw.tls_port.unwrap());
    let b = format!("cli1-noverify-{}", std::process::id());
    let dir = tmpdir("awscli-noverify");
    let x = ["--no-verify-ssl"];
    ok(&aws(&ep, &x, &["s3", "mb", &format!("s3://{b}")]), "mb");
    let data = random_bytes(12 * 1024 * 1024 + 1, 5);
    let f = dir.join("f");
    std::fs::write(&f, &data).unwrap();
    ok(
        &aws(
            &ep,
            &x,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                f.to_str().unwrap(),
                &format!("s3://{b}/f"),
            ],
        ),
        "cp up",
    );
    let g = dir.join("g");
    ok(
        &aws(
            &ep,
            &x,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                &format!("s3://{b}/f"),
                g.to_str().unwrap(),
            ],
        ),
        "cp down",
    );
    assert!(std::fs::read(&g).unwrap() == data);
    ok(
        &aws(
            &ep,
            &x,
            &[
                "s3",
                "rm",
                "--recursive",
                "--only-show-errors",
                &format!("s3://{b}"),
            ],
        ),
        "rm",
    );
    ok(&aws(&ep, &x, &["s3", "rb", &format!("s3://{b}")]), "rb");
}
