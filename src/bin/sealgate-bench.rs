//! `sealgate-bench`: a small, fast S3 client for `bench/run.sh`.
//!
//! aws-sdk-s3 with unsigned payloads (as clients send over https) and no
//! extra checksums, so the client itself costs little CPU and the figures
//! show the endpoint. Data is generated in memory from a fixed seed; every
//! command prints one line of `name=value` pairs for the script to parse.

use std::time::{Duration, Instant};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};

type R<T> = anyhow::Result<T>;

static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

#[derive(Parser)]
#[command(about = "S3 load generator for bench/run.sh")]
struct Cli {
    #[arg(long)]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    ak: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    sk: String,
    #[arg(long)]
    bucket: String,
    /// Seed of the generated data (a store that deduplicates must not see
    /// the same bytes twice).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the bucket (no error if it exists).
    Mb,
    /// Delete every object of the bucket, then the bucket.
    Rb,
    /// Multipart upload of MB MiB in PART_MB parts, CONC at a time.
    PutBig {
        #[arg(long)]
        key: String,
        #[arg(long)]
        mb: u64,
        #[arg(long, default_value_t = 8)]
        part_mb: u64,
        #[arg(long, default_value_t = 16)]
        conc: usize,
    },
    /// Download in PART_MB ranged GETs, CONC at a time (bytes counted, or
    /// compared with the generated data with --verify).
    GetBig {
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 8)]
        part_mb: u64,
        #[arg(long, default_value_t = 16)]
        conc: usize,
        #[arg(long)]
        verify: bool,
    },
    /// N objects of SIZE bytes: PutObject each, GetObject each, list them.
    Small {
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 4096)]
        size: usize,
        #[arg(long, default_value_t = 16)]
        conc: usize,
        #[arg(long)]
        prefix: String,
    },
    /// N random ranged GETs of SIZE bytes, CONC at a time.
    Ranged {
        #[arg(long)]
        key: String,
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 4096)]
        size: u64,
        #[arg(long, default_value_t = 1)]
        conc: usize,
    },
    /// N 4 KiB objects under PREFIX, every other one a one-part multipart upload.
    Fill {
        #[arg(long)]
        n: usize,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 16)]
        conc: usize,
    },
    /// ListObjectsV2 over PREFIX, every page.
    List {
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Time the first GET of KEY (connection already open), then N more.
    Latency {
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 20)]
        n: usize,
    },
    /// N concurrent multipart uploads of MB MiB (8 MiB parts, one at a time
    /// each), then N concurrent GETs of them.
    Concurrent {
        #[arg(long, default_value_t = 16)]
        n: usize,
        #[arg(long, default_value_t = 256)]
        mb: u64,
    },
}

fn client(c: &Cli) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&c.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(&c.ak, &c.sk, None, None, "bench"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// Deterministic test data: byte `i` depends only on `i` and the seed.
fn data(len: usize, offset: u64) -> Vec<u8> {
    let seed = SEED.get().copied().unwrap_or(1);
    let mut v = Vec::with_capacity(len + 8);
    let mut i = offset / 8 + (seed << 40);
    while v.len() < len + (offset % 8) as usize {
        let mut z = i
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 31)).wrapping_mul(0x94D0_49BB_1331_11EB);
        v.extend_from_slice(&(z ^ (z >> 29)).to_le_bytes());
        i += 1;
    }
    v.drain(..(offset % 8) as usize);
    v.truncate(len);
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

async fn drain(body: ByteStream, mut expect: Option<(&[u8], &mut usize)>) -> R<u64> {
    let mut n = 0u64;
    let mut s = body.into_async_read();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let k = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await?;
        if k == 0 {
            return Ok(n);
        }
        if let Some((want, at)) = expect.as_mut() {
            anyhow::ensure!(
                want.get(**at..**at + k) == Some(&buf[..k]),
                "content differs at byte {}",
                **at
            );
            **at += k;
        }
        n += k as u64;
    }
}

