//! The passthrough through the connector (`Forward`): any GNS3 call a consumer makes on
//! `/api/v2/servers/{server}/gns3/{path}` runs here, behind the same circuit breaker, call
//! statistics (`passthrough`) and connection tracking as the connector's own calls.
//!
//! Retries: only idempotent reads (`GET`/`HEAD` without a body) are retried, and only when
//! the connection failed (never after a timeout), as `read` does; every other call is sent
//! once. A GNS3 error status becomes `ConnectorError::Gns3` with GNS3's body in
//! `details.gns3_body`, so the edge maps it like every other route's.

use actix::prelude::*;
use awc::http::Method;
use serde_json::json;
use std::cell::RefCell;

use super::core::ConnectorCore;
use super::error::ConnectorError;
use super::Gns3Connector;
use crate::gns3::forward::{ForwardBody, ForwardReply, ForwardRequest, Forwarded};
use crate::gns3::Gns3Error;

/// Forwards one consumer call to the server's own API.
#[derive(Message, Debug)]
#[rtype(result = "Result<ForwardReply, ForwardError>")]
pub struct Forward(pub ForwardRequest);

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The consumer's request body broke off or stalled (not GNS3's fault: the breaker is
    /// not told).
    #[error("{0}")]
    ClientBody(String),
}

impl ConnectorCore {
    pub async fn forward(&self, req: ForwardRequest) -> Result<ForwardReply, ForwardError> {
        let ForwardRequest { head, body } = req;
        let idempotent =
            (head.method == Method::GET || head.method == Method::HEAD) && matches!(body, ForwardBody::Empty);
        let body = RefCell::new(Some(body));
        let head = &head;
        let outcome = self
            .with_retries(
                "passthrough",
                |c| {
                    // Taken once: only an empty body is ever retried.
                    let b = body.borrow_mut().take().unwrap_or(ForwardBody::Empty);
                    async move { c.forward(head, b).await }
                },
                |e| idempotent && e.is_transport() && !matches!(e, Gns3Error::Timeout(_)),
            )
            .await?;
        match outcome {
            Forwarded::Reply(r) => Ok(r),
            Forwarded::Refused { status, message, body } => {
                Err(ConnectorError::Gns3 { status, message, details: Some(json!({ "gns3_body": body })) }.into())
            }
            Forwarded::ClientBodyFailed(why) => Err(ForwardError::ClientBody(why)),
        }
    }
}

impl Handler<Forward> for Gns3Connector {
    type Result = ResponseActFuture<Self, Result<ForwardReply, ForwardError>>;
    fn handle(&mut self, msg: Forward, _: &mut Self::Context) -> Self::Result {
        let core = self.core.clone();
        Box::pin(async move { core.forward(msg.0).await }.into_actor(self))
    }
}
