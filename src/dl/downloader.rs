//! The facade: [`Downloader`] and [`PeerHandle`] build the loop's state
//! (`shared.rs`), spawn the loop (`registry.rs`) and hand out handles.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};

use super::events::{EventReceiver, Hub};
use super::registry::Registry;
use super::shared::{ImperativeMsg, NewPeer, Shared};
use super::{DownloaderConfig, FetchCmd, FetchResponse, PEER_CMD_CHANNEL_CAPACITY, Peer};
use crate::cancel::CancelToken;
use crate::net::NetError;
use crate::offload::Offload;

struct DownloaderInner {
    shared: Arc<Shared>,
}

impl Drop for DownloaderInner {
    /// The last `Downloader` and `PeerHandle` are gone: shut the loop down.
    fn drop(&mut self) {
        self.shared.root.cancel();
    }
}

/// The shared download pool. Cheap to clone (all clones are one pool).
///
/// [`Downloader::new`] spawns the loop task at once on the config's
/// [`Spawn`](crate::rt::Spawn). The loop ends, delivering every queued
/// command as cancelled, when the config's cancel token fires or when the
/// last `Downloader` **and** the last [`PeerHandle`] are dropped. It never
/// keeps itself alive: it holds no handle. Shutting down also cancels
/// every request in flight, including bodies returned by
/// [`PeerHandle::execute`] that are still being read. (A [`Peer`] that holds its own
/// `PeerHandle` would form a cycle; hold the handle next to the peer instead.)
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
/// use kithara_stream::net::MemoryClient;
/// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
/// struct OneShot; // a peer with nothing to stream
/// impl Peer for OneShot {}
///
/// let client = MemoryClient::new();
/// client.insert("http://127.0.0.1/hello", &b"hello"[..]);
/// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client)));
/// let peer = dl.register(Arc::new(OneShot));
/// let url = url::Url::parse("http://127.0.0.1/hello").unwrap();
/// let body = futures::executor::block_on(async {
///     peer.execute(FetchCmd::get(url)).await?.body.collect().await
/// }).unwrap();
/// assert_eq!(&body[..], b"hello");
/// ```
#[derive(Clone)]
pub struct Downloader {
    inner: Arc<DownloaderInner>,
}

impl fmt::Debug for Downloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downloader")
            .field("inflight", &self.inflight())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Downloader {
    /// A downloader running on `config.spawn`; its loop is spawned now.
    pub fn new(config: DownloaderConfig) -> Self {
        let (shared, reg_rx) = Shared::new(config);
        let registry = Registry::new(shared.clone(), reg_rx);
        shared.cfg.spawn.spawn(Box::pin(registry.run()));
        Self {
            inner: Arc::new(DownloaderInner { shared }),
        }
    }

    /// Registers `peer`: the loop starts polling it. The returned handle
    /// owns the peer's registration: dropping its last clone cancels the
    /// peer (queued commands complete as cancelled, in-flight ones abort)
    /// and the loop releases the peer.
    ///
    /// On a downloader that is cancelled, shut down or shutting down, the
    /// peer is never polled and the returned handle's
    /// [`cancel`](PeerHandle::cancel) token is already cancelled (or is
    /// cancelled by the closing loop); its requests fail with
    /// [`NetError::Cancelled`]. Never blocks.
    pub fn register(&self, peer: Arc<dyn Peer>) -> PeerHandle {
        let shared = &self.inner.shared;
        let token = shared.root.child();
        let (cmd_tx, cmd_rx) = mpsc::channel(PEER_CMD_CHANNEL_CAPACITY);
        let hub = Arc::new(Hub::new(shared.cfg.event_capacity));
        let id = shared.next_peer_id();
        // A downloader that is shut down, shutting down or whose loop is
        // gone cannot serve the peer: its token is cancelled at once, so a
        // stream opening on it fails now instead of waiting forever. (A
        // registration the loop takes in just before closing is cancelled
        // by the loop's close.)
        let sent = shared.send_peer(NewPeer {
            id,
            peer,
            token: token.clone(),
            rx: cmd_rx,
            hub: hub.clone(),
        });
        if !sent || shared.root.is_cancelled() || !shared.loop_alive.load(Ordering::Acquire) {
            token.cancel();
        }
        shared.wake.notify();
        PeerHandle {
            inner: Arc::new(PeerInner {
                dl: self.inner.clone(),
                id,
                token,
                cmd_tx,
                hub,
            }),
        }
    }

    /// Subscribes to the events of every request of this downloader.
    pub fn subscribe(&self) -> EventReceiver {
        self.inner.shared.hub.subscribe()
    }

    /// The downloader's token: cancelling it shuts the downloader down
    /// (every peer is cancelled with it).
    pub fn cancel(&self) -> CancelToken {
        self.inner.shared.root.clone()
    }

    /// Requests currently holding a concurrency slot.
    pub fn inflight(&self) -> usize {
        self.inner.shared.inflight.load(Ordering::Acquire)
    }

    /// Whether the loop task is still alive.
    pub fn is_running(&self) -> bool {
        self.inner.shared.loop_alive.load(Ordering::Acquire)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &DownloaderConfig {
        &self.inner.shared.cfg
    }

    /// Where this downloader's streams run blocking file work.
    pub(crate) fn offload(&self) -> Offload {
        self.inner.shared.offload.clone()
    }
}

struct PeerInner {
    dl: Arc<DownloaderInner>,
    id: u64,
    token: CancelToken,
    cmd_tx: mpsc::Sender<ImperativeMsg>,
    hub: Arc<Hub>,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        self.token.cancel();
        self.dl.shared.wake.notify();
    }
}

