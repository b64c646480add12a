//! Large objects through a real sealgate in front of a real Garage: stateless
//! parallel multipart uploads (aws cli v1 and v2, rclone, boto3 low level, two
//! gateways sharing one upload, a restart in the middle of an upload), ranged
//! reads, tampering with multipart objects at the store, and exact listings.
//!
//! `SEALGATE_TEST_LARGE_MB` sets the size of the aws cli transfer (default
//! 256; the issue's figure is for 1024), `SEALGATE_TEST_LIST_N` the number of
//! objects listed (default 200).

use crate::common::*;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use md5::Digest;
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

fn bucket(name: &str) -> String {
    format!("mp-{name}-{}", std::process::id())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where a boto3 request goes, with which credentials.
#[derive(Clone)]
struct Ep {
    endpoint: String,
    ak: String,
    sk: String,
}

fn via(gw: &Gw) -> Ep {
    Ep {
        endpoint: gw.endpoint.clone(),
        ak: AK.into(),
        sk: SK.into(),
    }
}

/// The store itself, with its own credentials: what its operator can do.
fn at_store(s: &Store) -> Ep {
    Ep {
        endpoint: s.endpoint.clone(),
        ak: s.access_key.clone(),
        sk: s.secret_key.clone(),
    }
}

/// An S3 error answer (or a client-side failure, code `Client:...`).
#[derive(Debug)]
struct S3Err {
    code: String,
    /// Shown in failure messages.
    #[allow(dead_code)]
    message: String,
}

/// A boto3 client in a Python process (tests/clients/boto3_driver.py).
struct Boto {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Boto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Boto {
    fn start() -> Boto {
        let mut child = Command::new("python3")
            .arg(root().join("tests/clients/boto3_driver.py"))
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 boto3 driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Boto {
            child,
            stdin,
            stdout,
        }
    }

    fn request(
        &mut self,
        ep: &Ep,
        op: &str,
        args: Value,
        out: Option<&Path>,
    ) -> Result<Value, S3Err> {
        self.send(ep, op, args, out);
        self.recv(op)
    }

    /// Sends a request without waiting for its answer ([`Boto::recv`]).
    fn send(&mut self, ep: &Ep, op: &str, args: Value, out: Option<&Path>) {
        let req = json!({
            "endpoint": ep.endpoint, "ak": ep.ak, "sk": ep.sk,
            "op": op, "args": args, "out": out,
        });
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self, op: &str) -> Result<Value, S3Err> {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("boto3 driver answered {line:?} to {op}: {e}"));
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(S3Err {
                code: v["err"]["code"].as_str().unwrap_or_default().to_owned(),
                message: v["err"]["message"].as_str().unwrap_or_default().to_owned(),
            }),
        }
    }

    fn call(&mut self, ep: &Ep, op: &str, args: Value) -> Result<Value, S3Err> {
        self.request(ep, op, args, None)
    }

    fn ok(&mut self, ep: &Ep, op: &str, args: Value) -> Value {
        self.call(ep, op, args)
            .unwrap_or_else(|e| panic!("{op} failed: {e:?}"))
    }

    /// Expects the S3 error `code`.
    fn fails(&mut self, ep: &Ep, op: &str, args: Value, code: &str, what: &str) {
        match self.call(ep, op, args) {
            Ok(v) => panic!("{what}: {op} succeeded, expected {code}: {v}"),
            Err(e) => assert_eq!(e.code, code, "{what}: {e:?}"),
        }
    }

    /// GetObject; the body's bytes land in `out`.
    fn get(&mut self, ep: &Ep, args: Value, out: &Path) -> Result<(Value, Vec<u8>), S3Err> {
        let _ = std::fs::remove_file(out);
        let v = self.request(ep, "get_object", args, Some(out))?;
        Ok((v, std::fs::read(out).unwrap()))
    }

    fn create(&mut self, ep: &Ep, b: &str, k: &str) -> String {
        let v = self.ok(
            ep,
            "create_multipart_upload",
            json!({"Bucket": b, "Key": k}),
        );
        v["UploadId"].as_str().unwrap().to_owned()
    }

    /// Uploads `data` as part `n`; returns the part ETag, unquoted.
    fn part(&mut self, ep: &Ep, b: &str, k: &str, id: &str, n: i32, data: &Path) -> String {
        let v = self.ok(
            ep,
            "upload_part",
            json!({"Bucket": b, "Key": k, "UploadId": id, "PartNumber": n,
                   "Body": {"$file": data}}),
        );
        unquote(&v["ETag"])
    }

    fn complete(
        &mut self,
        ep: &Ep,
        b: &str,
        k: &str,
        id: &str,
        parts: &[(i32, &str)],
    ) -> Result<Value, S3Err> {
        self.call(
            ep,
            "complete_multipart_upload",
            complete_args(b, k, id, parts),
        )
    }
}

fn complete_args(b: &str, k: &str, id: &str, parts: &[(i32, &str)]) -> Value {
    let parts: Vec<Value> = parts
        .iter()
        .map(|(n, e)| json!({"PartNumber": n, "ETag": format!("\"{e}\"")}))
        .collect();
    json!({"Bucket": b, "Key": k, "UploadId": id, "MultipartUpload": {"Parts": parts}})
}

fn unquote(v: &Value) -> String {
    v.as_str().unwrap_or_default().trim_matches('"').to_owned()
}

fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = md5::Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The S3 ETag of a multipart object of these parts.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let md5s: Vec<u8> = parts.iter().flat_map(|p| md5_of(&[p])).collect();
    format!("{}-{}", hex::encode(md5_of(&[&md5s])), parts.len())
}

