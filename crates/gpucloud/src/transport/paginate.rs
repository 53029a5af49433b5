//! Pagination as a `Stream`, over the three page shapes of the two providers.
//!
//! - PrimeIntellect offset/limit with `{totalCount, offset, limit, data}` (pods, disks, SSH keys,
//!   history);
//! - PrimeIntellect 1-based `page`/`page_size` with `{items, totalCount}` (availability);
//! - RunPod v2 cursors, `{..., pagination: {nextCursor, hasNextPage}}` (pods, templates,
//!   endpoints, releases): see [`cursor_pages`].
//!
//! The first two are "page number `n` of size `s`" underneath; [`PageShape`] only says how `n` is put on
//! the wire. A listing stops at the first of: `totalCount` reached, a short or empty page, or
//! [`Pagination::max_pages`] — the last one is an error, not a silent partial result (a server
//! that ignores `offset`, as mock servers do, would otherwise loop forever). A failed page is
//! yielded as an error and ends the stream.
//!
//! With [`Pagination::prefetch`] > 1, up to that many pages are in flight at once, still yielded
//! in order; memory stays bounded by `prefetch` pages.

use crate::model::Provider;
use crate::model::error::Error;
use futures::stream::{self, BoxStream, FuturesOrdered, StreamExt};
use std::future::Future;

/// How a page is addressed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageShape {
    /// `offset` = index × size, `limit` = size.
    OffsetLimit,
    /// `page` = index + 1 (1-based), `page_size` = size.
    PageNumber,
}

/// Which page to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 0-based page index.
    pub index: u64,
    /// Items per page.
    pub size: u64,
}

impl PageRequest {
    /// The `offset` query value.
    pub fn offset(&self) -> u64 {
        self.index * self.size
    }

    /// The 1-based `page` query value.
    pub fn page_number(&self) -> u64 {
        self.index + 1
    }
}

/// One page as the server returned it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items (possibly fewer than the server sent, when the caller dropped some it cannot
    /// use; see [`Page::served`]).
    pub items: Vec<T>,
    /// The server's `totalCount`, when it sent one.
    pub total: Option<u64>,
    /// How many items the server sent on this page. Paging decisions (a short page ends the
    /// listing) read this, not `items.len()`: a full page of which one item was dropped is not
    /// the last page.
    pub served: usize,
}

impl<T> Page<T> {
    /// A page of exactly what the server sent.
    pub fn new(items: Vec<T>, total: Option<u64>) -> Self {
        let served = items.len();
        Self { items, total, served }
    }
}

/// Pagination settings.
#[derive(Debug, Clone, Copy)]
pub struct Pagination {
    /// Items per page (PrimeIntellect allows up to 200 for disks, 100 for pods; RunPod's `limit`
    /// is 1–1000, see [`Pagination::runpod`]).
    pub page_size: u64,
    /// Hard bound on pages read; reaching it is an error.
    pub max_pages: u64,
    /// Pages fetched concurrently (1 = one after another).
    pub prefetch: usize,
}

impl Default for Pagination {
    fn default() -> Self {
        Self { page_size: 100, max_pages: 1_000, prefetch: 1 }
    }
}

impl Pagination {
    /// RunPod's default: pages of 1,000 (the document's maximum `limit`, and what an omitted
    /// `limit` means), at most 1,000 pages. Cursor pages are read one after another, since each
    /// needs the cursor of the one before, so `prefetch` does not apply.
    pub fn runpod() -> Self {
        Self { page_size: RUNPOD_MAX_LIMIT, max_pages: 1_000, prefetch: 1 }
    }
}

/// RunPod v2's largest page (`PaginationLimit`: "Page size, 1–1000").
pub const RUNPOD_MAX_LIMIT: u64 = 1000;

/// One page of a cursor-paginated list, as the server returned it.
#[derive(Debug, Clone)]
pub struct CursorPage<T> {
    /// The items.
    pub items: Vec<T>,
    /// `pagination.nextCursor`: what to send as `cursor` for the next page.
    pub next_cursor: Option<String>,
    /// `pagination.hasNextPage`.
    pub has_next_page: bool,
}

