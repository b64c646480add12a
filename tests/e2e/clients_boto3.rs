//! boto3 (current, from PyPI) through a real sealgate in front of Garage:
//! tests/clients/boto3_suite.py drives it as a user would (object round trips
//! with metadata, presigned URLs used with curl, virtual-hosted-style
//! addressing, managed multipart transfers, every checksum algorithm, over
//! http and over https where botocore sends aws-chunked bodies with trailing
//! checksums). The script checks every byte; this file runs one case per test.

use crate::common::*;

fn suite(case: &str, tls: bool) {
    let store = garage();
    let mut spec = GwSpec::simple(store);
    spec.tls = tls;
    let gw = Gw::start(&spec);
    let bucket = format!("b3-{}-{}", case.replace('_', "-"), std::process::id());
    let work = tmpdir(&format!("boto3-{case}"));
    let script = root().join("tests/clients/boto3_suite.py");
    let mut args: Vec<String> = vec![
        script.display().to_string(),
        "--endpoint".into(),
        gw.endpoint.clone(),
        "--bucket".into(),
        bucket,
        "--workdir".into(),
        work.display().to_string(),
    ];
    if let Some(tp) = gw.tls_port {
        args.push("--tls-endpoint".into());
        args.push(format!("https://127.0.0.1:{tp}"));
        args.push("--ca".into());
        args.push(gw.dir.join("cert.pem").display().to_string());
    }
    args.push(case.into());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("python3", &a, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("PASS {case}")),
        "boto3 case {case} failed ({}):\n{stdout}\nstderr:\n{}\ngateway log (tail):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        tail(&gw.log_text(), 40)
    );
    let _ = std::fs::remove_dir_all(&work);
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn boto3_put_get_head_metadata_copy_nosuchkey() {
    suite("basic", false);
}

#[test]
fn boto3_list_objects_v2_pagination() {
    suite("listing", false);
}

#[test]
fn boto3_blank_keys_object_attributes_unicode_metadata() {
    suite("s3_semantics", false);
}

#[test]
fn boto3_presigned_urls_with_curl() {
    suite("presigned", false);
}

#[test]
fn boto3_virtual_hosted_style() {
    suite("virtual_host", false);
}

#[test]
fn boto3_managed_multipart_transfers() {
    suite("multipart", false);
}

#[test]
fn boto3_checksum_algorithms() {
    suite("checksums", false);
}

#[test]
fn boto3_https_aws_chunked_trailer() {
    suite("tls", true);
}

#[test]
fn boto3_https_checksum_trailers() {
    suite("tls_checksums", true);
}

#[test]
fn boto3_https_managed_multipart() {
    suite("tls_multipart", true);
}
