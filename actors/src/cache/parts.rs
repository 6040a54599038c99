//! Slices of a cached project topology, the answers of the per-resource reads (one
//! project, its nodes, its links, one node), each as JSON with a fingerprint of those
//! bytes (the edge's `ETag`).
//!
//! A read of a slice is a read of the project's cached topology: the slice is kept fresh
//! by the same events and expires with the same TTL. The memory backend renders each
//! slice at its first read after a change and keeps the bytes and the fingerprint beside
//! the topology (`Renders`), so a poll of a 50-node list hands out shared bytes and
//! hashes nothing; the Redis backend renders the slice from the stored topology per read.
//!
//! The fingerprint is SHA-256 of the bytes, cut to 128 bits: the same on every instance
//! and across restarts, so an `ETag` a client holds stays valid behind a load balancer.

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::gns3::ProjectTopology;

/// Which part of a project's topology a read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyPart {
    /// The whole `ProjectTopology` (project, nodes, links).
    Whole,
    /// The `Project` object.
    Project,
    /// The list of nodes.
    Nodes,
    /// The list of links.
    Links,
    /// One node; absent from the topology reads as a miss (the caller asks GNS3).
    Node(Uuid),
}

/// A cached answer: its JSON and the fingerprint of exactly those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedJson {
    pub json: Bytes,
    /// 32 lowercase hex digits (`fingerprint`).
    pub tag: String,
}

impl CachedJson {
    pub fn new(json: Bytes) -> Self {
        let tag = fingerprint(&json);
        Self { json, tag }
    }
}

/// The cache's answer to `GetTopologyPart`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartLookup {
    Hit(CachedJson),
    /// Not cached (or an unknown node): the caller reads GNS3 and `Put`s the topology.
    Miss,
    /// Caching is off (`cache.ttl = 0`): the caller reads GNS3 and need not `Put`.
    Off,
}

impl PartLookup {
    pub fn hit(self) -> Option<CachedJson> {
        match self {
            PartLookup::Hit(c) => Some(c),
            PartLookup::Miss | PartLookup::Off => None,
        }
    }
}

/// SHA-256 of `bytes`, its first 128 bits as hex.
pub fn fingerprint(bytes: &[u8]) -> String {
    fingerprint_all([bytes])
}

/// As `fingerprint`, over several pieces (each length-prefixed, so pieces cannot shift
/// into each other: `["ab","c"]` and `["a","bc"]` differ).
pub fn fingerprint_all<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h = Sha256::new();
    for p in pieces {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn json(value: &impl Serialize) -> Option<Bytes> {
    serde_json::to_vec(value).ok().map(Bytes::from)
}

impl TopologyPart {
    /// The part's JSON, or `None` when the topology does not hold it (an unknown node).
    pub fn render(self, t: &ProjectTopology) -> Option<Bytes> {
        match self {
            TopologyPart::Whole => json(t),
            TopologyPart::Project => json(&t.project),
            TopologyPart::Nodes => json(&t.nodes),
            TopologyPart::Links => json(&t.links),
            TopologyPart::Node(id) => t.nodes.iter().find(|n| n.node_id == id).and_then(json),
        }
    }
}

/// The renderings of one cached topology, dropped together when it changes.
#[derive(Debug, Clone, Default)]
pub(super) struct Renders {
    whole: Option<CachedJson>,
    project: Option<CachedJson>,
    nodes: Option<CachedJson>,
    links: Option<CachedJson>,
}

impl Renders {
    /// The part, rendered now if it is not yet. One node is rendered per read (small, and
    /// a topology can hold hundreds).
    pub(super) fn get(&mut self, t: &ProjectTopology, part: TopologyPart) -> Option<CachedJson> {
        let slot = match part {
            TopologyPart::Whole => &mut self.whole,
            TopologyPart::Project => &mut self.project,
            TopologyPart::Nodes => &mut self.nodes,
            TopologyPart::Links => &mut self.links,
            TopologyPart::Node(_) => return part.render(t).map(CachedJson::new),
        };
        if slot.is_none() {
            *slot = part.render(t).map(CachedJson::new);
        }
        slot.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::apply::tests::topology;

    #[test]
    fn parts_are_the_topology_slices() {
        let t = topology();
        let nodes: serde_json::Value = serde_json::from_slice(&TopologyPart::Nodes.render(&t).unwrap()).unwrap();
        assert_eq!(nodes, serde_json::to_value(&t.nodes).unwrap());
        let one = TopologyPart::Node(t.nodes[1].node_id).render(&t).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&one).unwrap(),
            serde_json::to_value(&t.nodes[1]).unwrap()
        );
        assert_eq!(TopologyPart::Node(Uuid::new_v4()).render(&t), None);
        let whole: ProjectTopology = serde_json::from_slice(&TopologyPart::Whole.render(&t).unwrap()).unwrap();
        assert_eq!(whole, t);
    }

    #[test]
    fn fingerprints_follow_the_bytes_and_keep_pieces_apart() {
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        assert_eq!(fingerprint(b"abc").len(), 32);
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
        assert_ne!(fingerprint_all([&b"ab"[..], b"c"]), fingerprint_all([&b"a"[..], b"bc"]));
    }

    #[test]
    fn renders_are_kept_until_dropped() {
        let t = topology();
        let mut r = Renders::default();
        let a = r.get(&t, TopologyPart::Nodes).unwrap();
        let b = r.get(&t, TopologyPart::Nodes).unwrap();
        assert_eq!(a.json.as_ptr(), b.json.as_ptr(), "shared bytes, not a second rendering");
        assert_eq!(a.tag, fingerprint(&a.json));
    }
}
