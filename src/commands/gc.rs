//! `sealgate gc`: finds (and with `--delete` removes) what sealgate left at
//! the store that nothing needs. The rules that keep it safe are in
//! [`crate::gateway::gc`].

use std::time::Duration;

use super::parse_s3_url;
use crate::cli::GcArgs;
use crate::config::Config;
use crate::gateway::gc::{gc, GcOptions};

/// The `sealgate gc` command.
pub async fn run(args: GcArgs) -> anyhow::Result<()> {
    let rt = crate::app::build(&Config::load(&args.config)?)?;
    let (bucket, prefix) = parse_s3_url(&args.bucket)?;
    if !prefix.is_empty() {
        anyhow::bail!("gc works on a whole bucket: give s3://{bucket}");
    }
    let opts = GcOptions {
        apply: args.delete,
        min_age: Duration::from_secs(args.min_age_secs),
        concurrency: args.concurrency,
    };
    let r = gc(&rt.gateway, &bucket, &opts).await?;
    let bytes = |v: &[(String, u64)]| v.iter().map(|(_, n)| n).sum::<u64>();
    println!("bucket s3://{bucket}: {} objects looked at", r.objects);
    println!(
        "orphaned manifests: {} ({} bytes)",
        r.orphan_manifests.len(),
        bytes(&r.orphan_manifests)
    );
    for (k, _) in &r.orphan_manifests {
        println!("  {k}");
    }
    if r.uploads_listed {
        println!(
            "records of uploads the store no longer has: {} ({} bytes)",
            r.orphan_records.len(),
            bytes(&r.orphan_records)
        );
        for (k, _) in &r.orphan_records {
            println!("  {k}");
        }
    } else {
        println!("records of uploads: kept (the store cannot list its uploads)");
    }
    if !r.probe_leftovers.is_empty() || !r.probe_uploads.is_empty() {
        println!(
            "left by a conditional-write probe: {} keys, {} uploads",
            r.probe_leftovers.len(),
            r.probe_uploads.len()
        );
        for (k, _) in &r.probe_leftovers {
            println!("  {k}");
        }
    }
    if r.too_young > 0 {
        println!(
            "kept because younger than {} s: {}",
            args.min_age_secs, r.too_young
        );
    }
    if r.old_versions > 0 {
        println!(
            "old versions of deleted upload records and probe keys: {}",
            r.old_versions
        );
    }
    for k in &r.unknown {
        println!("unknown key under .sealgate/, left alone: {k}");
    }
    if args.delete {
        println!("deleted: {}", r.deleted);
    } else {
        println!("dry run: nothing deleted (run again with --delete)");
    }
    Ok(())
}
