//! `sealgate keygen`: asks for a passphrase and writes a new key pair. The
//! key files themselves are made by [`crate::keyring::keygen`], which the
//! embedded default and the tests use as a library.

use std::path::Path;

use zeroize::Zeroizing;

use crate::cli::KeygenArgs;

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let KeygenArgs {
        name,
        bits,
        out,
        passphrase_file,
        signing,
    } = args;
    let pass = passphrase(passphrase_file.as_deref())?;
    if signing {
        let (k, p, fp) = crate::keyring::keygen_signing(&out, &name, &pass)?;
        println!(
            "signing key: {} (Ed25519, encrypted PKCS#8, mode 0600)",
            k.display()
        );
        println!("public key:  {}", p.display());
        println!("fingerprint: {fp} (members pin it in their config's [[groups]] admins)");
        return Ok(());
    }
    let (k, p, id) = crate::keyring::keygen(&out, &name, bits, &pass)?;
    println!("private key: {} (encrypted PKCS#8, mode 0600)", k.display());
    println!(
        "public key:  {} (give this to people who encrypt for you)",
        p.display()
    );
    println!("key id:      {}", hex::encode(id));
    let spki = crate::keyring::load_recipient(&p)?.spki_der();
    println!(
        "fingerprint: {} (read it out to whoever adds you to a group)",
        crate::sharing::fingerprint::Fingerprint::of_spki(&spki)
    );
    Ok(())
}

/// The new key's passphrase: from the file, else SEALGATE_PASSPHRASE, else
/// asked twice on the terminal.
fn passphrase(file: Option<&Path>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(f) = file {
        return crate::app::passphrase_for("the new key", None, Some(f));
    }
    if std::env::var("SEALGATE_PASSPHRASE").is_ok() {
        return crate::app::passphrase_for("the new key", Some("SEALGATE_PASSPHRASE"), None);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!(
            "no passphrase: use --passphrase-file, SEALGATE_PASSPHRASE, or run on a terminal"
        );
    }
    let a = Zeroizing::new(rpassword::prompt_password("Passphrase for the new key: ")?);
    let b = Zeroizing::new(rpassword::prompt_password("Repeat the passphrase: ")?);
    if a != b {
        anyhow::bail!("the passphrases do not match");
    }
    Ok(Zeroizing::new(a.as_bytes().to_vec()))
}
