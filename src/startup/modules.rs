//! The audit trail (Redis, a file, or memory), the modules and their bus (registrations
//! kept across restarts in `modules.state_file`), and the notification sinks.

use gns3_central_actors::cache::CacheActor;
use gns3_central_actors::cluster::GetClusterStatus;
use gns3_central_actors::modules::shared::SharedConfig;
use gns3_central_actors::modules::{ModuleContext, ModuleRegistry};
use gns3_central_actors::sinks::SinkHandle;
use std::sync::Arc;

use super::connectors::Connectors;
use super::events::Events;
use crate::config::Settings;
use crate::observe::audit::Audit;

pub(super) struct Parts {
    pub audit: Arc<Audit>,
    pub modules: ModuleContext,
    pub sinks: Vec<SinkHandle>,
}

pub(super) async fn start(
    settings: &Settings,
    events: &Events,
    connectors: &Connectors,
    cache: &actix::Addr<CacheActor>,
) -> std::io::Result<Parts> {
    let audit = Arc::new(Audit::start(audit_store(settings)?));
    let registry = match shared_bus(settings, connectors).await? {
        Some((cfg, link)) => {
            tracing::info!(instance = %cfg.instance, "Module bus shared across instances (Redis).");
            ModuleRegistry::new_shared(settings.modules.clone(), events.dispatcher.clone(), cfg, link)
        }
        None => ModuleRegistry::new(settings.modules.clone(), events.dispatcher.clone()),
    };
    let modules = ModuleContext {
        registry,
        servers: Arc::new(connectors.servers.clone()),
        default_server: connectors.default_server.clone(),
        cache: cache.clone(),
        on_action: Some(audit_module_actions(audit.clone())),
    };
    crate::state::module_store::load(&settings.modules.state_file, &modules.registry).await?;
    let sinks = gns3_central_actors::sinks::start_sinks(&settings.sinks, events.dispatcher.as_ref(), &modules.registry)
        .await
        .map_err(std::io::Error::other)?;
    Ok(Parts { audit, modules, sinks })
}

/// The shared bus's settings when `modules.shared`, Redis and the cluster are on
/// (docs/modules.md#several-instances): the cluster's prefix and instance id.
async fn shared_bus(
    settings: &Settings,
    connectors: &Connectors,
) -> std::io::Result<Option<(SharedConfig, gns3_central_actors::redis_link::RedisLink)>> {
    let (true, true, Some(redis)) = (settings.modules.shared, settings.cluster_enabled(), settings.redis_config())
    else {
        return Ok(None);
    };
    let link = gns3_central_actors::redis_link::RedisLink::new(&redis).map_err(std::io::Error::other)?;
    let instance = match &connectors.cluster {
        Some(c) => c.send(GetClusterStatus).await.map(|s| s.instance_id).unwrap_or_default(),
        None => String::new(),
    };
    let instance = if instance.is_empty() { settings.cluster.resolved_instance_id() } else { instance };
    Ok(Some((
        SharedConfig {
            prefix: settings.cache.prefix.clone(),
            instance,
            lease: settings.cluster.lease(),
            timeout: settings.cluster.redis_timeout(),
            resync: std::time::Duration::from_secs(3),
        },
        link,
    )))
}

/// Redis when configured, else the file in `audit.dir`, else memory (with a warning).
fn audit_store(settings: &Settings) -> std::io::Result<crate::observe::audit::store::Store> {
    use crate::observe::audit::spool::Spool;
    use crate::observe::audit::store::{Ring, Store};
    let cap = settings.audit.max_records;
    if let Some(redis) = settings.redis_config() {
        let link = gns3_central_actors::redis_link::RedisLink::new(&redis).map_err(std::io::Error::other)?;
        let spool = Spool::open(&settings.audit.dir, settings.audit.spool_max_mb.saturating_mul(1 << 20))?;
        if !spool.is_persistent() {
            tracing::warn!("No audit.dir: audit records spooled while Redis is unreachable are kept in memory only.");
        }
        return Store::redis(link, &settings.cache.prefix, cap, settings.cluster.redis_timeout(), spool)
            .map_err(std::io::Error::other);
    }
    if !settings.audit.dir.trim().is_empty() {
        return Store::open_file(&settings.audit.dir, cap);
    }
    tracing::warn!("No Redis and no audit.dir: the audit trail is kept in memory only and lost at exit.");
    Ok(Store::Memory(Ring::new(cap)))
}

/// In-process modules' actions go to the audit trail as remote modules' do (`via: "module"`).
fn audit_module_actions(audit: Arc<crate::observe::audit::Audit>) -> gns3_central_actors::modules::handle::ActionHook {
    Arc::new(move |a: gns3_central_actors::modules::handle::ModuleAction| {
        let record = crate::observe::audit::AuditRecord::new(&a.module, "module", "module", a.action).target(
            &a.server,
            Some(a.project_id),
            a.node_id,
        );
        let record = match a.result {
            Ok(cid) => record.correlation((!cid.is_empty()).then_some(cid.as_str())),
            Err(e) => record.failed(&crate::error::ApiError::from(e)),
        };
        audit.record(record);
    })
}
