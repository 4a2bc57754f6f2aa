//! Cancellation: a tree of [`CancelToken`]s and their OR, [`CancelGroup`].
//!
//! Built on `event-listener`, so the same token can be awaited on any executor
//! ([`CancelToken::cancelled`]), waited on by a blocked thread
//! ([`CancelToken::wait_deadline`]), or hooked so that another event wakes
//! when it fires ([`CancelToken::on_cancel`], used by storage waiters).
//! Nothing polls.
//!
//! A child token is cancelled with its parent, never the other way round.
//! Parents hold only weak links to children, so dropping a child leaks
//! nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener, Listener};

/// Locks a mutex, ignoring poisoning: every critical section in this crate
/// leaves its data consistent before anything that could panic.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Hook = Box<dyn FnOnce() + Send>;

struct Node {
    cancelled: AtomicBool,
    event: Event,
    links: Mutex<Links>,
    next_hook_id: AtomicU64,
}

#[derive(Default)]
struct Links {
    children: Vec<Weak<Node>>,
    /// Child count after the last pruning; prune again when it doubles.
    pruned_len: usize,
    hooks: Vec<(u64, Hook)>,
}

impl Node {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            cancelled: AtomicBool::new(false),
            event: Event::new(),
            links: Mutex::new(Links::default()),
            next_hook_id: AtomicU64::new(0),
        })
    }

    /// Links `child` under `self`; cancels the child at once if `self` already is.
    fn adopt(&self, child: &Arc<Node>) {
        {
            let mut links = lock(&self.links);
            if !self.cancelled.load(Ordering::Acquire) {
                if links.children.len() >= 2 * links.pruned_len.max(8) {
                    links.children.retain(|w| w.strong_count() > 0);
                    links.pruned_len = links.children.len();
                }
                links.children.push(Arc::downgrade(child));
                return;
            }
        }
        cancel_tree(child.clone());
    }
}

/// Cancels `root` and everything below it, iteratively (no recursion depth limit).
fn cancel_tree(root: Arc<Node>) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        // Take the links under the lock that `adopt` also holds, so a child
        // added concurrently is either taken here or sees the flag there.
        let (children, hooks) = {
            let mut links = lock(&node.links);
            if node.cancelled.swap(true, Ordering::AcqRel) {
                continue;
            }
            (
                std::mem::take(&mut links.children),
                std::mem::take(&mut links.hooks),
            )
        };
        node.event.notify(usize::MAX);
        for (_, hook) in hooks {
            hook();
        }
        stack.extend(children.iter().filter_map(Weak::upgrade));
    }
}

/// A cancellation flag that can be awaited, waited on and organised in a tree.
///
/// Cloning is cheap and yields a handle to the *same* token.
///
/// ```
/// use kithara_stream::cancel::CancelToken;
///
/// let parent = CancelToken::new();
/// let child = parent.child();
/// child.cancel();
/// assert!(!parent.is_cancelled()); // never upwards
/// let other = parent.child();
/// parent.cancel();
/// assert!(other.is_cancelled()); // always downwards
/// ```
#[derive(Clone)]
pub struct CancelToken {
    node: Arc<Node>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A fresh, uncancelled root token.
    pub fn new() -> Self {
        Self { node: Node::new() }
    }

    /// A new token that is cancelled when `self` is (immediately, if `self`
    /// already is). Cancelling the child does not affect `self`.
    pub fn child(&self) -> Self {
        let child = Node::new();
        self.node.adopt(&child);
        Self { node: child }
    }

    /// Cancels this token and all its descendants, wakes every waiter and runs
    /// every registered hook. Idempotent.
    pub fn cancel(&self) {
        cancel_tree(self.node.clone());
    }