/// Cancels the caller token unless disarmed (the answer arrived).
struct CallerGuard(Option<CancelToken>);

impl CallerGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CallerGuard {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

/// A registered peer's handle. Cheap to clone; the last clone's drop
/// cancels the peer (see [`Downloader::register`]).
///
/// It also keeps the downloader running: the loop ends only when every
/// `Downloader` and every `PeerHandle` is gone (or the downloader's token fires).
#[derive(Clone)]
pub struct PeerHandle {
    inner: Arc<PeerInner>,
}

impl fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerHandle")
            .field("id", &self.inner.id)
            .field("cancelled", &self.inner.token.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl PeerHandle {
    /// Runs one request now, at command priority `High` (unless the command
    /// says otherwise), and returns its response once the headers are in.
    ///
    /// The command's `writer`, `on_response` and `on_complete` are not used.
    /// Its epoch token, the peer's token and dropping this future cancel it.
    ///
    /// **Concurrency:** the request holds one of the downloader's
    /// `max_concurrent` slots until its body ends or is dropped (a HEAD
    /// releases it at once). Holding `max_concurrent` unread bodies
    /// therefore stalls every other request of the downloader; read or drop
    /// them.
    ///
    /// # Errors
    /// The request's [`NetError`] after retries; [`NetError::Cancelled`] when
    /// the peer or downloader is cancelled or gone.
    pub async fn execute(&self, cmd: FetchCmd) -> Result<FetchResponse, NetError> {
        let (rx, guard) = self.enqueue(cmd, false).await?;
        let result = rx.await.unwrap_or(Err(NetError::Cancelled));
        guard.disarm();
        result
    }

    /// Runs `cmds` in parallel (under `max_concurrent`) and returns their
    /// results in input order.
    ///
    /// Unlike [`execute`](Self::execute), each body is read to the end
    /// **inside** its concurrency slot and returned buffered in memory, so a
    /// batch larger than `max_concurrent` cannot stall on its own unread
    /// bodies. Use it for small resources (playlists, keys, HEADs).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
    /// use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
    /// use kithara_stream::net::{MemoryClient, NetError};
    ///
    /// struct Idle;
    /// impl Peer for Idle {}
    /// let client = MemoryClient::new();
    /// client.insert("http://127.0.0.1/playlist.m3u8", &b"#EXTM3U"[..]);
    /// client.insert("http://127.0.0.1/key", &[0u8; 16][..]);
    /// let peer = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client))).register(Arc::new(Idle));
    /// let url = |p: &str| url::Url::parse(&format!("http://127.0.0.1/{p}")).unwrap();
    /// let cmds = vec![FetchCmd::get(url("playlist.m3u8")), FetchCmd::head(url("key")), FetchCmd::get(url("gone"))];
    /// let mut results = futures::executor::block_on(peer.batch(cmds)).into_iter(); // input order
    /// let playlist = futures::executor::block_on(results.next().unwrap()?.body.collect())?;
    /// assert_eq!(&playlist[..], b"#EXTM3U");
    /// assert_eq!(results.next().unwrap()?.status, 200);
    /// assert!(matches!(results.next().unwrap(), Err(NetError::Status { status, .. }) if status == 404));
    /// # Ok::<(), NetError>(())
    /// ```
    pub async fn batch(&self, cmds: Vec<FetchCmd>) -> Vec<Result<FetchResponse, NetError>> {
        let mut waiting = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            waiting.push(self.enqueue(cmd, true).await);
        }
        futures::future::join_all(waiting.into_iter().map(|w| async move {
            let (rx, guard) = w?;
            let result = rx.await.unwrap_or(Err(NetError::Cancelled));
            guard.disarm();
            result
        }))
        .await
    }

    async fn enqueue(
        &self,
        cmd: FetchCmd,
        collect: bool,
    ) -> Result<
        (
            oneshot::Receiver<Result<FetchResponse, NetError>>,
            CallerGuard,
        ),
        NetError,
    > {
        if self.inner.token.is_cancelled() {
            return Err(NetError::Cancelled);
        }
        let (tx, rx) = oneshot::channel();
        let caller = CancelToken::new();
        let guard = CallerGuard(Some(caller.clone()));
        let mut sender = self.inner.cmd_tx.clone();
        sender
            .send(ImperativeMsg {
                cmd,
                tx,
                collect,
                caller,
            })
            .await
            .map_err(|_| NetError::Cancelled)?;
        // The urgent notify: stored, so a loop about to wait sees it.
        self.inner.dl.shared.wake.notify();
        Ok((rx, guard))
    }

    /// The peer's token: cancelling it cancels the peer and everything it
    /// has queued or in flight. It is a child of the downloader's token.
    pub fn cancel(&self) -> CancelToken {
        self.inner.token.clone()
    }

    /// Subscribes to the events of this peer's requests only.
    pub fn subscribe(&self) -> EventReceiver {
        self.inner.hub.subscribe()
    }

    /// The peer's id within its downloader (from 1).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// A handle to the downloader this peer belongs to.
    pub fn downloader(&self) -> Downloader {
        Downloader {
            inner: self.inner.dl.clone(),
        }
    }
}
