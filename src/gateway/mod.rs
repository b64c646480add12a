//! The gateway: sealgate's implementation of the S3 operations. It is the only
//! layer that touches both the envelope format and the store.
//!
//! One file per operation group: `object.rs` (what a stored object is, once
//! resolved), `get.rs`, `put.rs`, `list.rs`, `copy.rs`, `bucket.rs`,
//! `multipart.rs`; `error.rs` maps every lower error to S3 once.

pub mod body;
pub mod bucket;
pub mod checksum;
pub mod condition;
pub mod copy;
pub mod error;
pub mod gc;
pub mod get;
pub mod index;
pub mod list;
pub mod lock;
pub mod multipart;
pub mod object;
pub mod put;
pub mod records;
pub mod seal;
pub mod store_index;
pub mod token;
pub mod versions;

use std::collections::HashMap;
use std::sync::Arc;

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result, S3};

use crate::envelope::Attributes;
use crate::keyring::Keyring;
use crate::store::{ObjectHeaders, Store};

/// Metadata key holding the envelope header (or its overflow pointer).
pub const META_KEY: &str = "sg";
/// Keys under this prefix are sealgate's own (multipart manifests) and are
/// hidden from clients.
pub const HIDDEN_PREFIX: &str = ".sealgate/";
/// S3's limit on user metadata (keys and values), in bytes.
pub const METADATA_LIMIT: usize = 2048;

pub struct Gateway {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) objects: moka::future::Cache<object::CacheKey, Arc<object::View>>,
    pub(crate) listing: moka::sync::Cache<(String, String, String), object::ListInfo>,
    /// The last resolved view of each object, for one-request GETs.
    pub(crate) latest: moka::sync::Cache<(String, String), Arc<object::Resolved>>,
    pub(crate) tokens: token::TokenKey,
    pub(crate) list_concurrency: usize,
    pub(crate) max_object_size: u64,
    pub(crate) region: String,
    /// Access key -> bucket patterns the user may use.
    pub(crate) users: HashMap<String, Vec<String>>,
    /// Signed groups (`[sharing]`), if configured.
    pub(crate) groups: Option<Arc<crate::groups::Groups>>,
    /// The persistent listing index, if a state directory and a gateway
    /// secret are configured.
    pub(crate) index: Option<Arc<index::ListingIndex>>,
    /// The listing index kept at the store, if a gateway secret is
    /// configured (and `gateway.store_index_secs` is not 0).
    pub(crate) store_index: Option<Arc<store_index::StoreIndex>>,
    /// Which conditional writes the store enforces.
    pub(crate) conditional: crate::store::conditional::ConditionalWrites,
    /// Each bucket's versioning state at the store, briefly (`versions.rs`).
    pub(crate) versioning: moka::sync::Cache<String, crate::store::versions::Versioning>,
    /// Buckets with Object Lock enabled, as the store said lately ([`lock`]).
    pub(crate) lock_buckets: moka::sync::Cache<String, bool>,
    /// Completions in progress, one at a time per upload ([`multipart`]).
    pub(crate) completing: multipart::Completing,
}

pub struct GatewaySettings {
    pub groups: Option<Arc<crate::groups::Groups>>,
    pub index: Option<Arc<index::ListingIndex>>,
    pub store_index: Option<Arc<store_index::StoreIndex>>,
    pub users: HashMap<String, Vec<String>>,
    pub object_cache_entries: u64,
    pub list_concurrency: usize,
    pub max_object_size: u64,
    pub region: String,
    pub gateway_secret: zeroize::Zeroizing<Vec<u8>>,
    /// `store.conditional_writes`.
    pub conditional_writes: crate::store::conditional::Mode,
}

