//! The in-process harness: real gateways (assembled by `sealgate::app`) over
//! one real embedded store in a temporary directory, each driven by an
//! aws-sdk-s3 client whose HTTP client calls the s3s service directly (no
//! socket; `adapter.rs`). SigV4 is signed by the SDK and verified by s3s as
//! over the wire.
//!
//! The store under the gateways is exposed so that a test can play the
//! hostile store: it reads and rewrites objects and metadata through the
//! [`Store`] trait, as the store's operator could.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::service::S3Service;
use sealgate::config::{Config, GatewayConfig, UserConfig};
use sealgate::envelope::recipient::RsaOaepIdentity;
use sealgate::keyring::{Keyring, Policy, SharedIdentity};
use sealgate::store::conditional::Mode;
use sealgate::store::local::LocalStore;
use sealgate::store::{ObjectHeaders, ObjectInfo, Store};
use zeroize::Zeroizing;

use crate::adapter::{InProcess, Target};

pub const REGION: &str = "us-east-1";
/// Path-style endpoint the clients address; no socket listens there. Its
/// host is one of the config's default `server.domains`.
pub const ENDPOINT: &str = "http://localhost:9000";
pub const AK: &str = "inprocalice";
pub const SK: &str = "inproc-alice-secret-0123456789";
pub const GATEWAY_SECRET: &str = "in-process-gateway-secret-0123456789";

/// The test people and their keys in `tests/vectors/keys.json` (test keys
/// only; RSA generation is too slow to do per test).
pub const PEOPLE: [(&str, &str); 5] = [
    ("alice", "rsa2048-a"),
    ("bob", "rsa2048-b"),
    ("carol", "rsa2048-c"),
    ("dave", "rsa3072-a"),
    ("eve", "rsa2048-outsider"),
];

struct TestKey {
    key_id: String,
    pkcs8_der: Zeroizing<Vec<u8>>,
}

fn test_keys() -> &'static HashMap<&'static str, TestKey> {
    static KEYS: OnceLock<HashMap<&'static str, TestKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keys.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("keys.json")).unwrap();
        let mut out = HashMap::new();
        for (person, name) in PEOPLE {
            let k = v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["name"] == name)
                .unwrap_or_else(|| panic!("{name} missing from keys.json"));
            let pem = Zeroizing::new(k["private_key_pkcs8_pem"].as_str().unwrap().to_owned());
            let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
            assert_eq!(label, "PRIVATE KEY");
            out.insert(
                person,
                TestKey {
                    key_id: k["key_id"].as_str().unwrap().to_owned(),
                    pkcs8_der: Zeroizing::new(der),
                },
            );
        }
        out
    })
}

/// The key id (16 hex digits) of a test person's key.
pub fn key_id(person: &str) -> &'static str {
    &test_keys()[person].key_id
}

fn identity(person: &str) -> SharedIdentity {
    let k = &test_keys()[person];
    let id = RsaOaepIdentity::from_pkcs8_der(&k.pkcs8_der).unwrap();
    assert_eq!(hex::encode(id_bytes(&id)), k.key_id, "{person}: key id");
    Arc::new(id)
}

/// `person`'s identity (private key), as a gateway holds it.
pub fn identity_of(person: &str) -> SharedIdentity {
    identity(person)
}

/// `person`'s public key, SPKI DER.
pub fn spki_of(person: &str) -> Vec<u8> {
    RsaOaepIdentity::from_pkcs8_der(&test_keys()[person].pkcs8_der)
        .unwrap()
        .public_spki_der()
        .to_vec()
}

fn id_bytes(id: &RsaOaepIdentity) -> [u8; 8] {
    sealgate::envelope::recipient::key_id_of_spki(id.public_spki_der())
}

/// A user of a gateway: access key, secret, bucket patterns.
#[derive(Clone)]
pub struct User {
    pub access_key: &'static str,
    pub secret: &'static str,
    pub buckets: Vec<&'static str>,
}

