//! Records `on_complete` calls of `FetchCmd`s, shared by `dl_memory` (which
//! waits by blocking) and `dl_backends` (which waits asynchronously).
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use http::HeaderMap;
use kithara_stream::net::NetError;

/// One completion as seen by `on_complete`.
#[derive(Debug, Clone)]
pub struct Completed {
    pub tag: usize,
    pub bytes: u64,
    pub headers: bool,
    pub error: Option<NetError>,
}

/// Every completion so far, in order.
#[derive(Clone, Default)]
pub struct Completions(Arc<Mutex<Vec<Completed>>>);

impl Completions {
    /// An `on_complete` callback recording under `tag`.
    pub fn cb(
        &self,
        tag: usize,
    ) -> impl FnOnce(u64, Option<&HeaderMap>, Option<&NetError>) + Send + 'static {
        let all = self.0.clone();
        move |bytes, headers, error| {
            all.lock().unwrap().push(Completed {
                tag,
                bytes,
                headers: headers.is_some(),
                error: error.cloned(),
            })
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Completed> {
        self.0.lock().unwrap().clone()
    }
}