impl Gateway {
    pub fn new(store: Arc<dyn Store>, keyring: Arc<Keyring>, s: GatewaySettings) -> Self {
        Self {
            conditional: crate::store::conditional::ConditionalWrites::new(
                s.conditional_writes,
                store.as_ref(),
            ),
            store,
            keyring,
            objects: moka::future::Cache::builder()
                .max_capacity(s.object_cache_entries / 10 + 1)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
            latest: moka::sync::Cache::builder()
                .max_capacity(s.object_cache_entries / 10 + 1)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
            listing: moka::sync::Cache::builder()
                .max_capacity(s.object_cache_entries)
                .build(),
            tokens: token::TokenKey::new(&s.gateway_secret),
            list_concurrency: s.list_concurrency.max(1),
            max_object_size: s.max_object_size,
            region: s.region,
            users: s.users,
            groups: s.groups,
            index: s.index,
            store_index: s.store_index,
            versioning: versions::versioning_cache(),
            lock_buckets: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(lock::BUCKET_LOCK_TTL)
                .build(),
            completing: multipart::Completing::default(),
        }
    }

    /// Whether a user may use a bucket (`*` allows every bucket).
    pub fn user_may_use(&self, access_key: Option<&str>, bucket: &str) -> bool {
        let Some(ak) = access_key else { return false };
        self.users
            .get(ak)
            .is_some_and(|bs| bs.iter().any(|b| b == "*" || b == bucket))
    }

    /// What the admin listener needs, shared with the running gateway.
    pub fn admin_view(&self) -> Arc<dyn crate::admin::AdminView> {
        Arc::new(AdminState {
            store: self.store.clone(),
            keyring: self.keyring.clone(),
        })
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn groups(&self) -> Option<&Arc<crate::groups::Groups>> {
        self.groups.as_ref()
    }

    /// Keeps what a listing shows for this store version of an object (in
    /// memory, and in the persistent index when there is one).
    pub(crate) fn remember_listing(
        &self,
        bucket: &str,
        key: &str,
        store_etag: &str,
        info: object::ListInfo,
    ) {
        if let Some(ix) = &self.index {
            ix.remember(bucket, key, store_etag, &info);
        }
        // Not in a bucket known to have Object Lock: the bucket's default
        // retention would keep every segment, and compaction could delete
        // none of them.
        if let Some(si) = &self.store_index {
            if self.lock_buckets.get(bucket) != Some(true) {
                si.queue(bucket, key, store_etag, &info);
            }
        }
        self.listing.insert(
            (bucket.to_owned(), key.to_owned(), store_etag.to_owned()),
            info,
        );
    }

    /// Fills the listing cache from the persistent index for entries it
    /// does not hold (one read transaction on a blocking thread).
    pub(crate) async fn prefetch_listing(&self, bucket: &str, entries: &[crate::store::ListEntry]) {
        let Some(ix) = self.index.clone() else {
            return;
        };
        let missing: Vec<(String, String)> = entries
            .iter()
            .filter(|e| {
                !self
                    .listing
                    .contains_key(&(bucket.to_owned(), e.key.clone(), e.etag.clone()))
            })
            .map(|e| (e.key.clone(), e.etag.clone()))
            .collect();
        if missing.is_empty() {
            return;
        }
        let b = bucket.to_owned();
        let m = missing.clone();
        let Ok(found) = tokio::task::spawn_blocking(move || ix.lookup(&b, &m)).await else {
            return;
        };
        for ((k, e), info) in missing.into_iter().zip(found) {
            if let Some(info) = info {
                self.listing.insert((bucket.to_owned(), k, e), info);
            }
        }
    }

    /// For listing entries that no cache holds: what the store-side index
    /// knows (its segments not read yet, at most once a minute per bucket),
    /// kept in the caches and the persistent index.
    pub(crate) async fn fill_from_store_index(
        &self,
        bucket: &str,
        entries: &[crate::store::ListEntry],
    ) {
        let Some(si) = &self.store_index else { return };
        let missing = entries.iter().any(|e| {
            !self
                .listing
                .contains_key(&(bucket.to_owned(), e.key.clone(), e.etag.clone()))
        });
        if !missing {
            return;
        }
        si.load(bucket, |found| {
            if let Some(ix) = self.index.clone() {
                let (b, f) = (bucket.to_owned(), found.clone());
                tokio::task::spawn_blocking(move || ix.import(&b, &f));
            }
            for e in found {
                self.listing
                    .insert((bucket.to_owned(), e.key, e.store_etag), e.info);
            }
        })
        .await;
    }

    /// Writes what the store-side index has queued (at shutdown, and in
    /// tests); nothing without one.
    pub async fn flush_store_index(&self) {
        if let Some(si) = &self.store_index {
            si.flush().await;
        }
    }

    /// The store-side index, to flush it after the gateway has stopped.
    pub fn store_index(&self) -> Option<Arc<store_index::StoreIndex>> {
        self.store_index.clone()
    }

    /// The listing index in the state directory, if there is one.
    pub fn listing_index(&self) -> Option<Arc<index::ListingIndex>> {
        self.index.clone()
    }

    pub(crate) fn key_name(&self, key_id_hex: &str) -> Option<String> {
        let id: [u8; 8] = hex::decode(key_id_hex).ok()?.try_into().ok()?;
        self.keyring.name_of(&id).map(str::to_owned)
    }

    pub(crate) fn format_err(
        &self,
        e: crate::envelope::FormatError,
        bucket: &str,
        key: &str,
    ) -> S3Error {
        error::from_format(e, bucket, key, &|id| self.key_name(id))
    }
}

struct AdminState {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
}

#[async_trait::async_trait]
impl crate::admin::AdminView for AdminState {
    async fn ready(&self) -> Result<(), String> {
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.store.list_buckets())
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("store: {} {}", e.code, e.message)),
            Err(_) => Err("store: no answer within 5 s".into()),
        }
    }
    fn key_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.keyring.stats.hits.load(Relaxed),
            self.keyring.stats.unwraps.load(Relaxed),
        )
    }
}

