//! The in-process module API, for modules written in Rust: `ModuleContext::module(name)`
//! gives a `ModuleHandle` (registering the module as `in_process` the first time), with
//! the simplified interface of the original service: node status, node and project
//! actions, topology and a network summary (reads come from the cache, GNS3 only on a
//! miss, and what is read is cached), event subscriptions with handlers (retried, then
//! dead-lettered; panics caught and counted), and the bus (`send`, `broadcast`,
//! `request`, `publish`, and `on_message` to receive).
//!
//! Handlers run on the actix arbiter that registers them and need not be `Send`.

use actix::prelude::*;
use futures_util::future::join_all;
use futures_util::FutureExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::envelope::{check_event_namespace, BusMessage, BROADCAST};
use super::error::{BusError, ModuleError};
use super::messages::{Attach, SetFilter};
use super::registry::{ModuleRegistry, ModuleSlot, Routed};
use super::runner::{EventRunner, MessageInbox};
use super::stats::ModuleKind;
use super::summary::{summarize, NetworkSummary};
use crate::cache::{CacheActor, GetProjectTopology, GetProjects, ProjectList, PutProjectTopology, PutProjects};
use crate::connector::{
    ConnectorError, FetchTopology, GetNode, GetServerStatus, Gns3Connector, NodeActionOutcome, ProjectActionOutcome,
    RunNodeAction, RunProjectAction,
};
use crate::dispatcher::{Publish, Subscribe, SubscriberId, SubscriptionFilter};
use crate::events::{Event, NewEvent, Source};
use crate::gns3::{Node, NodeAction, ProjectAction, ServerTopology};

/// What a handler returns: `Err` is retried, then dead-lettered.
pub type HandlerResult = Result<(), String>;

/// An action an in-process module ran, as reported to `ModuleContext::on_action`.
#[derive(Debug, Clone)]
pub struct ModuleAction {
    pub module: String,
    /// `node.start`, `project.close`...
    pub action: String,
    pub server: String,
    pub project_id: Uuid,
    pub node_id: Option<Uuid>,
    /// The outcome: its correlation id, or why it failed.
    pub result: Result<String, ConnectorError>,
}

/// Where in-process modules' actions are reported (the service's audit trail).
pub type ActionHook = Arc<dyn Fn(ModuleAction) + Send + Sync>;

/// Everything a module can reach; cheap to clone (shared by the edge and the handles).
#[derive(Clone)]
pub struct ModuleContext {
    pub registry: Arc<ModuleRegistry>,
    pub servers: Arc<BTreeMap<String, Addr<Gns3Connector>>>,
    pub default_server: String,
    pub cache: Addr<CacheActor>,
    /// Told of every action an in-process module runs (`None`: logged only).
    pub on_action: Option<ActionHook>,
}

impl ModuleContext {
    /// The handle of an in-process module, registering it on first use.
    pub fn module(&self, name: &str) -> Result<ModuleHandle, ModuleError> {
        let slot = match self.registry.get(name) {
            Some(s) if s.kind != ModuleKind::Remote => s,
            Some(_) => return Err(BusError::AlreadyRegistered(name.to_owned()).into()),
            None => self.registry.register(name, ModuleKind::InProcess, None)?,
        };
        Ok(ModuleHandle { ctx: self.clone(), slot })
    }

    fn connector(&self, server: Option<&str>) -> Result<(String, &Addr<Gns3Connector>), ModuleError> {
        let name = server.unwrap_or(&self.default_server);
        let addr = self.servers.get(name).ok_or_else(|| ModuleError::UnknownServer(name.to_owned()))?;
        Ok((name.to_owned(), addr))
    }

    /// One server's topology (or one project of it), from the cache when it holds every
    /// part, else from GNS3 (and then cached).
    pub async fn topology(&self, server: Option<&str>, project: Option<Uuid>) -> Result<ServerTopology, ModuleError> {
        let (name, addr) = self.connector(server)?;
        if let Some((fetched_at, projects)) = self.cached(&name, project).await {
            let status = addr.send(GetServerStatus).await.map_err(|_| ConnectorError::Mailbox(name.clone()))?;
            return Ok(ServerTopology {
                server: name,
                gns3_version: status.gns3_version,
                api_version: status.api_version,
                fetched_at,
                projects,
            });
        }
        let started = Instant::now();
        let t = addr
            .send(FetchTopology { project_id: project })
            .await
            .map_err(|_| ConnectorError::Mailbox(name.clone()))??;
        for p in &t.projects {
            self.cache.do_send(PutProjectTopology::new(&name, p.clone()).fetched_since(started));
        }
        if project.is_none() {
            let list = ProjectList {
                fetched_at: t.fetched_at,
                projects: t.projects.iter().map(|p| p.project.clone()).collect(),
            };
            self.cache.do_send(PutProjects::new(&name, list).fetched_since(started));
        }
        Ok(t)
    }

