//! `Gns3Connector`: one supervised actor per configured GNS3 server.
//! (Skeleton: implemented by the connector work item.)

pub mod backoff;
pub mod breaker;
pub mod config;
pub mod error;
pub mod messages;
pub mod status;

pub use config::{ApiVersionSetting, BreakerConfig, ConnectorConfig, ReconnectConfig, RetryConfig};
pub use error::ConnectorError;
pub use messages::*;
pub use status::{CircuitState, CircuitStatus, LatencyStats, ServerStatus};

mod actor_stub {
    use actix::prelude::*;
    use super::*;
    /// Stub until the connector is written.
    pub struct Gns3Connector {
        cfg: ConnectorConfig,
    }
    impl Gns3Connector {
        pub fn new(cfg: ConnectorConfig) -> Self {
            Self { cfg }
        }
    }
    impl Actor for Gns3Connector {
        type Context = Context<Self>;
    }
    impl Supervised for Gns3Connector {}
    fn down(name: &str) -> ConnectorError {
        ConnectorError::Unavailable { server: name.to_owned(), reason: "stub".into(), retry_after: std::time::Duration::from_secs(1) }
    }
    impl Handler<GetServerStatus> for Gns3Connector {
        type Result = MessageResult<GetServerStatus>;
        fn handle(&mut self, _: GetServerStatus, _: &mut Context<Self>) -> Self::Result {
            MessageResult(ServerStatus {
                name: self.cfg.name.clone(), url: self.cfg.base_url(), connected: false, gns3_version: None,
                api_version: None, authenticated: false,
                circuit: CircuitStatus { state: CircuitState::Closed, consecutive_failures: 0, times_opened: 0, retry_after_secs: None },
                last_error: None, last_error_at: None, connected_since: None, disconnects: 0, actor_restarts: 0,
                latency: LatencyStats::default(),
            })
        }
    }
    macro_rules! stub { ($($m:ty => $t:ty),*) => { $(
        impl Handler<$m> for Gns3Connector {
            type Result = Result<$t, ConnectorError>;
            fn handle(&mut self, _: $m, _: &mut Context<Self>) -> Self::Result { Err(down(&self.cfg.name)) }
        })* } }
    use crate::gns3::*;
    stub!(ListProjects => Vec<Project>, GetProject => Project, ListNodes => Vec<Node>, GetNode => Node,
          ListLinks => Vec<Link>, RunNodeAction => NodeActionOutcome, RunProjectAction => ProjectActionOutcome,
          FetchTopology => ServerTopology);
}
pub use actor_stub::Gns3Connector;