/// The attributes a client gave a new object (PutObject,
/// CreateMultipartUpload, CopyObject with REPLACE): the standard headers and
/// the user metadata, checked against S3's rules and sealgate's reserved keys.
macro_rules! client_attributes {
    ($input:expr) => {
        $crate::gateway::ClientAttributes {
            metadata: $input.metadata.take(),
            content_type: $input.content_type.take(),
            content_encoding: $input.content_encoding.take(),
            content_disposition: $input.content_disposition.take(),
            content_language: $input.content_language.take(),
            cache_control: $input.cache_control.take(),
            expires: $input.expires.take(),
        }
        .check()
    };
}
pub(crate) use client_attributes;

/// The attribute fields S3 operations that create objects share.
pub struct ClientAttributes {
    pub metadata: Option<Metadata>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
}

impl ClientAttributes {
    /// Refuses reserved or oversized user metadata; lowercases keys (S3
    /// does); drops the `aws-chunked` transfer coding from Content-Encoding.
    pub fn check(self) -> S3Result<Attributes> {
        let metadata: std::collections::BTreeMap<String, String> = self
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        for k in metadata.keys() {
            if k == META_KEY || k.starts_with("sg-") {
                return Err(s3_error!(
                    InvalidArgument,
                    "x-amz-meta-{k} is reserved by sealgate and cannot be set"
                ));
            }
            if k.is_empty() || k.contains('\0') {
                return Err(s3_error!(InvalidArgument, "invalid user metadata key"));
            }
        }
        let a = Attributes {
            metadata,
            content_type: self.content_type,
            content_encoding: strip_aws_chunked(self.content_encoding),
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires.as_ref().and_then(http_date),
            checksums: Vec::new(),
        };
        if a.user_metadata_size() > METADATA_LIMIT {
            return Err(s3_error!(
                MetadataTooLarge,
                "Your metadata headers exceed the maximum allowed metadata size."
            ));
        }
        Ok(a)
    }
}

/// The attributes of an object written before attributes were sealed: the
/// store's word (documented in docs/SECURITY.md).
pub(crate) fn legacy_attributes(h: &ObjectHeaders) -> Attributes {
    Attributes {
        metadata: h
            .metadata
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k != META_KEY && !k.starts_with("sg-")
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        content_type: h.content_type.clone(),
        content_encoding: h.content_encoding.clone(),
        content_disposition: h.content_disposition.clone(),
        content_language: h.content_language.clone(),
        cache_control: h.cache_control.clone(),
        expires: h.expires.clone(),
        checksums: Vec::new(),
    }
}

/// Object tags (`x-amz-tagging` on a write) are refused, not dropped: a
/// tag at the store would be plaintext the store reads, and sealgate keeps
/// none of its own, so a tag set would silently be lost.
pub(crate) fn refuse_tags(tagging: Option<&str>) -> S3Result<()> {
    if tagging.is_some_and(|t| !t.trim().is_empty()) {
        return Err(s3_error!(
            NotImplemented,
            "object tags (x-amz-tagging) are not supported: they would be plaintext at the store"
        ));
    }
    Ok(())
}

