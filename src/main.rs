//! The `sealgate` command.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use sealgate::app;
use sealgate::cli::{
    CheckConfigArgs, Cli, Command, InspectArgs, KeygenArgs, LogFormat, ReencryptArgs, RewrapArgs,
    ServeArgs,
};
use sealgate::config::Config;

/// Most verbose level each dependency may log at, whatever SEALGATE_LOG
/// says. At debug, s3s prints every request's headers (the Authorization
/// signature, presigned URL signatures) and, on a signature mismatch, the
/// signature it expected: anyone reading the log could then sign requests.
/// aws-sigv4 prints canonical requests; below debug, the SDK and hyper print
/// request and response headers. Only sealgate's own targets go to trace.
/// `SEALGATE_LOG_UNSAFE_DEPENDENCIES=1` lifts the caps (for debugging only).
fn dependency_caps() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    if std::env::var("SEALGATE_LOG_UNSAFE_DEPENDENCIES").is_ok_and(|v| v == "1") {
        return Targets::new().with_default(LevelFilter::TRACE);
    }
    Targets::new()
        .with_default(LevelFilter::DEBUG)
        .with_target("sealgate", LevelFilter::TRACE)
        .with_target("s3s", LevelFilter::INFO)
        .with_target("aws_sigv4", LevelFilter::INFO)
}

fn init_logs(format: LogFormat) {
    use tracing_subscriber::filter::FilterExt;
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_env("SEALGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = filter.and(dependency_caps());
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Text => registry.with(layer.with_filter(filter)).init(),
        LogFormat::Json => registry.with(layer.json().with_filter(filter)).init(),
    }
    if std::env::var("SEALGATE_LOG_UNSAFE_DEPENDENCIES").is_ok_and(|v| v == "1") {
        tracing::warn!("SEALGATE_LOG_UNSAFE_DEPENDENCIES=1: dependency logs are not capped; at debug and trace they print request signatures and headers");
    }
}