/// Writes `data` to a file in `dir` and returns its path.
fn file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Keys the store holds in a bucket (sealgate's own included).
fn store_keys(store: &Store, b: &str) -> Vec<String> {
    let o = ok(
        &store_aws(store, &["s3api", "list-objects-v2", "--bucket", b]),
        "store list",
    );
    if o.trim().is_empty() {
        return vec![];
    }
    let v: Value = serde_json::from_str(&o).unwrap();
    v["Contents"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["Key"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Multipart uploads in progress at the store, as (key, store upload id).
fn store_uploads(store: &Store, b: &str) -> Vec<(String, String)> {
    let o = ok(
        &store_aws(store, &["s3api", "list-multipart-uploads", "--bucket", b]),
        "store list uploads",
    );
    if o.trim().is_empty() {
        return vec![];
    }
    let v: Value = serde_json::from_str(&o).unwrap();
    v["Uploads"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| {
                    (
                        u["Key"].as_str().unwrap().to_owned(),
                        u["UploadId"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn mb(gw: &Gw, b: &str) {
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
}

/// Compares two files without holding both in memory.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (
        BufReader::with_capacity(MIB, std::fs::File::open(a).unwrap()),
        BufReader::with_capacity(MIB, std::fs::File::open(b).unwrap()),
    );
    if fa.get_ref().metadata().unwrap().len() != fb.get_ref().metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; MIB], vec![0u8; MIB]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// `aws s3 cp` of a large file up and down with default multipart settings,
/// by aws cli v2 and v1; `aws s3 ls` shows the exact size, through the
/// gateway that uploaded it and through a fresh one.
#[test]
fn aws_cli_large_file_up_and_down() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = bucket("large");
    mb(&gw, &b);
    let dir = tmpdir("large");
    let mbs = env_usize("SEALGATE_TEST_LARGE_MB", 256);
    // Not a multiple of the part size: the last part is short.
    let size = mbs * MIB + 4321;
    let src = dir.join("src");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let mut left = size;
        let mut seed = 1;
        while left > 0 {
            let n = left.min(64 * MIB);
            f.write_all(&random_bytes(n, 1000 + seed)).unwrap();
            left -= n;
            seed += 1;
        }
    }
    let parts = size.div_ceil(8 * MIB);
    let fresh = Gw::start(&GwSpec::simple(store));
    type Cli = fn(&str, &[&str]) -> std::process::Output;
    for (name, cli) in [("aws2", aws2 as Cli), ("aws1", aws1 as Cli)] {
        let url = format!("s3://{b}/{name}-big");
        let t = Instant::now();
        ok(
            &cli(
                &gw.endpoint,
                &[
                    "s3",
                    "cp",
                    "--only-show-errors",
                    src.to_str().unwrap(),
                    &url,
                ],
            ),
            "cp up",
        );
        let up = t.elapsed();
        for g in [&gw, &fresh] {
            let ls = ok(&cli(&g.endpoint, &["s3", "ls", &url]), "ls");
            let fields: Vec<&str> = ls.split_whitespace().collect();
            assert_eq!(fields.len(), 4, "{ls}");
            assert_eq!(fields[2], size.to_string(), "{name}: s3 ls size: {ls}");
            assert_eq!(fields[3], format!("{name}-big"));
        }
        let back = dir.join(format!("{name}.back"));
        let t = Instant::now();
        ok(
            &cli(
                &gw.endpoint,
                &[
                    "s3",
                    "cp",
                    "--only-show-errors",
                    &url,
                    back.to_str().unwrap(),
                ],
            ),
            "cp down",
        );
        let down = t.elapsed();
        assert!(
            same_file(&src, &back),
            "{name}: the file came back different"
        );
        std::fs::remove_file(&back).unwrap();
        let head = ok(
            &cli(
                &fresh.endpoint,
                &[
                    "s3api",
                    "head-object",
                    "--bucket",
                    &b,
                    "--key",
                    &format!("{name}-big"),
                ],
            ),
            "head",
        );
        let h: Value = serde_json::from_str(&head).unwrap();
        assert_eq!(h["ContentLength"].as_u64().unwrap(), size as u64);
        let etag = unquote(&h["ETag"]);
        assert!(
            etag.ends_with(&format!("-{parts}")),
            "{name}: ETag {etag}, {parts} parts expected"
        );
        let secs = |d: std::time::Duration| d.as_secs_f64();
        eprintln!(
            "[figures] {name}: {mbs} MiB up {:.2} s ({:.0} MiB/s), down {:.2} s ({:.0} MiB/s)",
            secs(up),
            mbs as f64 / secs(up),
            secs(down),
            mbs as f64 / secs(down)
        );
    }
    // Deleting removes the manifests too.
    ok(
        &aws2(
            &gw.endpoint,
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
    assert_eq!(
        store_keys(store, &b),
        Vec::<String>::new(),
        "left at the store"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// rclone with 5 MiB chunks: an upload of five parts, `rclone check` clean
/// (by hash and by content), the size exact and the copy down identical.
#[test]
fn rclone_multipart_copy_and_check() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = bucket("rclone");
    mb(&gw, &b);
    let dir = tmpdir("rclone");
    let local = dir.join("local");
    std::fs::create_dir_all(&local).unwrap();
    let size = 23 * MIB + 777;
    let data = random_bytes(size, 23);
    let src = file(&local, "big.bin", &data);
    let env: Vec<(String, String)> = [
        ("TYPE", "s3"),
        ("PROVIDER", "Other"),
        ("ENV_AUTH", "false"),
        ("ACCESS_KEY_ID", AK),
        ("SECRET_ACCESS_KEY", SK),
        ("REGION", "us-east-1"),
        ("ENDPOINT", gw.endpoint.as_str()),
        ("FORCE_PATH_STYLE", "true"),
    ]
    .iter()
    .map(|(k, v)| (format!("RCLONE_CONFIG_SG_{k}"), v.to_string()))
    .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let rclone = |args: &[&str]| run("rclone", args, &env);
    let remote = format!("sg:{b}/dir");
    ok(
        &rclone(&[
            "copyto",
            "--s3-upload-cutoff",
            "5M",
            "--s3-chunk-size",
            "5M",
            src.to_str().unwrap(),
            &format!("{remote}/big.bin"),
        ]),
        "rclone copyto",
    );
    let check = rclone(&["check", local.to_str().unwrap(), &remote]);
    let out = ok(&check, "rclone check");
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("0 differences found"), "{out}{err}");
    assert!(err.contains("1 matching files"), "{err}");
    assert!(
        !err.contains("could not be checked"),
        "rclone compared no hash: {err}"
    );
    ok(
        &rclone(&["check", "--download", local.to_str().unwrap(), &remote]),
        "rclone check --download",
    );
    let lsl = ok(&rclone(&["lsl", &remote]), "rclone lsl");
    assert!(lsl.trim_start().starts_with(&format!("{size} ")), "{lsl}");
    let back = dir.join("back.bin");
    ok(
        &rclone(&[
            "copyto",
            &format!("{remote}/big.bin"),
            back.to_str().unwrap(),
        ]),
        "rclone copy down",
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "rclone copy down differs"
    );
    // rclone's upload was multipart: five parts.
    let h: Value = serde_json::from_str(&ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "head-object",
                "--bucket",
                &b,
                "--key",
                "dir/big.bin",
            ],
        ),
        "head",
    ))
    .unwrap();
    assert!(unquote(&h["ETag"]).ends_with("-5"), "{h}");
    assert_eq!(h["ContentLength"].as_u64().unwrap(), size as u64);
}

/// boto3 low level: parts out of order, a part uploaded twice (the second
/// wins, under a fresh salt), a stale ETag refused, metadata kept, GET by part
/// number, and a retried Complete that leaves the object readable.
#[test]
fn boto3_parts_out_of_order_and_reuploaded() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("reup");
    mb(&gw, &b);
    let dir = tmpdir("reup");
    let mut py = Boto::start();
    let p1 = random_bytes(5 * MIB, 31);
    let p2a = random_bytes(5 * MIB, 32);
    let p2b = random_bytes(5 * MIB, 33);
    let p3 = random_bytes(MIB + 17, 34);
    let (f1, f2a, f2b, f3) = (
        file(&dir, "p1", &p1),
        file(&dir, "p2a", &p2a),
        file(&dir, "p2b", &p2b),
        file(&dir, "p3", &p3),
    );
    let k = "reuploaded";
    let v = py.ok(
        &g,
        "create_multipart_upload",
        json!({"Bucket": b, "Key": k, "Metadata": {"color": "blue"},
               "ContentType": "application/x-test"}),
    );
    let id = v["UploadId"].as_str().unwrap().to_owned();
    let e3 = py.part(&g, &b, k, &id, 3, &f3);
    let e2a = py.part(&g, &b, k, &id, 2, &f2a);
    let e1 = py.part(&g, &b, k, &id, 1, &f1);
    let e2b = py.part(&g, &b, k, &id, 2, &f2b);
    // A part's ETag is the MD5 of its plaintext, as at S3 (the stream salt
    // that keeps a re-upload from reusing a nonce lives in the sealed part
    // record, not in the ETag).
    for (e, p) in [(&e1, &p1), (&e2a, &p2a), (&e2b, &p2b), (&e3, &p3)] {
        assert_eq!(e.as_str(), md5_hex(p), "part ETag {e}");
    }
    // The store has one part 2, the second upload: the first ETag is stale.
    let e = py
        .complete(&g, &b, k, &id, &[(1, &e1), (2, &e2a), (3, &e3)])
        .unwrap_err();
    assert_eq!(e.code, "InvalidPart", "{e:?}");
    py.fails(
        &g,
        "head_object",
        json!({"Bucket": b, "Key": k}),
        "404",
        "after a refused complete",
    );
    let lp = py.ok(
        &g,
        "list_parts",
        json!({"Bucket": b, "Key": k, "UploadId": id}),
    );
    let sizes: Vec<u64> = lp["Parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Size"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sizes,
        [p1.len() as u64, p2b.len() as u64, p3.len() as u64],
        "{lp}"
    );
    // ListParts gives back the ETags UploadPart gave (the second upload's
    // for part 2), and a client resuming the upload completes with them. A
    // second gateway, sharing only the config and the store, answers the same.
    let listed: Vec<String> = lp["Parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| unquote(&p["ETag"]))
        .collect();
    assert_eq!(listed, [e1.clone(), e2b.clone(), e3.clone()], "{lp}");
    let other = Gw::start(&GwSpec::simple(store));
    let lp2 = py.ok(
        &via(&other),
        "list_parts",
        json!({"Bucket": b, "Key": k, "UploadId": id, "MaxParts": 2}),
    );
    let page: Vec<String> = lp2["Parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| unquote(&p["ETag"]))
        .collect();
    assert_eq!(page, [e1.clone(), e2b.clone()], "{lp2}");
    assert_eq!(lp2["IsTruncated"], true, "{lp2}");
    drop(other);
    let tags = |store: &Store| -> usize {
        store_keys(store, &b)
            .iter()
            .filter(|k| k.starts_with(".sealgate/up/"))
            .count()
    };
    // The upload record and one sealed record per part upload: part 2's two
    // uploads each keep their own (records are keyed by the store's ETag of
    // the part, so re-sends never overwrite each other's); no listing shows
    // them, and completion removes them all.
    assert_eq!(tags(store), 5);
    let l = py.ok(&g, "list_objects_v2", json!({"Bucket": b}));
    assert_eq!(l["KeyCount"], 0, "{l}");
    let parts = [
        (1, listed[0].as_str()),
        (2, listed[1].as_str()),
        (3, listed[2].as_str()),
    ];
    let done = py.complete(&g, &b, k, &id, &parts).unwrap();
    assert_eq!(tags(store), 0, "part tags left after completion");
    let want_etag = multipart_etag(&[&p1, &p2b, &p3]);
    assert_eq!(unquote(&done["ETag"]), want_etag);
    let all: Vec<u8> = [&p1[..], &p2b, &p3].concat();
    let out = dir.join("out");
    let (v, got) = py.get(&g, json!({"Bucket": b, "Key": k}), &out).unwrap();
    assert!(
        got == all,
        "content differs from the second upload of part 2"
    );
    assert_eq!(unquote(&v["ETag"]), want_etag);
    assert_eq!(v["ContentType"], "application/x-test");
    assert_eq!(v["Metadata"], json!({"color": "blue"}));
    let h = py.ok(&g, "head_object", json!({"Bucket": b, "Key": k}));
    assert_eq!(h["ContentLength"].as_u64().unwrap(), all.len() as u64);
    assert_eq!(unquote(&h["ETag"]), want_etag);
    for (n, p) in [(1, &p1), (2, &p2b), (3, &p3)] {
        let (v, got) = py
            .get(&g, json!({"Bucket": b, "Key": k, "PartNumber": n}), &out)
            .unwrap();
        assert!(got == **p, "part {n}");
        assert_eq!(v["PartsCount"], 3);
    }
    let l = py.ok(&g, "list_objects_v2", json!({"Bucket": b}));
    assert_eq!(l["KeyCount"], 1, "{l}");
    assert_eq!(l["Contents"][0]["Size"].as_u64().unwrap(), all.len() as u64);
    assert_eq!(unquote(&l["Contents"][0]["ETag"]), want_etag);
    // A client that retries its Complete (a timeout, a lost answer) gets the
    // same answer again; another part list is refused; the object is intact.
    let again = py.complete(&g, &b, k, &id, &parts).unwrap();
    assert_eq!(unquote(&again["ETag"]), want_etag);
    let e = py
        .complete(&g, &b, k, &id, &[(1, &e1), (2, &e2a), (3, &e3)])
        .unwrap_err();
    assert_eq!(e.code, "NoSuchUpload", "{e:?}");
    let fresh = Gw::start(&GwSpec::simple(store));
    let (_, got) = py
        .get(&via(&fresh), json!({"Bucket": b, "Key": k}), &out)
        .expect("read after a retried complete");
    assert!(got == all);
}

/// ListMultipartUploads pages with its markers, as S3 does: boto3 page by
/// page, and aws cli's paginator, see every upload once, with the ids given.
#[test]
fn listing_uploads_pages_with_markers() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("uppages");
    mb(&gw, &b);
    let mut py = Boto::start();
    let mut given: Vec<(String, String)> = Vec::new();
    for k in ["a", "b", "b", "c"] {
        given.push((k.to_owned(), py.create(&g, &b, k)));
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut args = json!({"Bucket": b, "MaxUploads": 1});
    for page in 0.. {
        assert!(page < 10, "pagination does not end: {seen:?}");
        let l = py.ok(&g, "list_multipart_uploads", args.clone());
        let ups = l["Uploads"].as_array().cloned().unwrap_or_default();
        assert!(ups.len() <= 1, "{l}");
        for u in &ups {
            seen.push((
                u["Key"].as_str().unwrap().to_owned(),
                u["UploadId"].as_str().unwrap().to_owned(),
            ));
        }
        if l["IsTruncated"] != true {
            break;
        }
        args = json!({"Bucket": b, "MaxUploads": 1,
                      "KeyMarker": l["NextKeyMarker"], "UploadIdMarker": l["NextUploadIdMarker"]});
    }
    let order: Vec<&str> = seen.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(order, ["a", "b", "b", "c"], "pages in key order");
    let mut want = given.clone();
    let mut got = seen.clone();
    got.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    want.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    assert_eq!(got, want, "pages: {seen:?}");
    // A key marker alone skips every upload of that key.
    let l = py.ok(
        &g,
        "list_multipart_uploads",
        json!({"Bucket": b, "KeyMarker": "b"}),
    );
    let keys: Vec<&str> = l["Uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["c"], "{l}");
    let o = ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "list-multipart-uploads",
                "--bucket",
                &b,
                "--page-size",
                "1",
            ],
        ),
        "aws cli list-multipart-uploads",
    );
    let v: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["Uploads"].as_array().unwrap().len(), 4, "{o}");
    for (k, id) in &given {
        py.ok(
            &g,
            "abort_multipart_upload",
            json!({"Bucket": b, "Key": k, "UploadId": id}),
        );
    }
}

/// An aborted upload leaves nothing at the store, and its id is dead.
#[test]
fn boto3_abort_leaves_nothing() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("abort");
    mb(&gw, &b);
    let dir = tmpdir("abort");
    let mut py = Boto::start();
    let p = file(&dir, "p", &random_bytes(5 * MIB, 41));
    let k = "aborted";
    let id = py.create(&g, &b, k);
    let e1 = py.part(&g, &b, k, &id, 1, &p);
    py.part(&g, &b, k, &id, 2, &p);
    assert_eq!(store_uploads(store, &b).len(), 1);
    py.ok(
        &g,
        "abort_multipart_upload",
        json!({"Bucket": b, "Key": k, "UploadId": id}),
    );
    assert_eq!(store_keys(store, &b), Vec::<String>::new());
    assert_eq!(store_uploads(store, &b), vec![]);
    let l = py.ok(&g, "list_multipart_uploads", json!({"Bucket": b}));
    assert!(
        l.get("Uploads")
            .is_none_or(|u| u.as_array().unwrap().is_empty()),
        "{l}"
    );
    py.fails(
        &g,
        "upload_part",
        json!({"Bucket": b, "Key": k, "UploadId": id, "PartNumber": 3, "Body": "x"}),
        "NoSuchUpload",
        "part after abort",
    );
    let e = py.complete(&g, &b, k, &id, &[(1, &e1)]).unwrap_err();
    assert_eq!(e.code, "NoSuchUpload", "{e:?}");
    assert_eq!(store_keys(store, &b), Vec::<String>::new());

    // An upload id is bound to its key, and forged ids are refused.
    let id = py.create(&g, &b, k);
    for (key, upload_id) in [
        ("other", id.as_str()),
        (k, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        py.fails(
            &g,
            "upload_part",
            json!({"Bucket": b, "Key": key, "UploadId": upload_id, "PartNumber": 1, "Body": "x"}),
            "NoSuchUpload",
            "foreign id",
        );
    }
    // ListMultipartUploads gives back the id CreateMultipartUpload gave, so
    // a client can resume the upload it finds (list its parts, add one,
    // complete); an upload found by listing can be aborted.
    let e1 = py.part(&g, &b, k, &id, 1, &p);
    let l = py.ok(&g, "list_multipart_uploads", json!({"Bucket": b}));
    let ups = l["Uploads"].as_array().unwrap();
    assert_eq!(ups.len(), 1, "{l}");
    assert_eq!(ups[0]["Key"], k);
    let listed = ups[0]["UploadId"].as_str().unwrap();
    assert_eq!(listed, id, "{l}");
    let lp = py.ok(
        &g,
        "list_parts",
        json!({"Bucket": b, "Key": k, "UploadId": listed}),
    );
    assert_eq!(unquote(&lp["Parts"][0]["ETag"]), e1, "{lp}");
    py.ok(
        &g,
        "abort_multipart_upload",
        json!({"Bucket": b, "Key": k, "UploadId": listed}),
    );
    assert_eq!(store_uploads(store, &b), vec![]);
    assert_eq!(store_keys(store, &b), Vec::<String>::new());

    // Without its kept header (lost, or written by a gateway that failed to
    // keep it), a listed upload shows the store's id, which can only abort,
    // and the abort still removes what was kept about the upload.
    let id = py.create(&g, &b, k);
    py.part(&g, &b, k, &id, 1, &p);
    let record = store_keys(store, &b)
        .into_iter()
        .find(|k| k.starts_with(".sealgate/up/") && k.ends_with("/id"))
        .expect("the upload's kept header");
    ok(
        &store_aws(store, &["s3", "rm", &format!("s3://{b}/{record}")]),
        "rm record",
    );
    let l = py.ok(&g, "list_multipart_uploads", json!({"Bucket": b}));
    let listed = l["Uploads"][0]["UploadId"].as_str().unwrap().to_owned();
    assert!(listed.starts_with("store."), "{l}");
    py.fails(
        &g,
        "list_parts",
        json!({"Bucket": b, "Key": k, "UploadId": listed}),
        "NoSuchUpload",
        "list parts by a store id",
    );
    py.ok(
        &g,
        "abort_multipart_upload",
        json!({"Bucket": b, "Key": k, "UploadId": listed}),
    );
    assert_eq!(store_uploads(store, &b), vec![]);
    assert_eq!(store_keys(store, &b), Vec::<String>::new());
}

/// Complete with a wrong part list fails as S3 does, leaves nothing visible,
/// and leaves the upload completable.
#[test]
fn boto3_complete_with_a_wrong_part_list() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("badlist");
    mb(&gw, &b);
    let dir = tmpdir("badlist");
    let mut py = Boto::start();
    let d: Vec<Vec<u8>> = [5 * MIB, MIB, 5 * MIB, 1000]
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, 50 + i as u64))
        .collect();
    let files: Vec<PathBuf> = d
        .iter()
        .enumerate()
        .map(|(i, x)| file(&dir, &format!("p{}", i + 1), x))
        .collect();
    let k = "victim";
    let id = py.create(&g, &b, k);
    let e: Vec<String> = (0..4)
        .map(|i| py.part(&g, &b, k, &id, i as i32 + 1, &files[i]))
        .collect();
    // A part of another upload of the same key, with other content.
    let other = py.create(&g, &b, k);
    let foreign = py.part(&g, &b, k, &other, 1, &files[2]);
    py.ok(
        &g,
        "abort_multipart_upload",
        json!({"Bucket": b, "Key": k, "UploadId": other}),
    );
    let mut flipped = e[0].clone();
    flipped.replace_range(31.., if flipped.ends_with('0') { "1" } else { "0" });
    let other_md5 = md5_hex(&d[2]);
    // (what, part list, expected error)
    type Case<'a> = (&'a str, Vec<(i32, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a flipped ETag",
            vec![(1, &flipped), (3, &e[2])],
            "InvalidPart",
        ),
        (
            "the MD5 of other bytes",
            vec![(1, &other_md5), (3, &e[2])],
            "InvalidPart",
        ),
        (
            "another part's ETag",
            vec![(1, &e[2]), (3, &e[2])],
            "InvalidPart",
        ),
        (
            "a part of another upload",
            vec![(1, &foreign), (3, &e[2])],
            "InvalidPart",
        ),
        (
            "missing part",
            vec![(1, &e[0]), (3, &e[2]), (5, &e[3])],
            "InvalidPart",
        ),
        (
            "out of order",
            vec![(3, &e[2]), (1, &e[0])],
            "InvalidPartOrder",
        ),
        (
            "duplicate",
            vec![(1, &e[0]), (1, &e[0])],
            "InvalidPartOrder",
        ),
        (
            "small part not last",
            vec![(1, &e[0]), (2, &e[1]), (3, &e[2])],
            "EntityTooSmall",
        ),
        (
            "small first part",
            vec![(2, &e[1]), (4, &e[3])],
            "EntityTooSmall",
        ),
    ];
    for (what, parts, code) in cases {
        let r = py.complete(&g, &b, k, &id, &parts);
        match r {
            Ok(v) => panic!("{what}: complete succeeded: {v}"),
            Err(err) => assert_eq!(err.code, code, "{what}: {err:?}"),
        }
        py.fails(
            &g,
            "head_object",
            json!({"Bucket": b, "Key": k}),
            "404",
            what,
        );
        // Only the sealed tags of the parts of the upload in progress.
        assert_eq!(
            store_keys(store, &b)
                .into_iter()
                .filter(|k| !k.starts_with(".sealgate/up/") && !k.starts_with(".sealgate/ix/"))
                .collect::<Vec<_>>(),
            Vec::<String>::new(),
            "{what}: left at the store"
        );
        assert_eq!(
            store_uploads(store, &b).len(),
            1,
            "{what}: the upload is gone"
        );
    }
    py.fails(
        &g,
        "complete_multipart_upload",
        json!({"Bucket": b, "Key": k, "UploadId": id, "MultipartUpload": {"Parts": []}}),
        "MalformedXML",
        "no parts",
    );
    // The upload is still whole: complete it without part 2 (allowed).
    let v = py
        .complete(&g, &b, k, &id, &[(1, &e[0]), (3, &e[2]), (4, &e[3])])
        .unwrap();
    assert_eq!(unquote(&v["ETag"]), multipart_etag(&[&d[0], &d[2], &d[3]]));
    let (_, got) = py
        .get(&g, json!({"Bucket": b, "Key": k}), &dir.join("out"))
        .unwrap();
    assert!(got == [&d[0][..], &d[2], &d[3]].concat());
    assert_eq!(store_uploads(store, &b), vec![]);
}

