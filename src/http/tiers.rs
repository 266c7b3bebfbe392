//! Every route of each tier in one call (its own, the liveness and version
//! routes, the OpenAPI document and Swagger UI), and the check that the
//! document describes exactly the routes served.

use actix_web::web;

use super::batch::BatchLimits;
use super::routes::{Route, Routes};
use super::{common, internal, openapi, public};
use crate::settings::Mode;

/// The public tier's routes; returns the documented ones.
pub fn public(
    cfg: &mut web::ServiceConfig,
    limits: &BatchLimits,
    mode: Mode,
    document: String,
) -> Vec<Route> {
    register(cfg, public::routes, limits, mode, document)
}

/// The internal tier's routes; returns the documented ones.
pub fn internal(
    cfg: &mut web::ServiceConfig,
    limits: &BatchLimits,
    mode: Mode,
    document: String,
) -> Vec<Route> {
    register(cfg, internal::routes, limits, mode, document)
}

fn register(
    cfg: &mut web::ServiceConfig,
    own: fn(&mut Routes, &BatchLimits),
    limits: &BatchLimits,
    mode: Mode,
    document: String,
) -> Vec<Route> {
    let mut routes = Routes::new(cfg);
    own(&mut routes, limits);
    common::routes(&mut routes, mode);
    openapi::routes(&mut routes, document);
    routes.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::settings::BatchSettings;

    /// (method, path) of every operation in a tier's document.
    fn documented(tier: openapi::Tier) -> BTreeSet<(String, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(&openapi::document(tier).unwrap()).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if method != "parameters" {
                    out.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// (method, path) of every route a tier registers.
    fn served(
        register: fn(&mut web::ServiceConfig, &BatchLimits, Mode, String) -> Vec<Route>,
    ) -> BTreeSet<(String, String)> {
        let limits = BatchLimits::new(&BatchSettings::default());
        let mut table = Vec::new();
        let _app = actix_web::App::new().configure(|cfg| {
            table = register(cfg, &limits, Mode::All, String::new());
        });
        table
            .into_iter()
            .map(|r| (r.method.to_string(), r.path.to_owned()))
            .collect()
    }

    #[test]
    fn the_public_document_lists_every_route_served_and_no_other() {
        assert_eq!(served(public), documented(openapi::Tier::Public));
    }

    #[test]
    fn the_internal_document_lists_every_route_served_and_no_other() {
        assert_eq!(served(internal), documented(openapi::Tier::Internal));
    }
}
