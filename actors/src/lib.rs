//! gns3-central's engine: the GNS3 API client, the resilience cores (circuit breaker,
//! backoff) and the actors that own connections. No HTTP routing lives here: the edge
//! (`src/` of the root crate) talks to these actors through their message types.

pub mod cache;
pub mod cluster;
pub mod connector;
pub mod dispatcher;
pub mod events;
pub mod gns3;
pub mod metrics;
pub mod modules;
pub mod redis_link;
pub mod secret;
pub mod sinks;
pub mod supervise;
