//! Connections to the internal tier, per actix worker: a pool of HTTP/1.1
//! keep-alive connections and a few multiplexed HTTP/2 connections
//! ("lanes"). Every connection is driven by a task on the worker's own
//! thread, so no request crosses threads.
//!
//! Every connection is used for at most `max_age`, then replaced. Behind
//! the internal tier's load balancer (TCP passthrough) a connection stays
//! on the host it first reached, so replacing connections is what spreads
//! the load again when internal hosts come and go; and since actix closes
//! an HTTP/2 connection on shutdown only when the client does, it is also
//! what lets a draining internal tier finish before its deadline.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

use super::error::{InternalError, error_chain};

pub type Body = Full<Bytes>;

/// HTTP/2 connections per worker; each carries any number of concurrent
/// requests. More than one, so that a public host spreads its load over
/// more than one internal host (and, on each, over more than one actix
/// worker: a connection stays on the worker that accepted it) even between
/// replacements. One lane gave the read path about 12% more throughput on
/// the 2-core benchmark, but the paced p99 jumped to 4-8 ms in two runs of
/// five, most likely when a replacement put both of a process's
/// connections on the same internal worker (docs/performance.md).
pub const H2_LANES: usize = 2;

/// A pooled HTTP/1.1 connection unused for this long is closed rather than
/// reused: below the internal tier's keep-alive (`http.keep_alive_secs`,
/// 75 s), so the client, not the server, ends idle connections and a
/// request never races the server's close.
const H1_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// Where and how to connect; shared by every worker.
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// TLS for HTTP/1.1 and for HTTP/2 (they differ in ALPN only).
    pub tls: Option<Tls>,
    pub connect_timeout: Duration,
    pub max_age: Duration,
    pub h1_max_idle: usize,
}

pub struct Tls {
    pub h1: tokio_rustls::TlsConnector,
    pub h2: tokio_rustls::TlsConnector,
    pub name: ServerName<'static>,
}

/// Tries at a new connection when the peer goes away before anything was
/// sent on it: the connection is refused, reset, or closed during the TLS
/// handshake. Behind the internal tier's load balancer that is a target
/// that has just died: the balancer keeps sending it new connections until
/// its health checks fail (20 s with the NLB's), and each new connection
/// may go to a live target instead (with one of two targets dead, ten
/// tries all fail one time in a thousand; six did one time in 64, which
/// the drills saw). No request was sent on it, so none can be carried out
/// twice. The waits double from `CONNECT_RETRY_WAIT` up to
/// `CONNECT_RETRY_WAIT_MAX` (650 ms in all), within the connect timeout.
const CONNECT_TRIES: u32 = 10;
const CONNECT_RETRY_WAIT: Duration = Duration::from_millis(10);
const CONNECT_RETRY_WAIT_MAX: Duration = Duration::from_millis(100);

impl Endpoint {
    /// A connected stream, TLS-wrapped when configured, within the connect
    /// timeout together with `handshake`. A connect that times out is a
    /// timeout (504), like a request that does; a refused one is not.
    async fn connect<T>(
        &self,
        h2: bool,
        handshake: impl AsyncFnOnce(Stream) -> Result<T, InternalError>,
    ) -> Result<T, InternalError> {
        let connecting = async {
            let mut wait = CONNECT_RETRY_WAIT;
            let mut tries = 1;
            let stream = loop {
                match self.open(h2).await {
                    Ok(stream) => break stream,
                    Err(Failed { error, peer_gone }) if peer_gone && tries < CONNECT_TRIES => {
                        tracing::debug!(%error, tries, "connecting to the internal tier again");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(CONNECT_RETRY_WAIT_MAX);
                        tries += 1;
                    }
                    Err(Failed { error, .. }) => return Err(error),
                }
            };
            handshake(stream).await
        };
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .unwrap_or(Err(InternalError::Timeout))
    }

