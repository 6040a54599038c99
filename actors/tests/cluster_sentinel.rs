//! Redis Sentinel: a real master, a real replica and a real redis-sentinel on loopback
//! (`support/redis.rs`, `support/sentinel.rs`); the instance reaches Redis through the
//! sentinel (`RedisLink`). The master is SIGKILLed under a steady flow of events; the
//! sentinel promotes the replica; the subscriber gets every event once, in one epoch with
//! no gap, and the promoted master ends up holding the whole log.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/redis.rs"]
mod redis_server;
#[path = "support/sentinel.rs"]
mod sentinel;

use cluster::*;
use gns3_central_actors::cache::{RedisConfig, SentinelTarget};
use gns3_central_actors::redis_link::RedisLink;
use gns3_central_actors::secret::Secret;
use redis_server::RedisServer;
use sentinel::Sentinel;
use std::time::Duration;

/// Waits until the replica on `port` has synced with its master.
async fn synced(port: u16) {
    let url = format!("redis://127.0.0.1:{port}");
    until("the replica to sync", || {
        let url = url.clone();
        async move {
            let mut c = redis::Client::open(url).ok()?.get_multiplexed_async_connection().await.ok()?;
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await.ok()?;
            info.contains("master_link_status:up").then_some(())
        }
    })
    .await;
}

#[actix_rt::test]
async fn a_sentinel_failover_under_a_flow_of_events_loses_nothing() {
    let mut master = RedisServer::start();
    let replica = RedisServer::start_replica_of(master.port());
    synced(replica.port()).await;
    let sentinel = Sentinel::start(master.port());
    assert_eq!(sentinel.master_port().await, Some(master.port()));
    let target = SentinelTarget {
        sentinels: vec![sentinel.address()],
        master_name: sentinel::MASTER_NAME.into(),
        password: Secret::new(""),
    };
    let link = RedisLink::new(&RedisConfig::from_parts("unused", 1, 0, "").with_sentinel(Some(target))).unwrap();
    let a = Instance::start_with_link(link, "s1", "a").await;
    a.until_status("joined through the sentinel", |s| s.shared).await;

    let flowing = flow(&a, 0, 300, Duration::from_millis(5));
    a.until_seen(40).await;
    master.kill();
    until("the sentinel to promote the replica", || async {
        (sentinel.master_port().await == Some(replica.port())).then_some(())
    })
    .await;
    flowing.await.expect("the flow ends");
    a.until_seen(300).await;
    a.until_status("on the promoted master", |s| s.shared && s.disconnects >= 1).await;
    let epoch = once_in_order(&a, 300);
    let seen: Vec<String> = a.seen().into_iter().map(|(id, _)| id).collect();
    let (in_epoch, last, ids) = log_in(&replica.url(), "s1").await;
    assert_eq!((in_epoch, last), (Some(epoch), 300));
    assert_eq!(ids, seen, "the promoted master holds the whole log");
}
