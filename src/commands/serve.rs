//! `sealgate serve`: the gateway. Loads a config (or makes the embedded
//! default on first run), checks that the store answers, starts the admin
//! listener when configured, and serves S3 until shut down.

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::config::Config;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        config,
        listen,
        data_dir,
    } = args;
    let (mut cfg, creds) = match config {
        Some(p) => (Config::load(&p)?, None),
        None => {
            let dir = data_dir.unwrap_or_else(crate::app::default_data_dir);
            let l = listen.clone().unwrap_or_else(|| "127.0.0.1:9000".into());
            let (cfg, ak, sk) =
                crate::app::embedded_default(&dir, &l).context("embedded default")?;
            eprintln!("sealgate: embedded default, data in {}", dir.display());
            (cfg, Some((ak, sk)))
        }
    };
    if let Some(l) = listen {
        cfg.server.listen = l;
        cfg.validate()?;
    }
    // The audit file is opened before anything else starts, so that a path
    // that cannot be written stops the gateway at once.
    let audit = crate::app::audit_log(&cfg.audit)?;
    let rt = crate::app::build(&cfg)?;
    if let Some((ak, sk)) = creds {
        let scheme = if rt.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!(
            "\nEndpoint:   {scheme}://{listen}\nAccess key: {ak}\nSecret key: {sk}\n\nTry:\n  export AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={sk} AWS_DEFAULT_REGION=us-east-1\n  aws --endpoint-url {scheme}://{listen} s3 mb s3://demo\n  aws --endpoint-url {scheme}://{listen} s3 cp ./README.md s3://demo/\n  aws --endpoint-url {scheme}://{listen} s3 ls s3://demo\n",
            sk = sk.as_str(),
            listen = cfg.server.listen
        );
    }
    // A policy that would make restic fail (check-config refuses it) is
    // said at startup too: the gateway serves everything else.
    let own: Vec<&str> = cfg.identities.iter().map(|i| i.name.as_str()).collect();
    let restic = crate::commands::check_config::check_restic(&cfg, &|r| {
        own.contains(&r) || r.starts_with("group:")
    });
    for e in &restic.errors {
        tracing::warn!("{e} (`sealgate check-config` checks this before a start)");
    }
    // Say early, and plainly, when the store cannot be reached: the gateway
    // still starts (the store may come up later; /ready reports it).
    match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        rt.gateway.store().list_buckets(),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.unavailable => tracing::warn!(
            "the store is unreachable ({}); check store.endpoint and that the store is running",
            e.message
        ),
        Ok(Err(e)) => tracing::warn!(
            "the store refused a test request ({} {}); check store.access_key and store.secret_key",
            e.code,
            e.message
        ),
        Err(_) => tracing::warn!("the store did not answer within 10 s; check store.endpoint"),
    }
    if let Some(a) = &cfg.server.admin_listen {
        let addr = a.parse()?;
        crate::admin::serve(addr, rt.gateway.admin_view()).await?;
        tracing::info!(admin = %addr, "admin listener: /health /ready /metrics");
    }
    match (&cfg.audit.path, cfg.audit.stderr) {
        (Some(p), _) => {
            tracing::info!(path = %p.display(), "audit log: one line per request, to a file (SIGHUP reopens it)")
        }
        (None, true) => tracing::info!("audit log: one line per request, to stderr"),
        _ => {}
    }
    let (store_index, listing_index) = (rt.gateway.store_index(), rt.gateway.listing_index());
    let service = crate::server::build_service(rt.gateway, rt.users, &rt.server)?;
    let frontend = crate::server::Frontend::new(service, audit, &rt.server)?;
    let served = crate::server::serve(frontend, rt.server).await;
    // What listings learned since the last write goes to the indexes before
    // the process ends: the state directory's (a restart lists from it; a
    // write-only gateway could not learn it again) and the store's (new
    // instances list from it).
    if let Some(ix) = listing_index {
        if tokio::time::timeout(std::time::Duration::from_secs(10), ix.flush())
            .await
            .is_err()
        {
            tracing::warn!("the listing index in gateway.state_dir could not be written within 10 s of shutdown");
        }
    }
    if let Some(si) = store_index {
        if tokio::time::timeout(std::time::Duration::from_secs(10), si.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                "the listing index could not be written to the store within 10 s of shutdown"
            );
        }
    }
    served
}