/// Two gateways with the same configuration serve one upload, its parts
/// alternating between them; a gateway restarts in the middle of an upload.
#[test]
fn two_gateways_share_an_upload_and_a_restart_loses_nothing() {
    let store = garage();
    let gw1 = Gw::start(&GwSpec::simple(store));
    let gw2 = Gw::start(&GwSpec::simple(store));
    let b = bucket("twogw");
    mb(&gw1, &b);
    let dir = tmpdir("twogw");
    let mut py = Boto::start();
    let d: Vec<Vec<u8>> = [5 * MIB, 5 * MIB, 5 * MIB, 333_333]
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, 60 + i as u64))
        .collect();
    let files: Vec<PathBuf> = d
        .iter()
        .enumerate()
        .map(|(i, x)| file(&dir, &format!("p{}", i + 1), x))
        .collect();
    let all = d.concat();
    let refs: Vec<&[u8]> = d.iter().map(|x| &x[..]).collect();
    let out = dir.join("out");

    let (g1, g2) = (via(&gw1), via(&gw2));
    let k = "alternating";
    let id = py.create(&g1, &b, k);
    let e: Vec<String> = (0..4)
        .map(|i| {
            let g = if i % 2 == 0 { &g1 } else { &g2 };
            py.part(g, &b, k, &id, i as i32 + 1, &files[i])
        })
        .collect();
    let parts: Vec<(i32, &str)> = e
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i32 + 1, e.as_str()))
        .collect();
    let v = py.complete(&g2, &b, k, &id, &parts).unwrap();
    assert_eq!(unquote(&v["ETag"]), multipart_etag(&refs));
    for g in [&g1, &g2] {
        let (v, got) = py.get(g, json!({"Bucket": b, "Key": k}), &out).unwrap();
        assert!(got == all, "read through {}", g.endpoint);
        assert_eq!(unquote(&v["ETag"]), multipart_etag(&refs));
    }

    // A restart between parts: the upload id still works, on either gateway.
    let k = "restarted";
    let id = py.create(&g1, &b, k);
    let mut e = vec![py.part(&g1, &b, k, &id, 1, &files[0])];
    let gw1 = gw1.restart();
    e.push(py.part(&g1, &b, k, &id, 2, &files[1]));
    e.push(py.part(&g2, &b, k, &id, 3, &files[2]));
    let gw1 = gw1.restart();
    e.push(py.part(&g1, &b, k, &id, 4, &files[3]));
    let parts: Vec<(i32, &str)> = e
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i32 + 1, e.as_str()))
        .collect();
    py.complete(&g1, &b, k, &id, &parts).unwrap();
    let gw2 = gw2.restart();
    for g in [&g1, &g2] {
        let (_, got) = py.get(g, json!({"Bucket": b, "Key": k}), &out).unwrap();
        assert!(got == all, "read through {}", g.endpoint);
        let l = py.ok(g, "list_objects_v2", json!({"Bucket": b}));
        for o in l["Contents"].as_array().unwrap() {
            assert_eq!(o["Size"].as_u64().unwrap(), all.len() as u64, "{o}");
            assert_eq!(unquote(&o["ETag"]), multipart_etag(&refs));
        }
    }
    drop((gw1, gw2));
}