    /// One TCP connection, TLS-wrapped when configured.
    async fn open(&self, h2: bool) -> Result<Stream, Failed> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Failed {
                peer_gone: peer_gone(&e),
                error: InternalError::Unreachable(format!(
                    "connecting to {}:{}: {e}",
                    self.host, self.port
                )),
            })?;
        // Requests go out whole; Nagle would only delay them.
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let connector = if h2 { &tls.h2 } else { &tls.h1 };
        match connector.connect(tls.name.clone(), tcp).await {
            Ok(tls) => Ok(Stream::Tls(Box::new(tls))),
            Err(e) => Err(Failed {
                peer_gone: peer_gone(&e),
                error: InternalError::Unreachable(format!("TLS handshake: {}", error_chain(&e))),
            }),
        }
    }
}

/// A connection that could not be opened, and whether the peer went away
/// before anything was sent (worth another try), rather than refusing it
/// for a reason that will not change (a certificate, a name).
struct Failed {
    error: InternalError,
    peer_gone: bool,
}

fn peer_gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
    )
}

/// A connected stream, plain or TLS.
pub enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

/// Starts the task that drives a connection until either side closes it.
fn drive<F, E>(connection: F)
where
    F: Future<Output = Result<(), E>> + 'static,
    E: std::error::Error,
{
    actix_web::rt::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %error_chain(&e), "connection to the internal tier ended");
        }
    });
}

// ---- HTTP/1.1 ----------------------------------------------------------------

pub type H1Sender = http1::SendRequest<Body>;

struct H1Idle {
    sender: H1Sender,
    opened: Instant,
    since: Instant,
}

/// Idle HTTP/1.1 keep-alive connections, most recently used last.
pub struct H1Pool {
    endpoint: Arc<Endpoint>,
    idle: RefCell<Vec<H1Idle>>,
}

/// A connection checked out of the pool (or new), with its birth time.
pub struct H1Conn {
    pub sender: H1Sender,
    opened: Instant,
    pub pooled: bool,
}

impl H1Pool {
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        H1Pool {
            endpoint,
            idle: RefCell::new(Vec::new()),
        }
    }

    /// The most recently used live connection, waiting (briefly) for it to
    /// finish its previous exchange; a new one when the pool has none.
    pub async fn checkout(&self) -> Result<H1Conn, InternalError> {
        loop {
            let Some(H1Idle {
                mut sender,
                opened,
                since,
            }) = self.idle.borrow_mut().pop()
            else {
                break;
            };
            if sender.is_closed()
                || since.elapsed() >= H1_IDLE_TIMEOUT
                || opened.elapsed() >= self.endpoint.max_age
            {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Ok(H1Conn {
                    sender,
                    opened,
                    pooled: true,
                });
            }
        }
        // Boxed: connecting is rare, and inline its state (TCP, TLS and
        // HTTP handshakes) would make every request's future kilobytes
        // larger, copied whenever actix moves the handler's future.
        let sender = Box::pin(self.endpoint.connect(false, async |stream| match stream {
            Stream::Plain(s) => h1_handshake(s).await,
            Stream::Tls(s) => h1_handshake(*s).await,
        }))
        .await?;
        Ok(H1Conn {
            sender,
            opened: Instant::now(),
            pooled: false,
        })
    }

    /// Back into the pool after a whole exchange, unless it is closed, too
    /// old, or the pool is full.
    pub fn checkin(&self, conn: H1Conn) {
        if conn.sender.is_closed() || conn.opened.elapsed() >= self.endpoint.max_age {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if idle.len() < self.endpoint.h1_max_idle {
            idle.push(H1Idle {
                sender: conn.sender,
                opened: conn.opened,
                since: Instant::now(),
            });
        }
    }
}

async fn h1_handshake<IO>(io: IO) -> Result<H1Sender, InternalError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| InternalError::Unreachable(error_chain(&e)))?;
    drive(connection);
    Ok(sender)
}

// ---- HTTP/2 ------------------------------------------------------------------

pub type H2Sender = http2::SendRequest<Body>;

struct H2Conn {
    sender: H2Sender,
    opened: Instant,
    /// Tells this connection from the one that replaced it in its lane.
    id: u64,
}