/// CreateMultipartUpload. rclone serve s3 names the answer's root element
/// InitiateMultipartUpload, which the SDK refuses: read the id from the body.
async fn create_upload(c: &Client, b: &str, key: &str) -> R<String> {
    match c.create_multipart_upload().bucket(b).key(key).send().await {
        Ok(o) => Ok(o.upload_id().unwrap_or_default().to_owned()),
        Err(aws_sdk_s3::error::SdkError::ServiceError(se)) if se.raw().status().is_success() => {
            let body = se.raw().body().bytes().unwrap_or_default();
            let text = String::from_utf8_lossy(body);
            let id = text
                .split("<UploadId>")
                .nth(1)
                .and_then(|t| t.split("</UploadId>").next())
                .ok_or_else(|| anyhow::anyhow!("no upload id in {text}"))?;
            Ok(id.to_owned())
        }
        Err(e) => Err(e.into()),
    }
}

/// Multipart upload of `all` in PART_MB parts, CONC at a time.
async fn put_multipart(
    c: &Client,
    b: &str,
    key: &str,
    all: Bytes,
    part_mb: u64,
    conc: usize,
) -> R<()> {
    let part = (part_mb << 20) as usize;
    let id = create_upload(c, b, key).await?;
    let n = all.len().div_ceil(part);
    let parts: Vec<CompletedPart> = futures::stream::iter(0..n)
        .map(|i| {
            let body = all.slice(i * part..((i + 1) * part).min(all.len()));
            let id = &id;
            async move {
                let o = c
                    .upload_part()
                    .bucket(b)
                    .key(key)
                    .upload_id(id)
                    .part_number(i as i32 + 1)
                    .body(body.into())
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await?;
                R::Ok(
                    CompletedPart::builder()
                        .part_number(i as i32 + 1)
                        .set_e_tag(o.e_tag)
                        .build(),
                )
            }
        })
        .buffered(conc)
        .try_collect()
        .await?;
    c.complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

async fn put_big(c: &Client, b: &str, key: &str, mb: u64, part_mb: u64, conc: usize) -> R<()> {
    let all = Bytes::from(data((mb << 20) as usize, 0));
    let t = Instant::now();
    put_multipart(c, b, key, all, part_mb, conc).await?;
    let s = t.elapsed().as_secs_f64();
    println!("put_s={s:.3} put_MiBs={:.1}", mb as f64 / s);
    Ok(())
}

async fn get_big(c: &Client, b: &str, key: &str, part_mb: u64, conc: usize, verify: bool) -> R<()> {
    let t = Instant::now();
    let size = c
        .head_object()
        .bucket(b)
        .key(key)
        .send()
        .await?
        .content_length()
        .unwrap_or(0) as u64;
    let part = part_mb << 20;
    let want = if verify {
        data(size as usize, 0)
    } else {
        Vec::new()
    };
    let total: u64 = futures::stream::iter(
        (0..size.div_ceil(part)).map(|i| (i * part, ((i + 1) * part).min(size))),
    )
    .map(|(a, z)| {
        let want = &want;
        async move {
            let o = c
                .get_object()
                .bucket(b)
                .key(key)
                .range(format!("bytes={a}-{}", z - 1))
                .send()
                .await?;
            let mut at = a as usize;
            let got = drain(o.body, verify.then_some((want.as_slice(), &mut at))).await?;
            anyhow::ensure!(got == z - a, "range {a}-{z}: got {got} bytes");
            R::Ok(got)
        }
    })
    .buffer_unordered(conc)
    .try_fold(0, |acc, n| async move { Ok(acc + n) })
    .await?;
    let s = t.elapsed().as_secs_f64();
    anyhow::ensure!(total == size, "got {total} of {size} bytes");
    println!(
        "get_s={s:.3} get_MiBs={:.1} verified={verify}",
        (size >> 20) as f64 / s
    );
    Ok(())
}

async fn list_all(c: &Client, b: &str, prefix: &str) -> R<(usize, usize)> {
    let (mut n, mut pages) = (0, 0);
    let mut token: Option<String> = None;
    loop {
        let o = c
            .list_objects_v2()
            .bucket(b)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await?;
        n += o.contents().len();
        pages += 1;
        match o.next_continuation_token() {
            Some(t) if o.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => return Ok((n, pages)),
        }
    }
}

async fn put_small(c: &Client, b: &str, key: String, body: Bytes) -> R<()> {
    c.put_object()
        .bucket(b)
        .key(key)
        .body(body.into())
        .customize()
        .disable_payload_signing()
        .send()
        .await?;
    Ok(())
}

async fn small(c: &Client, b: &str, n: usize, size: usize, conc: usize, prefix: &str) -> R<()> {
    let bodies: Vec<Bytes> = (0..n)
        .map(|i| Bytes::from(data(size, (i * size) as u64)))
        .collect();
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| put_small(c, b, format!("{prefix}{i:06}"), bodies[i].clone()))
        .buffer_unordered(conc)
        .try_collect::<()>()
        .await?;
    let put = t.elapsed().as_secs_f64();
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| async move {
            let o = c
                .get_object()
                .bucket(b)
                .key(format!("{prefix}{i:06}"))
                .send()
                .await?;
            let got = drain(o.body, None).await?;
            anyhow::ensure!(got == size as u64, "short object");
            R::Ok(())
        })
        .buffer_unordered(conc)
        .try_collect::<()>()
        .await?;
    let get = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (listed, _) = list_all(c, b, prefix).await?;
    let list = t.elapsed().as_secs_f64();
    anyhow::ensure!(listed == n, "listed {listed} of {n}");
    println!(
        "put_s={put:.3} put_ops={:.0} get_s={get:.3} get_ops={:.0} list_s={list:.3}",
        n as f64 / put,
        n as f64 / get
    );
    Ok(())
}

