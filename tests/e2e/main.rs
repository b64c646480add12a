//! The end-to-end tier, one test binary: real sealgate processes in front of
//! real S3 stores (Garage, started by `../shared/tools/backend.sh`), driven by
//! real clients (aws cli v1 and v2, boto3, rclone, restic, s3cmd, curl) and by
//! raw requests, with the store killed, stalled or lying. The in-process tier
//! (`tests/inproc/`) tests behaviour in seconds; this one proves it with the
//! processes and clients users run.
//!
//! Two modules need no store and share the binary only to save a link:
//! `config_example` (the example config loads, documents every key and passes
//! `sealgate check-config`) and `parser_robustness` (the fuzz targets'
//! properties, run with proptest).
//!
//! One module per area; `cargo test --test e2e MODULE::` runs one of them.
//! Tests run in parallel threads of this one process and share one Garage
//! (`common::garage()`), so each names its buckets after itself, asks
//! `common::tmpdir` for its directories, and a test that stops or kills its
//! store starts its own (`common::start_store`).

#[path = "../common/mod.rs"]
mod common;
#[path = "../support/lying_store.rs"]
mod lying_store;
#[path = "../support/raw.rs"]
mod raw;

mod audit;
mod backups;
mod clients_awscli;
mod clients_boto3;
mod clients_object_store;
mod clients_rclone;
mod clients_restic_s3cmd;
mod config_example;
mod gateway_aws;
mod hostile;
mod load;
mod multipart;
mod object_lock;
mod operations;
mod parser_robustness;
mod reliability;
mod scale_out;
mod sharing;
mod versioning;
