//! `sealgate check-config`: validates a config and prints what it would
//! serve (listeners, users, store, key ids, policies), never a secret. It
//! also reads the policies of restic repositories (docs/BACKUPS.md) and
//! refuses those that would make restic fail.

use std::path::Path;

use crate::cli::CheckConfigArgs;
use crate::config::{Config, PolicyConfig};

/// What restic reads back from its repository on every run (`backup`,
/// `snapshots`, `forget`...): a gateway that writes these but cannot read
/// them makes restic retry each read for about a minute, then fail.
pub const RESTIC_METADATA: [&str; 5] = ["config", "keys/", "index/", "snapshots/", "locks/"];

/// What `check-config` found about the restic repositories of a config.
#[derive(Debug, Default)]
pub struct ResticReport {
    /// For people: each repository and what this gateway can read of it.
    pub notes: Vec<String>,
    /// Policies that make restic fail through this gateway.
    pub errors: Vec<String>,
}

/// The index of the policy a new object at bucket/key gets: the same rule
/// as [`crate::keyring::Keyring::policy_for`] (a named bucket beats `*`,
/// then the longest prefix, the last one among equals).
fn policy_index(policies: &[PolicyConfig], bucket: &str, key: &str) -> Option<usize> {
    policies
        .iter()
        .enumerate()
        .filter(|(_, p)| (p.bucket == "*" || p.bucket == bucket) && key.starts_with(&p.prefix))
        .max_by_key(|(_, p)| (p.bucket != "*", p.prefix.len()))
        .map(|(i, _)| i)
}

/// The restic repositories of `cfg`, as (bucket, prefix of the repository,
/// why it is taken for one): a policy with `profile = "restic"`, or a policy
/// of its own for a `data/` prefix (unless it says `profile = "none"`).
fn restic_repositories(cfg: &Config) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for (i, p) in cfg.policies.iter().enumerate() {
        let root = match p.profile.as_deref() {
            Some("restic") => Some((p.prefix.clone(), format!("policies[{i}] says profile = \"restic\""))),
            Some(_) => None,
            None => (p.prefix == "data/" || p.prefix.ends_with("/data/")).then(|| {
                (
                    p.prefix[..p.prefix.len() - "data/".len()].to_owned(),
                    format!(
                        "policies[{i}] gives its data/ a policy of its own; say profile = \"none\" there if it is not one"
                    ),
                )
            }),
        };
        if let Some((prefix, why)) = root {
            if !out.iter().any(|(b, r, _)| *b == p.bucket && *r == prefix) {
                out.push((p.bucket.clone(), prefix, why));
            }
        }
    }
    out
}

