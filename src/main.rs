//! The `sealgate` command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use sealgate::app;
use sealgate::config::Config;

#[derive(Parser)]
#[command(
    name = "sealgate",
    version,
    about = "An S3-compatible gateway that encrypts every object before it reaches the store",
    long_about = "sealgate speaks the S3 API on the front and stores only ciphertext at the store behind it \
(a local directory by default, or any S3-compatible store). Every object gets a fresh data key \
(AES-256-GCM in 64 KiB authenticated segments), wrapped with RSA-OAEP for each recipient."
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the S3 API. Without --config: the embedded default (a local
    /// store and keys generated on first run in the data directory).
    Serve {
        /// Config file (see config/sealgate.example.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen address, overriding the config (default 127.0.0.1:9000).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory of the embedded default
        /// (default $SEALGATE_DATA_DIR, else ~/.local/share/sealgate).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Generate an RSA key pair: NAME.key.pem (encrypted PKCS#8) and NAME.pub.pem (SPKI).
    Keygen {
        #[arg(long)]
        name: String,
        /// RSA key size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 3072)]
        bits: usize,
        /// Directory to write the key files into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Read the passphrase from this file (else SEALGATE_PASSPHRASE, else a prompt).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Validate a config and print what it would serve (never a secret).
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SEALGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
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
        anyhow::bail!("no passphrase: use --passphrase-file, SEALGATE_PASSPHRASE, or run on a terminal");
    }
    let a = zeroize::Zeroizing::new(rpassword::prompt_password("Passphrase for the new key: ")?);
    let b = zeroize::Zeroizing::new(rpassword::prompt_password("Repeat the passphrase: ")?);
    if a != b {
        anyhow::bail!("the passphrases do not match");
    }
    Ok(zeroize::Zeroizing::new(a.as_bytes().to_vec()))
}

fn check_config(path: &PathBuf) -> anyhow::Result<()> {
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
            println!("store: local directory {}", cfg.store.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default())
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
        println!("  {name}: key id {} (RSA-{})", hex::encode(id.key_id()), id.bits());
    }
    println!("recipients:");
    for r in kr.recipients() {
        use sealgate::envelope::Recipient;
        println!("  {}: key id {} (RSA-{})", r.name, hex::encode(r.key.key_id()), r.key.bits());
    }
    println!("policies:");
    for p in kr.policies() {
        let recips: Vec<_> = p.recipients.iter().filter_map(|n| kr.recipient(n)).map(|r| r.key.clone()).collect();
        let est: usize = 60 + recips
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
        Command::Serve {
            config,
            listen,
            data_dir,
        } => serve(config, listen, data_dir).await,
        Command::Keygen {
            name,
            bits,
            out,
            passphrase_file,
        } => (|| {
            let pass = keygen_passphrase(passphrase_file.as_ref())?;
            let (k, p, id) = sealgate::keyring::keygen(&out, &name, bits, &pass)?;
            println!("private key: {} (encrypted PKCS#8, mode 0600)", k.display());
            println!("public key:  {} (give this to people who encrypt for you)", p.display());
            println!("key id:      {}", hex::encode(id));
            Ok(())
        })(),
        Command::CheckConfig { config } => check_config(&config),
    };
    if let Err(e) = res {
        eprintln!("sealgate: {e:#}");
        std::process::exit(1);
    }
}

async fn serve(config: Option<PathBuf>, listen: Option<String>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
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
        let scheme = if rt.server.tls.is_some() { "https" } else { "http" };
        eprintln!(
            "\nEndpoint:   {scheme}://{listen}\nAccess key: {ak}\nSecret key: {sk}\n\nTry:\n  export AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={sk} AWS_DEFAULT_REGION=us-east-1\n  aws --endpoint-url {scheme}://{listen} s3 mb s3://demo\n  aws --endpoint-url {scheme}://{listen} s3 cp ./README.md s3://demo/\n  aws --endpoint-url {scheme}://{listen} s3 ls s3://demo\n",
            sk = sk.as_str(),
            listen = cfg.server.listen
        );
    }
    let service = sealgate::server::build_service(rt.gateway, rt.users, &rt.server)?;
    sealgate::server::serve(service, rt.server).await
}
