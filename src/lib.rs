//! sealgate: an S3-compatible gateway that encrypts every object before it
//! reaches an untrusted store. See `docs/FORMAT.md` and `../README.md`.
//!
//! Without the default `gateway` feature only [`envelope`], the on-store
//! format, and [`sharing`], the group documents, are built (the fuzz targets
//! use that).
#![forbid(unsafe_code)]

#[cfg(feature = "gateway")]
pub mod admin;
#[cfg(feature = "gateway")]
pub mod app;
#[cfg(feature = "gateway")]
pub mod audit;
#[cfg(feature = "gateway")]
pub mod cli;
#[cfg(feature = "gateway")]
pub mod commands;
#[cfg(feature = "gateway")]
pub mod config;
pub mod envelope;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "gateway")]
pub mod groups;
#[cfg(feature = "gateway")]
pub mod keyring;
#[cfg(feature = "gateway")]
pub mod metrics;
#[cfg(feature = "gateway")]
pub mod readback;
#[cfg(feature = "gateway")]
pub mod server;
pub mod sharing;
#[cfg(feature = "gateway")]
pub mod store;
