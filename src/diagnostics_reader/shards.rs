//! The stream's shards and their lineage. A reshard (SplitShard,
//! MergeShards, UpdateShardCount) closes the parent shards, which keep the
//! records written before it, and opens children for what comes after
//! (Kinesis Developer Guide, "Complete the resharding action"). ListShards
//! lists closed shards until they expire, each child naming its parents,
//! so one listing at the start finds every shard of the window, and a new
//! listing when a shard ends finds the children a reshard during the read
//! created.

use std::collections::HashSet;

use aws_sdk_kinesis::Client;

use super::errors::{Failure, Target, classify};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: String,
    /// `ParentShardId` and `AdjacentParentShardId` (a merge has two).
    pub parents: Vec<String>,
}

/// Every shard ListShards knows, following its pages.
pub async fn list(client: &Client, target: &Target) -> Result<Vec<ShardInfo>, Failure> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let request = match &next_token {
            // A page token names the stream by itself.
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(&target.stream),
        };
        let page = request
            .send()
            .await
            .map_err(|e| classify(&e, "ListShards", target))?;
        shards.extend(page.shards().iter().map(|s| {
            ShardInfo {
                id: s.shard_id().to_owned(),
                parents: s
                    .parent_shard_id()
                    .into_iter()
                    .chain(s.adjacent_parent_shard_id())
                    .map(str::to_owned)
                    .collect(),
            }
        }));
        match page.next_token() {
            Some(token) => next_token = Some(token.to_owned()),
            None => return Ok(shards),
        }
    }
}

/// The lineage seen so far.
#[derive(Debug, Default)]
pub struct Lineage {
    known: HashSet<String>,
    parents_of_known: HashSet<String>,
}

impl Lineage {
    /// Records `listed`; returns the shards not seen before.
    pub fn add(&mut self, listed: Vec<ShardInfo>) -> Vec<ShardInfo> {
        let mut new = Vec::new();
        for shard in listed {
            if self.known.insert(shard.id.clone()) {
                self.parents_of_known.extend(shard.parents.iter().cloned());
                new.push(shard);
            }
        }
        new
    }

    /// Whether a child of `id` is known already; when it is not, the shard
    /// that ended was closed by a reshard after the last listing.
    pub fn has_children(&self, id: &str) -> bool {
        self.parents_of_known.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str]) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn new_shards_and_their_parents() {
        let mut lineage = Lineage::default();
        let first = lineage.add(vec![shard("s0", &[]), shard("s1", &[])]);
        assert_eq!(first.len(), 2);
        assert!(!lineage.has_children("s0"));
        // s0 split into s2 and s3, then s1 and s3 merged into s4.
        let later = lineage.add(vec![
            shard("s0", &[]),
            shard("s1", &[]),
            shard("s2", &["s0"]),
            shard("s3", &["s0"]),
            shard("s4", &["s1", "s3"]),
        ]);
        let ids: Vec<_> = later.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s2", "s3", "s4"]);
        for parent in ["s0", "s1", "s3"] {
            assert!(lineage.has_children(parent), "{parent}");
        }
        assert!(!lineage.has_children("s2"));
    }
}