    /// Whether [`cancel`](Self::cancel) has happened (on this token or an ancestor).
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.load(Ordering::Acquire)
    }

    /// Whether two handles refer to the same token.
    pub fn same_as(&self, other: &CancelToken) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }

    /// A future that completes once the token is cancelled. Works on any
    /// executor; owns a handle, so it is `'static`. Cancel-safe.
    ///
    /// ```
    /// use kithara_stream::cancel::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let done = token.cancelled(); // owns a handle: can outlive `token`
    /// let t = token.clone();
    /// std::thread::spawn(move || t.cancel());
    /// futures::executor::block_on(done); // completes once cancelled
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancelled(&self) -> Cancelled {
        Cancelled {
            node: self.node.clone(),
            listener: None,
        }
    }

    /// Blocks the calling thread until the token is cancelled or `deadline`
    /// passes (`None`: no deadline). Returns whether it is cancelled.
    pub fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_cancelled() {
                return true;
            }
            let listener = self.node.event.listen();
            if self.is_cancelled() {
                return true;
            }
            match deadline {
                None => listener.wait(),
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return self.is_cancelled();
                    }
                }
            }
        }
    }

    /// [`wait_deadline`](Self::wait_deadline) with a relative timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kithara_stream::cancel::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// assert!(!token.wait_timeout(Duration::from_millis(10)), "not cancelled: times out");
    /// let t = token.clone();
    /// let waiter = std::thread::spawn(move || t.wait_timeout(Duration::from_secs(10)));
    /// token.cancel(); // wakes the blocked thread at once
    /// assert!(waiter.join().unwrap());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Instant::now().checked_add(timeout))
    }

    /// Registers `hook` to run once, on the cancelling thread, when the token
    /// is cancelled; if it already is, `hook` runs now, before this returns.
    ///
    /// The hook is unregistered (and never runs) when the returned guard is
    /// dropped first. Hooks must be quick and must not block: they are how a
    /// storage resource notifies its own event so that blocked readers wake.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use kithara_stream::cancel::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let r = runs.clone();
    /// let _kept = token.on_cancel(move || { r.fetch_add(1, Ordering::SeqCst); });
    /// let r = runs.clone();
    /// drop(token.on_cancel(move || { r.fetch_add(100, Ordering::SeqCst); })); // unregistered
    /// token.cancel();
    /// token.cancel(); // a second cancel runs nothing
    /// assert_eq!(runs.load(Ordering::SeqCst), 1);
    /// ```
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) -> CancelHook {
        let id = self.node.next_hook_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut links = lock(&self.node.links);
            if !self.is_cancelled() {
                links.hooks.push((id, Box::new(hook)));
                return CancelHook {
                    node: Arc::downgrade(&self.node),
                    id,
                };
            }
        }
        hook();
        CancelHook {
            node: Weak::new(),
            id,
        }
    }
}

/// Guard returned by [`CancelToken::on_cancel`]; dropping it unregisters the hook.
#[must_use = "dropping the guard unregisters the hook"]
pub struct CancelHook {
    node: Weak<Node>,
    id: u64,
}

impl std::fmt::Debug for CancelHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHook").field("id", &self.id).finish()
    }
}

impl Drop for CancelHook {
    fn drop(&mut self) {
        if let Some(node) = self.node.upgrade() {
            lock(&node.links).hooks.retain(|(id, _)| *id != self.id);
        }
    }
}

/// Future returned by [`CancelToken::cancelled`] and [`CancelGroup::cancelled`].
pub struct Cancelled {
    node: Arc<Node>,
    listener: Option<EventListener>,
}

impl std::fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancelled")
            .field("cancelled", &self.node.cancelled.load(Ordering::Acquire))
            .finish()
    }
}

impl Future for Cancelled {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.node.cancelled.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            match self.listener.as_mut() {
                // Listen, then loop to re-check: a cancel between the check
                // above and `listen` is not lost.
                None => self.listener = Some(self.node.event.listen()),
                Some(listener) => {
                    futures::ready!(Pin::new(listener).poll(cx));
                    self.listener = None;
                }
            }
        }
    }
}

/// The OR of several tokens: cancelled as soon as any member is.
///
/// Internally a fresh token linked as a child of every member, so checking it
/// is one atomic load and waiting on it is one listener. An empty group is
/// never cancelled (unless [`cancel`](Self::cancel) is called on it).
///
/// ```
/// use kithara_stream::cancel::{CancelGroup, CancelToken};
///
/// let peer = CancelToken::new();
/// let epoch = CancelToken::new();
/// let group = CancelGroup::new([peer.clone(), epoch.clone()]);
/// assert!(!group.is_cancelled());
/// epoch.cancel();
/// assert!(group.is_cancelled());
/// assert!(!peer.is_cancelled());
/// ```
#[derive(Clone, Debug)]
pub struct CancelGroup {
    members: Vec<CancelToken>,
    any: CancelToken,
}

impl CancelGroup {
    /// A group that is cancelled when any of `tokens` is.
    pub fn new(tokens: impl IntoIterator<Item = CancelToken>) -> Self {
        let any = CancelToken::new();
        let members: Vec<CancelToken> = tokens.into_iter().collect();
        for m in &members {
            m.node.adopt(&any.node);
        }
        Self { members, any }
    }

