//! `sealgate reencrypt`: encrypts objects again under a fresh data key for
//! the current policy (the real revocation; content passes through sealgate).

use futures::StreamExt;

use super::common::{keys_under, Progress, Summary};
use super::parse_s3_url;
use crate::cli::ReencryptArgs;
use crate::config::Config;
use crate::envelope::BodyBinding;
use crate::gateway::checksum::{ClientChecks, Expected};
use crate::gateway::object::manifest_key;
use crate::gateway::Gateway;

/// The `sealgate reencrypt` command; fails (after doing what it can) when any
/// object failed.
pub async fn run(args: ReencryptArgs) -> anyhow::Result<()> {
    let rt = crate::app::build(&Config::load(&args.config)?)?;
    let (b, p) = parse_s3_url(&args.target)?;
    let s = reencrypt(&rt.gateway, &b, &p, args.concurrency).await?;
    print!("{s}");
    if !s.failed.is_empty() {
        anyhow::bail!("{} object(s) failed", s.failed.len());
    }
    Ok(())
}

/// Encrypts objects again under a fresh data key for the current policy: the
/// real revocation (a removed recipient may have kept an old data key).
/// Content passes through sealgate.
pub async fn reencrypt(
    gw: &Gateway,
    bucket: &str,
    prefix: &str,
    concurrency: usize,
) -> anyhow::Result<Summary> {
    let keys = keys_under(gw, bucket, prefix).await?;
    let progress = Progress::new(keys.len());
    let results: Vec<(String, Result<(), String>)> = futures::stream::iter(keys)
        .map(|k| {
            let progress = &progress;
            async move {
                let o = reencrypt_one(gw, bucket, &k).await;
                progress.step(&k, if o.is_ok() { "re-encrypted" } else { "FAILED" });
                (k, o)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut s = Summary::default();
    for (k, o) in results {
        match o {
            Ok(()) => s.changed += 1,
            Err(why) => s.failed.push((k, why)),
        }
    }
    s.failed.sort();
    Ok(s)
}

async fn reencrypt_one(gw: &Gateway, bucket: &str, key: &str) -> Result<(), String> {
    let fmt =
        |e: s3s::S3Error| format!("{}: {}", e.code().as_str(), e.message().unwrap_or_default());
    let r = gw.resolve_tail(bucket, key).await.map_err(fmt)?;
    if r.size > 5 * 1024 * 1024 * 1024 {
        return Err("objects over 5 GiB cannot be re-encrypted yet".into());
    }
    let (stream, len) = crate::gateway::copy::read_plaintext(gw, bucket, key, None, None)
        .await
        .map_err(fmt)?;
    // The object's attributes go with it, sealed (an object written before
    // attributes were sealed gets them sealed now, as the store holds them).
    let attributes = r.visible(&r.info.headers);
    let checks = ClientChecks::new(
        Expected {
            md5: hex::decode(&r.etag).ok().and_then(|v| v.try_into().ok()),
            ..Default::default()
        },
        None,
    );
    // On a bucket with Object Lock the new version keeps the lock the old
    // one has now; the old version (and, while locked, its manifest) stays.
    let lock = gw
        .carried_lock(bucket, &r.info.headers)
        .await
        .map_err(fmt)?;
    let w = crate::gateway::lock::Write {
        cond: None,
        lock: lock.as_ref(),
    };
    crate::gateway::put::seal_and_store(gw, (bucket, key), &attributes, stream, len, checks, w)
        .await
        .map_err(fmt)?;
    let locked = crate::gateway::lock::locked_now(&r.info.headers);
    if let (BodyBinding::Multipart { upload_id }, false) = (r.header.binding, locked) {
        // Only on a bucket that has never kept versions: on one that does,
        // the old version stays and needs its manifest (gc decides later).
        gw.drop_manifests(bucket, &[manifest_key(&upload_id)]).await;
    }
    Ok(())
}
