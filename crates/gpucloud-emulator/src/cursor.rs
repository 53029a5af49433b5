//! RunPod v2's cursor pagination, as the document (953afcc) describes it.
//!
//! - `limit`: "Page size, 1–1000. Defaults to 1000 when omitted." (`PaginationLimit`); outside
//!   that range, or not an integer, the request breaks the schema: 422.
//! - `cursor`: "Opaque resume cursor — pass the previous response's `pagination.nextCursor`
//!   through verbatim ... A cursor is only valid for the operation and parameters that issued
//!   it; a malformed or foreign cursor is rejected with 422." (`PaginationCursor`)
//! - every list carries `pagination {nextCursor, hasNextPage}` (`Pagination`), `nextCursor`
//!   null on the last page; pods are "cursor-paginated newest-first".
//!
//! A cursor here is keyset-based: it names the last item served (by its creation sequence), so
//! pods created while a client pages do not shift later pages, and it is bound to the operation
//! and the parameters (other than `limit`) that issued it. It is hex, opaque to clients.

/// What `limit` means when omitted, and its bounds.
pub(crate) const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 1000;

/// A page request read from the query, or the 422 detail explaining why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageQuery {
    pub limit: usize,
    /// Serve only items whose sequence is below this (the previous page's last item).
    pub before: Option<u64>,
}

/// `scope` names the operation and the parameters that shape its result (e.g.
/// `"listPods?includeClusterPods=false"`): a cursor issued under another scope is foreign.
pub(crate) fn parse(pairs: &[(String, String)], scope: &str) -> Result<PageQuery, String> {
    let value = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let limit = match value("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(format!("$.limit: {text:?} is not an integer in 1..=1000")),
        },
    };
    let before = match value("cursor") {
        None => None,
        Some("") => return Err("$.cursor: must not be empty (minLength 1)".into()),
        Some(cursor) => Some(decode(cursor, scope)?),
    };
    Ok(PageQuery { limit, before })
}

fn encode(scope: &str, sequence: u64) -> String {
    format!("{scope}|{sequence}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode(cursor: &str, scope: &str) -> Result<u64, String> {
    let malformed = || format!("$.cursor: {cursor:?} is not a cursor this API issued");
    if !cursor.len().is_multiple_of(2) {
        return Err(malformed());
    }
    let bytes: Option<Vec<u8>> =
        (0..cursor.len()).step_by(2).map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok()).collect();
    let text = bytes.and_then(|b| String::from_utf8(b).ok()).ok_or_else(malformed)?;
    let (issued_for, sequence) = text.rsplit_once('|').ok_or_else(malformed)?;
    if issued_for != scope {
        return Err(format!("$.cursor: issued for another operation or other parameters ({issued_for:?})"));
    }
    sequence.parse().map_err(|_| malformed())
}

/// One page of `items` (each with its creation sequence), newest first, and its `pagination`.
pub(crate) fn page<T>(mut items: Vec<(u64, T)>, query: &PageQuery, scope: &str) -> (Vec<T>, serde_json::Value) {
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    items.retain(|(sequence, _)| query.before.is_none_or(|before| *sequence < before));
    let has_next = items.len() > query.limit;
    items.truncate(query.limit);
    let next_cursor = match (has_next, items.last()) {
        (true, Some((sequence, _))) => serde_json::json!(encode(scope, *sequence)),
        _ => serde_json::Value::Null,
    };
    let pagination = serde_json::json!({"nextCursor": next_cursor, "hasNextPage": has_next});
    (items.into_iter().map(|(_, item)| item).collect(), pagination)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pages_newest_first_until_the_end() {
        let items: Vec<(u64, u64)> = (0..5).map(|i| (i, i)).collect();
        let mut query = parse(&pairs(&[("limit", "2")]), "s").unwrap();
        let mut seen = Vec::new();
        loop {
            let (page, pagination) = page(items.clone(), &query, "s");
            seen.extend(page);
            match pagination["nextCursor"].as_str() {
                Some(cursor) => {
                    assert_eq!(pagination["hasNextPage"], true);
                    query = parse(&pairs(&[("limit", "2"), ("cursor", cursor)]), "s").unwrap();
                }
                None => {
                    assert_eq!(pagination["hasNextPage"], false);
                    break;
                }
            }
        }
        assert_eq!(seen, vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn refuses_bad_limits_and_malformed_or_foreign_cursors() {
        for limit in ["0", "1001", "-1", "ten", "1.5"] {
            assert!(parse(&pairs(&[("limit", limit)]), "s").is_err(), "{limit}");
        }
        assert_eq!(parse(&[], "s").unwrap().limit, 1000);
        for cursor in ["", "zz", "abc", "Y3JlYXRlZEF0PTE3NDg3ODA0MDA"] {
            assert!(parse(&pairs(&[("cursor", cursor)]), "s").is_err(), "{cursor}");
        }
        let foreign = encode("listTemplates", 3);
        assert!(parse(&pairs(&[("cursor", &foreign)]), "listPods").unwrap_err().contains("another operation"));
        assert_eq!(parse(&pairs(&[("cursor", &encode("listPods", 3))]), "listPods").unwrap().before, Some(3));
    }
}
