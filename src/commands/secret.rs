//! `sealgate secret`: prints a new random gateway secret.

use crate::cli::SecretArgs;

/// The `sealgate secret` command: 32 random bytes, base64url, on stdout (put
/// it in the file `gateway.secret_file` names, mode 0600, on every instance).
pub fn run(_args: SecretArgs) -> anyhow::Result<()> {
    println!("{}", crate::app::new_gateway_secret().as_str());
    Ok(())
}
