//! Operating sealgate: the admin listener (health, readiness, Prometheus
//! metrics that move by the right amounts), check-config, JSON logs with
//! request ids, refusal of readable key files, graceful shutdown.

use crate::common::*;
use std::process::Command;

fn curl(url: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap_or(0), body.to_owned())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Restarts `gw` with extra `[server]` settings.
fn with_server_settings(gw: Gw, extra: &str) -> Gw {
    let text = std::fs::read_to_string(&gw.config).unwrap();
    let text = text.replacen("[server]\n", &format!("[server]\n{extra}\n"), 1);
    std::fs::write(&gw.config, text).unwrap();
    gw.restart()
}

#[test]
fn admin_listener_health_ready_and_metrics() {
    let store = garage();
    let admin = free_port();
    let gw = with_server_settings(
        Gw::start(&GwSpec::simple(store)),
        &format!("admin_listen = \"127.0.0.1:{admin}\""),
    );
    wait_port(admin, "admin listener", &gw.log);
    let base = format!("http://127.0.0.1:{admin}");
    assert_eq!(curl(&format!("{base}/health")), (200, "ok\n".to_owned()));
    assert_eq!(curl(&format!("{base}/ready")).0, 200);
    let b = format!("ops-{}", std::process::id());
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("ops");
    for i in 0..3 {
        let f = dir.join(format!("o{i}"));
        std::fs::write(&f, random_bytes(1000, i)).unwrap();
        ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3api",
                    "put-object",
                    "--bucket",
                    &b,
                    "--key",
                    &format!("o{i}"),
                    "--body",
                    f.to_str().unwrap(),
                ],
            ),
            "put",
        );
    }
    // Objects another gateway wrote: this one has not seen their data keys
    // (it keeps those of the objects it writes).
    let other = Gw::start(&GwSpec::simple(store));
    for i in 0..3 {
        let f = dir.join(format!("o{i}"));
        ok(
            &aws2(
                &other.endpoint,
                &[
                    "s3api",
                    "put-object",
                    "--bucket",
                    &b,
                    "--key",
                    &format!("p{i}"),
                    "--body",
                    f.to_str().unwrap(),
                ],
            ),
            "put",
        );
    }
    let (_, before) = curl(&format!("{base}/metrics"));
    for i in 0..3 {
        for _ in 0..2 {
            ok(
                &aws2(
                    &gw.endpoint,
                    &[
                        "s3api",
                        "get-object",
                        "--bucket",
                        &b,
                        "--key",
                        &format!("p{i}"),
                        "/dev/null",
                    ],
                ),
                "get",
            );
        }
    }
    let missing = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "get-object",
            "--bucket",
            &b,
            "--key",
            "missing",
            "/dev/null",
        ],
    );
    assert!(!missing.status.success());
    let (code, m) = curl(&format!("{base}/metrics"));
    assert_eq!(code, 200);
    assert_eq!(
        metric(
            &m,
            "sealgate_requests_total{op=\"PutObject\",status=\"200\"}"
        ),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "sealgate_requests_total{op=\"GetObject\",status=\"200\"}"
        ),
        6.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "sealgate_requests_total{op=\"GetObject\",status=\"404\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(metric(&m, "sealgate_bytes_in_total"), 3000.0, "{m}");
    assert_eq!(
        metric(&m, "sealgate_bytes_out_total") - metric(&before, "sealgate_bytes_out_total"),
        6000.0,
        "{m}"
    );
    // Three objects written elsewhere, read twice: three RSA unwraps, the rest from caches.
    assert_eq!(
        metric(&m, "sealgate_rsa_unwraps_total") - metric(&before, "sealgate_rsa_unwraps_total"),
        3.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "sealgate_request_duration_seconds_count{op=\"GetObject\"}"
        ) >= 7.0,
        "{m}"
    );
    assert!(
        metric(&m, "sealgate_store_errors_total{code=\"NoSuchKey\"}") >= 1.0,
        "{m}"
    );
    assert_eq!(metric(&m, "sealgate_requests_in_flight"), 0.0);
    // Every request was logged once, with its request id, and the id the
    // client received is in the log.
    let log = gw.log_text();
    assert!(log.matches("op=PutObject").count() >= 3, "{log}");
}