/// Checks every restic repository of `cfg`: this gateway must be able to
/// read back what restic reads on every run ([`RESTIC_METADATA`]); `data/`
/// may be write-only (the asymmetric backup of docs/BACKUPS.md). `readable`
/// says whether a recipient name of a policy is one this gateway can
/// decrypt for (one of its identities, or a group it is a member of).
pub fn check_restic(cfg: &Config, readable: &dyn Fn(&str) -> bool) -> ResticReport {
    let mut rep = ResticReport::default();
    let ids: Vec<&str> = cfg.identities.iter().map(|i| i.name.as_str()).collect();
    for (bucket, root, why) in restic_repositories(cfg) {
        let at = format!("{bucket}/{root}");
        let mut broken = false;
        for name in RESTIC_METADATA {
            // A key under the prefix (`index/x`), or `config` itself.
            let probe = format!("{root}{name}{}", if name.ends_with('/') { "x" } else { "" });
            let Some(i) = policy_index(&cfg.policies, &bucket, &probe) else {
                rep.errors.push(format!(
                    "restic repository at {at} ({why}): no policy covers its `{name}`, so restic cannot write it (every write is refused with AccessDenied)"
                ));
                broken = true;
                continue;
            };
            let p = &cfg.policies[i];
            if !p.recipients.iter().any(|r| readable(r)) {
                let readback = if p.recipients.iter().any(|r| r.starts_with("readback:")) {
                    " (a readback: key is not enough: it ages out, and restic reads the config and keys/ written at `init` on every run)"
                } else {
                    ""
                };
                rep.errors.push(format!(
                    "restic repository at {at} ({why}): policies[{i}] (bucket {:?}, prefix {:?}) encrypts its `{name}` for {} only, and this gateway holds none of their private keys, so restic cannot read it back{readback}. restic reads config, keys/, index/, snapshots/ and locks/ on every run (backup, snapshots, forget); each denied read is retried for about a minute and the command then fails. Add one of this gateway's identities ({}) to that policy's recipients and give data/ a write-only policy of its own (docs/BACKUPS.md).",
                    p.bucket,
                    p.prefix,
                    p.recipients.join(", "),
                    if ids.is_empty() { "none configured: add one".to_owned() } else { ids.join(", ") },
                ));
                broken = true;
            }
        }
        if broken {
            continue;
        }
        let probe = format!("{root}data/x");
        match policy_index(&cfg.policies, &bucket, &probe) {
            Some(i) if !cfg.policies[i].recipients.iter().any(|r| readable(r)) => {
                let p = &cfg.policies[i];
                if let Some(rb) = p.recipients.iter().find(|r| r.starts_with("readback:")) {
                    let others: Vec<&str> = p
                        .recipients
                        .iter()
                        .filter(|r| !r.starts_with("readback:"))
                        .map(String::as_str)
                        .collect();
                    rep.notes.push(format!(
                        "restic repository at {at}: data/ packs are readable here while they are recent (policies[{i}]: {rb}: this gateway's read-back key of the window they were written in, held for that window and the next), then only by {}. A backup that lost its cache works while its parent snapshot is that recent; `restic check` here too while every pack is; older content stays closed to this gateway (docs/BACKUPS.md)",
                        if others.is_empty() { "nobody: add the offline key".to_owned() } else { others.join(", ") }
                    ));
                    continue;
                }
                rep.notes.push(format!(
                    "restic repository at {at}: data/ is write-only here (policies[{i}]: packs encrypted for {} only). Backups work; this gateway cannot read file content or names back: `restic check`, `prune`, `restore` and a backup that lost its cache (unless run with --force) go through a gateway holding one of those keys (docs/BACKUPS.md)",
                    cfg.policies[i].recipients.join(", ")
                ));
            }
            Some(_) => rep.notes.push(format!(
                "restic repository at {at}: this gateway reads all of it, data/ included"
            )),
            None => rep.errors.push(format!(
                "restic repository at {at} ({why}): no policy covers its `data/`, so restic cannot write its packs"
            )),
        }
    }
    rep
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    let path: &Path = &args.config;
    let cfg = Config::load(path)?;
    let kr = crate::app::build_keyring(&cfg)?;
    println!("config {} is valid", path.display());
    println!("listen: {}", cfg.server.listen);
    if let Some(t) = &cfg.server.tls_listen {
        println!("tls listen: {t}");
    } else if cfg.server.tls_cert.is_some() {
        println!("tls: on the main listener");
    }
    println!("users:");
    for u in &cfg.users {
        println!("  {} -> buckets {}", u.access_key, u.buckets.join(", "));
    }
    match cfg.store.kind {
        crate::config::StoreKind::Local => {
            println!(
                "store: local directory {}",
                cfg.store
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        }
        crate::config::StoreKind::S3 => println!(
            "store: s3 {} (region {}, path style {})",
            cfg.store.endpoint.as_deref().unwrap_or_default(),
            cfg.store.region,
            cfg.store.path_style
        ),
    }
    println!("identities:");
    for (name, id) in kr.identities() {
        println!(
            "  {name}: key id {} ({})",
            hex::encode(id.key_id()),
            id.describe()
        );
    }
    println!("recipients:");
    for r in kr.recipients() {
        println!(
            "  {}: key id {} ({})",
            r.name,
            hex::encode(r.key.key_id()),
            r.key.describe()
        );
    }
    println!("policies:");
    for p in kr.policies() {
        let recips: Vec<_> = p
            .recipients
            .iter()
            .filter_map(|n| kr.recipient(n))
            .map(|r| r.key.clone())
            .collect();
        let refs: Vec<&dyn crate::envelope::Recipient> =
            recips.iter().map(|r| r.as_ref()).collect();
        // The format's own arithmetic, with a small object's attributes (a
        // Content-Type and a few metadata entries: about 100 bytes sealed).
        let len = crate::envelope::header::header_len(&refs, false, Some(100));
        let place = if crate::gateway::seal::fits_inline(len, 0) {
            "envelope fits in metadata"
        } else {
            "envelope overflows metadata: stored at the head of each single-part object's body, in the manifest of a multipart one"
        };
        println!(
            "  bucket {} prefix {:?} -> {} ({place})",
            p.bucket,
            p.prefix,
            p.recipients.join(", ")
        );
    }
    let own: Vec<&str> = kr.identities().iter().map(|(n, _)| n.as_str()).collect();
    let restic = check_restic(&cfg, &|r| own.contains(&r) || r.starts_with("group:"));
    if !restic.notes.is_empty() || !restic.errors.is_empty() {
        if let Some(g) = cfg
            .policies
            .iter()
            .flat_map(|p| &p.recipients)
            .find(|r| r.starts_with("group:"))
        {
            // Membership is in the group's signed document at the store,
            // which check-config does not read.
            println!(
                "note: {g} counts as readable by this gateway in the restic check; that holds only while this gateway's [sharing] member is in the group (`sealgate group show`)"
            );
        }
    }
    for n in &restic.notes {
        println!("{n}");
    }
    if !restic.errors.is_empty() {
        for e in &restic.errors {
            eprintln!("error: {e}");
        }
        anyhow::bail!(
            "{} polic{} would make restic fail (see above)",
            restic.errors.len(),
            if restic.errors.len() == 1 { "y" } else { "ies" }
        );
    }
    match (&cfg.audit.path, cfg.audit.stderr) {
        (Some(p), _) => {
            println!("audit log: {}", p.display());
            // Not created here (check-config writes nothing); its directory
            // must exist for `serve` to start.
            if let Some(dir) = p.parent().filter(|d| !d.is_dir()) {
                println!(
                    "  warning: {} does not exist; serve will refuse to start",
                    dir.display()
                );
            }
        }
        (None, true) => println!("audit log: stderr"),
        _ => println!("audit log: off"),
    }
    if !cfg.server.trusted_proxies.is_empty() {
        println!(
            "trusted proxies (X-Forwarded-For believed from): {}",
            cfg.server.trusted_proxies.join(", ")
        );
    }
    Ok(())
}