/// A stream of the pages of a cursor-paginated list (RunPod v2). `fetch` gets `None` for the
/// first page, then each page's `nextCursor`, verbatim.
///
/// The listing follows `nextCursor` while `hasNextPage` is true and never stops on item
/// counts (RunPod: "a page may hold fewer than `limit` pods — follow `pagination.nextCursor`
/// until `hasNextPage` is false rather than counting items"; an empty page with more to come is
/// read past). It ends with [`Error::Pagination`], never a silent partial list, when the server
/// says there is more but sends no cursor, sends a cursor it already sent (it would loop), or
/// the listing passes `max_pages`.
pub fn cursor_pages<T, F, Fut>(
    provider: Provider,
    operation: &'static str,
    max_pages: u64,
    fetch: F,
) -> BoxStream<'static, Result<Page<T>, Error>>
where
    T: Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CursorPage<T>, Error>> + Send + 'static,
{
    struct State<F> {
        fetch: F,
        cursor: Option<String>,
        seen: std::collections::HashSet<String>,
        pages: u64,
        items: u64,
        done: bool,
    }
    let max_pages = max_pages.max(1);
    let state = State { fetch, cursor: None, seen: Default::default(), pages: 0, items: 0, done: false };
    stream::unfold(state, move |mut state| async move {
        if state.done {
            return None;
        }
        let result = (state.fetch)(state.cursor.take()).await;
        state.pages += 1;
        let item = match result {
            Err(e) => {
                state.done = true;
                Err(e)
            }
            Ok(page) => {
                state.items += page.items.len() as u64;
                let read = state.items;
                let problem = if !page.has_next_page {
                    state.done = true;
                    None
                } else {
                    match page.next_cursor.filter(|c| !c.is_empty()) {
                        None => Some(format!("hasNextPage is true but no nextCursor was sent ({read} items read)")),
                        Some(cursor) if !state.seen.insert(cursor.clone()) => {
                            Some(format!("the server sent cursor {cursor:?} a second time ({read} items read)"))
                        }
                        Some(_) if state.pages >= max_pages => {
                            Some(format!("more pages remain after the {max_pages}-page bound ({read} items read)"))
                        }
                        Some(cursor) => {
                            state.cursor = Some(cursor);
                            None
                        }
                    }
                };
                match problem {
                    Some(message) => {
                        state.done = true;
                        Err(Error::Pagination { provider, operation, pages: state.pages, message })
                    }
                    None => Ok(Page::new(page.items, None)),
                }
            }
        };
        Some((item, state))
    })
    .boxed()
}

