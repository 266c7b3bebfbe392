//! Registering a tier's routes through one place that remembers them: the
//! route table is what the `OPTIONS` answers list, and what the OpenAPI
//! document is checked against (`openapi.rs`).

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Resource, Responder, web};

use super::response::options;

/// One route of a tier's API: a method on a path pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
}

/// The routes registered so far, and where they go.
pub struct Routes<'c> {
    cfg: &'c mut web::ServiceConfig,
    /// Paths in the order first registered, with their methods.
    paths: Vec<(&'static str, Vec<Method>)>,
    /// Paths whose resource answers `OPTIONS` itself.
    own_options: Vec<&'static str>,
    documented: Vec<Route>,
}

impl<'c> Routes<'c> {
    pub fn new(cfg: &'c mut web::ServiceConfig) -> Self {
        Routes {
            cfg,
            paths: Vec::new(),
            own_options: Vec::new(),
            documented: Vec::new(),
        }
    }

    fn note(&mut self, method: &Method, path: &'static str) {
        match self.paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => methods.push(method.clone()),
            None => self.paths.push((path, vec![method.clone()])),
        }
    }

    /// `method` on `path` is answered by `handler`. Each is a resource of
    /// its own, as `ServiceConfig::route` makes it, so a method no route
    /// serves falls through to the tier's 404, as in the old services.
    pub fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.cfg
            .route(path, web::method(method.clone()).to(handler));
        self.note(&method, path);
        self.documented.push(Route { method, path });
        self
    }

    /// A path served by one resource with its own settings (`resource`
    /// holds the routes of `methods`, each documented as the route its
    /// pair names, e.g. `GET /api/customers/batch` as the id route it is).
    /// Such a resource answers a method it has no route for with 405, and
    /// `OPTIONS` itself.
    pub fn resource(
        &mut self,
        path: &'static str,
        methods: &[(Method, &'static str)],
        resource: Resource,
    ) -> &mut Self {
        let allow = allow(methods.iter().map(|(m, _)| m));
        self.cfg.service(resource.route(options(allow)));
        self.own_options.push(path);
        for (method, documented_as) in methods {
            self.note(method, path);
            self.documented.push(Route {
                method: method.clone(),
                path: documented_as,
            });
        }
        self
    }

    /// A file of the documentation itself (Swagger UI): served, not part
    /// of the API the document describes.
    pub fn asset<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.cfg.route(path, web::get().to(handler));
        self.note(&Method::GET, path);
        self
    }

    /// Adds `OPTIONS` to every path (`Allow` lists its methods, `HEAD` with
    /// `GET`) and returns the documented routes.
    pub fn finish(self) -> Vec<Route> {
        for (path, methods) in &self.paths {
            if !self.own_options.contains(path) {
                self.cfg.route(path, options(allow(methods.iter())));
            }
        }
        self.documented
    }
}

/// `GET,HEAD,DELETE`: the methods in order, `HEAD` right after `GET`
/// (every `GET` route answers `HEAD`, see `guards::check`).
fn allow<'m>(methods: impl Iterator<Item = &'m Method>) -> String {
    let mut out = Vec::new();
    for m in methods {
        out.push(m.as_str());
        if *m == Method::GET {
            out.push("HEAD");
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_head_with_get() {
        let methods = [Method::POST, Method::GET, Method::DELETE];
        assert_eq!(allow(methods.iter()), "POST,GET,HEAD,DELETE");
    }
}
