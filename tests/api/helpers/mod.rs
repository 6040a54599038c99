//! Helpers shared by the integration tests: real gns3-server instances (`testbed`) and
//! free loopback ports.

pub mod process;
pub mod prom;
/// A real redis-server on a free loopback port (shared with the actors crate's tests).
#[path = "../../../actors/tests/support/redis.rs"]
pub mod redis_server;
/// A real redis-sentinel watching one of those (shared with the actors crate's tests).
#[path = "../../../actors/tests/support/sentinel.rs"]
pub mod sentinel;
pub mod testbed;

/// A loopback port that was free a moment ago (bound on port 0, then released). It comes
/// from the kernel's ephemeral range, which the test-bed's GNS3 ports (13080-13279) and
/// console ranges stay out of, so it never lands on a port a GNS3 instance will take.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
    listener.local_addr().expect("local address of a bound listener").port()
}