#[test]
fn check_config_and_key_file_permissions() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let o = Command::new(bin())
        .args(["check-config", "--config", gw.config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = ok(&o, "check-config");
    assert!(text.contains("alice"), "{text}");
    assert!(!text.contains(SK), "check-config printed a secret");
    assert!(
        !text.contains(&store.secret_key),
        "check-config printed the store secret"
    );
    // A private key readable by others is refused, naming the file and the fix.
    let dir = tmpdir("perm");
    let pass = b"perm-pass";
    let (k, _, _) = sealgate::keyring::keygen(&dir, "loose", 2048, pass).unwrap();
    std::fs::write(dir.join("pass"), pass).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = std::fs::read_to_string(&gw.config).unwrap()
        + &format!(
            "[[identities]]\nname = \"loose\"\nkey_file = {:?}\npassphrase_file = {:?}\n",
            k,
            dir.join("pass")
        );
    let p = dir.join("c.toml");
    std::fs::write(&p, cfg).unwrap();
    let o = Command::new(bin())
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("chmod 600") && e.contains("loose.key.pem"),
        "{e}"
    );
    // A wrong passphrase is named as such.
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.join("pass"), b"wrong").unwrap();
    let o = Command::new(bin())
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A bad config value names its key.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&gw.config)
            .unwrap()
            .replace("kind = \"s3\"", "kind = \"s3\"\npath_style = \"maybe\""),
    )
    .unwrap();
    let o = Command::new(bin())
        .args(["check-config", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("path_style"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn sigterm_finishes_in_flight_requests() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = format!("term-{}", std::process::id());
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("term");
    let data = random_bytes(64 * 1024 * 1024, 77);
    let f = dir.join("big");
    std::fs::write(&f, &data).unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                f.to_str().unwrap(),
                &format!("s3://{b}/big"),
            ],
        ),
        "cp",
    );
    // Start a slow download (curl limited to 16 MiB/s through a presigned URL),
    // then SIGTERM the gateway mid-transfer: the download still completes.
    let url = ok(
        &aws2(&gw.endpoint, &["s3", "presign", &format!("s3://{b}/big")]),
        "presign",
    );
    let out = dir.join("down");
    let mut dl = Command::new("curl")
        .args([
            "-s",
            "-f",
            "--limit-rate",
            "16M",
            "-o",
            out.to_str().unwrap(),
            url.trim(),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = gw.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // New connections are refused while the old one drains.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", gw.port)).is_err(),
        "still accepting after SIGTERM"
    );
    let st = dl.wait().unwrap();
    assert!(st.success(), "in-flight download failed");
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

/// `aws s3 ls --recursive`: (key, size) per object.
fn ls(gw: &Gw, b: &str) -> Vec<(String, u64)> {
    let o = ok(
        &aws2(
            &gw.endpoint,
            &["s3", "ls", "--recursive", &format!("s3://{b}")],
        ),
        "ls",
    );
    let mut v: Vec<(String, u64)> = o
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[3].to_owned(), f[2].parse().unwrap())
        })
        .collect();
    v.sort();
    v
}

/// A gateway stopped with SIGTERM writes what it learned for listings to the
/// listing index at the store; a new instance with the same gateway secret
/// (another machine, no state directory) lists the bucket without a single
/// RSA unwrap; one with another secret cannot read the index and unwraps
/// once per object.
#[test]
fn a_new_instance_lists_from_the_index_the_last_one_left_at_the_store() {
    let store = garage();
    let b = format!("ix-{}", std::process::id());
    let first = Gw::start(&GwSpec::simple(store));
    ok(
        &aws2(&first.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("ix-up");
    let mut want = Vec::new();
    for i in 0..12usize {
        let d = random_bytes(100 + i * 1000, 900 + i as u64);
        std::fs::write(dir.join(format!("f{i:02}")), &d).unwrap();
        want.push((format!("f{i:02}"), d.len() as u64));
    }
    ok(
        &aws2(
            &first.endpoint,
            &[
                "s3",
                "cp",
                "--recursive",
                "--only-show-errors",
                dir.to_str().unwrap(),
                &format!("s3://{b}/"),
            ],
        ),
        "cp",
    );
    let pid = first.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut first = first;
    assert!(first.child.wait().unwrap().success());
    let listed = ok(
        &store_aws(
            store,
            &[
                "s3api",
                "list-objects-v2",
                "--bucket",
                &b,
                "--prefix",
                ".sealgate/ix/",
            ],
        ),
        "store list",
    );
    assert!(
        listed.contains(".sealgate/ix/"),
        "no index segment: {listed}"
    );

    for (secret, unwraps) in [
        (None, 0.0),
        (Some("another-gateway-secret-0123456789abcdefgh"), 12.0),
    ] {
        let port = free_port();
        let fresh = Gw::start(&GwSpec::simple(store));
        let mut text = std::fs::read_to_string(&fresh.config).unwrap();
        text = text.replacen(
            "[server]\n",
            &format!("[server]\nadmin_listen = \"127.0.0.1:{port}\"\n"),
            1,
        );
        if let Some(s) = secret {
            text = text.replacen(GATEWAY_SECRET, s, 1);
        }
        std::fs::write(&fresh.config, text).unwrap();
        let fresh = fresh.restart();
        wait_port(port, "admin listener", &fresh.log);
        assert_eq!(ls(&fresh, &b), want, "secret {secret:?}");
        let (_, m) = curl(&format!("http://127.0.0.1:{port}/metrics"));
        assert_eq!(
            metric(&m, "sealgate_rsa_unwraps_total"),
            unwraps,
            "secret {secret:?}: {m}"
        );
    }
}
