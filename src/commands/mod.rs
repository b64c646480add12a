//! The `sealgate` subcommands that are not the gateway itself, one file per
//! command, named as the command is typed (`check-config` is
//! `check_config.rs`). Operator commands over a config's store (`inspect`,
//! `rewrap`, `reencrypt`) use the gateway's own code paths (resolution,
//! header placement, sealing), not a second implementation. What several
//! commands share is in `common.rs`.

mod common;
pub mod decrypt;
pub mod inspect;
pub mod reencrypt;
pub mod rewrap;

pub use common::{parse_s3_url, Summary};
