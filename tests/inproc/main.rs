//! The in-process tier: gateway behaviour tested in seconds, without sockets,
//! processes or an external store. Each test builds real gateways (the same
//! assembly as `sealgate serve`) over the real embedded store in a temporary
//! directory and drives them with aws-sdk-s3 through an in-process HTTP client
//! (`adapter.rs`). SigV4 is signed and verified for real.
//!
//! Cases are tables expanded into one named test per row (`harness::table!`).
//! What needs real clients (aws cli, rclone, restic, boto3), a real S3 store,
//! sockets or processes stays in the other test binaries.

mod adapter;
#[path = "../common/mod.rs"]
mod common;
mod harness;
mod liar;

mod audit;
mod auth;
mod checksums;
mod conditional;
mod conditional_writes;
mod copy;
mod groups;
mod hostile;
mod index;
mod keys;
mod listing;
mod metadata;
mod multipart;
mod object_attributes;
mod object_lock;
mod objects;
mod ranges;
mod readback;
mod refusals;
mod sharing;
mod trust;
mod versioning;