pub(crate) fn check_key(key: &str) -> S3Result<()> {
    if key.starts_with(HIDDEN_PREFIX) {
        return Err(s3_error!(
            InvalidArgument,
            "object keys under {HIDDEN_PREFIX} are reserved by sealgate"
        ));
    }
    if key.len() > 1024 {
        return Err(s3_error!(KeyTooLongError));
    }
    Ok(())
}

/// User metadata as a client sees it.
pub(crate) fn visible_metadata(a: &Attributes) -> Option<Metadata> {
    if a.metadata.is_empty() {
        None
    } else {
        Some(
            a.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

pub(crate) fn strip_aws_chunked(ce: Option<String>) -> Option<String> {
    let ce = ce?;
    let rest: Vec<&str> = ce
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    if rest.is_empty() {
        None
    } else {
        Some(rest.join(","))
    }
}

pub(crate) fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub(crate) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

fn owner_acl() -> GetBucketAclOutput {
    let owner = Owner {
        display_name: Some("sealgate".into()),
        id: Some("sealgate".into()),
    };
    GetBucketAclOutput {
        grants: Some(vec![Grant {
            grantee: Some(Grantee {
                display_name: owner.display_name.clone(),
                id: owner.id.clone(),
                type_: Type::from_static(Type::CANONICAL_USER),
                email_address: None,
                uri: None,
            }),
            permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
        }]),
        owner: Some(owner),
    }
}

impl Gateway {
    /// That the object (or the version asked for) exists, for the
    /// operations that answer for an object without reading it; its
    /// version id when the store keeps one.
    async fn object_exists(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<Option<String>> {
        check_key(key)?;
        let info = self
            .store
            .head_version(bucket, key, version)
            .await
            .map_err(error::from_store)?;
        Ok(info.version_id)
    }
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        bucket::list_buckets(self, req).await
    }
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        bucket::create_bucket(self, req).await
    }
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        bucket::head_bucket(self, req).await
    }
    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        bucket::delete_bucket(self, req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        bucket::get_bucket_location(self, req).await
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        versions::get_bucket_versioning(self, req).await
    }
    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        versions::put_bucket_versioning(self, req).await
    }
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        versions::list_object_versions(self, req).await
    }
    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        // Tags are not supported; clients that copy tags see an empty set.
        let i = &req.input;
        let version_id = self
            .object_exists(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: Vec::new(),
            version_id,
        }))
    }
    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        self.store
            .head_bucket(&req.input.bucket)
            .await
            .map_err(error::from_store)?;
        Ok(S3Response::new(owner_acl()))
    }
    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let i = &req.input;
        self.object_exists(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let a = owner_acl();
        Ok(S3Response::new(GetObjectAclOutput {
            grants: a.grants,
            owner: a.owner,
            ..Default::default()
        }))
    }
    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        get::head_object(self, req).await
    }
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        get::get_object(self, req).await
    }
    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        get::get_object_attributes(self, req).await
    }
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        put::put_object(self, req).await
    }
    async fn post_object(
        &self,
        _req: S3Request<PostObjectInput>,
    ) -> S3Result<S3Response<PostObjectOutput>> {
        Err(s3_error!(
            NotImplemented,
            "browser form uploads are not supported"
        ))
    }
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        put::delete_object(self, req).await
    }
    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        put::delete_objects(self, req).await
    }
    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        list::list_objects(self, req).await
    }
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        list::list_objects_v2(self, req).await
    }
    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        copy::copy_object(self, req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        multipart::create(self, req).await
    }
    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        multipart::upload_part_copy(self, req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        multipart::complete(self, req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort(self, req).await
    }
    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        multipart::list_uploads(self, req).await
    }
    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        lock::get_lock_configuration(self, req).await
    }
    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        lock::put_lock_configuration(self, req).await
    }
    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        lock::get_retention(self, req).await
    }
    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        lock::put_retention(self, req).await
    }
    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        lock::get_legal_hold(self, req).await
    }
    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        lock::put_legal_hold(self, req).await
    }
}
