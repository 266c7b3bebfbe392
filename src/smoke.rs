//! `cinemo smoke --url URL`: the gate between edge and stable. Checks a
//! deployed public tier the way a client would and says which step failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

struct Smoke {
    client: reqwest::Client,
    base: String,
}

type Step = Result<String, String>;

pub async fn run(url: String, timeout: Duration) -> ExitCode {
    crate::tls::install_crypto_provider();
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smoke: cannot build an HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let smoke = Smoke {
        client,
        base: url.trim_end_matches('/').to_owned(),
    };
    println!("smoke test against {}", smoke.base);

    let mut ok = true;
    ok &= report("liveness  GET /api/health/live", smoke.live().await);
    ok &= report("readiness GET /api/health", smoke.ready().await);
    ok &= report("version   GET /api/version", smoke.version().await);
    if ok {
        match smoke.create().await {
            Ok((id, name)) => {
                report(
                    "create    POST /api/customers",
                    Ok(format!("customerId {id}")),
                );
                ok &= report(
                    "read      GET /api/customers/{id}",
                    smoke.read(&id, &name).await,
                );
            }
            Err(e) => ok &= report("create    POST /api/customers", Err(e)),
        }
    } else {
        println!("SKIP  create/read: the service is not healthy");
    }
    if ok {
        println!("smoke test passed");
        ExitCode::SUCCESS
    } else {
        println!("smoke test FAILED");
        ExitCode::FAILURE
    }
}

fn report(step: &str, result: Step) -> bool {
    match result {
        Ok(detail) => {
            println!("ok    {step}: {detail}");
            true
        }
        Err(why) => {
            println!("FAIL  {step}: {why}");
            false
        }
    }
}

impl Smoke {
    async fn get(&self, path: &str) -> Result<(reqwest::StatusCode, String, Duration), String> {
        let started = Instant::now();
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| describe(&url, e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| describe(&url, e))?;
        Ok((status, body, started.elapsed()))
    }

    async fn live(&self) -> Step {
        match self.get("/api/health/live").await? {
            (s, _, t) if s.is_success() => Ok(format!("{s} in {} ms", t.as_millis())),
            (s, body, _) => Err(format!("answered {s}: {}", snippet(&body))),
        }
    }

    async fn ready(&self) -> Step {
        match self.get("/api/health").await? {
            (s, body, t) if s.is_success() && body == "Frontend healthy" => {
                Ok(format!("{s} {body:?} in {} ms", t.as_millis()))
            }
            (s, body, _) => Err(format!(
                "answered {s} {:?} (expected 200 \"Frontend healthy\"; is the internal tier up?)",
                snippet(&body)
            )),
        }
    }

    async fn version(&self) -> Step {
        let (s, body, _) = self.get("/api/version").await?;
        if !s.is_success() {
            return Err(format!("answered {s}: {}", snippet(&body)));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("not JSON ({e}): {}", snippet(&body)))?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match (
            field("version"),
            field("git_sha"),
            field("channel"),
            field("mode"),
        ) {
            (Some(version), Some(sha), Some(channel), Some(mode)) => {
                Ok(format!("{version} ({sha}, {channel}), mode {mode}"))
            }
            _ => Err(format!("missing version fields: {}", snippet(&body))),
        }
    }

    async fn create(&self) -> Result<(String, String), String> {
        let name = format!("smoke-test {}", crate::domain::clock::now_ms());
        let url = format!("{}/api/customers", self.base);
        let response = self
            .client
            .post(&url)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .map_err(|e| describe(&url, e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| describe(&url, e))?;
        if !status.is_success() {
            return Err(format!("answered {status}: {}", snippet(&body)));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("not JSON ({e}): {}", snippet(&body)))?;
        match v.get("customerId").and_then(Value::as_str) {
            Some(id) if id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok((id.to_owned(), name))
            }
            _ => Err(format!("no 24-hex customerId in {}", snippet(&body))),
        }
    }

    async fn read(&self, id: &str, name: &str) -> Step {
        let (s, body, t) = self.get(&format!("/api/customers/{id}")).await?;
        if !s.is_success() {
            return Err(format!("answered {s}: {}", snippet(&body)));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("not JSON ({e}): {}", snippet(&body)))?;
        let same_id = v.get("_id").and_then(Value::as_str) == Some(id);
        let same_name = v.get("name").and_then(Value::as_str) == Some(name);
        let has_date = v.get("dateCreated").and_then(Value::as_i64).is_some();
        if same_id && same_name && has_date {
            Ok(format!("read back in {} ms", t.as_millis()))
        } else {
            Err(format!("read back something else: {}", snippet(&body)))
        }
    }
}

fn describe(url: &str, e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    format!("{kind}: {url}: {detail}")
}

fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if body.chars().count() > 200 {
        s.push('…');
    }
    s
}
