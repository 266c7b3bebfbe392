//! Loopback stand-ins for bench/telemetry.sh and bench/instructions.sh:
//!
//!   stand-ins otlp PORT
//!       an OTLP/HTTP endpoint on 127.0.0.1 that accepts and discards
//!       everything
//!   stand-ins kinesis PORT [COUNT_FILE]
//!       a minimal PutRecords endpoint answering like Kinesis (every record
//!       written); with COUNT_FILE, the number of records received so far
//!       is kept in that file
//!
//! They stand in for a remote Kinesis and for the collector sidecar, yet
//! share the bench's two cores with the servers they measure, so whatever
//! they burn is taken from cinemo's figures and, worse for the paced p99,
//! a request thread that wakes up while one of them holds a core waits.
//! Hence Rust and one actix-web worker: a few tens of microseconds of a
//! core per `PutRecords` call, where a Python endpoint took about 0.6 ms
//! (docs/performance.md).

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};

const OK_RESULT: &[u8] = br#"{"SequenceNumber":"1","ShardId":"shardId-000000000000"}"#;
/// Every record has exactly one `PartitionKey`, and frames cannot contain
/// that quoted name (their data is base64): records are counted without
/// parsing.
const KEY: &[u8] = br#""PartitionKey""#;

struct Counter {
    /// Records received so far; the lock also orders the file's writes,
    /// so the file always ends with the total.
    received: Mutex<u64>,
    file: Option<String>,
}

fn count_records(body: &[u8]) -> usize {
    // Only quotes can start the key; base64 data has none.
    (0..body.len())
        .filter(|&i| body[i] == b'"' && body[i..].starts_with(KEY))
        .count()
}

async fn put_records(body: web::Bytes, counter: web::Data<Counter>) -> HttpResponse {
    let n = count_records(&body);
    {
        let mut received = counter.received.lock().unwrap_or_else(|p| p.into_inner());
        *received += n as u64;
        if let Some(file) = &counter.file
            && let Err(e) = std::fs::write(file, received.to_string())
        {
            eprintln!("stand-ins: cannot write {file}: {e}");
        }
    }
    let mut out = Vec::with_capacity(40 + n * (OK_RESULT.len() + 1));
    out.extend_from_slice(br#"{"FailedRecordCount":0,"Records":["#);
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(OK_RESULT);
    }
    out.extend_from_slice(b"]}");
    HttpResponse::Ok()
        .content_type("application/x-amz-json-1.1")
        .body(out)
}

async fn otlp(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

fn usage() -> ! {
    eprintln!("usage: stand-ins otlp|kinesis PORT [COUNT_FILE]");
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, port) = match args.as_slice() {
        [kind, port, ..] => match port.parse::<u16>() {
            Ok(port) => (kind.clone(), port),
            Err(_) => usage(),
        },
        _ => usage(),
    };
    let counter = web::Data::from(Arc::new(Counter {
        received: Mutex::new(0),
        file: args.get(2).cloned(),
    }));
    let kinesis = match kind.as_str() {
        "kinesis" => true,
        "otlp" => false,
        _ => usage(),
    };
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            // PutRecords calls go up to 5 MiB.
            let app = App::new()
                .app_data(counter.clone())
                .app_data(web::PayloadConfig::new(8 << 20));
            if kinesis {
                app.default_service(web::to(put_records))
            } else {
                app.default_service(web::to(otlp))
            }
        })
        .workers(1)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_one_record_per_partition_key() {
        let body = br#"{"Records":[{"Data":"eyJ0eXBlIjoi","PartitionKey":"a"},{"Data":"eA==","PartitionKey":"b"}],"StreamName":"s"}"#;
        assert_eq!(count_records(body), 2);
        assert_eq!(count_records(b"{}"), 0);
    }
}
