//! Test harness: a real S3 store (Garage, started with ../shared/tools/backend.sh),
//! real sealgate processes with generated configs and keys, and helpers to run
//! real clients against them.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tools() -> PathBuf {
    root().join("../shared/tools")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port whose neighbours (port+1, +3: Garage's RPC and admin) are free too.
fn free_port_block() -> u16 {
    loop {
        let p = free_port();
        if p < 60000 && (1..4).all(|d| TcpListener::bind(("127.0.0.1", p + d)).is_ok()) {
            return p;
        }
    }
}

pub fn wait_port(port: u16, what: &str, log: &Path) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not start on port {port}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A running S3 store.
pub struct Store {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub port: u16,
    pub kind: String,
}

/// Kills `cmd` when this test process exits (statics are never dropped).
fn reap_on_exit(stop: &str) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1",
        std::process::id()
    );
    // The reaper outlives this process by design; it is never waited for.
    #[allow(clippy::zombie_processes)]
    let _reaper = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn reaper");
}

/// Starts a store of `kind` (garage, s3s-fs, rclone, moto) for this test process.
pub fn start_store(kind: &str) -> Store {
    // A loaded machine sometimes loses Garage's first start (its layout
    // command reaches the node's RPC port before it listens); try again on
    // fresh ports before failing.
    let mut last = String::new();
    for _ in 0..3 {
        match try_start_store(kind) {
            Ok(s) => return s,
            Err(e) => last = e,
        }
    }
    panic!(
        "could not start the {kind} store (is it installed? `../shared/tools/backend.sh install {kind}`): {last}"
    );
}

