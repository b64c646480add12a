//! The command line of `sealgate`: every subcommand, flag and help text, as
//! clap definitions and nothing else. What a command does is in
//! `commands/<name>.rs`; `main.rs` parses, sets up logs and dispatches.
//!
//! Names, flags, defaults and help texts here are an interface: scripts and
//! the tests under `tests/` drive the binary through them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "sealgate",
    version,
    about = "An S3-compatible gateway that encrypts every object before it reaches the store",
    long_about = "sealgate speaks the S3 API on the front and stores only ciphertext at the store behind it \
(a local directory by default, or any S3-compatible store). Every object gets a fresh data key \
(AES-256-GCM in 64 KiB authenticated segments), wrapped with RSA-OAEP for each recipient."
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// The help text of each subcommand is the doc comment of its variant; the
// argument structs carry no doc comment of their own, so nothing competes
// with it.
#[derive(Subcommand)]
pub enum Command {
    /// Serve the S3 API. Without --config: the embedded default (a local
    /// store and keys generated on first run in the data directory).
    Serve(ServeArgs),
    /// Generate an RSA key pair: NAME.key.pem (encrypted PKCS#8) and
    /// NAME.pub.pem (SPKI); with --signing, an Ed25519 signing key to
    /// administer groups (NAME.sign.pem, NAME.sign.pub.pem).
    Keygen(KeygenArgs),
    /// Validate a config and print what it would serve (never a secret).
    CheckConfig(CheckConfigArgs),
    /// Show an object's envelope (version, sizes, recipients) without decrypting it.
    Inspect(InspectArgs),
    /// Add or remove recipients of existing objects by rewriting only their
    /// envelope (a server-side copy onto itself; no content passes through).
    Rewrap(RewrapArgs),
    /// Encrypt objects again under a fresh data key for the current policy
    /// (real revocation; content passes through sealgate).
    Reencrypt(ReencryptArgs),
    /// Decrypt an object downloaded straight from the store, with only a
    /// private key: no config, no running gateway (disaster recovery).
    Decrypt(DecryptArgs),
    /// Find (and with --delete remove) what sealgate left at the store that
    /// nothing needs: manifests of replaced objects, records of uploads the
    /// store no longer has. A dry run unless told otherwise.
    Gc(GcArgs),
    /// Print a new random gateway secret (32 random bytes, base64url) for
    /// `gateway.secret`.
    Secret(SecretArgs),
    /// The key directory at the store: publish this user's public key, list
    /// the published ones with what signed groups say of them.
    Keys(KeysArgs),
    /// Signed groups at the store: create one, add or remove a member (as
    /// its administrator), show one.
    Group(GroupArgs),
}

// `sealgate keys`
#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

// The config file of a subcommand that works over the store.
#[derive(Args)]
pub struct ConfigArg {
    /// Config file with a [sharing] section.
    #[arg(long, short)]
    pub config: PathBuf,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Put this user's public key (`[sharing] identity`) into the key directory.
    Publish(ConfigArg),
    /// The published keys: names, fingerprints, and which signed groups name them.
    List(ConfigArg),
}

// `sealgate group`
#[derive(Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group with this user as its first member and administrator.
    Create {
        /// The group's name (a-z, 0-9, '.', '_', '-').
        name: String,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Add a member: their published key, checked against the fingerprint
    /// they gave you by a channel the store does not control.
    Add {
        /// The group's name.
        name: String,
        /// The member's name in the key directory (`sealgate keys list`).
        member: String,
        /// The fingerprint of the member's key as they gave it to you
        /// (XXXX-XXXX-XXXX-XXXX-XXXX); nothing is changed unless the
        /// published key has it.
        #[arg(long)]
        fingerprint: String,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Remove a member: a new epoch key for everything written afterwards.
    Remove {
        /// The group's name.
        name: String,
        /// The member to remove.
        member: String,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Show a group as its signed document says.
    Show {
        /// The group's name.
        name: String,
        #[command(flatten)]
        cfg: ConfigArg,
    },
}

// `sealgate gc`
#[derive(Args)]
pub struct GcArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    /// Delete what was found (without it: only report).
    #[arg(long)]
    pub delete: bool,
    /// Keep anything younger than this many seconds (a completion writes its
    /// manifest before the store completes the upload).
    #[arg(long, default_value_t = 3600)]
    pub min_age_secs: u64,
    /// Objects whose envelope is read at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// s3://BUCKET
    pub bucket: String,
}

// `sealgate secret`
#[derive(Args)]
pub struct SecretArgs {}

// `sealgate serve`
#[derive(Args)]
pub struct ServeArgs {
    /// Config file (see config/sealgate.example.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the config (default 127.0.0.1:9000).
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory of the embedded default
    /// (default $SEALGATE_DATA_DIR, else ~/.local/share/sealgate).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

// `sealgate keygen`
#[derive(Args)]
pub struct KeygenArgs {
    /// File name stem: NAME.key.pem and NAME.pub.pem (with --signing:
    /// NAME.sign.pem and NAME.sign.pub.pem).
    #[arg(long)]
    pub name: String,
    /// RSA key size: 2048, 3072 or 4096.
    #[arg(long, default_value_t = 3072)]
    pub bits: usize,
    /// Directory to write the key files into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Read the passphrase from this file (else SEALGATE_PASSPHRASE, else a prompt).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// An Ed25519 signing key (to administer groups) instead of an RSA key pair.
    #[arg(long, conflicts_with = "bits")]
    pub signing: bool,
}

// `sealgate check-config`
#[derive(Args)]
pub struct CheckConfigArgs {
    #[arg(long, short)]
    pub config: PathBuf,
}

// `sealgate inspect`
#[derive(Args)]
pub struct InspectArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    /// s3://BUCKET/KEY
    pub object: String,
}

// `sealgate rewrap`
#[derive(Args)]
pub struct RewrapArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    /// Recipient (or identity) name from the config to add; repeatable.
    #[arg(long)]
    pub add: Vec<String>,
    /// Recipient name to remove; repeatable. Does not revoke what the
    /// recipient already has: use `reencrypt` for that.
    #[arg(long)]
    pub remove: Vec<String>,
    /// Concurrent objects.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// s3://BUCKET[/PREFIX] or s3://BUCKET/KEY
    pub target: String,
}

