//! Scale-out: two stateless sealgate instances in front of a three-node Garage
//! cluster (replication factor 3). A mixed workload spread over both keeps
//! running while a store node is stopped and started again; when the store
//! loses its quorum, clients get errors in bounded time, never a hang or a
//! wrong byte; once the quorum is back, everything written reads back.

use crate::common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Cluster {
    port: u16,
    dir: std::path::PathBuf,
    pids: Vec<u32>,
    store: Store,
}

/// A block of `n` free ports below the ephemeral range, so that a restarted
/// node's port cannot have been taken by an outgoing connection meanwhile.
fn free_range(n: u16) -> u16 {
    for i in 0..200u32 {
        let p = 20000 + ((std::process::id() * 7919 + i * 104_729) % 10000) as u16;
        if (0..n).all(|d| std::net::TcpListener::bind(("127.0.0.1", p + d)).is_ok()) {
            return p;
        }
    }
    panic!("no free port range");
}

fn garage_bin() -> String {
    let o = Command::new("sh")
        .args(["-c", "command -v garage || echo $HOME/.cargo/bin/garage"])
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

fn start_cluster() -> Cluster {
    let port = free_range(24);
    let out = Command::new("bash")
        .arg(tools().join("backend.sh"))
        .args(["garage-key", "scaleout"])
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    let mut it = s.split_whitespace();
    let (ak, sk) = (it.next().unwrap().to_owned(), it.next().unwrap().to_owned());
    let dir = std::env::temp_dir().join(format!("sealgate-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = Command::new("bash")
        .arg(tools().join("backend.sh"))
        .args([
            "start",
            &port.to_string(),
            &ak,
            &sk,
            dir.to_str().unwrap(),
            "garage",
        ])
        .env("GARAGE_NODES", "3")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cluster start: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let pids: Vec<u32> = std::fs::read_to_string(format!("/tmp/s3-backend-{port}.pid"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    let stop = format!(
        "kill {} 2>/dev/null",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Kill whatever node processes remain when the test process ends.
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; {stop}; pkill -f {}",
        std::process::id(),
        dir.display()
    );
    #[allow(clippy::zombie_processes)]
    let _reaper = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    Cluster {
        port,
        dir,
        pids,
        store: Store {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: ak,
            secret_key: sk,
            port,
            kind: "garage".into(),
        },
    }
}

impl Cluster {
    fn stop_node(&mut self, i: usize) {
        Command::new("kill")
            .args(["-9", &self.pids[i].to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    fn start_node(&mut self, i: usize) {
        let cfg = self.dir.join(format!("node{i}/garage.toml"));
        let log = std::fs::File::create(self.dir.join(format!("node{i}.restart.log"))).unwrap();
        let child = Command::new(garage_bin())
            .args(["-c", cfg.to_str().unwrap(), "server"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.pids[i] = child.id();
        std::mem::forget(child);
        wait_port(
            self.port + 10 * i as u16,
            "garage node",
            &self.dir.join(format!("node{i}.restart.log")),
        );
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// A gateway in front of node `i` of the cluster.
fn gateway_on(c: &Cluster, node: u16) -> Gw {
    let store = Store {
        endpoint: format!("http://127.0.0.1:{}", c.port + 10 * node),
        access_key: c.store.access_key.clone(),
        secret_key: c.store.secret_key.clone(),
        port: c.port + 10 * node,
        kind: "garage".into(),
    };
    let gw = Gw::start(&GwSpec::simple(&store));
    // Fail fast when the store cannot answer.
    let text = std::fs::read_to_string(&gw.config)
        .unwrap()
        .replace("request_timeout_secs = 30", "request_timeout_secs = 8");
    std::fs::write(&gw.config, text).unwrap();
    gw.restart()
}

fn timed_aws(gw: &Gw, args: &[&str]) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let mut a = vec!["--cli-read-timeout", "30", "--cli-connect-timeout", "5"];
    a.extend_from_slice(args);
    (aws2(&gw.endpoint, &a), t.elapsed())
}

#[test]
fn two_gateways_three_store_nodes_survive_a_node_and_refuse_cleanly_without_quorum() {
    let mut c = start_cluster();
    let a = gateway_on(&c, 0);
    let b = gateway_on(&c, 1);
    let bucket = format!("scale-{}", std::process::id());
    ok(
        &aws2(&a.endpoint, &["s3", "mb", &format!("s3://{bucket}")]),
        "mb",
    );
    std::thread::sleep(Duration::from_secs(1));
    let dir = tmpdir("scale");
    let mut written: Vec<(String, Vec<u8>)> = Vec::new();
    let put = |gw: &Gw, name: &str, seed: u64, written: &mut Vec<(String, Vec<u8>)>| {
        let data = random_bytes(50_000 + seed as usize * 997, seed);
        let f = dir.join(name);
        std::fs::write(&f, &data).unwrap();
        let (o, t) = timed_aws(
            gw,
            &[
                "s3api",
                "put-object",
                "--bucket",
                &bucket,
                "--key",
                name,
                "--body",
                f.to_str().unwrap(),
            ],
        );
        assert!(t < Duration::from_secs(90), "put {name} took {t:?}");
        if o.status.success() {
            written.push((name.to_owned(), data));
            true
        } else {
            false
        }
    };
    let check = |gw: &Gw, name: &str, data: &[u8]| -> Result<(), String> {
        let out = dir.join(format!("back-{}-{name}", gw.port));
        let (o, t) = timed_aws(
            gw,
            &[
                "s3api",
                "get-object",
                "--bucket",
                &bucket,
                "--key",
                name,
                out.to_str().unwrap(),
            ],
        );
        assert!(t < Duration::from_secs(90), "get {name} took {t:?}");
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        let got = std::fs::read(&out).unwrap();
        assert_eq!(got, data, "{name}: wrong bytes through gateway {}", gw.port);
        Ok(())
    };
    // Phase 1: all nodes up; writes alternate between the gateways, reads
    // cross over.
    for i in 0..6u64 {
        let gw = if i % 2 == 0 { &a } else { &b };
        assert!(
            put(gw, &format!("p1-{i}"), i, &mut written),
            "put with all nodes up"
        );
    }
    for (n, d) in &written {
        check(&b, n, d).unwrap();
        check(&a, n, d).unwrap();
    }
    // Phase 2: node 2 stops; the cluster keeps its quorum and keeps serving.
    c.stop_node(2);
    for i in 0..6u64 {
        let gw = if i % 2 == 0 { &a } else { &b };
        assert!(
            put(gw, &format!("p2-{i}"), 100 + i, &mut written),
            "put with one node down"
        );
    }
    for (n, d) in &written {
        check(if n.len() % 2 == 0 { &a } else { &b }, n, d).unwrap();
    }
    c.start_node(2);
    // Phase 3: two nodes down: no quorum. Requests fail in bounded time, with
    // a server error, and never return wrong bytes.
    c.stop_node(1);
    c.stop_node(2);
    let before = written.len();
    let mut failures = 0;
    for i in 0..3u64 {
        if !put(&a, &format!("p3-{i}"), 200 + i, &mut written) {
            failures += 1;
        }
    }
    for (n, d) in written.clone() {
        if let Err(e) = check(&a, &n, &d) {
            failures += 1;
            assert!(
                e.contains("503")
                    || e.contains("500")
                    || e.contains("ServiceUnavailable")
                    || e.contains("InternalError")
                    || e.contains("SlowDown")
                    || e.contains("timeout")
                    || e.contains("Read timeout"),
                "unexpected error without quorum: {e}"
            );
        }
    }
    assert!(
        failures > 0,
        "without quorum nothing failed: is the cluster really down?"
    );
    // Phase 4: quorum back: everything acknowledged is there and exact.
    c.start_node(1);
    c.start_node(2);
    std::thread::sleep(Duration::from_secs(3));
    for (n, d) in &written {
        let mut last = Err(String::new());
        for _ in 0..20 {
            last = check(&a, n, d);
            if last.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        last.unwrap_or_else(|e| panic!("{n} (acknowledged) unreadable after recovery: {e}"));
    }
    eprintln!("scale-out: {} objects acknowledged ({} before quorum loss), {failures} failed requests without quorum", written.len(), before);
}