    async fn cached(
        &self,
        server: &str,
        project: Option<Uuid>,
    ) -> Option<(chrono::DateTime<chrono::Utc>, Vec<crate::gns3::ProjectTopology>)> {
        let get = |project_id| GetProjectTopology { server: server.to_owned(), project_id };
        match project {
            Some(id) => Some((chrono::Utc::now(), vec![self.cache.send(get(id)).await.ok()??])),
            None => {
                let list = self.cache.send(GetProjects { server: server.to_owned() }).await.ok()??;
                let parts = join_all(list.projects.iter().map(|p| self.cache.send(get(p.project_id)))).await;
                let projects = parts.into_iter().map(|r| r.ok().flatten()).collect::<Option<Vec<_>>>()?;
                Some((list.fetched_at, projects))
            }
        }
    }

    /// Projects, nodes per status and type, links, per server; unreadable servers listed.
    pub async fn network_summary(&self) -> NetworkSummary {
        let reads =
            join_all(self.servers.keys().map(|s| async move { (s.clone(), self.topology(Some(s), None).await) })).await;
        let mut ok = Vec::new();
        let mut unavailable = BTreeMap::new();
        for (server, r) in reads {
            match r {
                Ok(t) => ok.push(t),
                Err(e) => {
                    unavailable.insert(server, e.to_string());
                }
            }
        }
        summarize(&ok, unavailable)
    }

    /// A node as the cache (else GNS3) knows it.
    pub async fn node(&self, server: Option<&str>, project: Uuid, node: Uuid) -> Result<Node, ModuleError> {
        let (name, addr) = self.connector(server)?;
        let cached =
            self.cache.send(GetProjectTopology { server: name.clone(), project_id: project }).await.ok().flatten();
        if let Some(t) = cached {
            return t
                .nodes
                .into_iter()
                .find(|n| n.node_id == node)
                .ok_or_else(|| ModuleError::NotFound(format!("node {node} is not in project {project}")));
        }
        Ok(addr
            .send(GetNode { project_id: project, node_id: node })
            .await
            .map_err(|_| ConnectorError::Mailbox(name))??)
    }
}

/// One in-process module's view of the service. Cheap to clone; `Send`.
#[derive(Clone)]
pub struct ModuleHandle {
    ctx: ModuleContext,
    slot: Arc<ModuleSlot>,
}

impl ModuleHandle {
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    pub fn slot(&self) -> &Arc<ModuleSlot> {
        &self.slot
    }

    /// The node's status (`started`, `stopped`, `suspended`...).
    pub async fn node_status(&self, server: Option<&str>, project: Uuid, node: Uuid) -> Result<String, ModuleError> {
        let n = self.ctx.node(server, project, node).await?;
        Ok(n.status.unwrap_or_else(|| "unknown".into()))
    }

    /// Runs a node action; the outcome's `correlation_id` is on the events it causes.
    pub async fn node_action(
        &self,
        server: Option<&str>,
        project: Uuid,
        node: Uuid,
        action: NodeAction,
    ) -> Result<NodeActionOutcome, ModuleError> {
        let (name, addr) = self.ctx.connector(server)?;
        self.slot.stats.actions.fetch_add(1, Relaxed);
        let r = addr.send(RunNodeAction { project_id: project, node_id: node, action }).await;
        let r = r.map_err(|_| ConnectorError::Mailbox(name.clone()))?;
        self.report(format!("node.{action}"), &name, project, Some(node), r.as_ref().map(|o| o.correlation_id.clone()));
        Ok(r?)
    }

    pub async fn project_action(
        &self,
        server: Option<&str>,
        project: Uuid,
        action: ProjectAction,
    ) -> Result<ProjectActionOutcome, ModuleError> {
        let (name, addr) = self.ctx.connector(server)?;
        self.slot.stats.actions.fetch_add(1, Relaxed);
        let r = addr.send(RunProjectAction { project_id: project, action }).await;
        let r = r.map_err(|_| ConnectorError::Mailbox(name.clone()))?;
        self.report(format!("project.{action}"), &name, project, None, r.as_ref().map(|o| o.correlation_id.clone()));
        Ok(r?)
    }

    pub async fn topology(&self, server: Option<&str>, project: Option<Uuid>) -> Result<ServerTopology, ModuleError> {
        self.ctx.topology(server, project).await
    }

    pub async fn network_summary(&self) -> NetworkSummary {
        self.ctx.network_summary().await
    }