    /// Whether any member (or the group itself) is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.any.is_cancelled()
    }

    /// Completes once any member is cancelled. `'static`, cancel-safe.
    pub fn cancelled(&self) -> Cancelled {
        self.any.cancelled()
    }

    /// The members, in the order given.
    pub fn members(&self) -> &[CancelToken] {
        &self.members
    }

    /// A token that fires with the group (without cancelling any member when
    /// it is cancelled itself).
    pub fn token(&self) -> &CancelToken {
        &self.any
    }

    /// Cancels the group's own token only; members are untouched.
    pub fn cancel(&self) {
        self.any.cancel();
    }

    /// Blocks until any member is cancelled or `deadline` passes; see
    /// [`CancelToken::wait_deadline`].
    pub fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        self.any.wait_deadline(deadline)
    }
}

impl std::ops::BitOr for CancelToken {
    type Output = CancelGroup;
    fn bitor(self, rhs: CancelToken) -> CancelGroup {
        CancelGroup::new([self, rhs])
    }
}

impl std::ops::BitOr<CancelToken> for CancelGroup {
    type Output = CancelGroup;
    fn bitor(mut self, rhs: CancelToken) -> CancelGroup {
        self.members.push(rhs);
        CancelGroup::new(self.members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{LIMIT, spawn, within_async};
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn child_follows_parent_never_the_reverse() {
        let root = CancelToken::new();
        let a = root.child();
        let b = a.child();
        b.cancel();
        assert!(!a.is_cancelled() && !root.is_cancelled());
        let c = a.child();
        root.cancel();
        assert!(a.is_cancelled() && c.is_cancelled());
        // A child made after the cancel is born cancelled.
        assert!(root.child().is_cancelled());
    }

    #[test]
    fn dropped_children_are_pruned() {
        let root = CancelToken::new();
        for _ in 0..10_000 {
            let _ = root.child();
        }
        let len = lock(&root.node.links).children.len();
        assert!(len <= 32, "{len} dead links kept");
    }

    #[test]
    fn blocked_thread_wakes_on_cancel() {
        let t = CancelToken::new();
        let t2 = t.clone();
        let h = spawn("wait_deadline(None)", move || t2.wait_deadline(None));
        h.assert_blocked(Duration::from_millis(30));
        t.cancel();
        assert!(h.join(LIMIT), "woken by the cancel, reported cancelled");
    }

    #[test]
    fn wait_deadline_times_out_uncancelled() {
        let t = CancelToken::new();
        let start = Instant::now();
        assert!(!t.wait_timeout(Duration::from_millis(20)));
        assert!(
            start.elapsed() >= Duration::from_millis(20),
            "waited out the timeout"
        );
        assert!(!t.wait_deadline(Some(Instant::now())), "a passed deadline");
    }

    #[test]
    fn wait_timeout_is_true_once_cancelled() {
        let t = CancelToken::new();
        t.cancel();
        assert!(t.wait_timeout(Duration::ZERO));
        assert!(t.wait_timeout(Duration::from_secs(3600)));
        // Woken in the middle of a long timeout, through a parent.
        let root = CancelToken::new();
        let c = root.child();
        let h = spawn("wait_timeout(1h)", move || {
            c.wait_timeout(Duration::from_secs(3600))
        });
        h.assert_blocked(Duration::from_millis(30));
        root.cancel();
        assert!(h.join(LIMIT));
    }

    #[test]
    fn async_cancelled_resolves() {
        use futures::FutureExt;
        let t = CancelToken::new();
        let c = t.child();
        assert!(
            c.cancelled().now_or_never().is_none(),
            "pending while uncancelled"
        );
        let h = spawn("block_on(cancelled())", move || {
            futures::executor::block_on(c.cancelled());
            c.is_cancelled()
        });
        h.assert_blocked(Duration::from_millis(30));
        t.cancel();
        assert!(h.join(LIMIT), "resolved by the cancel");
        assert!(
            t.cancelled().now_or_never().is_some(),
            "ready once cancelled"
        );
    }

    #[test]
    fn same_as_is_identity_not_state() {
        let a = CancelToken::new();
        let b = CancelToken::new();
        assert!(a.same_as(&a.clone()));
        assert!(!a.same_as(&b), "two fresh tokens");
        assert!(!a.same_as(&a.child()), "a child is another token");
        a.cancel();
        b.cancel();
        assert!(!a.same_as(&b), "both cancelled, still two tokens");
    }

    #[test]
    fn group_members_and_token() {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let c = CancelToken::new();
        let g = CancelGroup::new([a.clone(), b.clone()]) | c.clone();
        let m = g.members();
        assert_eq!(m.len(), 3);
        assert!(
            m[0].same_as(&a) && m[1].same_as(&b) && m[2].same_as(&c),
            "in order"
        );
        assert!(!g.token().same_as(&a) && !g.token().is_cancelled());
        b.cancel();
        assert!(g.token().is_cancelled());
        assert!(!a.is_cancelled() && !c.is_cancelled());
    }

    #[test]
    fn group_cancel_leaves_members_untouched() {
        let a = CancelToken::new();
        let b = a.child();
        let g = a.clone() | b.clone();
        let fut = g.cancelled();
        g.cancel();
        assert!(g.is_cancelled() && g.token().is_cancelled());
        assert!(g.wait_deadline(Some(Instant::now())));
        assert!(!a.is_cancelled() && !b.is_cancelled(), "members untouched");
        within_async(LIMIT, "group future after group cancel", fut);
        // An empty group fires only by its own cancel.
        let empty = CancelGroup::new([]);
        empty.cancel();
        assert!(empty.is_cancelled());
    }

    #[test]
    fn group_wait_woken_by_a_member() {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let g = CancelGroup::new([a.clone(), b.clone()]);
        let g2 = g.clone();
        let h = spawn("group wait_deadline(None)", move || g2.wait_deadline(None));
        h.assert_blocked(Duration::from_millis(30));
        b.cancel();
        assert!(h.join(LIMIT), "woken by the second member");
        assert!(!a.is_cancelled());
        // The async form, through a member's ancestor.
        let root = CancelToken::new();
        let g = CancelToken::new() | root.child();
        let fut = g.cancelled();
        let h = spawn("block_on(group.cancelled())", move || {
            futures::executor::block_on(fut);
        });
        h.assert_blocked(Duration::from_millis(30));
        root.cancel();
        h.join(LIMIT);
    }

    #[test]
    fn hooks_run_once_and_unregister_on_drop() {
        let t = CancelToken::new();
        let n = Arc::new(AtomicUsize::new(0));
        let n1 = n.clone();
        let keep = t.on_cancel(move || {
            n1.fetch_add(1, Ordering::SeqCst);
        });
        let n2 = n.clone();
        drop(t.on_cancel(move || {
            n2.fetch_add(100, Ordering::SeqCst);
        }));
        t.cancel();
        t.cancel();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let n3 = n.clone();
        let _late = t.on_cancel(move || {
            n3.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 11);
        drop(keep);
    }

    #[test]
    fn group_is_or_of_members() {
        let a = CancelToken::new();
        let b = a.child();
        let pre = CancelToken::new();
        pre.cancel();
        assert!(CancelGroup::new([CancelToken::new(), pre]).is_cancelled());
        let g = a.clone() | CancelToken::new();
        assert!(!g.is_cancelled());
        let g2 = g.clone() | b.clone();
        a.cancel();
        assert!(g.is_cancelled() && g2.is_cancelled());
        let empty = CancelGroup::new([]);
        assert!(!empty.is_cancelled());
        assert!(!empty.wait_deadline(Some(Instant::now() + Duration::from_millis(5))));
    }

    #[test]
    fn debug_output_shows_the_state() {
        let t = CancelToken::new();
        let hook = t.on_cancel(|| {});
        let fut = t.cancelled();
        assert_eq!(format!("{t:?}"), "CancelToken { cancelled: false }");
        assert_eq!(format!("{fut:?}"), "Cancelled { cancelled: false }");
        assert!(format!("{hook:?}").starts_with("CancelHook { id: "));
        t.cancel();
        assert_eq!(format!("{t:?}"), "CancelToken { cancelled: true }");
        assert_eq!(format!("{fut:?}"), "Cancelled { cancelled: true }");
    }

    #[test]
    fn stress_concurrent_child_and_cancel() {
        // Children adopted while the parent is being cancelled must all end up cancelled.
        for _ in 0..200 {
            let root = CancelToken::new();
            let kids: Vec<_> = (0..4)
                .map(|_| {
                    let r = root.clone();
                    spawn("adopt 50 children", move || {
                        (0..50).map(|_| r.child()).collect::<Vec<_>>()
                    })
                })
                .collect();
            root.cancel();
            for h in kids {
                for c in h.join(LIMIT) {
                    assert!(c.is_cancelled());
                }
            }
        }
    }
}