/// `H2_LANES` multiplexed connections, used in turn.
pub struct H2Lanes {
    endpoint: Arc<Endpoint>,
    lanes: RefCell<[Option<H2Conn>; H2_LANES]>,
    /// Held while a lane connects, so concurrent requests wait for that one
    /// connection instead of each opening their own.
    connecting: [tokio::sync::Mutex<()>; H2_LANES],
    next_lane: Cell<usize>,
    next_id: Cell<u64>,
    sweeping: Cell<bool>,
}

/// A sender for one request, and where it came from.
pub struct H2Lease {
    pub sender: H2Sender,
    lane: usize,
    id: u64,
    pub pooled: bool,
}

impl H2Lanes {
    pub fn new(endpoint: Arc<Endpoint>) -> Rc<Self> {
        Rc::new(H2Lanes {
            endpoint,
            lanes: RefCell::new(Default::default()),
            connecting: Default::default(),
            next_lane: Cell::new(0),
            next_id: Cell::new(0),
            sweeping: Cell::new(false),
        })
    }

    fn usable(&self, lane: usize) -> Option<H2Lease> {
        let lanes = self.lanes.borrow();
        let conn = lanes[lane].as_ref()?;
        (!conn.sender.is_closed() && conn.opened.elapsed() < self.endpoint.max_age).then(|| {
            H2Lease {
                sender: conn.sender.clone(),
                lane,
                id: conn.id,
                pooled: true,
            }
        })
    }

    /// A sender on the next lane, connecting the lane when it has no live
    /// connection younger than `max_age`.
    pub async fn lease(self: &Rc<Self>) -> Result<H2Lease, InternalError> {
        let lane = self.next_lane.get();
        self.next_lane.set((lane + 1) % H2_LANES);
        if let Some(lease) = self.usable(lane) {
            return Ok(lease);
        }
        let _connecting = self.connecting[lane].lock().await;
        // Another request may have connected the lane while this one waited.
        if let Some(lease) = self.usable(lane) {
            return Ok(lease);
        }
        // Boxed for the same reason as in `H1Pool::checkout`.
        let sender = Box::pin(self.endpoint.connect(true, async |stream| match stream {
            Stream::Plain(s) => h2_handshake(s).await,
            Stream::Tls(s) => h2_handshake(*s).await,
        }))
        .await?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        // The replaced connection (if any) closes once its requests finish.
        self.lanes.borrow_mut()[lane] = Some(H2Conn {
            sender: sender.clone(),
            opened: Instant::now(),
            id,
        });
        self.start_sweeping();
        Ok(H2Lease {
            sender,
            lane,
            id,
            pooled: false,
        })
    }

    /// Drops the lane's connection if it is still the one leased: it turned
    /// out closed, and the next request on the lane connects afresh.
    pub fn forget(&self, lease: &H2Lease) {
        let mut lanes = self.lanes.borrow_mut();
        if lanes[lease.lane].as_ref().is_some_and(|c| c.id == lease.id) {
            lanes[lease.lane] = None;
        }
    }

    /// Closes connections past `max_age` even when no request comes to
    /// replace them, so an idle worker never holds an old connection open
    /// (and a draining internal tier never waits for one).
    fn start_sweeping(self: &Rc<Self>) {
        if self.sweeping.replace(true) {
            return;
        }
        let weak: Weak<Self> = Rc::downgrade(self);
        let period = (self.endpoint.max_age / 2).max(Duration::from_millis(250));
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(lanes) = weak.upgrade() else { break };
                let max_age = lanes.endpoint.max_age;
                for lane in lanes.lanes.borrow_mut().iter_mut() {
                    if lane
                        .as_ref()
                        .is_some_and(|c| c.sender.is_closed() || c.opened.elapsed() >= max_age)
                    {
                        *lane = None;
                    }
                }
            }
        });
    }
}

async fn h2_handshake<IO>(io: IO) -> Result<H2Sender, InternalError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| InternalError::Unreachable(error_chain(&e)))?;
    drive(connection);
    Ok(sender)
}