/// xorshift64, for reproducible "random" ranges.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Ranged GETs on a multipart object (three parts of 5 MiB and a short one):
/// edges, part and segment boundaries, ranges across parts, suffixes, and a
/// reproducible pseudo-random set, each against the local bytes.
#[test]
fn ranged_reads_on_a_multipart_object() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("ranges");
    mb(&gw, &b);
    let dir = tmpdir("ranges");
    let mut py = Boto::start();
    let sizes = [5 * MIB, 5 * MIB, 5 * MIB, 123_457];
    let d: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, 70 + i as u64))
        .collect();
    let k = "ranged";
    let id = py.create(&g, &b, k);
    let e: Vec<String> = d
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let f = file(&dir, &format!("p{i}"), x);
            py.part(&g, &b, k, &id, i as i32 + 1, &f)
        })
        .collect();
    let parts: Vec<(i32, &str)> = e
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i32 + 1, e.as_str()))
        .collect();
    py.complete(&g, &b, k, &id, &parts).unwrap();
    let all = d.concat();
    let n = all.len() as u64;
    let seg = 65536u64;
    let p = 5 * MIB as u64;

    // (first, last) inclusive.
    let mut ranges: Vec<(u64, u64)> = vec![
        (0, 0),
        (n - 1, n - 1),
        (0, n - 1),
        (1, n - 2),
        (seg - 1, seg),
        (seg, seg),
        (seg, 2 * seg - 1),
        (3 * seg - 5, 7 * seg + 5),
        (p - seg, p - 1),
        (p + seg - 1, p + seg),
        (2 * p + 17 * seg, 2 * p + 17 * seg),
        (3 * p + seg - 1, 3 * p + seg),
        (3 * p, n - 1),
        (p - 100, p + 100),
        (p - 1, 2 * p),
        (p, 2 * p - 1),
        (p - 1, 3 * p),
        (10, 3 * p + 10),
        (2 * p - 1, n - 1),
    ];
    for i in 1..4 {
        ranges.push((i * p - 1, i * p - 1));
        ranges.push((i * p, i * p));
        ranges.push((i * p - 1, i * p));
    }
    let mut rng = Rng(0x5EA1_6A7E);
    while ranges.len() < 60 {
        let a = rng.below(n);
        // Lengths from one byte to several parts, spread over magnitudes.
        let magnitude = rng.below(25);
        let len = 1 + rng.below(1 << magnitude);
        ranges.push((a, (a + len - 1).min(n - 1)));
    }
    let out = dir.join("out");
    for &(a, z) in &ranges {
        let range = format!("bytes={a}-{z}");
        let (v, got) = py
            .get(&g, json!({"Bucket": b, "Key": k, "Range": range}), &out)
            .unwrap_or_else(|e| panic!("{range}: {e:?}"));
        assert!(got == all[a as usize..=z as usize], "{range}: wrong bytes");
        assert_eq!(v["ContentRange"], format!("bytes {a}-{z}/{n}"), "{range}");
        assert_eq!(v["ContentLength"].as_u64().unwrap(), z - a + 1, "{range}");
    }
    // Suffix and open ranges, and a few through aws cli v2.
    for (range, a) in [
        ("bytes=-1".to_owned(), n - 1),
        ("bytes=-70000".to_owned(), n - 70000),
        (format!("bytes={}-", 3 * p - 3), 3 * p - 3),
        (format!("bytes={}-{}", p - 7, p + 7), p - 7),
    ] {
        let o = ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3api",
                    "get-object",
                    "--bucket",
                    &b,
                    "--key",
                    k,
                    "--range",
                    &range,
                    out.to_str().unwrap(),
                ],
            ),
            &range,
        );
        let v: Value = serde_json::from_str(&o).unwrap();
        let z = v["ContentRange"]
            .as_str()
            .unwrap()
            .split(['-', '/'])
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert_eq!(v["ContentRange"], format!("bytes {a}-{z}/{n}"), "{range}");
        assert!(
            std::fs::read(&out).unwrap() == all[a as usize..=z as usize],
            "{range}"
        );
    }
    py.fails(
        &g,
        "get_object",
        json!({"Bucket": b, "Key": k, "Range": format!("bytes={n}-")}),
        "InvalidRange",
        "past the end",
    );
    for (i, x) in d.iter().enumerate() {
        let h = py.ok(
            &g,
            "head_object",
            json!({"Bucket": b, "Key": k, "PartNumber": i + 1}),
        );
        assert_eq!(h["ContentLength"].as_u64().unwrap(), x.len() as u64);
        assert_eq!(h["PartsCount"], 4);
    }
    eprintln!(
        "[figures] {} ranged GETs checked on a {n}-byte object of 4 parts",
        ranges.len() + 4
    );
}

