//! The single-hop ceiling for bench/run.sh: the least an actix-web server can
//! do per request (answer a fixed JSON document), with the same worker count
//! as cinemo. cinemo's read path makes two such hops plus a SQLite read, so
//! it stays well below this figure (docs/performance.md: about 0.3 of it
//! on a 2-core host).

use actix_web::{App, HttpResponse, HttpServer, web};

const DOC: &str =
    r#"{"_id":"5f1d7a3b9c0e4a2b8d6f1e3c","name":"Ann Smith","dateCreated":1795432789169}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok()
                .content_type("application/json; charset=utf-8")
                .body(DOC)
        }))
    })
    .workers(workers)
    .bind(addr)?
    .run()
    .await
}