    /// Runs `handler` on every event matching `names` (the dashboard's subscription
    /// names: groups, types, globs). Returns the dispatcher subscriber id.
    pub async fn subscribe<N, S, F, Fut>(&self, names: N, handler: F) -> Result<SubscriberId, ModuleError>
    where
        N: IntoIterator<Item = S>,
        S: AsRef<str>,
        F: Fn(Arc<Event>) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        let filter = SubscriptionFilter::new(names, []).map_err(|e| BusError::Invalid(e.to_string()))?;
        let d = self.ctx.registry.dispatcher().cloned().ok_or(BusError::EventsDisabled)?;
        let runner = EventRunner {
            module: Arc::from(self.name()),
            handler: Rc::new(move |e| handler(e).boxed_local()),
            registry: self.ctx.registry.clone(),
            stats: self.slot.stats.clone(),
        }
        .start();
        let mut names_now = self.slot.stats.snapshot().subscriptions;
        names_now.extend(filter.names().iter().cloned());
        self.slot.stats.set_subscriptions(names_now);
        let msg = Subscribe { label: format!("module:{}", self.name()), filter, sink: runner.recipient().into() };
        let id = d.send(msg).await.map_err(|_| BusError::EventsDisabled)?;
        Ok(id.map_err(|e| BusError::Publish(e.to_string()))?)
    }

    /// Receives the module's bus messages with `handler` (queued ones first); for a
    /// request, `Ok(Some(answer))` is sent back as the reply.
    pub async fn on_message<F, Fut>(&self, handler: F) -> Result<(), ModuleError>
    where
        F: Fn(Arc<BusMessage>) -> Fut + 'static,
        Fut: Future<Output = Result<Option<Value>, String>> + 'static,
    {
        let session = Uuid::new_v4();
        let inbox = MessageInbox {
            module: Arc::from(self.name()),
            handler: Rc::new(move |m| handler(m).boxed_local()),
            registry: self.ctx.registry.clone(),
            stats: self.slot.stats.clone(),
            session,
            proxy: self.slot.addr.clone(),
        }
        .start();
        let attach = Attach { session, link: inbox.recipient() };
        self.slot.addr.send(attach).await.map_err(|_| BusError::Unavailable)??;
        // Not a filter of events: an in-process module subscribes with `subscribe`.
        self.slot.addr.do_send(SetFilter(SubscriptionFilter::default()));
        Ok(())
    }

    fn message(&self, to: &str, kind: &str, payload: Value) -> Result<BusMessage, BusError> {
        let mut m = BusMessage::new(self.name(), to, kind, payload);
        m.ttl = self.ctx.registry.config().ttl(None).map_err(BusError::Invalid)?.as_millis() as u64;
        Ok(m)
    }

    pub fn send(&self, to: &str, kind: &str, payload: Value) -> Result<Routed, BusError> {
        self.ctx.registry.route(self.message(to, kind, payload)?)
    }

    /// Sends a fully built message (its `from` is set to this module).
    pub fn send_message(&self, mut msg: BusMessage) -> Result<Routed, BusError> {
        msg.from = self.name().to_owned();
        self.ctx.registry.route(msg)
    }

    pub fn broadcast(&self, kind: &str, payload: Value) -> Result<Routed, BusError> {
        self.ctx.registry.route(self.message(BROADCAST, kind, payload)?)
    }

    pub async fn request(
        &self,
        to: &str,
        kind: &str,
        payload: Value,
        timeout: Duration,
    ) -> Result<BusMessage, BusError> {
        self.ctx.registry.request(self.message(to, kind, payload)?, timeout).await
    }

    /// Publishes an event of this module's own namespace (`<name>.<something>`).
    pub async fn publish(&self, kind: &str, data: Value) -> Result<(), BusError> {
        check_event_namespace(self.name(), kind)?;
        let d = self.ctx.registry.dispatcher().ok_or(BusError::EventsDisabled)?;
        let event = NewEvent {
            kind: kind.to_owned(),
            server: self.ctx.default_server.clone(),
            project_id: None,
            node_id: None,
            timestamp: chrono::Utc::now(),
            correlation_id: None,
            source: Source::Module,
            data,
        };
        d.send(Publish(event))
            .await
            .map_err(|_| BusError::EventsDisabled)?
            .map_err(|e| BusError::Publish(e.to_string()))?;
        self.slot.stats.events_published.fetch_add(1, Relaxed);
        Ok(())
    }
}

impl ModuleHandle {
    /// Every action this module runs passes here: logged, and given to the context's hook.
    fn report(
        &self,
        action: String,
        server: &str,
        project_id: Uuid,
        node_id: Option<Uuid>,
        result: Result<String, &ConnectorError>,
    ) {
        let module = self.name();
        let cid = result.as_ref().map(String::as_str).unwrap_or("");
        tracing::info!(module, action = %action, server, correlation_id = cid, "Module action.");
        if let Some(hook) = &self.ctx.on_action {
            let result = result.map_err(Clone::clone);
            hook(ModuleAction {
                module: module.to_owned(),
                action,
                server: server.to_owned(),
                project_id,
                node_id,
                result,
            });
        }
    }
}