pub fn alice_user() -> User {
    User {
        access_key: AK,
        secret: SK,
        buckets: vec!["*"],
    }
}

/// What one gateway holds. Every identity is also a recipient of that name.
pub struct Spec {
    /// People whose private keys the gateway holds.
    pub identities: Vec<&'static str>,
    /// People whose public keys only it holds.
    pub recipients: Vec<&'static str>,
    /// (bucket, prefix, recipients).
    pub policies: Vec<(&'static str, &'static str, Vec<&'static str>)>,
    /// The first user is the one [`Gw::client`] signs as.
    pub users: Vec<User>,
    /// `[sharing]` and `[[groups]]`, for gateways of group members.
    pub sharing: Option<sealgate::config::SharingConfig>,
    pub groups: Vec<sealgate::config::GroupConfig>,
    /// `gateway.state_dir` (the persistent listing index).
    pub state_dir: Option<std::path::PathBuf>,
}

impl Spec {
    /// Alice's gateway: her key, every object encrypted for her.
    pub fn alice() -> Self {
        Self::person("alice")
    }

    /// `person`'s gateway: their key, every object encrypted for them, used
    /// with alice's credentials (users are per gateway, not per key).
    pub fn person(person: &'static str) -> Self {
        Self {
            identities: vec![person],
            recipients: vec![],
            policies: vec![("*", "", vec![person])],
            users: vec![alice_user()],
            sharing: None,
            groups: vec![],
            state_dir: None,
        }
    }
}

/// One store shared by any number of gateways: by default the embedded
/// store in a temporary directory.
pub struct World {
    /// The store as its operator reaches it (tests tamper through this).
    pub store: Arc<dyn Store>,
    /// The store the gateways talk to (the same, or a liar in front of it).
    gateway_store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::open(&dir.path().join("store")).unwrap());
        Self {
            gateway_store: store.clone(),
            store,
            _dir: dir,
        }
    }

    /// Gateways talk to `liar` (in front of this world's store); the test
    /// sets its lies.
    pub fn lying(mut self) -> (Self, Arc<crate::liar::Liar>) {
        let liar = crate::liar::Liar::new(self.store.clone());
        self.gateway_store = liar.clone();
        (self, liar)
    }

    /// A world over Garage (one node, shared by the tests of this binary),
    /// reached through its own S3 API with its own credentials: what the
    /// gateways use and what a test tampers through.
    pub fn garage() -> Self {
        Self::over(crate::common::garage())
    }

    /// A world over moto (shared by the tests of this binary): the store
    /// here that enforces conditional writes on PutObject.
    pub fn moto() -> Self {
        Self::over(crate::common::moto())
    }

    fn over(s: &crate::common::Store) -> Self {
        let store: Arc<dyn Store> = Arc::new(sealgate::store::s3::S3Store::new(
            &sealgate::store::s3::S3Settings {
                endpoint: s.endpoint.clone(),
                region: "us-east-1".into(),
                access_key: s.access_key.clone(),
                secret_key: s.secret_key.clone(),
                path_style: true,
                connect_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(30),
                max_attempts: 2,
            },
        ));
        Self {
            gateway_store: store.clone(),
            store,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A world with alice's gateway and one bucket created through it.
    pub async fn with_bucket(bucket: &str) -> (Self, Gw) {
        let w = Self::new();
        let gw = w.gateway(Spec::alice());
        gw.mb(bucket).await;
        (w, gw)
    }

    /// Builds a gateway over this world's store, the way `sealgate serve`
    /// does from a config, with keys from the test key file.
    pub fn gateway(&self, spec: Spec) -> Gw {
        self.gateway_with(spec, Default::default())
    }

    /// [`World::gateway`] with `store.conditional_writes` set.
    pub fn gateway_with(&self, spec: Spec, conditional_writes: Mode) -> Gw {
        self.gateway_edit(spec, |c| c.store.conditional_writes = conditional_writes)
    }

    /// [`World::gateway`] whose config `edit` changes first.
    pub fn gateway_edit(&self, spec: Spec, edit: impl FnOnce(&mut Config)) -> Gw {
        let first = spec.users.first().expect("a user").clone();
        Gw::over(self.runtime_with(spec, edit), &first)
    }

    /// The gateway a command (`sealgate group add`, `rewrap`...) builds
    /// from the same config, to call the command's library function.
    pub fn command_gateway(&self, spec: Spec) -> sealgate::gateway::Gateway {
        self.runtime(spec, Default::default()).gateway
    }

    fn runtime(&self, spec: Spec, conditional_writes: Mode) -> sealgate::app::Runtime {
        self.runtime_with(spec, |c| c.store.conditional_writes = conditional_writes)
    }

    /// The runtime of a gateway whose config `edit` changes first (the
    /// audit log's tests set `[audit]` and `server.trusted_proxies`).
    pub fn runtime_with(
        &self,
        spec: Spec,
        edit: impl FnOnce(&mut Config),
    ) -> sealgate::app::Runtime {
        self.runtime_readback(spec, edit, None)
    }

    /// [`World::gateway`] whose read-back keys (policies naming `readback:`)
    /// are `rb`, a test's own (with its own clock).
    pub fn gateway_with_readback(&self, spec: Spec, rb: Arc<sealgate::readback::Readback>) -> Gw {
        let first = spec.users.first().expect("a user").clone();
        Gw::over(self.runtime_readback(spec, |_| {}, Some(rb)), &first)
    }

    fn runtime_readback(
        &self,
        spec: Spec,
        edit: impl FnOnce(&mut Config),
        readback: Option<Arc<sealgate::readback::Readback>>,
    ) -> sealgate::app::Runtime {
        let mut identities = Vec::new();
        let mut recipients = Vec::new();
        for p in &spec.identities {
            let id = identity(p);
            recipients.push((p.to_string(), id.recipient().unwrap()));
            identities.push((p.to_string(), id));
        }
        for p in &spec.recipients {
            recipients.push((p.to_string(), identity(p).recipient().unwrap()));
        }
        let policies = spec
            .policies
            .iter()
            .map(|(b, p, r)| Policy {
                bucket: b.to_string(),
                prefix: p.to_string(),
                recipients: r.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        let keyring = Keyring::new(
            identities,
            recipients,
            policies,
            1000,
            Duration::from_secs(600),
        );
        if let Some(rb) = readback {
            keyring.set_readback(rb);
        }
        let mut cfg = Config {
            server: Default::default(),
            users: spec
                .users
                .iter()
                .map(|u| UserConfig {
                    access_key: u.access_key.into(),
                    secret_key: Some(u.secret.into()),
                    secret_key_file: None,
                    secret_key_env: None,
                    buckets: u.buckets.iter().map(|b| b.to_string()).collect(),
                })
                .collect(),
            store: Default::default(),
            gateway: GatewayConfig {
                secret: Some(GATEWAY_SECRET.into()),
                list_concurrency: 4,
                state_dir: spec.state_dir.clone(),
                // Tests write the store-side listing index when they mean
                // to (`Gateway::flush_store_index`), not on a timer.
                store_index_secs: 3600,
                ..Default::default()
            },
            identities: vec![],
            recipients: vec![],
            policies: vec![],
            sharing: spec.sharing,
            groups: spec.groups,
            audit: Default::default(),
        };
        edit(&mut cfg);
        sealgate::app::build_over(&cfg, keyring, self.gateway_store.clone()).unwrap()
    }

    /// `sealgate gc --apply` with no minimum age, by alice's gateway.
    pub async fn gc_now(&self, bucket: &str) -> sealgate::gateway::gc::GcReport {
        use sealgate::gateway::gc::{gc, GcOptions};
        let cmd = self.command_gateway(Spec::alice());
        gc(
            &cmd,
            bucket,
            &GcOptions {
                apply: true,
                min_age: std::time::Duration::ZERO,
                concurrency: 4,
            },
        )
        .await
        .unwrap()
    }

    /// The object as the store holds it.
    pub async fn raw_get(&self, bucket: &str, key: &str) -> (ObjectInfo, Vec<u8>) {
        let (info, mut body) = self.store.get(bucket, key, None, None).await.unwrap();
        let mut out = Vec::with_capacity(info.size as usize);
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        (info, out)
    }

    /// Writes bytes and headers at the store, as its operator could.
    pub async fn raw_put(&self, bucket: &str, key: &str, body: Vec<u8>, headers: &ObjectHeaders) {
        let len = body.len() as u64;
        let stream: sealgate::store::ByteStream = Box::pin(futures::stream::once(async move {
            Ok::<_, std::io::Error>(bytes::Bytes::from(body))
        }));
        self.store
            .put(bucket, key, stream, len, headers, None)
            .await
            .unwrap();
    }

    /// Every key at the store in `bucket` (sealgate's own included).
    pub async fn raw_keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut req = sealgate::store::ListRequest {
            max_keys: 1000,
            ..Default::default()
        };
        loop {
            let page = self.store.list(bucket, &req).await.unwrap();
            keys.extend(page.entries.into_iter().map(|e| e.key));
            if !page.is_truncated {
                return keys;
            }
            req.continuation_token = page.next_continuation_token;
        }
    }
}

/// Where a case runs: the embedded store, or Garage through its S3 API.
#[derive(Clone, Copy, Debug)]
pub enum On {
    Local,
    Garage,
}

/// A fresh world on `on`.
pub fn world(on: On) -> World {
    match on {
        On::Local => World::new(),
        On::Garage => World::garage(),
    }
}

/// A bucket name unique to this case (Garage is shared by every test).
pub fn unique_bucket(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `$req.key($key).customize()` for a fluent builder of the test client.
/// aws-sdk-s3 refuses a key made of whitespace only (S3 allows it): such a
/// key goes to the SDK as a stand-in and back into the request's path
/// before signing, as sealgate's own store client does
/// (`sealgate::store::s3::blank_key`).
macro_rules! keyed {
    ($req:expr, $key:expr) => {{
        use sealgate::store::s3::blank_key;
        let key: &str = $key;
        let req = $req.key(blank_key::sdk_key(key)).customize();
        if blank_key::is_blank(key) {
            let key = key.to_owned();
            req.mutate_request(move |r| blank_key::restore(r, &key))
        } else {
            req
        }
    }};
}
pub(crate) use keyed;

/// An aws-sdk-s3 client calling `service` in process.
pub fn client(service: &S3Service, access_key: &str, secret: &str) -> Client {
    client_to(Target::Service(service.clone()), access_key, secret)
}

/// An aws-sdk-s3 client calling `target` in process.
pub fn client_to(target: Target, access_key: &str, secret: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(InProcess(target))
        .credentials_provider(Credentials::new(access_key, secret, None, None, "inproc"))
        .region(Region::new(REGION))
        .endpoint_url(ENDPOINT)
        .force_path_style(true)
        // Integrity errors are 500s: a retry would only slow the tests.
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// One gateway: its S3 service and a client signed as its first user.
pub struct Gw {
    pub client: Client,
    pub service: S3Service,
    store_index: Option<Arc<sealgate::gateway::store_index::StoreIndex>>,
}

impl Gw {
    fn over(rt: sealgate::app::Runtime, user: &User) -> Self {
        let store_index = rt.gateway.store_index();
        let service = sealgate::server::build_service(rt.gateway, rt.users, &rt.server).unwrap();
        Gw {
            client: client(&service, user.access_key, user.secret),
            service,
            store_index,
        }
    }

    /// Writes what this gateway's store-side listing index has queued.
    pub async fn flush_store_index(&self) {
        self.store_index
            .as_ref()
            .expect("a gateway with a store-side index")
            .flush()
            .await;
    }

    /// A client of this gateway with other credentials.
    pub fn client_as(&self, access_key: &str, secret: &str) -> Client {
        client(&self.service, access_key, secret)
    }

    /// Sends a request without an Authorization header (a presigned URL
    /// carries its signature in `path`'s query) straight to the service.
    pub async fn unsigned(&self, method: &str, path: &str) -> http::Response<s3s::Body> {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{ENDPOINT}{path}"))
            .header("host", "localhost:9000")
            .body(s3s::Body::empty())
            .unwrap();
        self.service.call(req).await.unwrap()
    }

    /// [`Gw::unsigned`], with the response's status and whole body.
    pub async fn unsigned_text(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        let r = self.unsigned(method, path).await;
        let status = r.status().as_u16();
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, body.to_vec())
    }

    pub async fn mb(&self, bucket: &str) {
        self.client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
    }

    /// PutObject; returns the ETag without quotes.
    pub async fn put(&self, bucket: &str, key: &str, data: &[u8]) -> String {
        let r = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(data.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {}", S3Err::from(e)));
        unquote(r.e_tag().expect("etag"))
    }

    /// GetObject of the whole object: the status and code of a refusal, or
    /// the body (an error in the body stream is `Err(Refusal::Body)`).
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, Refusal> {
        let r = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Refusal::Response(S3Err::from(e)))?;
        collect(r.body).await
    }

    /// GetObject that must succeed.
    pub async fn get_ok(&self, bucket: &str, key: &str) -> Vec<u8> {
        match self.get(bucket, key).await {
            Ok(d) => d,
            Err(e) => panic!("get {bucket}/{key}: {e:?}"),
        }
    }
}

pub async fn collect(body: ByteStream) -> Result<Vec<u8>, Refusal> {
    match body.collect().await {
        Ok(b) => Ok(b.into_bytes().to_vec()),
        Err(e) => Err(Refusal::Body(format!("{e}"))),
    }
}

/// How a request was refused.
#[derive(Debug)]
pub enum Refusal {
    /// An S3 error response.
    Response(S3Err),
    /// The response started, then its body stream failed.
    Body(String),
}

/// An S3 error as the client saw it.
#[derive(Debug, Clone)]
pub struct S3Err {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for S3Err {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl<E: ProvideErrorMetadata + std::fmt::Debug> From<SdkError<E>> for S3Err {
    fn from(e: SdkError<E>) -> Self {
        let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
        match e.as_service_error() {
            Some(s) => S3Err {
                status,
                code: s.code().unwrap_or_default().to_owned(),
                message: s.message().unwrap_or_default().to_owned(),
            },
            None => S3Err {
                status,
                code: String::new(),
                message: format!("{e:?}"),
            },
        }
    }
}

/// The error of a request that must fail.
pub fn must_fail<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E>>,
    what: &str,
) -> S3Err {
    match r {
        Ok(v) => panic!("{what}: succeeded: {v:?}"),
        Err(e) => S3Err::from(e),
    }
}

/// Asserts an S3 error's status and code.
#[track_caller]
pub fn assert_refused(e: &S3Err, status: u16, code: &str, what: &str) {
    assert_eq!(
        (e.status, e.code.as_str()),
        (status, code),
        "{what}: wrong error: {e}"
    );
}

/// Deterministic test content: `n` bytes from `seed` (xorshift).
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

pub fn md5_hex(d: &[u8]) -> String {
    hex::encode(Md5::digest(d))
}

/// The S3 ETag of a multipart object: MD5 of the parts' MD5s, `-N`.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&Md5::digest(p));
    }
    format!("{}-{}", md5_hex(&all), parts.len())
}

pub fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;
/// Plaintext bytes per segment (format v1).
pub const SEG: usize = 64 * KIB;

/// Expands a table into one `#[tokio::test]` per row, each running
/// `$run(row).await`: one failing row does not hide the others, and each
/// row's name says what it checks.
macro_rules! table {
    ($run:path; $($name:ident: $case:expr,)+) => {
        $(
            #[tokio::test]
            async fn $name() {
                $run($case).await
            }
        )+
    };
}
pub(crate) use table;
