//! Starts and stops the database servers and cinemo's two processes. Every
//! server binds 127.0.0.1 and is stopped by PID in a Drop guard, so a
//! panicking test leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use crate::common::Cinemo;
use std::time::{Duration, Instant};

use sqlx::Connection;

/// A port for a database server, which must come back on the same port
/// after the outage tests stop it (so it cannot simply be told port 0):
/// `common::closed_port` binds port 0 and releases it. A child process
/// cannot be handed a bound socket, so this small race is the price.
pub fn free_port() -> u16 {
    crate::common::closed_port().port()
}

/// Missing tools fail CI and are skipped (loudly) elsewhere.
fn missing(what: &str) -> Option<Db> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} (CI is set, so this fails instead of skipping)");
    }
    eprintln!("\n*** SKIPPED: {what} ***\n");
    None
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub enum Kind {
    Sqlite {
        file: PathBuf,
    },
    Postgres {
        bin: PathBuf,
        data: PathBuf,
        port: u16,
    },
    Nx {
        exe: PathBuf,
        port: u16,
        file: PathBuf,
        child: Option<Child>,
    },
    RealMongo {
        url: String,
    },
}

/// One database server for one test, and how cinemo reaches it.
pub struct Db {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    /// A unique MongoDB database name per test (real servers are shared).
    pub database: String,
    /// SQLite "outage": a connection holding an exclusive lock.
    sqlite_lock: Option<sqlx::SqliteConnection>,
}

