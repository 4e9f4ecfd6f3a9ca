//! The request a thread is handling: what its log lines carry (`rid`, and `uid` once the app
//! sets it), and whether they may wait for the writer thread.
//!
//! [`RequestSummary`](crate::logging::RequestSummary) makes a [`RequestContext`] for each
//! request and makes it current on the worker while the request's future is polled
//! ([`InRequest`]); [`MozLogLayer`](crate::logging::MozLogLayer) adds its fields to every line
//! logged meanwhile, and [`BatchWriter`](crate::logging::BatchWriter) lets those lines wait.
//! A thread-local costs a few instructions a poll; a `tracing` span per request cost about
//! 3,500 instructions (`BENCHMARKS.md`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use actix_web::dev::RequestHead;
use actix_web::HttpRequest;
use futures_util::future::Either;

use crate::logging::RequestId;

/// One request's id, and the id of its user once the app has set it ([`set_uid`]).
///
/// [`set_uid`]: crate::logging::set_uid
#[derive(Debug)]
pub(crate) struct RequestContext {
    rid: RequestId,
    /// Whether `uid` was ever set: most requests have none, and their lines look up this flag
    /// instead of taking the lock.
    has_uid: AtomicBool,
    uid: Mutex<Option<Arc<str>>>,
    /// The address of the request's head ([`RequestContext::of`]).
    head: usize,
}

impl RequestContext {
    /// The context of the request whose head is `head`, with the id `rid`.
    pub(crate) fn new(rid: RequestId, head: &RequestHead) -> Arc<Self> {
        Arc::new(RequestContext {
            rid,
            has_uid: AtomicBool::new(false),
            uid: Mutex::new(None),
            head: address(head),
        })
    }

    pub(crate) fn rid(&self) -> &RequestId {
        &self.rid
    }

    pub(crate) fn uid(&self) -> Option<Arc<str>> {
        if !self.has_uid.load(Ordering::Acquire) {
            return None;
        }
        self.uid
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_uid(&self, uid: &str) {
        *self.uid.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::from(uid));
        self.has_uid.store(true, Ordering::Release);
    }

    /// The context of `req`, when `req` is the request this thread is handling (the one
    /// [`RequestSummary`](crate::logging::RequestSummary) made current, or a task's that took
    /// it along).
    ///
    /// Found by the address of the request's head, which stays put while the request lives,
    /// instead of in the request's extensions: a first extension costs each request a map.
    pub(crate) fn of(req: &HttpRequest) -> Option<Arc<RequestContext>> {
        let head = address(req.head());
        with_current(|context| context.filter(|c| c.head == head).cloned())
    }

    /// Makes this the current request of the thread until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Entered {
        Entered(CURRENT.with(|current| current.replace(Some(Arc::clone(self)))))
    }
}

fn address(head: &RequestHead) -> usize {
    std::ptr::from_ref(head).addr()
}

thread_local! {
    /// The request this thread is handling right now: polling its future, or logging its
    /// summary.
    static CURRENT: RefCell<Option<Arc<RequestContext>>> = const { RefCell::new(None) };
}

/// Restores the thread's previous request when dropped.
#[must_use = "the context is current only while the guard lives"]
pub(crate) struct Entered(Option<Arc<RequestContext>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        // `try_with`: a guard dropped while the thread is torn down has nothing to restore.
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}

/// Runs `f` with the request this thread is handling, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<RequestContext>>) -> R) -> R {
    let mut f = Some(f);
    let done = CURRENT.try_with(|current| {
        current
            .try_borrow()
            .ok()
            .map(|context| (f.take().expect("called once"))(context.as_ref()))
    });
    match done {
        Ok(Some(result)) => result,
        _ => (f.take().expect("not called yet"))(None),
    }
}

/// Whether this thread is handling a request right now.
pub(crate) fn in_request() -> bool {
    with_current(|context| context.is_some())
}

pin_project_lite::pin_project! {
    /// A future polled with its request current.
    pub(crate) struct InRequest<F> {
        #[pin]
        future: F,
        context: Arc<RequestContext>,
    }
}

impl<F> InRequest<F> {
    pub(crate) fn new(future: F, context: Arc<RequestContext>) -> Self {
        InRequest { future, context }
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.context.enter();
        this.future.poll(cx)
    }
}

/// Carries the request being handled into `future`: the lines it logs carry the request's
/// `rid` (and `uid`) wherever it runs, as lines logged by the request's own future do.
///
/// Lines get those fields from the request the worker is polling, so a task a handler spawns
/// (`actix_web::rt::spawn`, `tokio::spawn`) has none unless it is wrapped, as a task is wrapped
/// with `.in_current_span()` for `tracing`'s spans. Outside a request `future` runs unchanged.
///
/// ```
/// use dockerflow::logging;
///
/// async fn handler() -> &'static str {
///     actix_web::rt::spawn(logging::in_current_request(async {
///         tracing::info!("sending the receipt"); // carries Fields.rid
///     }));
///     "ok"
/// }
/// ```
pub fn in_current_request<F: Future>(future: F) -> impl Future<Output = F::Output> {
    match with_current(|context| context.cloned()) {
        Some(context) => Either::Left(InRequest::new(future, context)),
        None => Either::Right(future),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_is_current_while_entered_and_the_previous_one_comes_back() {
        assert!(!in_request());
        let outer = RequestContext::new(RequestId::random(), &RequestHead::default());
        let inner = RequestContext::new(RequestId::random(), &RequestHead::default());
        {
            let _outer = outer.enter();
            assert_eq!(
                with_current(|c| c.map(|c| c.rid().clone())),
                Some(outer.rid().clone())
            );
            {
                let _inner = inner.enter();
                assert_eq!(
                    with_current(|c| c.map(|c| c.rid().clone())),
                    Some(inner.rid().clone())
                );
            }
            assert_eq!(
                with_current(|c| c.map(|c| c.rid().clone())),
                Some(outer.rid().clone())
            );
        }
        assert!(!in_request());
    }

    #[test]
    fn a_wrapped_future_takes_its_request_along() {
        let context = RequestContext::new(RequestId::random(), &RequestHead::default());
        let probe = || async { with_current(|c| c.map(|c| c.rid().clone())) };
        let wrapped = {
            let _entered = context.enter();
            in_current_request(probe())
        };
        let unwrapped = in_current_request(probe());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(wrapped), Some(context.rid().clone()));
        assert_eq!(rt.block_on(unwrapped), None);
    }

    #[test]
    fn the_uid_set_last_wins() {
        let context = RequestContext::new(RequestId::random(), &RequestHead::default());
        assert_eq!(context.uid(), None);
        context.set_uid("ana");
        context.set_uid("bo");
        assert_eq!(context.uid().as_deref(), Some("bo"));
    }
}
