//! The `sealgate` subcommands, one file per command, named as the command is
//! typed (`check-config` is `check_config.rs`). Each has a `run` that takes
//! its arguments from [`crate::cli`], prints, and returns the error that
//! makes the exit status 1. A command's library part sits beside its `run`:
//! [`decrypt::decrypt`] (offline, from readers to a writer),
//! [`inspect::inspect`], [`rewrap::rewrap`], [`reencrypt::reencrypt`].
//!
//! The operator commands over a config's store (`inspect`, `rewrap`,
//! `reencrypt`) use the gateway's own code paths (resolution, header
//! placement, sealing), not a second implementation. What several commands
//! share is in `common.rs`. The key files `keygen` writes are made by
//! [`crate::keyring`], which the gateway uses as well.

pub mod check_config;
mod common;
pub mod decrypt;
pub mod gc;
pub mod inspect;
pub mod keygen;
pub mod reencrypt;
pub mod rewrap;
pub mod secret;
pub mod serve;
pub mod sharing;

pub use common::{parse_s3_url, Summary};
