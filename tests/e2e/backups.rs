//! Asymmetric backups (docs/BACKUPS.md): a backup host whose sealgate can
//! write a restic repository but cannot read its content back, and a restore
//! gateway holding the offline key. Real restic (Debian 12's 0.14) through
//! the real binary over Garage.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
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

/// Runs restic with `env` until a line of its stderr contains `needle`, then
/// kills it (restic retries a failed read for about a minute). Returns the
/// stderr read so far, or panics after `limit`.
fn restic_until(args: &[&str], env: &[(&str, &str)], needle: &str, limit: Duration) -> String {
    let mut c = Command::new("restic");
    c.args(args)
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("run restic");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut seen = String::new();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(line) => {
                seen += &line;
                seen.push('\n');
                if line.contains(needle) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return seen;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "restic {args:?}: no line with {needle:?} within {limit:?}; stderr:\n{seen}"
                );
            }
        }
    }
}

#[test]
fn restic_through_a_write_only_host_restores_through_the_offline_key() {
    let store = garage();
    let offline = key("backup-offline", 2048);
    let host = key("backup-host1", 2048);
    let b = format!("backups-{}", std::process::id());
    // The host: holds its own key (metadata of the repository), knows the
    // offline key's public half; data/ packs are for the offline key only.
    let policies = vec![
        (
            b.clone(),
            "host1/".to_owned(),
            vec!["backup-host1".to_owned(), "backup-offline".to_owned()],
        ),
        (
            b.clone(),
            "host1/data/".to_owned(),
            vec!["backup-offline".to_owned()],
        ),
    ];
    let host_gw = Gw::start(&GwSpec {
        store: Some(store),
        identities: vec![host.clone()],
        recipients: vec![offline.clone()],
        policies: policies.clone(),
        extra_users: vec![],
        tls: false,
        extra_toml: String::new(),
    });
    // The restore gateway: holds the offline key, seals what it writes (prune's
    // new index and packs, check's locks) for the same recipients, so the host
    // still reads the repository's metadata afterwards.
    let restore_gw = Gw::start(&GwSpec {
        store: Some(store),
        identities: vec![offline.clone()],
        recipients: vec![host.clone()],
        policies,
        extra_users: vec![],
        tls: false,
        extra_toml: String::new(),
    });
    let mk = aws2(&host_gw.endpoint, &["s3", "mb", &format!("s3://{b}")]);
    ok(&mk, "mb");

    let dir = tmpdir("backups");
    let repo_host = format!("s3:{}/{b}/host1", host_gw.endpoint);
    let repo_restore = format!("s3:{}/{b}/host1", restore_gw.endpoint);
    let cache = dir.join("cache").display().to_string();
    let env_host = [
        ("RESTIC_REPOSITORY", repo_host.as_str()),
        ("RESTIC_PASSWORD", "correct horse battery staple"),
        ("RESTIC_CACHE_DIR", cache.as_str()),
    ];
    let restic = |args: &[&str], what: &str| {
        must(
            run("restic", args, &env_host),
            &format!("restic {what} (host)"),
            &host_gw,
        )
    };

    restic(&["init"], "init");
    let src = dir.join("data");
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("notes.txt".into(), b"a file the host backs up\n".to_vec()),
        ("docs/a.bin".into(), random_bytes(300_000, 11)),
        (
            "large/five.bin".into(),
            random_bytes(5 * 1024 * 1024 + 3, 12),
        ),
    ];
    for i in 0..20 {
        files.push((
            format!("many/f{i:02}"),
            random_bytes(100 + i * 331, 40 + i as u64),
        ));
    }
    write_files(&src, &files);
    let src_s = src.display().to_string();
    let v1 = read_tree(&src);
    restic(&["backup", "--host", "host1", &src_s], "backup 1");
    // Second backup with the cache: restic reads the parent's trees from it.
    std::fs::write(src.join("notes.txt"), b"changed on the host\n").unwrap();
    std::fs::write(src.join("docs/new.bin"), random_bytes(700_000, 13)).unwrap();
    let v2 = read_tree(&src);
    restic(&["backup", "--host", "host1", &src_s], "backup 2");

    // The host lists its snapshots (snapshots/ is readable to it) and may
    // forget (without --prune: that reads packs).
    let snaps: serde_json::Value =
        serde_json::from_str(&restic(&["snapshots", "--json"], "snapshots")).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");

    // The cache is lost: a backup with a parent reads the parent's tree packs,
    // which the host cannot open; restic's output names the cause.
    let fresh = dir.join("cache-lost").display().to_string();
    let env_lost = [
        ("RESTIC_REPOSITORY", repo_host.as_str()),
        ("RESTIC_PASSWORD", "correct horse battery staple"),
        ("RESTIC_CACHE_DIR", fresh.as_str()),
    ];
    let err = restic_until(
        &["backup", "--host", "host1", &src_s],
        &env_lost,
        "holds no private key",
        Duration::from_secs(90),
    );
    assert!(
        err.contains(&offline.key_id) && err.contains("backup-offline"),
        "the message names the key the pack is encrypted for:\n{err}"
    );
    eprintln!("restic's output on a denied read:\n{err}");
    // The killed restic left its lock behind: `unlock` removes a lock of a
    // process that no longer runs on this host.
    must(
        run("restic", &["unlock"], &env_lost),
        "restic unlock (host)",
        &host_gw,
    );
    // The recipe: `backup --force` (no parent) reads no pack: it re-reads the
    // local files, deduplicates against the index and uploads what is new.
    std::fs::write(src.join("docs/third.bin"), random_bytes(200_000, 14)).unwrap();
    let v3 = read_tree(&src);
    let out = must(
        run(
            "restic",
            &["backup", "--force", "--host", "host1", &src_s],
            &env_lost,
        ),
        "restic backup --force without a cache (host)",
        &host_gw,
    );
    assert!(out.contains("snapshot") && out.contains("saved"), "{out}");
    // And `--no-cache` is the same recipe.
    std::fs::write(src.join("docs/fourth.bin"), random_bytes(90_000, 15)).unwrap();
    let v4 = read_tree(&src);
    must(
        run(
            "restic",
            &["backup", "--no-cache", "--force", "--host", "host1", &src_s],
            &env_host,
        ),
        "restic backup --no-cache --force (host)",
        &host_gw,
    );

    // What the host sees of a data pack: AccessDenied naming the offline key.
    let ls = ok(
        &aws2(
            &host_gw.endpoint,
            &["s3", "ls", "--recursive", &format!("s3://{b}/host1/data/")],
        ),
        "ls data/",
    );
    let pack = ls
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .next()
        .expect("a data pack")
        .to_owned();
    let got = aws2(
        &host_gw.endpoint,
        &[
            "s3",
            "cp",
            &format!("s3://{b}/{pack}"),
            dir.join("pack").to_str().unwrap(),
        ],
    );
    assert!(!got.status.success());
    let e = String::from_utf8_lossy(&got.stderr);
    assert!(
        e.contains("403") || e.contains("AccessDenied") || e.contains("Forbidden"),
        "{e}"
    );
    // ... while the repository's metadata stays readable to it.
    let cfg = aws2(
        &host_gw.endpoint,
        &[
            "s3",
            "cp",
            &format!("s3://{b}/host1/config"),
            dir.join("config").to_str().unwrap(),
        ],
    );
    ok(&cfg, "host reads config");

    // At the store: no restic object in the clear (every one is a sealgate
    // envelope: the `sg` metadata entry).
    let raw = ok(
        &store_aws(
            store,
            &["s3api", "head-object", "--bucket", &b, "--key", &pack],
        ),
        "store head",
    );
    assert!(raw.contains("\"sg\""), "{raw}");

    // The restore gateway: check, check --read-data, restore, byte for byte.
    let cache_r = dir.join("cache-restore").display().to_string();
    let env_restore = [
        ("RESTIC_REPOSITORY", repo_restore.as_str()),
        ("RESTIC_PASSWORD", "correct horse battery staple"),
        ("RESTIC_CACHE_DIR", cache_r.as_str()),
    ];
    let rr = |args: &[&str], what: &str| {
        must(
            run("restic", args, &env_restore),
            &format!("restic {what} (restore gateway)"),
            &restore_gw,
        )
    };
    let out = rr(&["check"], "check");
    assert!(out.contains("no errors were found"), "{out}");
    let out = rr(&["check", "--read-data"], "check --read-data");
    assert!(out.contains("no errors were found"), "{out}");
    let snaps: serde_json::Value =
        serde_json::from_str(&rr(&["snapshots", "--json"], "snapshots")).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 4, "{snaps:?}");
    for (i, want) in [&v1, &v2, &v3, &v4].into_iter().enumerate() {
        let id = snaps[i]["id"].as_str().unwrap();
        let target = dir.join(format!("restore-{i}"));
        rr(
            &["restore", id, "--target", target.to_str().unwrap()],
            "restore",
        );
        let got = read_tree(&target.join(src.strip_prefix("/").unwrap()));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "snapshot {i}: names"
        );
        for (k, v) in want.iter() {
            assert!(got[k] == *v, "snapshot {i}: {k} differs");
        }
    }
    // prune on the restore gateway rewrites index/ and snapshots/ for the
    // same recipients: the host reads them and backs up again afterwards.
    let out = rr(&["forget", "--keep-last", "2", "--prune"], "forget --prune");
    assert!(out.contains("remove 2 snapshots"), "{out}");
    restic(&["snapshots"], "snapshots after prune");
    must(
        run(
            "restic",
            &["backup", "--force", "--host", "host1", &src_s],
            &env_lost,
        ),
        "restic backup after prune (host)",
        &host_gw,
    );
    let out = rr(&["check", "--read-data"], "check after prune");
    assert!(out.contains("no errors were found"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve` says at startup what check-config refuses about a restic
/// repository's policies, and serves the rest.
#[test]
fn serve_warns_of_a_policy_that_would_make_restic_fail() {
    let offline = key("backup-offline", 2048);
    let host = key("backup-host1", 2048);
    let gw = Gw::start(&GwSpec {
        store: None,
        identities: vec![host],
        recipients: vec![offline],
        policies: vec![],
        extra_users: vec![],
        tls: false,
        extra_toml: "[[policies]]\nbucket = \"backups\"\nprefix = \"host1/\"\nrecipients = [\"backup-offline\"]\nprofile = \"restic\"\n".into(),
    });
    let log = gw.log_text();
    for want in [
        "restic repository at backups/host1/",
        "cannot read it back",
        "sealgate check-config",
    ] {
        assert!(log.contains(want), "missing {want:?}:\n{log}");
    }
}

/// A config for check-config alone (an embedded store, nothing started).
fn check_config(dir: &Path, identities: &[&Key], recipients: &[&Key], policies: &str) -> Output {
    let mut t = format!(
        "[[users]]\naccess_key = \"{AK}\"\nsecret_key = \"{SK}\"\n[store]\nkind = \"local\"\npath = {:?}\n",
        dir.join("store")
    );
    for k in identities {
        t += &format!(
            "[[identities]]\nname = \"{}\"\nkey_file = {:?}\npassphrase_file = {:?}\n",
            k.name, k.key_file, k.pass_file
        );
    }
    for k in recipients {
        t += &format!(
            "[[recipients]]\nname = \"{}\"\npublic_key_file = {:?}\n",
            k.name, k.pub_file
        );
    }
    t += policies;
    let cfg = dir.join(format!("c{}.toml", free_port()));
    std::fs::write(&cfg, t).unwrap();
    Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap()
}

#[test]
fn check_config_explains_policies_that_would_make_restic_fail() {
    let offline = key("backup-offline", 2048);
    let host = key("backup-host1", 2048);
    let dir = tmpdir("backups-check");
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // The recipe: metadata for the host and the offline key, data/ for the
    // offline key alone. Accepted, and check-config says what it means.
    let recipe = "[[policies]]\nbucket = \"backups\"\nprefix = \"host1/\"\nrecipients = [\"backup-host1\", \"backup-offline\"]\nprofile = \"restic\"\n\
                  [[policies]]\nbucket = \"backups\"\nprefix = \"host1/data/\"\nrecipients = [\"backup-offline\"]\n";
    let o = check_config(&dir, &[&host], &[&offline], recipe);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("restic repository at backups/host1/: data/ is write-only here")
            && t.contains("backup-offline"),
        "{t}"
    );
    // The whole repository for the offline key only: restic could not read
    // its own index back. Refused, naming the policy and what restic does.
    let all_offline = "[[policies]]\nbucket = \"backups\"\nprefix = \"host1/\"\nrecipients = [\"backup-offline\"]\nprofile = \"restic\"\n";
    let o = check_config(&dir, &[&host], &[&offline], all_offline);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for want in [
        "policies[0]",
        "`index/`",
        "`snapshots/`",
        "cannot read it back",
        "retried for about a minute",
        "backup-host1",
        "docs/BACKUPS.md",
    ] {
        assert!(t.contains(want), "missing {want:?}:\n{t}");
    }
    // No marker, but data/ has a policy of its own beside a write-only
    // parent: taken for a restic repository and refused...
    let guessed = "[[policies]]\nbucket = \"*\"\nprefix = \"repo/\"\nrecipients = [\"backup-offline\"]\n\
                   [[policies]]\nbucket = \"*\"\nprefix = \"repo/data/\"\nrecipients = [\"backup-offline\"]\n";
    let o = check_config(&dir, &[&host], &[&offline], guessed);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("*/repo/") && t.contains("profile = \"none\""),
        "{t}"
    );
    // ...unless the policy says it is not one.
    let o = check_config(
        &dir,
        &[&host],
        &[&offline],
        &format!("{guessed}profile = \"none\"\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    // A gateway without a single identity cannot host a restic repository.
    let o = check_config(&dir, &[], &[&offline, &host], recipe);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("none configured"), "{t}");
    // A read-back key is not enough for restic's metadata: check-config says
    // why (config and keys/ are written once and read on every run).
    let readback_only = "[[policies]]\nbucket = \"backups\"\nprefix = \"host1/\"\nrecipients = [\"backup-offline\", \"readback:7d\"]\nprofile = \"restic\"\n\
                         [gateway]\nsecret = \"a-gateway-secret-of-forty-characters-0123\"\nstate_dir = \"state\"\n";
    let o = check_config(&dir, &[&host], &[&offline], readback_only);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("a readback: key is not enough"),
        "{t}"
    );
    // A read-back recipient without a state_dir is a config error.
    let o = check_config(
        &dir,
        &[&host],
        &[&offline],
        &recipe.replace(
            "[\"backup-offline\"]",
            "[\"backup-offline\", \"readback:7d\"]",
        ),
    );
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains("policies[1].recipients")
            && t.contains("gateway.state_dir"),
        "{t}"
    );
    // An unknown profile is a config error naming its key.
    let o = check_config(
        &dir,
        &[&host],
        &[&offline],
        &recipe.replace("\"restic\"", "\"borg\""),
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("policies[0].profile"),
        "{t}"
    );
}

/// rclone with a remote `sg` at `endpoint`; returns (success, stderr).
fn rclone(endpoint: &str, args: &[&str]) -> (bool, String) {
    let conf = std::env::temp_dir().join(format!("sealgate-rclone-b-{}.conf", std::process::id()));
    let conf = conf.display().to_string();
    let mut env: Vec<(&str, &str)> = vec![("RCLONE_CONFIG", &conf), ("RCLONE_RETRIES", "1")];
    env.extend([
        ("RCLONE_CONFIG_SG_TYPE", "s3"),
        ("RCLONE_CONFIG_SG_PROVIDER", "Other"),
        ("RCLONE_CONFIG_SG_ENDPOINT", endpoint),
        ("RCLONE_CONFIG_SG_ACCESS_KEY_ID", AK),
        ("RCLONE_CONFIG_SG_SECRET_ACCESS_KEY", SK),
        ("RCLONE_CONFIG_SG_REGION", "us-east-1"),
        ("RCLONE_CONFIG_SG_FORCE_PATH_STYLE", "true"),
    ]);
    let out = run("rclone", args, &env);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rclone_sync_through_a_write_only_host() {
    let store = garage();
    let offline = key("backup-offline", 2048);
    let host = key("backup-host1", 2048);
    let b = format!("rclone-wo-{}", std::process::id());
    let policies = vec![(b.clone(), String::new(), vec!["backup-offline".to_owned()])];
    let host_gw = Gw::start(&GwSpec {
        store: Some(store),
        identities: vec![host.clone()],
        recipients: vec![offline.clone()],
        policies: policies.clone(),
        extra_users: vec![],
        tls: false,
        extra_toml: String::new(),
    });
    // The recipe keeps the persistent listing index (gateway.state_dir): the
    // plaintext MD5s this gateway computed on upload, which it can no longer
    // authenticate from the store once it restarts.
    let cfg = std::fs::read_to_string(&host_gw.config).unwrap();
    let state = host_gw.dir.join("state");
    std::fs::write(
        &host_gw.config,
        cfg.replace(
            "[gateway]\n",
            &format!("[gateway]\nstate_dir = {:?}\n", state.display().to_string()),
        ),
    )
    .unwrap();
    let host_gw = host_gw.restart();
    let restore_gw = Gw::start(&GwSpec {
        store: Some(store),
        identities: vec![offline.clone()],
        recipients: vec![],
        policies,
        extra_users: vec![],
        tls: false,
        extra_toml: String::new(),
    });
    ok(
        &aws2(&host_gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("backups-rclone");
    let src = dir.join("src");
    let mut files: Vec<(String, Vec<u8>)> = vec![("notes.txt".into(), b"one\n".to_vec())];
    for i in 0..6 {
        files.push((
            format!("d/f{i}"),
            random_bytes(1000 + i * 5000, 70 + i as u64),
        ));
    }
    write_files(&src, &files);
    let src_s = src.display().to_string();
    let dest = format!("sg:{b}/set");
    // A restart keeps the port, so the endpoint.
    let host_ep = host_gw.endpoint.clone();
    let verbose = |args: &[&str]| {
        let mut a = vec!["sync", src_s.as_str(), dest.as_str(), "-v"];
        a.extend_from_slice(args);
        rclone(&host_ep, &a)
    };
    // rclone's default upload reads the object back (HEAD) to check it: the
    // write-only host answers 403, and rclone counts the file as failed.
    let (okay, err) = verbose(&[]);
    assert!(!okay && err.contains("403"), "{err}");
    // The recipe: no HEAD after upload, compare by the listing's MD5.
    let recipe = ["--s3-no-head", "--checksum"];
    let (okay, err) = verbose(&recipe);
    assert!(okay, "{err}");
    // Again, after a restart: nothing to copy (the listing still shows the
    // plaintext MD5s), a changed file of the same size is copied, a removed
    // one deleted. Stopped as a service manager stops it, right after the
    // uploads: the shutdown writes the local index's last batch (a SIGKILL
    // would lose it, and a write-only host cannot learn it again).
    let host_gw = host_gw.stop_and_restart();
    let (okay, err) = verbose(&recipe);
    assert!(okay && !err.contains("Copied"), "{err}");
    std::fs::write(src.join("notes.txt"), b"two\n").unwrap();
    std::fs::remove_file(src.join("d/f0")).unwrap();
    let (okay, err) = verbose(&recipe);
    assert!(
        okay && err.contains("notes.txt: Copied") && err.contains("d/f0: Deleted"),
        "{err}"
    );
    assert_eq!(err.matches("Copied").count(), 1, "{err}");
    // The host cannot read what it wrote...
    let back = dir.join("back");
    let (okay, err) = rclone(&host_gw.endpoint, &["copy", &dest, back.to_str().unwrap()]);
    assert!(!okay, "{err}");
    // ...the restore gateway reads it all back, byte for byte.
    let (okay, err) = rclone(
        &restore_gw.endpoint,
        &["check", &src_s, &dest, "--download"],
    );
    assert!(okay, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sets `gateway.state_dir` in a running gateway's config and restarts it.
fn with_state_dir(gw: Gw) -> Gw {
    let cfg = std::fs::read_to_string(&gw.config).unwrap();
    let state = gw.dir.join("state");
    std::fs::write(
        &gw.config,
        cfg.replace(
            "[gateway]\n",
            &format!("[gateway]\nstate_dir = {:?}\n", state.display().to_string()),
        ),
    )
    .unwrap();
    gw.restart()
}

#[test]
fn restic_with_read_back_keys_survives_a_lost_cache_and_checks_on_the_host() {
    let store = garage();
    let offline = key("backup-offline", 2048);
    let host = key("backup-host2", 2048);
    let b = format!("backups-rb-{}", std::process::id());
    let spec = GwSpec {
        store: Some(store),
        identities: vec![host.clone()],
        recipients: vec![offline.clone()],
        policies: vec![
            (
                b.clone(),
                "host2/".to_owned(),
                vec!["backup-host2".to_owned(), "backup-offline".to_owned()],
            ),
            (
                b.clone(),
                "host2/data/".to_owned(),
                vec!["backup-offline".to_owned()],
            ),
        ],
        extra_users: vec![],
        tls: false,
        extra_toml: String::new(),
    };
    // data/ also for this host's read-back key (which needs a state_dir).
    let host_gw = Gw::start(&spec);
    let cfg = std::fs::read_to_string(&host_gw.config).unwrap();
    std::fs::write(
        &host_gw.config,
        cfg.replace(
            "recipients = [\"backup-offline\"]\n",
            "recipients = [\"backup-offline\", \"readback:7d\"]\n",
        ),
    )
    .unwrap();
    let host_gw = with_state_dir(host_gw);
    // check-config explains what the read-back key opens.
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&host_gw.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("data/ packs are readable here while they are recent")
            && text.contains("readback:7d")
            && text.contains("then only by backup-offline"),
        "{text}"
    );
    ok(
        &aws2(&host_gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("backups-rb");
    let repo = format!("s3:{}/{b}/host2", host_gw.endpoint);
    let env = |cache: &str| {
        vec![
            ("RESTIC_REPOSITORY", repo.clone()),
            ("RESTIC_PASSWORD", "correct horse battery staple".to_owned()),
            ("RESTIC_CACHE_DIR", dir.join(cache).display().to_string()),
        ]
    };
    let restic = |args: &[&str], cache: &str, what: &str| {
        let e = env(cache);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        must(run("restic", args, &e), &format!("restic {what}"), &host_gw)
    };
    restic(&["init"], "c1", "init");
    let src = dir.join("data");
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| {
            (
                format!("d{}/f{i}", i % 3),
                random_bytes(5_000 + i * 40_000, 90 + i as u64),
            )
        })
        .collect();
    write_files(&src, &files);
    let src_s = src.display().to_string();
    restic(&["backup", &src_s], "c1", "backup 1");
    std::fs::write(src.join("d0/new"), random_bytes(123_456, 99)).unwrap();
    // The cache is lost: the parent's trees are read back through the
    // read-back key, no --force needed.
    let out = restic(&["backup", &src_s], "c2", "backup without the cache");
    assert!(out.contains("using parent snapshot"), "{out}");
    // And the host checks its own recent repository, content included.
    let out = restic(
        &["check", "--read-data"],
        "c3",
        "check --read-data on the host",
    );
    assert!(out.contains("no errors were found"), "{out}");
    // The read-back key is on disk, sealed, nowhere else.
    let keys: Vec<_> = std::fs::read_dir(host_gw.dir.join("state/readback"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    // Without the read-back key (the same host, the recipe of section 1),
    // those packs stay closed: restic says why.
    let cfg = std::fs::read_to_string(&host_gw.config).unwrap();
    std::fs::write(&host_gw.config, cfg.replace(", \"readback:7d\"", "")).unwrap();
    let host_gw = host_gw.restart();
    let e = env("c4");
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let err = restic_until(
        &["check", "--read-data"],
        &e,
        "holds no private key",
        Duration::from_secs(90),
    );
    assert!(err.contains("backup-offline"), "{err}");
    drop(host_gw);
    let _ = std::fs::remove_dir_all(&dir);
}
