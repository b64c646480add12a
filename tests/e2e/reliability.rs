//! Faults: the store killed and restarted at random moments during uploads,
//! a store that stops answering, clients that go away in the middle of an
//! upload. Nothing acknowledged is lost, nothing partial or corrupt is ever
//! served, every failure is a retryable S3 error that comes in bounded time,
//! and the gateway keeps serving.

use crate::common::*;
use crate::raw::{self, Req, Signer};

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

fn bucket(name: &str) -> String {
    format!("rel-{name}-{}", std::process::id())
}

/// Runs tests/clients/reliability.py; kills it (and fails) after `limit`.
fn python(args: &[&str], limit: Duration) -> Value {
    let mut child = Command::new("python3")
        .arg(root().join("tests/clients/reliability.py"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let out = reader.join().unwrap();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(st.success(), "reliability.py {args:?} failed: {err}");
            return serde_json::from_str(out.trim())
                .unwrap_or_else(|e| panic!("reliability.py printed {out:?}: {e}; stderr {err}"));
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!(
                "reliability.py {:?} hung for more than {limit:?}",
                &args[..2]
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The data directory `start_store` gave this store.
fn store_dir(s: &Store) -> PathBuf {
    std::env::temp_dir().join(format!(
        "sealgate-store-{}-{}-{}",
        s.kind,
        std::process::id(),
        s.port
    ))
}

fn pid_file(port: u16) -> PathBuf {
    PathBuf::from(format!("/tmp/s3-backend-{port}.pid"))
}

/// Kills the store: SIGKILL (a crash) or SIGTERM (a shutdown).
fn kill_store(port: u16, hard: bool) {
    let pids = std::fs::read_to_string(pid_file(port)).unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill")
            .args([if hard { "-KILL" } else { "-TERM" }, pid])
            .status();
    }
    for pid in pids.split_whitespace() {
        for _ in 0..100 {
            let alive = Command::new("kill")
                .args(["-0", pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts the store again on its port, over its data.
fn restart_store(s: &Store) {
    let dir = store_dir(s);
    for attempt in 0..5 {
        let out = Command::new("bash")
            .arg(tools().join("backend.sh"))
            .args([
                "start",
                &s.port.to_string(),
                &s.access_key,
                &s.secret_key,
                dir.to_str().unwrap(),
                &s.kind,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        eprintln!(
            "store restart attempt {attempt} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        kill_store(s.port, true);
        thread::sleep(Duration::from_millis(500));
    }
    panic!("the store did not restart");
}

/// A gateway for `store` with other `[store]` timeouts.
fn gateway_with(store: &Store, store_settings: &str) -> Gw {
    let gw = Gw::start(&GwSpec::simple(store));
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(text.contains("request_timeout_secs = 30\n"));
    std::fs::write(
        &gw.config,
        text.replacen(
            "request_timeout_secs = 30\n",
            &format!("{store_settings}\n"),
            1,
        ),
    )
    .unwrap();
    gw.restart()
}

fn alive(gw: &mut Gw) {
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the gateway exited:\n{}",
        gw.log_text()
    );
    let log = gw.log_text();
    assert!(!log.contains("panicked"), "the gateway panicked:\n{log}");
}

/// Seconds of uploads while the store is killed and restarted.
const WORKLOAD_SECS: u64 = 30;

/// Every (key, size) of a listing, page by page.
fn list_all(port: u16, s: &Signer, b: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = Req::new("GET", &format!("/{b}"))
            .query("list-type", "2")
            .query("max-keys", "250");
        if let Some(t) = &token {
            req = req.query("continuation-token", t);
        }
        let r = raw::send(port, s, &req);
        assert_eq!(r.status, 200, "listing: {}", r.text());
        let text = r.text();
        for c in text.split("<Contents>").skip(1) {
            let k = raw::xml_text(c, "Key").unwrap();
            let size = raw::xml_text(c, "Size").unwrap().parse().unwrap();
            out.push((k, size));
        }
        token = raw::xml_text(&text, "NextContinuationToken");
        if raw::xml_text(&text, "IsTruncated").as_deref() != Some("true") || token.is_none() {
            return out;
        }
    }
}

struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn store_killed_during_uploads_loses_nothing_and_serves_nothing_partial() {
    let store = start_store("garage");
    let mut gw = gateway_with(
        &store,
        "request_timeout_secs = 10\nconnect_timeout_secs = 2",
    );
    let b = bucket("kill");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );

    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        let store = Store {
            endpoint: store.endpoint.clone(),
            access_key: store.access_key.clone(),
            secret_key: store.secret_key.clone(),
            port: store.port,
            kind: store.kind.clone(),
        };
        thread::spawn(move || {
            let mut rng = Lcg(0x5ea1_9a7e);
            let mut kills = Vec::new();
            let t = Instant::now();
            loop {
                thread::sleep(Duration::from_millis(600 + rng.below(2000)));
                // No kill in the last seconds of the workload.
                if stop.load(Ordering::SeqCst)
                    || t.elapsed() > Duration::from_secs(WORKLOAD_SECS - 4)
                {
                    break;
                }
                let hard = rng.below(3) != 0;
                let at = t.elapsed();
                kill_store(store.port, hard);
                thread::sleep(Duration::from_millis(200 + rng.below(1500)));
                restart_store(&store);
                kills.push((at, hard, t.elapsed() - at));
            }
            kills
        })
    };
    let t = Instant::now();
    let results = python(
        &["faults", &gw.endpoint, &b, &WORKLOAD_SECS.to_string(), "7"],
        Duration::from_secs(360),
    );
    let took = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();

    let results = results.as_array().unwrap();
    let keys: Vec<&str> = results.iter().map(|r| r["key"].as_str().unwrap()).collect();
    let mut args = vec!["verify", gw.endpoint.as_str(), b.as_str()];
    args.extend(keys.iter().copied());
    let seen = python(&args, Duration::from_secs(240));

    let (mut acked, mut failed_absent, mut failed_present, mut failures) = (0, 0, 0, 0);
    let mut codes: HashMap<String, usize> = HashMap::new();
    let mut slowest = 0f64;
    for r in results {
        let k = r["key"].as_str().unwrap();
        let got = &seen[k];
        for a in r["attempts"].as_array().unwrap() {
            slowest = slowest.max(a["secs"].as_f64().unwrap());
            if a["ok"].as_bool().unwrap() {
                continue;
            }
            failures += 1;
            let what = match (a["status"].as_u64(), a["code"].as_str(), a["exc"].as_str()) {
                (Some(st), Some(code), _) => {
                    assert!(
                        matches!(
                            (st, code),
                            (503, "ServiceUnavailable")
                                | (503, "SlowDown")
                                | (500, "InternalError")
                        ),
                        "{k}: a failure that is not a retryable S3 error: {a}"
                    );
                    format!("{st} {code}")
                }
                (_, _, Some(exc)) => {
                    // A connection the gateway closed after answering early,
                    // before the client finished sending its body.
                    assert!(
                        !exc.contains("Timeout"),
                        "{k}: the client timed out (a hang): {a}"
                    );
                    format!("client {exc}")
                }
                _ => panic!("{k}: unclassified failure {a}"),
            };
            *codes.entry(what).or_default() += 1;
        }
        let exact = got["status"] == 200 && got["len"] == r["size"] && got["md5"] == r["md5"];
        if r["ok"].as_bool().unwrap() {
            acked += 1;
            assert!(
                exact,
                "{k}: acknowledged, but reads back as {got} (expected {} bytes, md5 {})",
                r["size"], r["md5"]
            );
        } else if got["status"] == 404 && got["code"] == "NoSuchKey" {
            failed_absent += 1;
        } else {
            assert!(
                exact,
                "{k}: failed, and reads back as {got}: neither absent nor exact"
            );
            failed_present += 1;
        }
    }
    // The store holds nothing but these objects, multipart manifests and the
    // hidden records of uploads that a failure left in progress (or cut
    // between completion and their removal), and the gateway lists exactly
    // the objects that read back, with their sizes.
    let stored = list_all(
        store.port,
        &Signer::new(&store.access_key, &store.secret_key),
        &b,
    );
    for (k, _) in &stored {
        assert!(
            k.starts_with(".sealgate/mp/")
                || k.starts_with(".sealgate/up/")
                || k.starts_with(".sealgate/ix/")
                || keys.contains(&k.as_str()),
            "stray object at the store: {k}"
        );
    }
    let listed: HashMap<String, u64> = list_all(gw.port, &Signer::new(AK, SK), &b)
        .into_iter()
        .collect();
    let readable: HashMap<String, u64> = results
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .filter(|k| seen[*k]["status"] == 200)
        .map(|k| (k.to_owned(), seen[k]["len"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, readable, "the listing differs from what reads back");
    alive(&mut gw);
    eprintln!(
        "store kills: {} ({} SIGKILL), down {:?} in total, during {took:?} of uploads; uploads: {} acknowledged, {} failed and absent, {} failed but complete; {failures} failed attempts: {codes:?}; slowest attempt {slowest:.1} s",
        kills.len(),
        kills.iter().filter(|k| k.1).count(),
        kills.iter().map(|k| k.2).sum::<Duration>(),
        acked,
        failed_absent,
        failed_present,
    );
    for (at, hard, down) in &kills {
        eprintln!(
            "  kill at {at:.1?} ({}), back after {down:.1?}",
            if *hard { "SIGKILL" } else { "SIGTERM" }
        );
    }
    assert!(
        kills.len() >= 5,
        "the store was killed only {} times",
        kills.len()
    );
    assert!(acked >= 60, "only {acked} uploads succeeded");
}

/// A TCP proxy in front of the store that can stall (hold every byte), slow
/// down (delay every chunk), or stall the store's answers after a budget of
/// bytes.
struct Proxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    answer_budget: Arc<std::sync::atomic::AtomicI64>,
}

fn start_proxy(target: u16) -> Proxy {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let stalled = Arc::new(AtomicBool::new(false));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let answer_budget = Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX));
    let (st, dl, ab) = (stalled.clone(), delay_ms.clone(), answer_budget.clone());
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let Ok(s) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            for (answers, mut from, mut to) in [
                (false, c.try_clone().unwrap(), s.try_clone().unwrap()),
                (true, s, c),
            ] {
                let (st, dl, ab) = (st.clone(), dl.clone(), ab.clone());
                thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let over_budget = || answers && ab.load(Ordering::SeqCst) < 0;
                        while st.load(Ordering::SeqCst) || over_budget() {
                            thread::sleep(Duration::from_millis(20));
                        }
                        if answers {
                            ab.fetch_sub(n as i64, Ordering::SeqCst);
                        }
                        let d = dl.load(Ordering::SeqCst);
                        if d > 0 {
                            thread::sleep(Duration::from_millis(d));
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    Proxy {
        port,
        stalled,
        delay_ms,
        answer_budget,
    }
}

/// What a request got: its name, the answer (or why none came), how long.
type Outcome = (String, Result<raw::Resp, String>, Duration);

#[test]
fn a_stalled_store_gets_503_in_bounded_time_and_blocks_nothing_else() {
    let store = garage();
    let proxy = start_proxy(store.port);
    let via_proxy = Store {
        endpoint: format!("http://127.0.0.1:{}", proxy.port),
        access_key: store.access_key.clone(),
        secret_key: store.secret_key.clone(),
        port: proxy.port,
        kind: store.kind.clone(),
    };
    let mut slow_gw = gateway_with(&via_proxy, "request_timeout_secs = 2");
    let healthy_gw = Gw::start(&GwSpec::simple(store));
    let s = Signer::new(AK, SK);
    let b = bucket("stall");
    ok(
        &aws2(&healthy_gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let data = random_bytes(300_000, 21);
    let put = |port: u16, k: &str, d: &[u8]| {
        raw::send(
            port,
            &s,
            &Req::new("PUT", &format!("/{b}/{k}")).body(d.to_vec()),
        )
    };
    let get = |port: u16, k: &str| raw::send(port, &s, &Req::new("GET", &format!("/{b}/{k}")));
    assert_eq!(put(slow_gw.port, "obj", &data).status, 200);
    assert_eq!(put(slow_gw.port, "other", &data[..1000]).status, 200);
    let r = get(slow_gw.port, "obj");
    assert_eq!((r.status, &r.body), (200, &data));

    // A slow store that still answers is not mistaken for a dead one.
    proxy.delay_ms.store(150, Ordering::SeqCst);
    let t = Instant::now();
    let r = get(slow_gw.port, "obj");
    assert_eq!((r.status, &r.body), (200, &data), "slow but alive store");
    eprintln!(
        "GET through a store delaying every chunk by 150 ms: {:?}",
        t.elapsed()
    );
    proxy.delay_ms.store(0, Ordering::SeqCst);

    // The store stops answering: every request that needs it is a 503 within
    // the configured 2 s (plus slack for a loaded machine)...
    proxy.stalled.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let stalled: Vec<thread::JoinHandle<Outcome>> = [
        ("GET", "obj"),
        ("HEAD", "obj"),
        ("GET", "other"),
        ("GET", ""),
        ("PUT", "new-small"),
        ("PUT", "new-big"),
        ("DELETE", "other"),
    ]
    .into_iter()
    .map(|(m, k)| {
        let port = slow_gw.port;
        let b = b.clone();
        let body = if k == "new-big" {
            random_bytes(8 * 1024 * 1024, 3)
        } else if m == "PUT" {
            b"small".to_vec()
        } else {
            Vec::new()
        };
        thread::spawn(move || {
            let t = Instant::now();
            let s = Signer::new(AK, SK);
            let mut req = Req::new(m, &format!("/{b}/{k}")).body(body);
            if k.is_empty() {
                req.path = format!("/{b}");
                req = req.query("list-type", "2");
            }
            let r = raw::try_send(port, &s, &req);
            (format!("{m} /{k}"), r, t.elapsed())
        })
    })
    .collect();
    // ...while requests that do not need the store, and a gateway in front of
    // a healthy store, answer at once.
    thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = raw::send(
            slow_gw.port,
            &Signer::new(AK, "wrong"),
            &Req::new("GET", &format!("/{b}/obj")),
        );
        assert_eq!(r.code(), "SignatureDoesNotMatch");
        let r2 = raw::send(
            slow_gw.port,
            &s,
            &Req::new("PUT", &format!("/{b}/x"))
                .header("x-amz-meta-sg", "1")
                .body(&b"x"[..]),
        );
        assert_eq!(r2.code(), "InvalidArgument");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the stalled gateway is slow to answer requests that need no store: {:?}",
            t0.elapsed()
        );
        let t1 = Instant::now();
        let r = get(healthy_gw.port, "obj");
        assert_eq!((r.status, &r.body), (200, &data));
        let r = put(healthy_gw.port, "from-healthy", &data[..5000]);
        assert_eq!(r.status, 200);
        assert!(
            t1.elapsed() < Duration::from_secs(5),
            "the healthy gateway is slow: {:?}",
            t1.elapsed()
        );
    }
    let bound = Duration::from_secs(2 + 8);
    for h in stalled {
        let (what, r, took) = h.join().unwrap();
        let r = r.unwrap_or_else(|e| panic!("{what}: {e} after {took:?}"));
        eprintln!(
            "stalled store: {what} -> {} {} in {took:?}",
            r.status,
            r.code()
        );
        assert_eq!(r.status, 503, "{what}: {}", r.text());
        if !what.starts_with("HEAD") {
            assert_eq!(r.code(), "ServiceUnavailable", "{what}");
        }
        assert!(took < bound, "{what} took {took:?}");
    }
    assert!(t.elapsed() < bound + Duration::from_secs(2));
    // The store answers again: so does the gateway, with the right bytes, and
    // nothing half-written appeared.
    proxy.stalled.store(false, Ordering::SeqCst);
    let t = Instant::now();
    loop {
        let r = get(slow_gw.port, "obj");
        if r.status == 200 {
            assert_eq!(r.body, data);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no recovery after the stall: {} {}",
            r.status,
            r.text()
        );
        thread::sleep(Duration::from_millis(200));
    }
    // The store stalls in the middle of an answer: the client gets the
    // authenticated bytes sent so far and then a cut connection, in bounded
    // time, never a hang and never wrong bytes.
    let big = random_bytes(4 * 1024 * 1024, 22);
    assert_eq!(put(healthy_gw.port, "big", &big).status, 200);
    assert_eq!(
        raw::send(slow_gw.port, &s, &Req::new("HEAD", &format!("/{b}/big"))).status,
        200
    );
    proxy.answer_budget.store(1024 * 1024, Ordering::SeqCst);
    let t = Instant::now();
    let r = raw::try_send(slow_gw.port, &s, &Req::new("GET", &format!("/{b}/big")));
    let took = t.elapsed();
    proxy.answer_budget.store(i64::MAX, Ordering::SeqCst);
    match r {
        Ok(r) => {
            eprintln!(
                "store stalled mid-answer: {} with {} of {} bytes, cut after {took:?}",
                r.status,
                r.body.len(),
                big.len()
            );
            assert!(r.status == 200 || r.status == 503, "{}", r.status);
            if r.status == 200 {
                assert!(
                    r.body.len() < big.len(),
                    "the whole object arrived through a stalled store"
                );
                assert!(big.starts_with(&r.body), "wrong bytes before the cut");
            }
        }
        Err(e) => eprintln!("store stalled mid-answer: {e} after {took:?}"),
    }
    assert!(
        took < bound,
        "a store stalled mid-answer held the client for {took:?}"
    );
    for k in ["new-small", "new-big"] {
        let r = get(healthy_gw.port, k);
        assert!(
            r.status == 404
                || (r.status == 200 && (r.body == b"small" || r.body.len() == 8 * 1024 * 1024)),
            "{k}: {} {} bytes",
            r.status,
            r.body.len()
        );
    }
    alive(&mut slow_gw);
}

/// Whether the store holds `key`, and the parts of its pending uploads.
fn store_state(store: &Store, b: &str, key: &str) -> (bool, usize) {
    let s = Signer::new(&store.access_key, &store.secret_key);
    let h = raw::send(store.port, &s, &Req::new("HEAD", &format!("/{b}/{key}")));
    let uploads = raw::send(
        store.port,
        &s,
        &Req::new("GET", &format!("/{b}"))
            .query("uploads", "")
            .query("prefix", key),
    );
    let mut parts = 0;
    for u in uploads.text().split("<Upload>").skip(1) {
        if raw::xml_text(u, "Key").as_deref() != Some(key) {
            continue;
        }
        let id = raw::xml_text(u, "UploadId").unwrap();
        let l = raw::send(
            store.port,
            &s,
            &Req::new("GET", &format!("/{b}/{key}")).query("uploadId", &id),
        );
        parts += l.text().matches("<Part>").count();
    }
    (h.status == 200, parts)
}

#[test]
fn clients_that_disconnect_mid_upload_leave_nothing() {
    let store = garage();
    let mut gw = Gw::start(&GwSpec::simple(store));
    let port = gw.port;
    let s = Signer::new(AK, SK);
    let b = bucket("cut");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let n = 3 * 1024 * 1024 + 17;
    let body = random_bytes(n, 31);
    let r = raw::send(
        port,
        &s,
        &Req::new("POST", &format!("/{b}/part-target")).query("uploads", ""),
    );
    let upload = raw::xml_text(&r.text(), "UploadId").unwrap();
    let mut cases = 0;
    for (mode, hash) in [
        ("unsigned", Some("UNSIGNED-PAYLOAD".to_owned())),
        ("signed", None),
    ] {
        for cut in [0, 1, n / 2, n - 1] {
            for op in ["PutObject", "UploadPart"] {
                let key = if op == "PutObject" {
                    format!("cut-{mode}-{cut}")
                } else {
                    "part-target".into()
                };
                let mut req = Req {
                    payload_hash: hash.clone(),
                    body: body.clone(),
                    ..Req::new("PUT", &format!("/{b}/{key}"))
                };
                if op == "UploadPart" {
                    req = req.query("partNumber", "1").query("uploadId", &upload);
                }
                let mut c = raw::connect(port);
                c.write_all(raw::head(port, &s, &req).as_bytes()).unwrap();
                c.write_all(&body[..cut]).unwrap();
                // Let the gateway start its upload to the store, then go away.
                thread::sleep(Duration::from_millis(400));
                drop(c);
                thread::sleep(Duration::from_millis(600));
                let (stored, parts) = store_state(store, &b, &key);
                assert!(!stored && parts == 0, "{op} ({mode} payload) cut after {cut} of {n} bytes: object stored {stored}, parts {parts}");
                cases += 1;
            }
        }
    }
    // Nothing reads back through the gateway either, the upload still
    // completes with a real part, and the gateway serves as before.
    let r = raw::send(
        port,
        &s,
        &Req::new("GET", &format!("/{b}/part-target")).query("uploadId", &upload),
    );
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("<Part>"), "{}", r.text());
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/part-target"))
            .query("partNumber", "1")
            .query("uploadId", &upload)
            .body(body.clone()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").unwrap().to_owned();
    let xml = format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>");
    let r = raw::send(
        port,
        &s,
        &Req::new("POST", &format!("/{b}/part-target"))
            .query("uploadId", &upload)
            .body(xml),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = raw::send(port, &s, &Req::new("GET", &format!("/{b}/part-target")));
    assert!(
        r.status == 200 && r.body == body,
        "completed object: {} {} bytes",
        r.status,
        r.body.len()
    );
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/after")).body(body.clone()),
    );
    assert_eq!(r.status, 200);
    let r = raw::send(port, &s, &Req::new("GET", &format!("/{b}/after")));
    assert!(r.status == 200 && r.body == body);
    alive(&mut gw);
    eprintln!("{cases} cut uploads, none left anything at the store");
}