impl Db {
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres { .. } => "postgres",
            Kind::Nx { .. } => "nx-27017",
            Kind::RealMongo { .. } => "mongodb",
        }
    }

    pub fn is_mongo(&self) -> bool {
        matches!(self.kind, Kind::Nx { .. } | Kind::RealMongo { .. })
    }

    pub fn can_stop(&self) -> bool {
        !matches!(self.kind, Kind::RealMongo { .. })
    }

    pub async fn sqlite() -> Option<Db> {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("cinemo.db");
        Some(Db {
            kind: Kind::Sqlite { file },
            dir,
            database: "cinemo".into(),
            sqlite_lock: None,
        })
    }

    pub async fn postgres() -> Option<Db> {
        let bin = match std::env::var_os("CINEMO_PG_BIN") {
            Some(b) => PathBuf::from(b),
            None => match newest_pg_bin() {
                Some(b) => b,
                None => return missing("PostgreSQL server binaries not found (set CINEMO_PG_BIN)"),
            },
        };
        if !bin.join("initdb").is_file() || !bin.join("pg_ctl").is_file() {
            return missing(&format!("no initdb/pg_ctl in {}", bin.display()));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        // The server refuses to run as root: as root the cluster belongs to
        // the postgres user; anyone else owns it themselves.
        if running_as_root()
            && let Err(e) = run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))
        {
            return missing(&format!(
                "cannot give the cluster to the postgres user: {e}"
            ));
        }
        let port = free_port();
        let mut initdb = cluster_owner(bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        run(&mut initdb).expect("initdb");
        let db = Db {
            kind: Kind::Postgres { bin, data, port },
            dir,
            database: "cinemo".into(),
            sqlite_lock: None,
        };
        db.start_server().await;
        Some(db)
    }

    pub async fn nx27017() -> Option<Db> {
        let exe = match std::env::var_os("CINEMO_NX27017") {
            Some(p) => PathBuf::from(p),
            None => match find_nx() {
                Some(p) => p,
                None => {
                    return missing(
                        "nx-27017 not found (set CINEMO_NX27017 or install it with .ci/lib.sh ensure_venv)",
                    );
                }
            },
        };
        let dir = tempfile::tempdir().expect("temp dir");
        // A file, not `memory`: the outage test restarts the server and
        // expects every acknowledged write to be there afterwards.
        let file = dir.path().join("nx.db");
        let mut db = Db {
            kind: Kind::Nx {
                exe,
                port: free_port(),
                file,
                child: None,
            },
            dir,
            database: "cinemo".into(),
            sqlite_lock: None,
        };
        db.start().await;
        Some(db)
    }

    pub async fn real_mongodb() -> Option<Db> {
        // Ignored unless the URL was set at build time (tests/storage.rs);
        // asked to run, it needs the URL now too.
        let url = std::env::var("CINEMO_TEST_MONGODB_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .expect("a real-MongoDB test needs CINEMO_TEST_MONGODB_URL");
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("cinemo_test_{}_{}", std::process::id(), free_port());
        Some(Db {
            kind: Kind::RealMongo { url },
            dir,
            database,
            sqlite_lock: None,
        })
    }

    pub fn url(&self) -> String {
        match &self.kind {
            Kind::Sqlite { file } => format!("sqlite://{}", file.display()),
            Kind::Postgres { port, .. } => format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Kind::Nx { port, .. } => format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            Kind::RealMongo { url } => url.clone(),
        }
    }

    /// The `CINEMO__STORAGE__*` variables for the internal tier.
    pub fn env(&self) -> Vec<(String, String)> {
        let kind = match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres { .. } => "postgres",
            Kind::Nx { .. } | Kind::RealMongo { .. } => "mongodb",
        };
        vec![
            ("CINEMO__STORAGE__TYPE".into(), kind.into()),
            ("CINEMO__STORAGE__URL".into(), self.url()),
            ("CINEMO__STORAGE__DATABASE".into(), self.database.clone()),
        ]
    }

    async fn start_server(&self) {
        if let Kind::Postgres { bin, data, port } = &self.kind {
            let opts = format!(
                "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.dir.path().display()
            );
            let mut start = cluster_owner(bin.join("pg_ctl"));
            start
                .arg("-D")
                .arg(data)
                .arg("-l")
                .arg(self.dir.path().join("pg.log"))
                .args(["-w", "-o", &opts, "start"]);
            run(&mut start).expect("pg_ctl start");
        }
    }

    /// Brings the database back (or starts it the first time).
    pub async fn start(&mut self) {
        match &mut self.kind {
            Kind::Sqlite { .. } => {
                if let Some(mut lock) = self.sqlite_lock.take() {
                    let _ = sqlx::query("ROLLBACK").execute(&mut lock).await;
                    let _ = lock.close().await;
                }
            }
            Kind::Postgres { .. } => self.start_server().await,
            Kind::Nx {
                exe,
                port,
                file,
                child,
            } => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("nx-stderr.log"))
                    .expect("nx log file");
                let spawned = Command::new(&*exe)
                    .args(["--host", "127.0.0.1", "-p", &port.to_string(), "--db"])
                    .arg(&*file)
                    .arg("--pid-file")
                    .arg(self.dir.path().join("nx.pid"))
                    .arg("--log-file")
                    .arg(self.dir.path().join("nx.log"))
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("starting nx-27017");
                *child = Some(spawned);
                wait_for_port(*port, "nx-27017");
            }
            Kind::RealMongo { .. } => {}
        }
    }

    /// Takes the database away: stops the server (PostgreSQL immediately,
    /// as a crash would; nx-27017 by SIGKILL), or for SQLite, where there is
    /// no server, holds an exclusive lock on the file so every statement
    /// waits and fails as it would on a locked or unreachable disk.
    pub async fn stop(&mut self) {
        match &mut self.kind {
            Kind::Sqlite { file } => {
                let url = format!("sqlite://{}", file.display());
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("locking connection");
                sqlx::query("PRAGMA busy_timeout = 10000")
                    .execute(&mut conn)
                    .await
                    .expect("busy timeout");
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .expect("exclusive lock");
                self.sqlite_lock = Some(conn);
            }
            Kind::Postgres { bin, data, .. } => {
                let mut stop = cluster_owner(bin.join("pg_ctl"));
                stop.arg("-D")
                    .arg(&*data)
                    .args(["-m", "immediate", "-w", "stop"]);
                run(&mut stop).expect("pg_ctl stop");
            }
            Kind::Nx { child, .. } => {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            Kind::RealMongo { .. } => {
                panic!("a real MongoDB given by URL is never stopped by the tests")
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Postgres { bin, data, .. } => {
                let _ = cluster_owner(bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&*data)
                    .args(["-m", "immediate", "-w", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            Kind::Nx { child, .. } => {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            Kind::Sqlite { .. } | Kind::RealMongo { .. } => {}
        }
    }
}

fn newest_pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn find_nx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nx-27017"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = Path::new(&home).join(".cache/cinemo/venv/bin/nx-27017");
        p.is_file().then_some(p)
    })
}

/// The public and internal tiers as two processes, as in production, run
/// through the common harness (listeners on port 0, ready from the log).
pub struct Tiers {
    pub public: Cinemo,
    pub internal: Cinemo,
}

impl Tiers {
    /// Starts internal (on `db`) then public (pointing at it). `extra` sets
    /// further `CINEMO__*` variables on both.
    pub async fn start(db: &Db, extra: &[(&str, &str)]) -> Tiers {
        let mut env = db.env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let internal = crate::common::cinemo("internal").envs(&env).ready().await;
        env.push((
            "CINEMO__PUBLIC__INTERNAL_URL".into(),
            internal.internal().to_owned(),
        ));
        let public = crate::common::cinemo("public").envs(&env).ready().await;
        Tiers { public, internal }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

/// Every document the internal tier lists, in list order, walking pages.
pub async fn list_all(http: &reqwest::Client, base: &str, path: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{base}{path}?limit=1000&after={a}"),
            None => format!("{base}{path}?limit=1000"),
        };
        let r = http.get(url).send().await.expect("list");
        assert_eq!(r.status(), 200, "list failed");
        let page: serde_json::Value = r.json().await.expect("list json");
        let items = page["items"].as_array().expect("items").clone();
        out.extend(items);
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return out,
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A PostgreSQL server program run as the cluster's owner: the postgres
/// user when the tests run as root (the server refuses root), else the
/// user running them.
fn cluster_owner(program: PathBuf) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}
