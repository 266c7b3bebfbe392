//! The public tier: the customers API, in front of the internal tier.
//!
//! `state` holds what every handler shares (the client for the internal
//! tier, diagnostics, the mapping of the internal tier's failures to the
//! public API's answers); `customers` the single-customer routes and the
//! list; `batch` the batch import.

pub mod batch;
pub mod customers;
pub mod state;

use actix_web::http::Method;
use actix_web::web;

use super::batch::BatchLimits;
use super::routes::Routes;
pub use state::PublicState;

/// `limits` is shared by every worker of the tier; the batch route gets its
/// own body size limit, the other routes keep the app-wide one.
pub fn routes(routes: &mut Routes, limits: &BatchLimits) {
    routes
        .resource(
            "/api/customers/batch",
            // As an id, "batch" is malformed: GET and DELETE answer the 400
            // the old service gave, not a 405 from this resource.
            &[
                (Method::POST, "/api/customers/batch"),
                (Method::GET, "/api/customers/{id}"),
                (Method::DELETE, "/api/customers/{id}"),
            ],
            web::resource("/api/customers/batch")
                .app_data(web::PayloadConfig::new(limits.max_body_bytes))
                .app_data(web::Data::new(limits.clone()))
                .route(web::post().to(batch::create_batch))
                .route(web::get().to(customers::read))
                .route(web::delete().to(customers::delete)),
        )
        .add(Method::GET, "/api/health", customers::health)
        .add(Method::POST, "/api/customers", customers::create)
        .add(Method::GET, "/api/customers", customers::list)
        .add(Method::GET, "/api/customers/{id}", customers::read)
        .add(Method::DELETE, "/api/customers/{id}", customers::delete);
}