async fn fill(c: &Client, b: &str, n: usize, prefix: &str, conc: usize) -> R<()> {
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let body = Bytes::from(data(4096, i as u64 * 4096));
            async move {
                let key = format!("{prefix}{i:06}");
                if i % 2 == 0 {
                    return put_small(c, b, key, body).await;
                }
                let id = create_upload(c, b, &key).await?;
                let id = id.as_str();
                let p = c
                    .upload_part()
                    .bucket(b)
                    .key(&key)
                    .upload_id(id)
                    .part_number(1)
                    .body(body.into())
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await?;
                let part = CompletedPart::builder()
                    .part_number(1)
                    .set_e_tag(p.e_tag)
                    .build();
                c.complete_multipart_upload()
                    .bucket(b)
                    .key(&key)
                    .upload_id(id)
                    .multipart_upload(CompletedMultipartUpload::builder().parts(part).build())
                    .send()
                    .await?;
                R::Ok(())
            }
        })
        .buffer_unordered(conc)
        .try_collect::<()>()
        .await?;
    println!("fill_s={:.3} n={n}", t.elapsed().as_secs_f64());
    Ok(())
}

async fn ranged(c: &Client, b: &str, key: &str, n: usize, size: u64, conc: usize) -> R<()> {
    let total = c
        .head_object()
        .bucket(b)
        .key(key)
        .send()
        .await?
        .content_length()
        .unwrap_or(0) as u64;
    anyhow::ensure!(total > size, "object too small");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let offsets: Vec<u64> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % (total - size)
        })
        .collect();
    let t = Instant::now();
    let mut lat: Vec<f64> = futures::stream::iter(offsets)
        .map(|a| async move {
            let t = Instant::now();
            let o = c
                .get_object()
                .bucket(b)
                .key(key)
                .range(format!("bytes={a}-{}", a + size - 1))
                .send()
                .await?;
            let want = data(size as usize, a);
            let mut at = 0usize;
            anyhow::ensure!(
                drain(o.body, Some((&want, &mut at))).await? == size,
                "short range"
            );
            R::Ok(ms(t.elapsed()))
        })
        .buffer_unordered(conc)
        .try_collect()
        .await?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "ranged_s={s:.3} ranged_ops={:.0} p50_ms={:.2} p99_ms={:.2}",
        n as f64 / s,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    Ok(())
}

async fn latency(c: &Client, b: &str, key: &str, n: usize) -> R<()> {
    // Open the connection first, so the first GET pays only for the object.
    c.head_bucket().bucket(b).send().await?;
    let mut lat = Vec::new();
    for _ in 0..=n {
        let t = Instant::now();
        let o = c.get_object().bucket(b).key(key).send().await?;
        drain(o.body, None).await?;
        lat.push(ms(t.elapsed()));
    }
    let cold = lat.remove(0);
    println!("cold_ms={cold:.2} warm_ms={:.2}", pct(&mut lat, 0.5));
    Ok(())
}