// `sealgate reencrypt`
#[derive(Args)]
pub struct ReencryptArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// s3://BUCKET[/PREFIX] or s3://BUCKET/KEY
    pub target: String,
}

// `sealgate decrypt`
#[derive(Args)]
pub struct DecryptArgs {
    /// Private key file (encrypted PKCS#8 PEM).
    #[arg(long)]
    pub identity: PathBuf,
    /// The object's metadata: the JSON `aws s3api head-object` prints, or
    /// the bare `sg` value.
    #[arg(long)]
    pub metadata: PathBuf,
    /// s3://BUCKET/KEY the object was stored under (checks the header MAC).
    #[arg(long)]
    pub name: Option<String>,
    /// Skip the name check when the name is not known.
    #[arg(long, conflicts_with = "name")]
    pub no_name_check: bool,
    /// For a multipart object: its manifest (`.sealgate/mp/...` in the same bucket).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// For a multipart object whose manifest is lost: walk its parts without
    /// it. A dropped part, or an older upload of one, then goes unnoticed.
    #[arg(long, conflicts_with = "manifest")]
    pub without_manifest: bool,
    /// For an object written for a group: the group's document (the newest
    /// `.sealgate/dir/groups/NAME/v...` object), opened with the identity.
    #[arg(long, requires_all = ["group", "admin"])]
    pub group_doc: Option<PathBuf>,
    /// The group's name.
    #[arg(long, requires = "group_doc")]
    pub group: Option<String>,
    /// The fingerprint of an administrator whose signature the group
    /// document must carry; repeatable.
    #[arg(long, requires = "group_doc")]
    pub admin: Vec<String>,
    /// Read the passphrase from this file (else SEALGATE_PASSPHRASE, else a prompt).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// The raw object.
    pub input: PathBuf,
    /// Where to write the plaintext.
    pub output: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn subcommand_names_are_unchanged() {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "serve",
                "keygen",
                "check-config",
                "inspect",
                "rewrap",
                "reencrypt",
                "decrypt",
                "gc",
                "secret",
                "keys",
                "group"
            ]
        );
    }

    #[test]
    fn decrypt_name_and_no_name_check_conflict() {
        let base = ["sealgate", "decrypt", "--identity", "k", "--metadata", "m"];
        let with = |extra: &[&str]| {
            Cli::try_parse_from(base.iter().chain(extra).chain(&["in", "out"]).copied())
        };
        assert!(with(&["--name", "s3://b/k", "--no-name-check"]).is_err());
        match with(&["--no-name-check"]).map(|c| c.command) {
            Ok(Command::Decrypt(a)) => assert!(a.no_name_check && a.name.is_none()),
            _ => panic!("decrypt --no-name-check must parse"),
        }
    }

    #[test]
    fn decrypt_group_arguments_go_together() {
        let base = [
            "sealgate",
            "decrypt",
            "--identity",
            "k",
            "--metadata",
            "m",
            "--name",
            "s3://b/k",
        ];
        let with = |extra: &[&str]| {
            Cli::try_parse_from(base.iter().chain(extra).chain(&["in", "out"]).copied())
        };
        // A group name or a pin without the document would be ignored.
        assert!(with(&["--group", "team"]).is_err());
        assert!(with(&["--admin", "7F3A-92C1-0B4D-E588-1A2C"]).is_err());
        assert!(with(&["--group-doc", "d", "--group", "team"]).is_err());
        assert!(with(&["--group-doc", "d", "--admin", "7F3A-92C1-0B4D-E588-1A2C"]).is_err());
        match with(&[
            "--group-doc",
            "d",
            "--group",
            "team",
            "--admin",
            "7F3A-92C1-0B4D-E588-1A2C",
        ])
        .map(|c| c.command)
        {
            Ok(Command::Decrypt(a)) => {
                assert_eq!(a.group.as_deref(), Some("team"));
                assert_eq!(a.admin.len(), 1);
            }
            _ => panic!("decrypt --group-doc --group --admin must parse"),
        }
    }

    #[test]
    fn defaults() {
        match Cli::try_parse_from(["sealgate", "rewrap", "-c", "x.toml", "s3://b"])
            .map(|c| c.command)
        {
            Ok(Command::Rewrap(a)) => {
                assert_eq!(a.concurrency, 8);
                assert!(a.add.is_empty() && a.remove.is_empty());
            }
            _ => panic!("rewrap must parse"),
        }
        match Cli::try_parse_from(["sealgate", "reencrypt", "-c", "x.toml", "s3://b"])
            .map(|c| c.command)
        {
            Ok(Command::Reencrypt(a)) => assert_eq!(a.concurrency, 4),
            _ => panic!("reencrypt must parse"),
        }
        match Cli::try_parse_from(["sealgate", "keygen", "--name", "n"]).map(|c| c.command) {
            Ok(Command::Keygen(a)) => {
                assert_eq!(a.bits, 3072);
                assert_eq!(a.out, std::path::PathBuf::from("."));
            }
            _ => panic!("keygen must parse"),
        }
    }
}