fn keygen_passphrase(file: Option<&PathBuf>) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    if let Some(f) = file {
        return app::passphrase_for("the new key", None, Some(f));
    }
    if std::env::var("SEALGATE_PASSPHRASE").is_ok() {
        return app::passphrase_for("the new key", Some("SEALGATE_PASSPHRASE"), None);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!(
            "no passphrase: use --passphrase-file, SEALGATE_PASSPHRASE, or run on a terminal"
        );
    }
    let a = zeroize::Zeroizing::new(rpassword::prompt_password("Passphrase for the new key: ")?);
    let b = zeroize::Zeroizing::new(rpassword::prompt_password("Repeat the passphrase: ")?);
    if a != b {
        anyhow::bail!("the passphrases do not match");
    }
    Ok(zeroize::Zeroizing::new(a.as_bytes().to_vec()))
}

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = Config::load(path)?;
    let kr = app::build_keyring(&cfg)?;
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
        sealgate::config::StoreKind::Local => {
            println!(
                "store: local directory {}",
                cfg.store
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        }
        sealgate::config::StoreKind::S3 => println!(
            "store: s3 {} (region {}, path style {})",
            cfg.store.endpoint.as_deref().unwrap_or_default(),
            cfg.store.region,
            cfg.store.path_style
        ),
    }
    println!("identities:");
    for (name, id) in kr.identities() {
        use sealgate::envelope::Identity;
        println!(
            "  {name}: key id {} (RSA-{})",
            hex::encode(id.key_id()),
            id.bits()
        );
    }
    println!("recipients:");
    for r in kr.recipients() {
        use sealgate::envelope::Recipient;
        println!(
            "  {}: key id {} (RSA-{})",
            r.name,
            hex::encode(r.key.key_id()),
            r.key.bits()
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
        let est: usize = 60
            + recips
                .iter()
                .map(|r| {
                    use sealgate::envelope::Recipient;
                    11 + r.wrapped_len()
                })
                .sum::<usize>();
        let b64 = est.div_ceil(3) * 4;
        let place = if b64 + 2 <= sealgate::gateway::METADATA_LIMIT {
            "envelope fits in metadata"
        } else {
            "envelope overflows metadata: stored at the head of each object body"
        };
        println!(
            "  bucket {} prefix {:?} -> {} ({place})",
            p.bucket,
            p.prefix,
            p.recipients.join(", ")
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let res = match cli.command {
        Command::Serve(ServeArgs {
            config,
            listen,
            data_dir,
        }) => serve(config, listen, data_dir).await,
        Command::Keygen(KeygenArgs {
            name,
            bits,
            out,
            passphrase_file,
        }) => (|| {
            let pass = keygen_passphrase(passphrase_file.as_ref())?;
            let (k, p, id) = sealgate::keyring::keygen(&out, &name, bits, &pass)?;
            println!("private key: {} (encrypted PKCS#8, mode 0600)", k.display());
            println!(
                "public key:  {} (give this to people who encrypt for you)",
                p.display()
            );
            println!("key id:      {}", hex::encode(id));
            Ok(())
        })(),
        Command::CheckConfig(CheckConfigArgs { config }) => check_config(&config),
        Command::Inspect(InspectArgs { config, object }) => {
            (async {
                let rt = app::build(&Config::load(&config)?)?;
                let (b, k) = sealgate::commands::parse_s3_url(&object)?;
                print!(
                    "{}",
                    sealgate::commands::inspect::inspect(&rt.gateway, &b, &k).await?
                );
                Ok(())
            })
            .await
        }
        Command::Rewrap(RewrapArgs {
            config,
            add,
            remove,
            concurrency,
            target,
        }) => {
            (async {
                if add.is_empty() && remove.is_empty() {
                    anyhow::bail!("nothing to do: give --add NAME and/or --remove NAME");
                }
                let rt = app::build(&Config::load(&config)?)?;
                let (b, p) = sealgate::commands::parse_s3_url(&target)?;
                let s = sealgate::commands::rewrap::rewrap(
                    &rt.gateway,
                    &b,
                    &p,
                    &add,
                    &remove,
                    concurrency,
                )
                .await?;
                print!("{s}");
                if !s.failed.is_empty() {
                    anyhow::bail!("{} object(s) failed", s.failed.len());
                }
                Ok(())
            })
            .await
        }
        Command::Reencrypt(ReencryptArgs {
            config,
            concurrency,
            target,
        }) => {
            (async {
                let rt = app::build(&Config::load(&config)?)?;
                let (b, p) = sealgate::commands::parse_s3_url(&target)?;
                let s = sealgate::commands::reencrypt::reencrypt(&rt.gateway, &b, &p, concurrency)
                    .await?;
                print!("{s}");
                if !s.failed.is_empty() {
                    anyhow::bail!("{} object(s) failed", s.failed.len());
                }
                Ok(())
            })
            .await
        }
        Command::Decrypt(args) => sealgate::commands::decrypt::run(args),
    };
    if let Err(e) = res {
        eprintln!("sealgate: {e:#}");
        std::process::exit(1);
    }
}

async fn serve(
    config: Option<PathBuf>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (mut cfg, creds) = match config {
        Some(p) => (Config::load(&p)?, None),
        None => {
            let dir = data_dir.unwrap_or_else(app::default_data_dir);
            let l = listen.clone().unwrap_or_else(|| "127.0.0.1:9000".into());
            let (cfg, ak, sk) = app::embedded_default(&dir, &l).context("embedded default")?;
            eprintln!("sealgate: embedded default, data in {}", dir.display());
            (cfg, Some((ak, sk)))
        }
    };
    if let Some(l) = listen {
        cfg.server.listen = l;
        cfg.validate()?;
    }
    let rt = app::build(&cfg)?;
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
        sealgate::metrics::serve_admin(addr, rt.gateway.admin_view()).await?;
        tracing::info!(admin = %addr, "admin listener: /health /ready /metrics");
    }
    let service = sealgate::server::build_service(rt.gateway, rt.users, &rt.server)?;
    sealgate::server::serve(service, rt.server).await
}
