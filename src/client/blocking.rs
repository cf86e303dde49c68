//! The blocking façade of [`super::SyncClient`], for code that is not async: it owns
//! a small tokio runtime (one worker thread) that runs the connection, and every call
//! blocks the calling thread until the async call it wraps returns.
//!
//! Invariant: the same guarantees as [`super::SyncClient`] (it is one inside); the
//! runtime lives as long as the client and stops when it is closed or dropped. Calls
//! must not be made from inside an async runtime (they block its thread).

use std::time::Duration;

use super::{ClientError, ClientOptions};
use crate::protocol::OwnedSyncStatus;
use crate::store::GraphStore;

/// A [`GraphStore`] kept in sync with a server, with blocking calls.
///
/// # Examples
/// ```no_run
/// use std::time::Duration;
/// use vuer_rtc::client::{ClientOptions, blocking::SyncClient};
/// use vuer_rtc::op::Op;
///
/// let alice = SyncClient::connect("ws://127.0.0.1:8013/scenes/demo", "alice",
///     ClientOptions::default())?;
/// alice.with_store(|s| {
///     s.edit(Op::node_insert("", "cube", "Mesh")).unwrap();
///     s.commit("create");
/// });
/// alice.flush(Duration::from_secs(5))?;
/// alice.close();
/// # Ok::<(), vuer_rtc::client::ClientError>(())
/// ```
pub struct SyncClient {
    inner: Option<super::SyncClient>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::SyncClient")
            .finish_non_exhaustive()
    }
}

impl SyncClient {
    /// [`super::SyncClient::connect`], blocking until joined.
    ///
    /// # Errors
    /// As [`super::SyncClient::connect`], and [`ClientError::Runtime`] when the runtime
    /// cannot start.
    pub fn connect(
        url: &str,
        client: &str,
        options: ClientOptions,
    ) -> Result<SyncClient, ClientError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vuer-rtc-client")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Runtime(e.to_string()))?;
        let inner = rt.block_on(super::SyncClient::connect(url, client, options))?;
        Ok(SyncClient {
            inner: Some(inner),
            rt,
        })
    }

    fn inner(&self) -> Result<&super::SyncClient, ClientError> {
        self.inner.as_ref().ok_or(ClientError::Closed)
    }

    /// [`super::SyncClient::with_store`].
    ///
    /// # Panics
    /// Never: a closed client's store is gone, so this is only callable before
    /// [`SyncClient::close`] (which takes the client).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut GraphStore) -> T) -> T {
        match &self.inner {
            Some(c) => c.with_store(f),
            // `close` consumes the client and `inner` is only taken there.
            None => unreachable_closed(),
        }
    }

    /// [`super::SyncClient::flush`]: blocks until every committed message is acked.
    ///
    /// # Errors
    /// As [`super::SyncClient::flush`].
    pub fn flush(&self, timeout: Duration) -> Result<(), ClientError> {
        let c = self.inner()?;
        self.rt.block_on(c.flush(timeout))
    }

    /// [`super::SyncClient::check`]: a `sync-check` round trip.
    ///
    /// # Errors
    /// As [`super::SyncClient::check`].
    pub fn check(&mut self, timeout: Duration) -> Result<OwnedSyncStatus, ClientError> {
        let c = self.inner.as_mut().ok_or(ClientError::Closed)?;
        self.rt.block_on(c.check(timeout))
    }

    /// [`super::SyncClient::errors`].
    pub fn errors(&self) -> Vec<(Option<String>, String)> {
        self.inner
            .as_ref()
            .map_or_else(Vec::new, super::SyncClient::errors)
    }

    /// Closes the connection and stops the runtime.
    pub fn close(mut self) {
        if let Some(c) = self.inner.take() {
            self.rt.block_on(c.close());
        }
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        if let Some(c) = self.inner.take() {
            self.rt.block_on(c.close());
        }
    }
}

#[cold]
fn unreachable_closed() -> ! {
    unreachable!("blocking::SyncClient used after close")
}
