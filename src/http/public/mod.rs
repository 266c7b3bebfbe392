//! The public tier: the customers API, in front of the internal tier.
//!
//! `state` holds what every handler shares (the client for the internal
//! tier, diagnostics, the mapping of the internal tier's failures to the
//! public API's answers); `customers` the single-customer routes and the
//! list; `batch` the batch import.

pub mod batch;
pub mod customers;
pub mod state;

use actix_web::web;

use super::batch::BatchLimits;
use super::response::options;
pub use state::PublicState;

/// `limits` is shared by every worker of the tier; the batch route gets its
/// own body size limit, the other routes keep the app-wide one.
pub fn routes(cfg: &mut web::ServiceConfig, limits: &BatchLimits) {
    cfg.service(
        web::resource("/api/customers/batch")
            .app_data(web::PayloadConfig::new(limits.max_body_bytes))
            .app_data(web::Data::new(limits.clone()))
            .route(web::post().to(batch::create_batch))
            // As an id, "batch" is malformed: GET and DELETE answer the 400
            // the old service gave, not a 405 from this resource.
            .route(web::get().to(customers::read))
            .route(web::delete().to(customers::delete))
            .route(options("POST,GET,HEAD,DELETE")),
    )
    .route("/api/health", web::get().to(customers::health))
    .route("/api/health", options("GET,HEAD"))
    .route("/api/customers", web::post().to(customers::create))
    .route("/api/customers", web::get().to(customers::list))
    .route("/api/customers", options("POST,GET,HEAD"))
    .route("/api/customers/{id}", web::get().to(customers::read))
    .route("/api/customers/{id}", web::delete().to(customers::delete))
    .route("/api/customers/{id}", options("GET,HEAD,DELETE"));
}
