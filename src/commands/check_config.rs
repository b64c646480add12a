//! `sealgate check-config`: validates a config and prints what it would
//! serve (listeners, users, store, key ids, policies), never a secret.

use std::path::Path;

use crate::cli::CheckConfigArgs;
use crate::config::Config;

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
