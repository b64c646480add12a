//! sealgate: an S3-compatible gateway that encrypts every object before it
//! reaches an untrusted store. See `docs/FORMAT.md` and `../README.md`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod config;
pub mod envelope;
pub mod gateway;
pub mod keyring;
pub mod metrics;
pub mod recover;
pub mod server;
pub mod store;