/// Reads an object through the gateway with aws cli v2 and boto3; both must
/// fail. `Ok` only when neither returned any bytes as the object.
fn refused(py: &mut Boto, gw: &Gw, b: &str, k: &str, dir: &Path, what: &str, good: &[u8]) {
    let out = dir.join("tampered-out");
    let _ = std::fs::remove_file(&out);
    let o = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "get-object",
            "--bucket",
            b,
            "--key",
            k,
            out.to_str().unwrap(),
        ],
    );
    if o.status.success() {
        let got = std::fs::read(&out).unwrap();
        panic!(
            "{what}: aws cli got {} bytes of a tampered object (equal to the original: {})",
            got.len(),
            got == good
        );
    }
    match py.get(&via(gw), json!({"Bucket": b, "Key": k}), &out) {
        // Refused before the body (the integrity error), or the body cut
        // where a segment fails: nothing else (say NoSuchKey) counts here.
        Err(e) => {
            eprintln!("{what}: refused: {} {}", e.code, e.message);
            assert!(
                e.code == "InternalError" || e.code.starts_with("Client:"),
                "{what}: {e:?}"
            );
        }
        Ok((_, got)) => panic!(
            "{what}: boto3 got {} bytes (equal to the original: {})",
            got.len(),
            got == good
        ),
    }
}

