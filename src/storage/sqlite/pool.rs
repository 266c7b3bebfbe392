//! Connections for the work that may wait on the file's lock (writes,
//! lists, batches, reads the in-place readers gave up on): at most
//! `storage.max_connections` at once, each job on tokio's blocking pool,
//! never on a server thread.
//!
//! A job whose caller stops waiting (its deadline, `storage::Timed`) is
//! stopped: one that has not started yet never starts, and one that runs is
//! interrupted at its current statement or the next one, so its open
//! transaction rolls back. A deadline never leaves a batch behind that was
//! answered 504 (only a COMMIT already under way finishes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, InterruptHandle};
use tokio::sync::Semaphore;

use super::connect::Database;
use super::errors::classify;
use crate::storage::StoreError;

pub struct Pool {
    database: Database,
    busy_timeout: Duration,
    acquire_timeout: Duration,
    slots: Arc<Semaphore>,
    max_connections: u32,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Pool {
    pub fn new(
        database: Database,
        max_connections: u32,
        acquire_timeout: Duration,
        busy_timeout: Duration,
    ) -> Self {
        Pool {
            database,
            busy_timeout,
            acquire_timeout,
            slots: Arc::new(Semaphore::new(max_connections as usize)),
            max_connections,
            idle: Arc::default(),
        }
    }

    /// Runs `job` on a pooled connection off the server threads.
    pub async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let slot = tokio::time::timeout(self.acquire_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "no SQLite connection free within {} ms",
                    self.acquire_timeout.as_millis()
                ))
            })?
            .map_err(|_| StoreError::Unavailable("the SQLite pool is closed".into()))?;
        let running = Running::default();
        let guard = InterruptOnDrop(running.clone());
        let (database, busy_timeout, idle) =
            (self.database.clone(), self.busy_timeout, self.idle.clone());
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => database.open(busy_timeout).map_err(classify)?,
            };
            if !running.start(&conn).map_err(classify)? {
                idle.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                return Err(StoreError::Unavailable(
                    "the caller stopped waiting before the job started".into(),
                ));
            }
            let result = job(&mut conn);
            let released = running.stop(&conn);
            // A connection left inside a transaction (a job that failed
            // half-way) is closed, which rolls it back; so is one that may
            // still carry this job's progress handler.
            if released && conn.is_autocommit() {
                idle.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
            }
            result
        });
        let result = handle
            .await
            .map_err(|e| StoreError::Other(anyhow::anyhow!("a SQLite job failed: {e}")))?;
        drop(guard);
        result
    }

    /// Waits (at most the acquire timeout) for running jobs, then closes the
    /// idle connections.
    pub async fn close(&self) {
        let all = self.slots.acquire_many(self.max_connections);
        let _ = tokio::time::timeout(self.acquire_timeout, all).await;
        self.slots.close();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The interrupt handle of the connection a job runs on, while it runs,
/// and whether its caller has stopped waiting.
#[derive(Clone, Default)]
struct Running(Arc<RunningState>);

#[derive(Default)]
struct RunningState {
    handle: Mutex<Option<InterruptHandle>>,
    abandoned: Arc<AtomicBool>,
}

/// SQLite virtual-machine steps between two looks at `abandoned`: an
/// interrupt that falls between two statements of a job is lost (SQLite
/// clears it when no statement runs), the progress handler is not.
const PROGRESS_STEPS: i32 = 1_000;

impl Running {
    /// False when the caller has already stopped waiting: the job must not
    /// run.
    fn start(&self, conn: &Connection) -> rusqlite::Result<bool> {
        let mut handle = self.0.handle.lock().unwrap_or_else(PoisonError::into_inner);
        if self.0.abandoned.load(Ordering::Acquire) {
            return Ok(false);
        }
        let abandoned = self.0.abandoned.clone();
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || abandoned.load(Ordering::Acquire)),
        )?;
        *handle = Some(conn.get_interrupt_handle());
        Ok(true)
    }

    /// After this the connection may go to another job: it is never
    /// interrupted for this one. False when the progress handler could not
    /// be removed: the connection must then be closed.
    fn stop(&self, conn: &Connection) -> bool {
        *self.0.handle.lock().unwrap_or_else(PoisonError::into_inner) = None;
        conn.progress_handler(0, None::<fn() -> bool>).is_ok()
    }
}

/// Stops the job when the caller stops waiting for it (a no-op once it has
/// finished).
struct InterruptOnDrop(Running);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        let handle = self
            .0
            .0
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.0.0.abandoned.store(true, Ordering::Release);
        if let Some(handle) = &*handle {
            handle.interrupt();
        }
    }
}
