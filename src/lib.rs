//! sealgate: an S3-compatible gateway that encrypts every object before it
//! reaches an untrusted store. See `docs/FORMAT.md` and `../README.md`.
#![forbid(unsafe_code)]

pub mod envelope;
pub mod keyring;
pub mod store;
