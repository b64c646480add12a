//! Bucket operations: passed to the store, with sealgate's hidden keys
//! accounted for when deleting.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::error::from_store;
use super::{Gateway, HIDDEN_PREFIX};
use crate::store::ListRequest;

pub async fn list_buckets(
    gw: &Gateway,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let user = req.credentials.as_ref().map(|c| c.access_key.clone());
    let buckets = gw.store.list_buckets().await?;
    let buckets = buckets
        .into_iter()
        .filter(|b| gw.user_may_use(user.as_deref(), &b.name))
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(Timestamp::from(b.created)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(Owner {
            display_name: Some("sealgate".into()),
            id: Some("sealgate".into()),
        }),
        ..Default::default()
    }))
}

pub async fn create_bucket(
    gw: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    if req.input.object_lock_enabled_for_bucket == Some(true) {
        super::lock::create_locked_bucket(gw, &req.input.bucket).await?;
    } else {
        gw.store.create_bucket(&req.input.bucket).await?;
    }
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", req.input.bucket)),
    }))
}

pub async fn head_bucket(
    gw: &Gateway,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    gw.store.head_bucket(&req.input.bucket).await?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(gw.region.clone()),
        ..Default::default()
    }))
}

pub async fn delete_bucket(
    gw: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let b = &req.input.bucket;
    match gw.store.delete_bucket(b).await {
        Ok(()) => {}
        Err(e) if e.code == "BucketNotEmpty" => {
            // Only sealgate's own leftovers (orphaned manifests, upload
            // records) may remain. Whether the bucket keeps versions is
            // asked at the store, not the cache: on one that does, a plain
            // delete of a manifest would hide it behind a marker and leave
            // every multipart version that needs it unreadable, so all its
            // versions are looked at before anything is deleted.
            let keeps = match gw.store.get_bucket_versioning(b).await {
                Ok(v) => v.keeps_versions(),
                Err(v) if v.status == 501 => false,
                Err(v) => return Err(from_store(v)),
            };
            if keeps {
                super::versions::purge_hidden_versions(gw, b)
                    .await
                    .map_err(|()| from_store(e))?;
            } else {
                let page = gw
                    .store
                    .list(
                        b,
                        &ListRequest {
                            max_keys: 1000,
                            ..Default::default()
                        },
                    )
                    .await?;
                if page.is_truncated
                    || page
                        .entries
                        .iter()
                        .any(|e| !e.key.starts_with(HIDDEN_PREFIX))
                {
                    return Err(from_store(e));
                }
                let keys: Vec<String> = page.entries.into_iter().map(|e| e.key).collect();
                gw.store.delete_many(b, &keys).await?;
            }
            gw.store.delete_bucket(b).await?;
        }
        Err(e) => return Err(from_store(e)),
    }
    if let Some(si) = &gw.store_index {
        si.forget_bucket(b);
    }
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub async fn get_bucket_location(
    gw: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    gw.store.head_bucket(&req.input.bucket).await?;
    let lc = (gw.region != "us-east-1").then(|| BucketLocationConstraint::from(gw.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: lc,
    }))
}
