//! Zarr stores in object storage (`s3://bucket/prefix`) or behind a web
//! server (`http(s)://host/path`), read through `object_store`.
//!
//! `zarrs` asks the store for whole chunks (and byte ranges of shards) from
//! rayon threads; each request runs on one shared tokio runtime, so chunks
//! are fetched concurrently and decoded on all cores. Every request has a
//! connect and a total timeout and is retried with backoff a few times, so an
//! unreachable store fails with an error naming the URL, never hangs.
//!
//! S3 settings come from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`, and
//! `AWS_ALLOW_HTTP` for a plain-http endpoint). Without an access key the
//! bucket is read anonymously (public data).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use tokio::runtime::Runtime;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs::storage::ReadableStorageTraits;
use zarrs_object_store::AsyncObjectStore;

use crate::error::{OomError, Result};

/// Seconds a whole request may take (`ANNDATAOOM_REMOTE_TIMEOUT` overrides).
const TIMEOUT_SECS: f64 = 60.0;
/// Attempts after the first one for a failed request.
const RETRIES: usize = 3;

/// Whether `path` names a remote store rather than a local path.
pub fn is_url(path: &str) -> bool {
    ["s3://", "http://", "https://"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// The runtime every remote request runs on (started on first use).
fn runtime() -> Result<&'static Runtime> {
    static RT: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("oom-remote")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        OomError::Value(format!(
            "cannot start the I/O runtime for remote stores: {e}"
        ))
    })
}

struct BlockOn(&'static Runtime);

impl AsyncToSyncBlockOn for BlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

fn timeout() -> Duration {
    let secs = std::env::var("ANNDATAOOM_REMOTE_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(TIMEOUT_SECS);
    Duration::from_secs_f64(secs)
}

fn client_options(allow_http: bool) -> ClientOptions {
    let total = timeout();
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(total)
        .with_connect_timeout(total.min(Duration::from_secs(10)))
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: RETRIES,
        retry_timeout: timeout() * 2,
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// `s3://bucket/prefix` → the bucket's store seen from `prefix`.
fn s3(url: &str) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let rest = url.trim_start_matches("s3://");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("no bucket name in the URL".into());
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_client_options(client_options(env_flag("AWS_ALLOW_HTTP")))
        .with_retry(retry());
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        builder = builder.with_skip_signature(true);
    }
    let store = builder.build().map_err(|e| e.to_string())?;
    let prefix = prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    })
}

fn http(url: &str) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let store = HttpBuilder::new()
        .with_url(url.trim_end_matches('/'))
        .with_client_options(client_options(url.starts_with("http://")))
        .with_retry(retry())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

/// A synchronous `zarrs` store reading the remote store at `url`.
pub fn open(url: &str) -> Result<Arc<dyn ReadableStorageTraits>> {
    // reqwest's rustls asks for the process-wide provider (built without
    // aws-lc-rs, it has none of its own); Err means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = if url.starts_with("s3://") {
        s3(url)
    } else {
        http(url)
    };
    let store = store.map_err(|e| OomError::Io {
        path: url.to_string(),
        msg: format!("cannot open remote store: {e}"),
    })?;
    let store = Arc::new(AsyncObjectStore::new(store));
    Ok(Arc::new(AsyncToSyncStorageAdapter::new(
        store,
        BlockOn(runtime()?),
    )))
}