/// A multipart object rewritten at the store by its operator is never
/// served: a flipped byte, parts dropped or swapped by a re-completed upload
/// at the store, a deleted or substituted manifest, a move to another key.
#[test]
fn tampering_with_a_multipart_object_at_the_store() {
    use sealgate::envelope::size::stream_len;
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let s = at_store(store);
    let b = bucket("mptamper");
    mb(&gw, &b);
    let dir = tmpdir("mptamper");
    let mut py = Boto::start();
    let sizes = [5 * MIB, 5 * MIB, 300_000];
    let d: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, 80 + i as u64))
        .collect();
    let files: Vec<PathBuf> = d
        .iter()
        .enumerate()
        .map(|(i, x)| file(&dir, &format!("p{i}"), x))
        .collect();
    let all = d.concat();
    // Ciphertext ranges of the three streams, inclusive.
    let mut streams = Vec::new();
    let mut off = 0u64;
    for &n in &sizes {
        let l = stream_len(n as u64);
        streams.push((off, off + l - 1));
        off += l;
    }
    let ct_len = off;
    let manifests = |store: &Store| -> Vec<String> {
        store_keys(store, &b)
            .into_iter()
            .filter(|k| k.starts_with(".sealgate/mp/"))
            .collect()
    };
    // Writes an honest multipart object; returns its store metadata and manifest key.
    let honest = |py: &mut Boto, k: &str| -> (Value, String) {
        let before = manifests(store);
        let id = py.create(&g, &b, k);
        let e: Vec<String> = (0..3)
            .map(|i| py.part(&g, &b, k, &id, i as i32 + 1, &files[i]))
            .collect();
        let parts: Vec<(i32, &str)> = e
            .iter()
            .enumerate()
            .map(|(i, e)| (i as i32 + 1, e.as_str()))
            .collect();
        py.complete(&g, &b, k, &id, &parts).unwrap();
        let (_, got) = py
            .get(&g, json!({"Bucket": b, "Key": k}), &dir.join("honest"))
            .unwrap();
        assert!(got == all);
        let h = py.ok(&s, "head_object", json!({"Bucket": b, "Key": k}));
        assert_eq!(h["ContentLength"].as_u64().unwrap(), ct_len);
        let m: Vec<String> = manifests(store)
            .into_iter()
            .filter(|m| !before.contains(m))
            .collect();
        assert_eq!(m.len(), 1, "one new manifest: {m:?}");
        (h, m[0].clone())
    };
    // The operator rebuilds `k` at the store from the given ciphertext ranges
    // of its current body, keeping its metadata (so its `sg` header).
    let recomplete = |py: &mut Boto, k: &str, meta: &Value, ranges: &[(u64, u64)]| {
        let src = format!("{b}/{k}-orig");
        py.ok(
            &s,
            "copy_object",
            json!({"Bucket": b, "Key": format!("{k}-orig"), "CopySource": format!("{b}/{k}")}),
        );
        let v = py.ok(
            &s,
            "create_multipart_upload",
            json!({"Bucket": b, "Key": k, "Metadata": meta["Metadata"], "ContentType": meta["ContentType"]}),
        );
        let id = v["UploadId"].as_str().unwrap().to_owned();
        let mut parts = Vec::new();
        for (i, (a, z)) in ranges.iter().enumerate() {
            let r = py.ok(
                &s,
                "upload_part_copy",
                json!({"Bucket": b, "Key": k, "UploadId": id, "PartNumber": i + 1,
                       "CopySource": src, "CopySourceRange": format!("bytes={a}-{z}")}),
            );
            parts.push(json!({"PartNumber": i + 1, "ETag": r["CopyPartResult"]["ETag"]}));
        }
        py.ok(
            &s,
            "complete_multipart_upload",
            json!({"Bucket": b, "Key": k, "UploadId": id, "MultipartUpload": {"Parts": parts}}),
        );
        py.ok(
            &s,
            "delete_object",
            json!({"Bucket": b, "Key": format!("{k}-orig")}),
        );
    };

    // Control: the store re-completing the same streams in the same order
    // changes nothing a reader can see.
    let (meta, _) = honest(&mut py, "control");
    recomplete(&mut py, "control", &meta, &streams);
    let fresh = Gw::start(&GwSpec::simple(store));
    for gw in [&gw, &fresh] {
        let (_, got) = py
            .get(
                &via(gw),
                json!({"Bucket": b, "Key": "control"}),
                &dir.join("c"),
            )
            .unwrap();
        assert!(got == all, "control");
    }
    drop(fresh);

    // A flipped byte in the middle of the body.
    let (meta, _) = honest(&mut py, "flip");
    let raw = dir.join("raw");
    py.request(
        &s,
        "get_object",
        json!({"Bucket": b, "Key": "flip"}),
        Some(&raw),
    )
    .unwrap();
    let mut body = std::fs::read(&raw).unwrap();
    let mid = body.len() / 2;
    body[mid] ^= 0x01;
    std::fs::write(&raw, &body).unwrap();
    py.ok(
        &s,
        "put_object",
        json!({"Bucket": b, "Key": "flip", "Body": {"$file": raw},
               "Metadata": meta["Metadata"], "ContentType": meta["ContentType"]}),
    );
    refused(&mut py, &gw, &b, "flip", &dir, "flipped byte", &all);
    // A range over the flipped byte fails too; one away from it still reads.
    assert!(streams[1].0 + 24 <= mid as u64 && mid as u64 <= streams[1].1 - 32);
    let o = mid as u64 - streams[1].0 - 24;
    let pt_mid = 5 * MIB as u64 + o / 65552 * 65536 + (o % 65552).min(65535);
    let r = format!("bytes={}-{}", pt_mid - 10, pt_mid + 10);
    assert!(
        py.get(
            &g,
            json!({"Bucket": b, "Key": "flip", "Range": r}),
            &dir.join("r")
        )
        .is_err(),
        "{r}"
    );
    let (_, got) = py
        .get(
            &g,
            json!({"Bucket": b, "Key": "flip", "Range": "bytes=0-99"}),
            &dir.join("r"),
        )
        .unwrap();
    assert!(got == all[..100]);

    // A part dropped, and two parts swapped, by re-completing at the store.
    let (meta, _) = honest(&mut py, "dropped");
    recomplete(&mut py, "dropped", &meta, &[streams[0], streams[2]]);
    refused(&mut py, &gw, &b, "dropped", &dir, "part dropped", &all);
    let (meta, _) = honest(&mut py, "swapped");
    recomplete(
        &mut py,
        "swapped",
        &meta,
        &[streams[1], streams[0], streams[2]],
    );
    refused(&mut py, &gw, &b, "swapped", &dir, "parts swapped", &all);
    for r in ["bytes=0-99", "bytes=5242870-5242890"] {
        assert!(
            py.get(
                &g,
                json!({"Bucket": b, "Key": "swapped", "Range": r}),
                &dir.join("r")
            )
            .is_err(),
            "{r}"
        );
    }
    // The last part dropped and the first one doubled: same length.
    let (meta, _) = honest(&mut py, "doubled");
    recomplete(&mut py, "doubled", &meta, &[streams[0], streams[0]]);
    refused(&mut py, &gw, &b, "doubled", &dir, "first part twice", &all);

    // The manifest deleted; another object's manifest put in its place.
    let (_, m) = honest(&mut py, "nomanifest");
    py.ok(&s, "delete_object", json!({"Bucket": b, "Key": m}));
    let (_, m2) = honest(&mut py, "othermanifest");
    let (_, m3) = honest(&mut py, "donor");
    py.ok(
        &s,
        "copy_object",
        json!({"Bucket": b, "Key": m2, "CopySource": format!("{b}/{m3}")}),
    );
    // One bit of the manifest's part table flipped (the first salt).
    let (_, m4) = honest(&mut py, "badmanifest");
    let mf = dir.join("manifest");
    py.request(&s, "get_object", json!({"Bucket": b, "Key": m4}), Some(&mf))
        .unwrap();
    let mut raw = std::fs::read(&mf).unwrap();
    raw[17 + 12] ^= 0x01;
    std::fs::write(&mf, &raw).unwrap();
    py.ok(
        &s,
        "put_object",
        json!({"Bucket": b, "Key": m4, "Body": {"$file": mf}}),
    );
    // A multipart object moved to another key (its manifest stays in place).
    py.ok(
        &s,
        "copy_object",
        json!({"Bucket": b, "Key": "moved", "CopySource": format!("{b}/donor")}),
    );
    // The gateway that wrote them may still serve them from its cache of
    // authenticated views, but only the original bytes.
    for k in ["nomanifest", "othermanifest", "badmanifest"] {
        if let Ok((_, got)) = py.get(&g, json!({"Bucket": b, "Key": k}), &dir.join("w")) {
            assert!(got == all, "{k}: wrong bytes from the cache");
        }
    }
    // A gateway that has not read these objects before refuses them.
    let gw = gw.restart();
    refused(
        &mut py,
        &gw,
        &b,
        "nomanifest",
        &dir,
        "manifest deleted",
        &all,
    );
    refused(
        &mut py,
        &gw,
        &b,
        "othermanifest",
        &dir,
        "manifest substituted",
        &all,
    );
    refused(
        &mut py,
        &gw,
        &b,
        "badmanifest",
        &dir,
        "manifest bit flipped",
        &all,
    );
    refused(
        &mut py,
        &gw,
        &b,
        "moved",
        &dir,
        "moved to another key",
        &all,
    );
    // Untouched objects still read.
    let (_, got) = py
        .get(&g, json!({"Bucket": b, "Key": "donor"}), &dir.join("d"))
        .unwrap();
    assert!(got == all);
}

