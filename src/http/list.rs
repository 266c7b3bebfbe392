//! The list query both tiers take: `?limit=N&after=ID`.

use serde::Deserialize;

use super::error::ApiError;
use crate::domain::DocId;

/// Documents on a page when the client does not say.
pub const LIST_DEFAULT: u32 = 100;

#[derive(Deserialize)]
struct RawListQuery {
    limit: Option<String>,
    after: Option<String>,
}

/// `?limit=N&after=ID`, checked.
#[derive(Debug)]
pub struct ListQuery {
    pub limit: u32,
    pub after: Option<DocId>,
}

impl ListQuery {
    /// The query of one request; `limit` may be 1 to `max`.
    pub fn parse(query: &str, max: u32) -> Result<Self, ApiError> {
        let raw = actix_web::web::Query::<RawListQuery>::from_query(query)
            .map_err(|_| ApiError::bad_request("malformed query string"))?
            .into_inner();
        let limit = match raw.limit.as_deref() {
            None => LIST_DEFAULT.min(max),
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=max).contains(l))
                .ok_or_else(|| {
                    ApiError::with_text(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        format!("limit must be an integer from 1 to {max}"),
                    )
                })?,
        };
        let after = match raw.after.as_deref() {
            None | Some("") => None,
            Some(a) => Some(DocId::parse(a).ok_or(ApiError::bad_request(
                "malformed after: expected a 24-hex id",
            ))?),
        };
        Ok(ListQuery { limit, after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_against_the_tiers_own_maximum() {
        assert_eq!(ListQuery::parse("", 1000).unwrap().limit, LIST_DEFAULT);
        assert_eq!(ListQuery::parse("limit=1000", 1000).unwrap().limit, 1000);
        let e = ListQuery::parse("limit=1001", 1000).unwrap_err();
        assert_eq!(e.message(), "limit must be an integer from 1 to 1000");
        let e = ListQuery::parse("limit=0", 1000).unwrap_err();
        assert_eq!(e.message(), "limit must be an integer from 1 to 1000");
        let e = ListQuery::parse("after=xyz", 1000).unwrap_err();
        assert_eq!(e.message(), "malformed after: expected a 24-hex id");
        let page = ListQuery::parse("after=5F1D7A3B9C0E4A2B8D6F1E3C&limit=2", 1000).unwrap();
        assert_eq!(page.after.unwrap().as_str(), "5f1d7a3b9c0e4a2b8d6f1e3c");
    }
}
