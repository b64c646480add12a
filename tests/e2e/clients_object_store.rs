//! obstore (the Python binding of Rust's object_store, from PyPI: `pip
//! install obstore`) through a real sealgate process: conditional puts as
//! Delta Lake and Iceberg commits make them. Over moto, which enforces
//! conditional PutObject: of two concurrent creates of one key exactly one
//! wins, and a compare-and-swap on the version read succeeds once. Over
//! Garage, which accepts the headers and overwrites anyway: the create is
//! refused (501, naming `store.conditional_writes`), fast, and nothing is
//! overwritten. tests/clients/obstore_conditional.py runs each case.

use crate::common::*;

fn case(store: &Store, case: &str) {
    let gw = Gw::start(&GwSpec::simple(store));
    let bucket = format!(
        "obs-{}-{}-{}",
        store.kind,
        case.replace('_', "-"),
        std::process::id()
    );
    let script = root().join("tests/clients/obstore_conditional.py");
    let out = run(
        "python3",
        &[
            script.to_str().unwrap(),
            "--endpoint",
            &gw.endpoint,
            "--bucket",
            &bucket,
            case,
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("PASS {case}")),
        "obstore case {case} over {} failed ({}) (is obstore installed? `pip install obstore`):\n{stdout}\nstderr:\n{}\ngateway log:\n{}",
        store.kind,
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
    if case != "refused" {
        return;
    }
    // The gateway said what it found, once.
    let log = gw.log_text();
    assert_eq!(
        log.matches("conditional writes: probed the store").count(),
        1,
        "one probe, logged:\n{log}"
    );
}

#[test]
fn object_store_create_race_over_moto_has_exactly_one_winner() {
    case(moto(), "create_race");
}

#[test]
fn object_store_compare_and_swap_over_moto() {
    case(moto(), "compare_and_swap");
}

#[test]
fn object_store_create_over_garage_is_refused_not_an_overwrite() {
    case(garage(), "refused");
}
