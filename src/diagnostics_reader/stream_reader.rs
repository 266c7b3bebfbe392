//! Every shard of the stream together: up to the tip for a read that ends,
//! then, for `--follow`, one poll of all of them at a time.

use aws_sdk_kinesis::Client;
use futures_util::future::join_all;
use tokio::time::Instant;

use super::errors::{Failure, Target};
use super::shard_reader::{Polled, RawRecord, ShardReader, Start};
use super::shards::{self, Lineage};

/// A record and the order it was received in, for stable sorting.
#[derive(Debug)]
pub struct Received {
    pub record: RawRecord,
    pub receipt: u64,
}

pub struct StreamReader {
    client: Client,
    target: Target,
    started_ms: i64,
    shards: Vec<ShardReader>,
    lineage: Lineage,
    /// A shard ended without known children: list the shards again.
    relist: bool,
    /// No new listing before this (after a failed one).
    relist_at: Instant,
    receipts: u64,
    /// The trouble last told on stderr, until reads succeed again.
    trouble: Option<String>,
}

impl StreamReader {
    /// Lists the shards and gets every iterator. A Kinesis that cannot be
    /// reached, or a stream that is not there, ends the command here with
    /// one line; only throttling is waited out.
    pub async fn open(
        client: Client,
        target: Target,
        start: Start,
        started_ms: i64,
    ) -> Result<StreamReader, String> {
        let mut throttled = 0u32;
        let listed = loop {
            match shards::list(&client, &target).await {
                Ok(listed) => break listed,
                Err(Failure::Retry {
                    throttled: true, ..
                }) if throttled < 10 => {
                    throttled += 1;
                    tokio::time::sleep(super::shard_reader::MIN_INTERVAL * throttled).await;
                }
                Err(Failure::Retry { reason, .. }) => {
                    return Err(format!(
                        "{reason} (check kinesis.endpoint, kinesis.region and the network)"
                    ));
                }
                Err(Failure::Fatal(line)) => return Err(line),
                Err(Failure::ExpiredIterator) => {
                    return Err("ListShards failed with ExpiredIteratorException".into());
                }
            }
        };
        let mut lineage = Lineage::default();
        let mut shards: Vec<ShardReader> = lineage
            .add(listed)
            .into_iter()
            .map(|s| ShardReader::new(s.id, start, started_ms))
            .collect();
        for opened in join_all(shards.iter_mut().map(|s| s.open(&client, &target))).await {
            opened?;
        }
        Ok(StreamReader {
            client,
            target,
            started_ms,
            shards,
            lineage,
            relist: false,
            relist_at: Instant::now(),
            receipts: 0,
            trouble: None,
        })
    }

    /// Shards being read (open ones, and closed ones not read to the end).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Reads every shard until it is caught up (or read to its end, and its
    /// children are): everything that reached the stream before now.
    pub async fn catch_up(&mut self, out: &mut Vec<Received>) -> Result<(), String> {
        loop {
            if self.relist {
                tokio::time::sleep_until(self.relist_at).await;
                self.discover().await?;
                continue;
            }
            let Some(next) = self
                .shards
                .iter()
                .filter(|s| !s.caught_up())
                .map(ShardReader::next_call)
                .min()
            else {
                return Ok(());
            };
            tokio::time::sleep_until(next).await;
            let now = Instant::now();
            self.poll_where(|s| !s.caught_up() && s.is_due(now), out)
                .await?;
        }
    }

    /// One GetRecords of every shard that may be called now; never waits
    /// (a shard backing off is left for a later poll).
    pub async fn poll_live(&mut self, out: &mut Vec<Received>) -> Result<(), String> {
        if self.relist && Instant::now() >= self.relist_at {
            self.discover().await?;
        }
        let now = Instant::now();
        self.poll_where(|s| s.is_due(now), out).await
    }

    async fn poll_where(
        &mut self,
        due: impl Fn(&ShardReader) -> bool,
        out: &mut Vec<Received>,
    ) -> Result<(), String> {
        let (client, target) = (&self.client, &self.target);
        let results = join_all(
            self.shards
                .iter_mut()
                .filter(|s| due(s))
                .map(|s| s.poll(client, target)),
        )
        .await;
        let mut notice = None;
        let mut all_read = true;
        for result in results {
            match result? {
                Polled::Records(records) => {
                    for record in records {
                        self.receipts += 1;
                        out.push(Received {
                            record,
                            receipt: self.receipts,
                        });
                    }
                }
                Polled::Retrying { notice: n } => {
                    all_read = false;
                    notice = notice.or(n);
                }
            }
        }
        self.tell(notice, all_read);
        let lineage = &self.lineage;
        let mut relist = false;
        self.shards.retain(|s| {
            if s.ended() {
                relist |= !lineage.has_children(&s.id);
            }
            !s.ended()
        });
        self.relist |= relist;
        Ok(())
    }

    /// Adds the shards a reshard created since the last listing; they are
    /// read from their start, as all their records are new.
    async fn discover(&mut self) -> Result<(), String> {
        match shards::list(&self.client, &self.target).await {
            Ok(listed) => {
                for shard in self.lineage.add(listed) {
                    self.shards.push(ShardReader::new(
                        shard.id,
                        Start::TrimHorizon,
                        self.started_ms,
                    ));
                }
                self.relist = false;
                Ok(())
            }
            Err(Failure::Fatal(line)) => Err(line),
            Err(Failure::Retry { reason, throttled }) => {
                self.tell((!throttled).then_some(reason), false);
                self.relist_at = Instant::now() + std::time::Duration::from_secs(1);
                Ok(())
            }
            Err(Failure::ExpiredIterator) => Ok(()),
        }
    }

    /// One line on stderr when reads start failing, one when they work again.
    fn tell(&mut self, notice: Option<String>, all_read: bool) {
        if let Some(notice) = notice {
            if self.trouble.as_deref() != Some(notice.as_str()) {
                eprintln!("cinemo diagnostics: {notice}; retrying");
                self.trouble = Some(notice);
            }
        } else if all_read && self.trouble.take().is_some() {
            eprintln!("cinemo diagnostics: reading again");
        }
    }
}