/// Every entry of a bucket's listing (ListObjectsV2, pages of `max`), and
/// the number of pages.
fn list_all(py: &mut Boto, ep: &Ep, b: &str, max: u32) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for pages in 1.. {
        let mut args = json!({"Bucket": b, "MaxKeys": max});
        if let Some(t) = &token {
            args["ContinuationToken"] = json!(t);
        }
        let l = py.ok(ep, "list_objects_v2", args);
        let c = l["Contents"].as_array().cloned().unwrap_or_default();
        assert_eq!(l["KeyCount"].as_u64().unwrap_or(0), c.len() as u64, "{l}");
        all.extend(c);
        match l["NextContinuationToken"].as_str() {
            Some(t) if l["IsTruncated"] == true => token = Some(t.to_owned()),
            _ => return (all, pages),
        }
    }
    unreachable!()
}

/// Many multipart objects listed by a cold gateway (caches empty) and a warm
/// one: exact sizes and multipart ETags, equal to HEAD; manifests hidden.
#[test]
fn listing_multipart_objects_cold_and_warm() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("list");
    mb(&gw, &b);
    let dir = tmpdir("list");
    let mut py = Boto::start();
    let n = env_usize("SEALGATE_TEST_LIST_N", 200);
    let mut want = std::collections::BTreeMap::new();
    let t = Instant::now();
    for i in 0..n {
        let k = format!("obj/{i:05}");
        let data = random_bytes(100 + i * 37, 900 + i as u64);
        let f = file(&dir, "p", &data);
        let id = py.create(&g, &b, &k);
        let e = py.part(&g, &b, &k, &id, 1, &f);
        py.complete(&g, &b, &k, &id, &[(1, &e)]).unwrap();
        want.insert(k, (data.len() as u64, multipart_etag(&[&data])));
    }
    eprintln!(
        "[figures] {n} single-part multipart uploads: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let check = |c: &[Value], what: &str| {
        assert_eq!(c.len(), n, "{what}");
        for o in c {
            let k = o["Key"].as_str().unwrap();
            let (size, etag) = &want[k];
            assert_eq!(o["Size"].as_u64().unwrap(), *size, "{what}: {k}");
            assert_eq!(&unquote(&o["ETag"]), etag, "{what}: {k}");
        }
    };
    // (The first call of a boto3 client builds it: not part of the figures.)
    py.ok(&at_store(store), "head_bucket", json!({"Bucket": b}));
    let t = Instant::now();
    let (l, _) = list_all(&mut py, &at_store(store), &b, 1000);
    let direct = t.elapsed();
    assert_eq!(l.len(), 2 * n, "objects and manifests at the store");
    // Cold: a restarted gateway, caches empty (its first request, after one
    // that reads no object).
    let gw = gw.restart();
    py.ok(&g, "head_bucket", json!({"Bucket": b}));
    let t = Instant::now();
    let (l, pages) = list_all(&mut py, &g, &b, 1000);
    let cold = t.elapsed();
    check(&l, "cold");
    let t = Instant::now();
    let (l, _) = list_all(&mut py, &g, &b, 1000);
    let warm = t.elapsed();
    check(&l, "warm");
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "[figures] listing {n} multipart objects ({pages} pages): store direct {:.0} ms, gateway cold {:.0} ms, warm {:.0} ms",
        ms(direct),
        ms(cold),
        ms(warm)
    );
    // Pages of 50: the manifests (which sort first) never show, nothing is lost.
    let (l, _) = list_all(&mut py, &g, &b, 50);
    let seen: Vec<&str> = l.iter().map(|o| o["Key"].as_str().unwrap()).collect();
    assert_eq!(seen, want.keys().map(String::as_str).collect::<Vec<_>>());
    // aws cli v1 listing (ListObjectsV2 with its own paging) and HEAD agree.
    let ls = ok(
        &aws1(
            &gw.endpoint,
            &["s3", "ls", "--recursive", &format!("s3://{b}")],
        ),
        "aws1 ls",
    );
    assert_eq!(ls.lines().count(), n, "{ls}");
    for line in ls.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[2].parse::<u64>().unwrap(), want[f[3]].0, "{line}");
    }
    let fresh = Gw::start(&GwSpec::simple(store));
    for (k, (size, etag)) in &want {
        let h = py.ok(&via(&fresh), "head_object", json!({"Bucket": b, "Key": k}));
        assert_eq!(h["ContentLength"].as_u64().unwrap(), *size, "{k}");
        assert_eq!(&unquote(&h["ETag"]), etag, "{k}");
    }
}

/// A client that sends its Complete again while the first is still running
/// (a timeout, a retry, or two completers racing) must not lose the object:
/// whichever Complete loses at the store must leave the winner's manifest.
#[test]
fn concurrent_completes_of_one_upload_leave_a_readable_object() {
    let store = garage();
    let gw1 = Gw::start(&GwSpec::simple(store));
    let gw2 = Gw::start(&GwSpec::simple(store));
    let b = bucket("race");
    mb(&gw1, &b);
    let dir = tmpdir("race");
    let (mut py1, mut py2) = (Boto::start(), Boto::start());
    let d: Vec<Vec<u8>> = [5 * MIB, 1000]
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, 90 + i as u64))
        .collect();
    let files: Vec<PathBuf> = d
        .iter()
        .enumerate()
        .map(|(i, x)| file(&dir, &format!("p{i}"), x))
        .collect();
    let all = d.concat();
    let (g1, g2) = (via(&gw1), via(&gw2));
    for round in 0..6 {
        let k = format!("raced-{round}");
        let id = py1.create(&g1, &b, &k);
        let e: Vec<String> = (0..2)
            .map(|i| py1.part(&g1, &b, &k, &id, i as i32 + 1, &files[i]))
            .collect();
        let parts = [(1, e[0].as_str()), (2, e[1].as_str())];
        // Same gateway or two gateways, same part list both times.
        let second = if round % 2 == 0 { &g1 } else { &g2 };
        py1.send(
            &g1,
            "complete_multipart_upload",
            complete_args(&b, &k, &id, &parts),
            None,
        );
        py2.send(
            second,
            "complete_multipart_upload",
            complete_args(&b, &k, &id, &parts),
            None,
        );
        let r1 = py1.recv("complete 1");
        let r2 = py2.recv("complete 2");
        // Both get the object's ETag: a retried Complete is answered as the
        // first one was.
        match (&r1, &r2) {
            (Ok(a), Ok(b)) => assert_eq!(a["ETag"], b["ETag"], "round {round}"),
            _ => panic!("round {round}: completes {r1:?} {r2:?}"),
        }
        for g in [&g1, &g2] {
            let (_, got) = py1
                .get(g, json!({"Bucket": b, "Key": k}), &dir.join("out"))
                .unwrap_or_else(|e| panic!("round {round}: the completed object is unreadable: {e:?} (completes: {r1:?} {r2:?})"));
            assert!(got == all, "round {round}");
        }
    }
}