async fn concurrent(c: &Client, b: &str, n: usize, mb: u64) -> R<()> {
    // Object i starts 4 KiB further into one buffer: no two share a block.
    let len = (mb << 20) as usize;
    let all = Bytes::from(data(len + n * 4096, 0));
    let keys: Vec<String> = (0..n).map(|i| format!("conc/{i:03}")).collect();
    let keys = &keys;
    let t = Instant::now();
    // Each transfer is what aws cli makes of a 256 MiB file: a multipart
    // upload in 8 MiB parts, here one part at a time per transfer. (Sixteen
    // concurrent single 256 MiB PUTs stall Garage 2.5 itself: it stops
    // reading all of them, direct as well as behind a gateway.)
    futures::stream::iter(0..n)
        .map(|i| put_multipart(c, b, &keys[i], all.slice(i * 4096..i * 4096 + len), 8, 1))
        .buffer_unordered(n)
        .try_collect::<()>()
        .await?;
    let put = t.elapsed().as_secs_f64();
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| async move {
            let o = c.get_object().bucket(b).key(&keys[i]).send().await?;
            anyhow::ensure!(drain(o.body, None).await? == mb << 20, "short object");
            R::Ok(())
        })
        .buffer_unordered(n)
        .try_collect::<()>()
        .await?;
    let get = t.elapsed().as_secs_f64();
    let total = (n as u64 * mb) as f64;
    println!(
        "put_s={put:.3} put_MiBs={:.1} get_s={get:.3} get_MiBs={:.1}",
        total / put,
        total / get
    );
    Ok(())
}

async fn rb(c: &Client, b: &str) -> R<()> {
    // Pages may come back empty but truncated (sealgate hides its own keys):
    // follow every page before deciding the bucket is empty.
    for _ in 0..100 {
        let mut keys: Vec<ObjectIdentifier> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let o = c
                .list_objects_v2()
                .bucket(b)
                .set_continuation_token(token.take())
                .send()
                .await?;
            keys.extend(o.contents().iter().filter_map(|e| {
                ObjectIdentifier::builder()
                    .set_key(e.key().map(str::to_owned))
                    .build()
                    .ok()
            }));
            match o.next_continuation_token() {
                Some(t) if o.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        if keys.is_empty() {
            break;
        }
        for chunk in keys.chunks(1000) {
            let del = Delete::builder()
                .set_objects(Some(chunk.to_vec()))
                .quiet(true)
                .build()?;
            if c.delete_objects()
                .bucket(b)
                .delete(del)
                .send()
                .await
                .is_err()
            {
                futures::stream::iter(chunk)
                    .map(|k| c.delete_object().bucket(b).key(k.key()).send())
                    .buffer_unordered(16)
                    .for_each(|_| async {})
                    .await;
            }
        }
    }
    c.delete_bucket().bucket(b).send().await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("sealgate-bench: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> R<()> {
    let _ = SEED.set(cli.seed);
    let c = client(&cli);
    let b = cli.bucket.as_str();
    match &cli.cmd {
        Cmd::Mb => {
            if c.head_bucket().bucket(b).send().await.is_err() {
                c.create_bucket().bucket(b).send().await?;
            }
        }
        Cmd::Rb => rb(&c, b).await?,
        Cmd::PutBig {
            key,
            mb,
            part_mb,
            conc,
        } => put_big(&c, b, key, *mb, *part_mb, *conc).await?,
        Cmd::GetBig {
            key,
            part_mb,
            conc,
            verify,
        } => get_big(&c, b, key, *part_mb, *conc, *verify).await?,
        Cmd::Small {
            n,
            size,
            conc,
            prefix,
        } => small(&c, b, *n, *size, *conc, prefix).await?,
        Cmd::Ranged { key, n, size, conc } => ranged(&c, b, key, *n, *size, *conc).await?,
        Cmd::Fill { n, prefix, conc } => fill(&c, b, *n, prefix, *conc).await?,
        Cmd::List { prefix } => {
            let t = Instant::now();
            let (n, pages) = list_all(&c, b, prefix).await?;
            println!(
                "list_s={:.3} listed={n} pages={pages}",
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Latency { key, n } => latency(&c, b, key, *n).await?,
        Cmd::Concurrent { n, mb } => concurrent(&c, b, *n, *mb).await?,
    }
    Ok(())
}
