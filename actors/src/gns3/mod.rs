//! Plain async client for the GNS3 controller API, v2 and v3 (usable without actors).
//!
//! `Gns3Client` speaks one server: version detection, v3 login and one re-login on 401,
//! v2 basic auth, and every v2/v3 difference the test-bed notes list (JSON body on v3
//! start, 204 empty bodies, 422 validation errors, the hidden local compute, error body
//! shapes). It knows nothing of retries or circuit breaking: the connector adds those.

pub mod client;
pub mod error;
pub mod forward;
pub mod stream;
pub mod types;

pub use client::{Gns3Client, Gns3ClientConfig};
pub use error::Gns3Error;
pub use forward::{ForwardBody, ForwardReply, ForwardRequest, ReplyBody};
pub use stream::{NotificationStream, StreamEnd};
pub use types::*;