fn try_start_store(kind: &str) -> Result<Store, String> {
    let port = free_port_block();
    let (ak, sk) = if kind == "garage" {
        let out = Command::new("bash")
            .arg(tools().join("backend.sh"))
            .args(["garage-key", "sealgate-test"])
            .output()
            .unwrap();
        let s = String::from_utf8(out.stdout).unwrap();
        let mut it = s.split_whitespace();
        (it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
    } else {
        (
            "storeaccesskey".to_owned(),
            "storesecretkey12345".to_owned(),
        )
    };
    let dir = std::env::temp_dir().join(format!(
        "sealgate-store-{kind}-{}-{port}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new("bash")
        .arg(tools().join("backend.sh"))
        .args([
            "start",
            &port.to_string(),
            &ak,
            &sk,
            dir.to_str().unwrap(),
            kind,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .expect("run backend.sh");
    if !out.status.success() {
        let _ = Command::new("bash")
            .arg(tools().join("backend.sh"))
            .args(["stop", &port.to_string()])
            .output();
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    reap_on_exit(&format!(
        "bash {} stop {port}",
        tools().join("backend.sh").display()
    ));
    Ok(Store {
        endpoint: format!("http://127.0.0.1:{port}"),
        access_key: ak,
        secret_key: sk,
        port,
        kind: kind.to_owned(),
    })
}

/// The Garage store shared by every test of one test binary (all of
/// `tests/e2e/`): tests that share it use buckets named after the test, and a
/// test that stops or kills its store starts its own with `start_store`.
pub fn garage() -> &'static Store {
    static G: OnceLock<Store> = OnceLock::new();
    G.get_or_init(|| start_store("garage"))
}

/// The moto store shared by the tests of one test binary (in memory, any
/// credentials; it enforces conditional writes on PutObject).
pub fn moto() -> &'static Store {
    static M: OnceLock<Store> = OnceLock::new();
    M.get_or_init(|| start_store("moto"))
}

/// A key pair on disk, with its passphrase file.
#[derive(Clone)]
pub struct Key {
    pub name: String,
    pub key_file: PathBuf,
    pub pub_file: PathBuf,
    pub pass_file: PathBuf,
    pub key_id: String,
}

pub fn keys_dir() -> PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("sealgate-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
    .clone()
}

/// Generates (once per process) a key pair named `name`.
pub fn key(name: &str, bits: usize) -> Key {
    static KEYS: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Key>>> =
        OnceLock::new();
    let m = KEYS.get_or_init(Default::default);
    let mut m = m.lock().unwrap();
    if let Some(k) = m.get(name) {
        return k.clone();
    }
    let dir = keys_dir();
    let pass_file = dir.join(format!("{name}.pass"));
    let pass = format!("passphrase of {name}");
    sealgate::keyring::write_new_secret_file(&pass_file, pass.as_bytes()).unwrap();
    let (k, p, id) = sealgate::keyring::keygen(&dir, name, bits, pass.as_bytes()).unwrap();
    let key = Key {
        name: name.to_owned(),
        key_file: k,
        pub_file: p,
        pass_file,
        key_id: hex::encode(id),
    };
    m.insert(name.to_owned(), key.clone());
    key
}

pub const AK: &str = "sealgatetestuser";
pub const SK: &str = "sealgate-test-secret-key-0123456789";
pub const GATEWAY_SECRET: &str = "shared-gateway-secret-for-tests-0123456789";

/// How to configure a sealgate process.
pub struct GwSpec<'a> {
    pub store: Option<&'a Store>,
    /// Identities this gateway holds.
    pub identities: Vec<Key>,
    /// Extra public keys it knows (name -> key).
    pub recipients: Vec<Key>,
    /// Policies: (bucket, prefix, recipient names).
    pub policies: Vec<(String, String, Vec<String>)>,
    pub extra_users: Vec<(String, String, Vec<String>)>,
    pub tls: bool,
    pub extra_toml: String,
}

impl<'a> GwSpec<'a> {
    /// One identity `alice` and a policy encrypting every object for her.
    pub fn simple(store: &'a Store) -> Self {
        let alice = key("alice", 2048);
        Self {
            store: Some(store),
            identities: vec![alice],
            recipients: vec![],
            policies: vec![("*".into(), "".into(), vec!["alice".into()])],
            extra_users: vec![],
            tls: false,
            extra_toml: String::new(),
        }
    }
}

pub struct Gw {
    pub child: Child,
    pub port: u16,
    pub tls_port: Option<u16>,
    pub endpoint: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub config: PathBuf,
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealgate")
}

/// Writes a self-signed certificate for localhost/127.0.0.1 (openssl).
pub fn test_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&k)
        .arg("-out")
        .arg(&c)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (c, k)
}

impl Gw {
    pub fn start(spec: &GwSpec) -> Gw {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sealgate-gw-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = format!("[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_secs = 5\n");
        let mut tls_port = None;
        if spec.tls {
            let (c, k) = test_cert(&dir);
            let tp = free_port();
            tls_port = Some(tp);
            t += &format!(
                "tls_listen = \"127.0.0.1:{tp}\"\ntls_cert = {:?}\ntls_key = {:?}\n",
                c, k
            );
        }
        t += &format!("[[users]]\naccess_key = \"{AK}\"\nsecret_key = \"{SK}\"\n");
        for (ak, sk, buckets) in &spec.extra_users {
            t += &format!(
                "[[users]]\naccess_key = \"{ak}\"\nsecret_key = \"{sk}\"\nbuckets = {buckets:?}\n"
            );
        }
        match spec.store {
            Some(s) => {
                t += &format!(
                    "[store]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\nrequest_timeout_secs = 30\n",
                    s.endpoint, s.access_key, s.secret_key
                );
            }
            None => {
                t += &format!(
                    "[store]\nkind = \"local\"\npath = {:?}\n",
                    dir.join("store")
                );
            }
        }
        t += &format!("[gateway]\nsecret = \"{GATEWAY_SECRET}\"\n");
        for k in &spec.identities {
            t += &format!(
                "[[identities]]\nname = \"{}\"\nkey_file = {:?}\npassphrase_file = {:?}\n",
                k.name, k.key_file, k.pass_file
            );
        }
        for k in &spec.recipients {
            t += &format!(
                "[[recipients]]\nname = \"{}\"\npublic_key_file = {:?}\n",
                k.name, k.pub_file
            );
        }
        for (b, p, r) in &spec.policies {
            t += &format!("[[policies]]\nbucket = \"{b}\"\nprefix = \"{p}\"\nrecipients = {r:?}\n");
        }
        t += &spec.extra_toml;
        let config = dir.join("sealgate.toml");
        std::fs::write(&config, t).unwrap();
        Self::spawn(config, dir, port, tls_port)
    }

    pub fn spawn(config: PathBuf, dir: PathBuf, port: u16, tls_port: Option<u16>) -> Gw {
        let log = dir.join("sealgate.log");
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env(
                "SEALGATE_LOG",
                std::env::var("SEALGATE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sealgate");
        wait_port(port, "sealgate", &log);
        Gw {
            child,
            port,
            tls_port,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
            log,
            config,
        }
    }

    /// Restarts the same configuration on the same port.
    pub fn restart(mut self) -> Gw {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (config, dir, port, tls) = (
            self.config.clone(),
            self.dir.clone(),
            self.port,
            self.tls_port,
        );
        std::mem::forget(self);
        std::thread::sleep(Duration::from_millis(200));
        Gw::spawn(config, dir, port, tls)
    }

    /// Stops the gateway as a service manager does (SIGTERM, and it must
    /// exit cleanly), then starts the same configuration on the same port.
    pub fn stop_and_restart(mut self) -> Gw {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "SIGTERM: {status}\n{}", self.log_text());
        self.restart()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Runs a command with the gateway's credentials; returns its output.
pub fn run(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(cmd);
    c.args(args)
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// aws cli v2 (Debian package) against an endpoint.
pub fn aws2(endpoint: &str, args: &[&str]) -> Output {
    let mut a = vec!["--endpoint-url", endpoint, "--no-cli-pager"];
    a.extend_from_slice(args);
    run("/usr/bin/aws", &a, &[])
}

/// aws cli v1 (PyPI) against an endpoint.
pub fn aws1(endpoint: &str, args: &[&str]) -> Output {
    let mut a = vec!["-m", "awscli", "--endpoint-url", endpoint];
    a.extend_from_slice(args);
    run("python3", &a, &[])
}

/// aws cli v2 directly against the store, with the store's own credentials:
/// what the store's operator (or an attacker there) can do.
pub fn store_aws(store: &Store, args: &[&str]) -> Output {
    let mut a = vec!["--endpoint-url", store.endpoint.as_str(), "--no-cli-pager"];
    a.extend_from_slice(args);
    run(
        "/usr/bin/aws",
        &a,
        &[
            ("AWS_ACCESS_KEY_ID", store.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", store.secret_key.as_str()),
        ],
    )
}

pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    // xorshift: deterministic, incompressible enough for tests.
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// A fresh, empty directory of this process. Each call gets its own (a
/// sequence number precedes `name`), so tests of one binary that happen to
/// pick the same name never share or wipe each other's files.
pub fn tmpdir(name: &str) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("sealgate-t-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}
