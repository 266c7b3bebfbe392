//! Building answers: the content types and bodies every route uses.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};

/// The old Express services sent `application/json; charset=utf-8`.
pub const JSON: &str = "application/json; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";

pub fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(TEXT)))
        .body(body)
}

/// `OPTIONS` on a route, answered as Express answered it by default:
/// 200, `Allow` and the body both the route's methods (`GET,HEAD` for a
/// `GET` route), as HTML. Old clients and probes that send `OPTIONS` keep
/// their 200; a path no route serves stays a 404.
pub fn options(allow: String) -> actix_web::Route {
    actix_web::web::route()
        .method(actix_web::http::Method::OPTIONS)
        .to(move || {
            let allow = allow.clone();
            async move {
                HttpResponse::Ok()
                    .insert_header((actix_web::http::header::ALLOW, allow.as_str()))
                    .insert_header((
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ))
                    .body(allow)
            }
        })
}

pub fn json<B: actix_web::body::MessageBody + 'static>(
    status: StatusCode,
    body: B,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON)))
        .body(body)
}