/// Sparse part numbers up to 10,000, an empty last part, an object of one
/// empty part, and a part upload that fails its Content-MD5 (the part it
/// would replace stays).
#[test]
fn boto3_sparse_and_empty_parts() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("edges");
    mb(&gw, &b);
    let dir = tmpdir("edges");
    let mut py = Boto::start();
    let p1 = random_bytes(5 * MIB, 101);
    let p7 = random_bytes(5 * MIB + 3, 107);
    let other = random_bytes(5 * MIB + 3, 108);
    let (f1, f7, fo, f0) = (
        file(&dir, "p1", &p1),
        file(&dir, "p7", &p7),
        file(&dir, "other", &other),
        file(&dir, "empty", b""),
    );
    let k = "sparse";
    let id = py.create(&g, &b, k);
    let e1 = py.part(&g, &b, k, &id, 1, &f1);
    let e7 = py.part(&g, &b, k, &id, 7, &f7);
    let e_last = py.part(&g, &b, k, &id, 10000, &f0);
    for n in [0, 10001] {
        py.fails(
            &g,
            "upload_part",
            json!({"Bucket": b, "Key": k, "UploadId": id, "PartNumber": n, "Body": "x"}),
            "InvalidArgument",
            "part number out of range",
        );
    }
    // Content-MD5 of p7 over other bytes: refused, and part 7 stays p7.
    use base64::Engine as _;
    let md5_p7 = base64::engine::general_purpose::STANDARD.encode(md5_of(&[&p7]));
    py.fails(
        &g,
        "upload_part",
        json!({"Bucket": b, "Key": k, "UploadId": id, "PartNumber": 7,
               "Body": {"$file": fo}, "ContentMD5": md5_p7}),
        "BadDigest",
        "wrong Content-MD5",
    );
    // S3 keeps the part the failed upload would have replaced. Garage 2.5
    // refuses it at completion after an interrupted part upload (as it does
    // without sealgate); the client then uploads the part again. Either
    // way, never the refused bytes.
    let parts = [(1, e1.as_str()), (7, e7.as_str()), (10000, e_last.as_str())];
    let v = match py.complete(&g, &b, k, &id, &parts) {
        Ok(v) => v,
        Err(e) => {
            assert_eq!(e.code, "InvalidPart", "{e:?}");
            let e7 = py.part(&g, &b, k, &id, 7, &f7);
            let parts = [(1, e1.as_str()), (7, e7.as_str()), (10000, e_last.as_str())];
            py.complete(&g, &b, k, &id, &parts).unwrap()
        }
    };
    let want_etag = multipart_etag(&[&p1, &p7, b""]);
    assert_eq!(unquote(&v["ETag"]), want_etag);
    let all = [&p1[..], &p7].concat();
    let n = all.len();
    let out = dir.join("out");
    let (v, got) = py.get(&g, json!({"Bucket": b, "Key": k}), &out).unwrap();
    assert!(got == all, "sparse object");
    assert_eq!(unquote(&v["ETag"]), want_etag);
    for (a, z) in [(0, n - 1), (5 * MIB - 2, 5 * MIB + 1), (n - 1, n - 1)] {
        let range = format!("bytes={a}-{z}");
        let (_, got) = py
            .get(&g, json!({"Bucket": b, "Key": k, "Range": range}), &out)
            .unwrap();
        assert!(got == all[a..=z], "{range}");
    }
    for (pn, want) in [(1, &p1[..]), (7, &p7[..]), (10000, &b""[..])] {
        let (v, got) = py
            .get(&g, json!({"Bucket": b, "Key": k, "PartNumber": pn}), &out)
            .unwrap_or_else(|e| panic!("part {pn}: {e:?}"));
        assert!(got == want, "part {pn}: {} bytes", got.len());
        assert_eq!(v["PartsCount"], 3, "part {pn}");
    }
    py.fails(
        &g,
        "get_object",
        json!({"Bucket": b, "Key": k, "PartNumber": 2}),
        "InvalidPart",
        "a part number the object does not have",
    );

    // One empty part: an empty object.
    let k = "empty";
    let id = py.create(&g, &b, k);
    let e = py.part(&g, &b, k, &id, 1, &f0);
    let v = py.complete(&g, &b, k, &id, &[(1, &e)]).unwrap();
    assert_eq!(unquote(&v["ETag"]), multipart_etag(&[b""]));
    let (v, got) = py.get(&g, json!({"Bucket": b, "Key": k}), &out).unwrap();
    assert!(got.is_empty());
    assert_eq!(v["ContentLength"], 0);
    let l = py.ok(
        &g,
        "list_objects_v2",
        json!({"Bucket": b, "Prefix": "empty"}),
    );
    assert_eq!(l["Contents"][0]["Size"], 0, "{l}");
    assert_eq!(unquote(&l["Contents"][0]["ETag"]), multipart_etag(&[b""]));
}

/// A multipart object replaced by another multipart upload leaves one
/// manifest at the store, not one per version ever written (they would pile
/// up and slow every listing, where they sort first).
#[test]
fn replacing_a_multipart_object_removes_its_manifest() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let g = via(&gw);
    let b = bucket("replace");
    mb(&gw, &b);
    let dir = tmpdir("replace");
    let mut py = Boto::start();
    let manifests = || -> Vec<String> {
        store_keys(store, &b)
            .into_iter()
            .filter(|k| k.starts_with(".sealgate/") && !k.starts_with(".sealgate/ix/"))
            .collect()
    };
    let k = "rewritten";
    let mut last = Vec::new();
    for round in 0..3u64 {
        let data = random_bytes(1000 + round as usize, 110 + round);
        let f = file(&dir, "p", &data);
        let id = py.create(&g, &b, k);
        let e = py.part(&g, &b, k, &id, 1, &f);
        py.complete(&g, &b, k, &id, &[(1, &e)]).unwrap();
        assert_eq!(manifests().len(), 1, "round {round}: {:?}", manifests());
        last = data;
    }
    let (_, got) = py
        .get(&g, json!({"Bucket": b, "Key": k}), &dir.join("out"))
        .unwrap();
    assert!(got == last);
    // Another key's manifest is not touched; deleting removes the last one.
    let id = py.create(&g, &b, "other");
    let e = py.part(&g, &b, "other", &id, 1, &file(&dir, "o", b"other"));
    py.complete(&g, &b, "other", &id, &[(1, &e)]).unwrap();
    assert_eq!(manifests().len(), 2);
    py.ok(&g, "delete_object", json!({"Bucket": b, "Key": k}));
    assert_eq!(manifests().len(), 1);
    let (_, got) = py
        .get(&g, json!({"Bucket": b, "Key": "other"}), &dir.join("out"))
        .unwrap();
    assert!(got == b"other");
}