/// A stream of pages. `fetch` gets each [`PageRequest`] and returns that page.
///
/// No request is made past the end: with `prefetch` 1 a listing makes exactly as many requests
/// as it has pages, and once `totalCount` is known no page beyond it is scheduled.
pub fn pages<T, F, Fut>(
    provider: Provider,
    operation: &'static str,
    settings: Pagination,
    fetch: F,
) -> BoxStream<'static, Result<Page<T>, Error>>
where
    T: Send + 'static,
    F: Fn(PageRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Page<T>, Error>> + Send + 'static,
{
    struct State<F, Fut: Future> {
        fetch: F,
        in_flight: FuturesOrdered<Fut>,
        next_index: u64,
        /// Pages that exist, once a `totalCount` says so.
        known_pages: Option<u64>,
        seen: u64,
        done: bool,
    }
    let size = settings.page_size.max(1);
    let max_pages = settings.max_pages.max(1);
    let prefetch = settings.prefetch.max(1);
    let state =
        State { fetch, in_flight: FuturesOrdered::new(), next_index: 0, known_pages: None, seen: 0, done: false };
    stream::unfold(state, move |mut state| async move {
        if state.done {
            return None;
        }
        // Keep up to `prefetch` requests in flight, never past a known end or the page bound.
        while state.in_flight.len() < prefetch
            && state.next_index < max_pages
            && state.known_pages.is_none_or(|n| state.next_index < n)
        {
            state.in_flight.push_back((state.fetch)(PageRequest { index: state.next_index, size }));
            state.next_index += 1;
        }
        let index = state.next_index - state.in_flight.len() as u64;
        let result = match state.in_flight.next().await {
            Some(result) => result,
            None => return None,
        };
        let item = match result {
            Err(e) => {
                state.done = true;
                Err(e)
            }
            Ok(page) => {
                state.seen += page.served as u64;
                if let Some(total) = page.total {
                    state.known_pages = Some(total.div_ceil(size).max(1));
                }
                let short = (page.served as u64) < size;
                let total_reached = page.total.is_some_and(|t| state.seen >= t);
                if short || total_reached {
                    state.done = true;
                    Ok(page)
                } else if index + 1 >= max_pages {
                    state.done = true;
                    Err(Error::Pagination {
                        provider,
                        operation,
                        pages: index + 1,
                        message: format!(
                            "more pages remain after the {max_pages}-page bound ({} items read)",
                            state.seen
                        ),
                    })
                } else {
                    Ok(page)
                }
            }
        };
        if state.done {
            // Pages fetched ahead past the end are dropped unread.
            state.in_flight = FuturesOrdered::new();
        }
        Some((item, state))
    })
    .boxed()
}

/// The items of a page stream, in order; an error ends the stream.
pub fn items<T: Send + 'static>(
    pages: BoxStream<'static, Result<Page<T>, Error>>,
) -> BoxStream<'static, Result<T, Error>> {
    pages
        .flat_map(|page| match page {
            Ok(page) => stream::iter(page.items.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => stream::iter(vec![Err(e)]),
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn server(
        total: u64,
        honest_total: bool,
        fail_at: Option<u64>,
    ) -> impl Fn(PageRequest) -> futures::future::Ready<Result<Page<u64>, Error>> {
        move |req: PageRequest| {
            if fail_at == Some(req.index) {
                return futures::future::ready(Err(Error::invalid("page", "boom")));
            }
            let items: Vec<u64> = (req.offset()..(req.offset() + req.size).min(total)).collect();
            futures::future::ready(Ok(Page::new(items, honest_total.then_some(total))))
        }
    }

    async fn collect(settings: Pagination, total: u64, honest: bool, fail_at: Option<u64>) -> Result<Vec<u64>, Error> {
        items(pages(Provider::PrimeIntellect, "list", settings, server(total, honest, fail_at))).try_collect().await
    }

    #[tokio::test]
    async fn reads_every_page_in_order() {
        for prefetch in [1, 4] {
            let settings = Pagination { page_size: 10, max_pages: 100, prefetch };
            assert_eq!(collect(settings, 35, true, None).await.unwrap(), (0..35).collect::<Vec<_>>());
            assert_eq!(collect(settings, 30, false, None).await.unwrap(), (0..30).collect::<Vec<_>>());
            assert_eq!(collect(settings, 0, true, None).await.unwrap(), Vec::<u64>::new());
        }
    }

    #[tokio::test]
    async fn no_request_is_made_past_the_end() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&calls);
        let fetch = move |req: PageRequest| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            server(25, true, None)(req)
        };
        let settings = Pagination { page_size: 10, max_pages: 100, prefetch: 1 };
        let all: Vec<u64> =
            items(pages(Provider::PrimeIntellect, "list", settings, fetch)).try_collect().await.unwrap();
        assert_eq!(all.len(), 25);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_page_is_an_error_not_a_partial_list() {
        let settings = Pagination { page_size: 10, max_pages: 100, prefetch: 3 };
        assert!(collect(settings, 35, true, Some(1)).await.is_err());
    }

    #[tokio::test]
    async fn a_server_that_ignores_offsets_hits_the_page_bound() {
        let repeat = |_req: PageRequest| futures::future::ready(Ok(Page::new(vec![1u64; 10], None)));
        let settings = Pagination { page_size: 10, max_pages: 5, prefetch: 2 };
        let result: Result<Vec<u64>, Error> =
            items(pages(Provider::PrimeIntellect, "list", settings, repeat)).try_collect().await;
        assert!(matches!(result, Err(Error::Pagination { pages: 5, .. })));
        // A stated total of 0 beside a full page (Prism's mocks) stops after that page.
        let zero = |_req: PageRequest| futures::future::ready(Ok(Page::new(vec![1u64; 10], Some(0))));
        let result: Vec<u64> =
            items(pages(Provider::PrimeIntellect, "list", settings, zero)).try_collect().await.unwrap();
        assert_eq!(result.len(), 10);
    }

    /// A cursor server over `0..total`, `limit` per page; `hook` may rewrite each page.
    fn cursor_server(
        total: u64,
        limit: u64,
        hook: fn(u64, CursorPage<u64>) -> CursorPage<u64>,
    ) -> impl Fn(Option<String>) -> futures::future::Ready<Result<CursorPage<u64>, Error>> {
        move |cursor: Option<String>| {
            let start: u64 = cursor.map(|c| c.trim_start_matches('c').parse().unwrap()).unwrap_or(0);
            let end = (start + limit).min(total);
            let has_next_page = end < total;
            let page = CursorPage {
                items: (start..end).collect(),
                next_cursor: has_next_page.then(|| format!("c{end}")),
                has_next_page,
            };
            futures::future::ready(Ok(hook(start, page)))
        }
    }

    async fn collect_cursor(
        max_pages: u64,
        fetch: impl Fn(Option<String>) -> futures::future::Ready<Result<CursorPage<u64>, Error>> + Send + Sync + 'static,
    ) -> Result<Vec<u64>, Error> {
        items(cursor_pages(Provider::RunPod, "list_pods", max_pages, fetch)).try_collect().await
    }

    #[tokio::test]
    async fn cursor_pages_follow_next_cursor_to_the_end() {
        assert_eq!(collect_cursor(100, cursor_server(25, 10, |_, p| p)).await.unwrap(), (0..25).collect::<Vec<_>>());
        assert_eq!(collect_cursor(100, cursor_server(0, 10, |_, p| p)).await.unwrap(), Vec::<u64>::new());
    }

    #[tokio::test]
    async fn cursor_pages_never_stop_on_item_counts() {
        // Pages cut short (or emptied) after they are cut, as RunPod does with cluster pods.
        let thinned = |start, mut page: CursorPage<u64>| {
            page.items.retain(|i| i % 3 == 0 && start != 10);
            page
        };
        let all = collect_cursor(100, cursor_server(40, 10, thinned)).await.unwrap();
        assert_eq!(all, (0..40).filter(|i| i % 3 == 0 && !(10..20).contains(i)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_repeated_or_missing_cursor_or_the_page_bound_is_an_error() {
        let repeats = |_, mut page: CursorPage<u64>| {
            page.next_cursor = Some("c10".into());
            page
        };
        let error = collect_cursor(100, cursor_server(50, 10, repeats)).await.unwrap_err();
        assert!(
            matches!(&error, Error::Pagination { pages: 2, message, .. } if message.contains("second time")),
            "{error}"
        );
        let missing = |_, mut page: CursorPage<u64>| {
            page.next_cursor = None;
            page
        };
        let error = collect_cursor(100, cursor_server(50, 10, missing)).await.unwrap_err();
        assert!(
            matches!(&error, Error::Pagination { pages: 1, message, .. } if message.contains("no nextCursor")),
            "{error}"
        );
        let error = collect_cursor(3, cursor_server(50, 10, |_, p| p)).await.unwrap_err();
        assert!(matches!(error, Error::Pagination { pages: 3, .. }), "{error}");
        // Exactly at the bound is complete, not an error.
        assert_eq!(collect_cursor(5, cursor_server(50, 10, |_, p| p)).await.unwrap().len(), 50);
    }
}
