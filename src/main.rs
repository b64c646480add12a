//! The `sealgate` command: parses the command line ([`sealgate::cli`]), sets
//! up logs, and runs the command (one file each under `src/commands/`).

use clap::Parser;
use tracing_subscriber::EnvFilter;

use sealgate::cli::{Cli, Command, LogFormat};
use sealgate::commands;

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

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let res = match cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Keygen(args) => commands::keygen::run(args),
        Command::CheckConfig(args) => commands::check_config::run(args),
        Command::Inspect(args) => commands::inspect::run(args).await,
        Command::Rewrap(args) => commands::rewrap::run(args).await,
        Command::Reencrypt(args) => commands::reencrypt::run(args).await,
        Command::Decrypt(args) => commands::decrypt::run(args),
        Command::Gc(args) => commands::gc::run(args).await,
        Command::Secret(args) => commands::secret::run(args),
        Command::Keys(args) => commands::sharing::run_keys(args).await,
        Command::Group(args) => commands::sharing::run_group(args).await,
    };
    if let Err(e) = res {
        eprintln!("sealgate: {e:#}");
        std::process::exit(1);
    }
}
