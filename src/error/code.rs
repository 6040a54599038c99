//! `Code`: every machine-readable error code the service answers with, in REST error
//! bodies (`{"error":{"code",…}}`) and WebSocket `error` frames. One list, so the codes a
//! client may see are known: docs/api.md#error-codes is tested against `Code::ALL`
//! (`tests::the_docs_list_every_code`). The HTTP status lives with each use (`ApiError::new`),
//! since a few codes pass GNS3's own status through.

use gns3_central_actors::modules::BusError;
use std::fmt;

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*) => {
        /// A stable error code; serialised as its snake_case text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in the order of docs/api.md's table.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as clients see it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    /// 400: the body is not valid JSON; over a WebSocket, a frame that is not JSON
    InvalidJson = "invalid_json",
    /// 400: a body sent without `Content-Type: application/json`
    InvalidContentType = "invalid_content_type",
    /// 400: the body is not a JSON object, does not have the expected shape, or could not be read
    InvalidBody = "invalid_body",
    /// 400: a required field is missing (body or WebSocket frame)
    MissingField = "missing_field",
    /// 400: a body field has the wrong JSON type
    InvalidType = "invalid_type",
    /// 400: a body field the route does not take (the OpenAPI schema's `additionalProperties: false`; `details.field`)
    UnknownField = "unknown_field",
    /// 400: an id that is not a UUID (path, body or frame)
    InvalidId = "invalid_id",
    /// 400: an unknown node or project action
    InvalidAction = "invalid_action",
    /// 400: a query string that does not parse; an audit query out of range (`limit` 1-500)
    InvalidQuery = "invalid_query",
    /// 400: a path segment that does not parse
    InvalidPath = "invalid_path",
    /// 400: `types` or `projects` of `GET /api/v2/events` that name no group, type or project UUID
    InvalidFilter = "invalid_filter",
    /// 400: `limit` outside 1-1000 on the event history or dead letters
    InvalidLimit = "invalid_limit",
    /// 400: `since` is not an event id, is beyond the last event, or leaves more events than can be returned
    InvalidSince = "invalid_since",
    /// 400: `PATCH /api/v2/config`: a bad value (the message names the key)
    InvalidConfig = "invalid_config",
    /// 400: `PATCH /api/v2/config`: a key that does not exist (`details.keys`)
    UnknownKey = "unknown_key",
    /// 400: `PATCH /api/v2/config`: a key that only changes with a restart (`details.restart_required`)
    RestartRequired = "restart_required",
    /// 400: a bus message or module request that is not valid (missing `to`, `type` or `correlation_id`, a bad `ttl` or timeout)
    InvalidMessage = "invalid_message",
    /// 400: a module name that breaks the naming rules ([Modules](modules.md))
    InvalidModuleName = "invalid_module_name",
    /// 400: a passthrough to GNS3's notification streams or WebSockets: use `/ws/gns3/events/` (`details.use`)
    UseEventStream = "use_event_stream",
    /// 401: no credential
    MissingToken = "missing_token",
    /// 401: a malformed, unknown or refused credential (bad JWT signature, missing claim, unknown role; on a module socket, another token than the module's)
    InvalidToken = "invalid_token",
    /// 401: the JWT has expired
    TokenExpired = "token_expired",
    /// 403: the credential's role is too low for the route
    InsufficientRole = "insufficient_role",
    /// 403: the project is outside the credential's projects, or the route covers every project
    ProjectOutOfScope = "project_out_of_scope",
    /// 403: a WebSocket upgrade from a browser origin not allowed (`auth.allowed_origins`)
    OriginNotAllowed = "origin_not_allowed",
    /// 403: a module socket opened with another module's token
    WrongModule = "wrong_module",
    /// 403: a module socket opened with an API or dashboard token
    NotAModuleToken = "not_a_module_token",
    /// 403: a module publishing an event type not named `<module name>.<something>`
    ForbiddenNamespace = "forbidden_namespace",
    /// 403: a passthrough path refused by `passthrough.allow` / `passthrough.deny` (`details.rule`)
    PassthroughDenied = "passthrough_denied",
    /// 403: GNS3 answered 403 (message passed through, `details.gns3_status`)
    Gns3Forbidden = "gns3_forbidden",
    /// 404: GNS3 answered 404: unknown project, node or link id (message passed through)
    NotFound = "not_found",
    /// 404: no GNS3 server of that name is configured
    UnknownServer = "unknown_server",
    /// 404: no such route (or dashboard file)
    UnknownRoute = "unknown_route",
    /// 404: no module of that name is registered
    UnknownModule = "unknown_module",
    /// 404: `GET /api/v2/cluster` on an instance that does not share events through Redis
    NotClustered = "not_clustered",
    /// 405: a known path asked with a method it does not take (`Allow` lists those it does)
    MethodNotAllowed = "method_not_allowed",
    /// 409: GNS3 answered 409 (e.g. a node start without ubridge), message and `details.node` passed through
    Gns3Conflict = "gns3_conflict",
    /// 409: the target module is not connected and the bus refuses (`offline_policy = "refuse"`, or `ttl: 0`)
    ModuleOffline = "module_offline",
    /// 409: a module of that name is already registered
    ModuleExists = "module_exists",
    /// 409: `modules.max_modules` modules are registered already
    TooManyModules = "too_many_modules",
    /// 409: deleting a built-in or in-process module
    BuiltinModule = "builtin_module",
    /// 410: `since` is from another epoch or older than the history kept
    HistoryLost = "history_lost",
    /// 413: a body larger than `http.max_body_bytes`
    BodyTooLarge = "body_too_large",
    /// GNS3's 4xx: GNS3 refused the request with another 4xx (400, 422...), status and message passed through
    Gns3Rejected = "gns3_rejected",
    /// 500: an unexpected failure inside the service (e.g. a cached topology that could not be read back)
    Internal = "internal",
    /// 502: GNS3 answered 5xx
    Gns3Error = "gns3_error",
    /// 502: GNS3 rejected the configured credentials (login, or a 401 after a re-login)
    Gns3AuthFailed = "gns3_auth_failed",
    /// 502: GNS3 sent something that is not its API's answer
    Gns3Protocol = "gns3_protocol",
    /// 503: GNS3 is unreachable (+ `Retry-After`)
    Gns3Unavailable = "gns3_unavailable",
    /// 503: the server's circuit is open after repeated failures (+ `Retry-After`)
    CircuitOpen = "circuit_open",
    /// 503: the server's connector did not answer (restarting after a panic or `reconnect`)
    ConnectorUnavailable = "connector_unavailable",
    /// 503: live events are off (`serve --no-events`)
    EventsDisabled = "events_disabled",
    /// 503: the audit store (Redis) does not answer
    AuditUnavailable = "audit_unavailable",
    /// 503: `websocket.max_sessions` WebSocket sessions are open already
    TooManySessions = "too_many_sessions",
    /// 503: the target module's inbox is full (+ `Retry-After`)
    InboxFull = "inbox_full",
    /// 503: `modules.max_pending_requests` requests already wait for a reply
    TooManyPending = "too_many_pending",
    /// 503: a module's event could not be published (the dispatcher refused it)
    PublishFailed = "publish_failed",
    /// 503: the module's proxy is not running
    ModuleUnavailable = "module_unavailable",
    /// 503: shared bus: Redis, where the bus is, does not answer (+ `Retry-After`)
    BusUnavailable = "bus_unavailable",
    /// 504: no reply to a bus request within its timeout
    ReplyTimeout = "reply_timeout",
    /// WS: a frame that is JSON but not an object with a `type`
    InvalidFrame = "invalid_frame",
    /// WS: a frame field of the wrong type (including a float `request_id`)
    InvalidField = "invalid_field",
    /// WS: an unknown frame `type`
    UnknownType = "unknown_type",
    /// WS: a binary frame
    UnsupportedFrame = "unsupported_frame",
    /// WS: a subscription name or project filter that is not valid
    InvalidSubscription = "invalid_subscription",
    /// WS: more than `websocket.max_subscriptions` names
    TooManySubscriptions = "too_many_subscriptions",
    /// WS: the dispatcher refused the subscription (e.g. `events.max_subscribers` reached)
    SubscribeFailed = "subscribe_failed",
    /// WS: the dispatcher is not running
    EventsUnavailable = "events_unavailable",
    /// WS: node and project actions beyond the session's token bucket (`websocket.actions_per_second`)
    RateLimited = "rate_limited",
    /// WS: a node action without the `operator` role, or a project the session may not see
    Forbidden = "forbidden",
    /// WS: a module's `node_status` could not be read
    NodeStatusFailed = "node_status_failed",
}

impl Code {
    /// The code of this text, if it is one (codes that come from the engine as text).
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl From<&BusError> for Code {
    /// The bus's own codes (`BusError::code`, also used by in-process modules), as the
    /// edge's: one match, so a new bus error does not compile until it has a code here.
    fn from(e: &BusError) -> Code {
        match e {
            BusError::Invalid(_) => Code::InvalidMessage,
            BusError::UnknownModule(_) => Code::UnknownModule,
            BusError::Offline(_) => Code::ModuleOffline,
            BusError::InboxFull(_) => Code::InboxFull,
            BusError::ReplyTimeout { .. } => Code::ReplyTimeout,
            BusError::TooManyPending(_) => Code::TooManyPending,
            BusError::AlreadyRegistered(_) => Code::ModuleExists,
            BusError::TooManyModules(_) => Code::TooManyModules,
            BusError::InvalidName { .. } => Code::InvalidModuleName,
            BusError::Namespace { .. } => Code::ForbiddenNamespace,
            BusError::Publish(_) => Code::PublishFailed,
            BusError::EventsDisabled => Code::EventsDisabled,
            BusError::Unavailable => Code::ModuleUnavailable,
            BusError::BusUnavailable(_) => Code::BusUnavailable,
        }
    }
}

/// So tests and callers can compare with the text they expect: `assert_eq!(e.code, "invalid_id")`.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    #[test]
    fn codes_are_unique_snake_case_and_parse_back() {
        let mut seen = BTreeSet::new();
        for c in Code::ALL {
            let t = c.as_str();
            assert!(seen.insert(t), "{t} listed twice");
            assert!(t.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'), "{t}");
            assert_eq!(Code::parse(t), Some(*c));
        }
        assert_eq!(Code::parse("no_such_code"), None);
        assert_eq!(serde_json::to_string(&Code::InvalidId).unwrap(), "\"invalid_id\"");
    }

    #[test]
    fn bus_errors_keep_their_text() {
        let s = String::new;
        let all = [
            BusError::Invalid(s()),
            BusError::UnknownModule(s()),
            BusError::Offline(s()),
            BusError::InboxFull(s()),
            BusError::ReplyTimeout { to: s(), after: Duration::ZERO },
            BusError::TooManyPending(0),
            BusError::AlreadyRegistered(s()),
            BusError::TooManyModules(0),
            BusError::InvalidName { name: s(), reason: "" },
            BusError::Namespace { module: s(), kind: s() },
            BusError::Publish(s()),
            BusError::EventsDisabled,
            BusError::Unavailable,
            BusError::BusUnavailable(s()),
        ];
        for e in &all {
            assert_eq!(Code::from(e).as_str(), e.code(), "{e:?}");
        }
    }

    #[test]
    fn the_docs_list_every_code() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).expect("docs/api.md");
        let section = docs.split("## Error codes").nth(1).expect("docs/api.md has an '## Error codes' section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let documented: BTreeSet<&str> =
            section.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).collect();
        let known: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let undocumented: Vec<_> = known.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&known).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "docs/api.md#error-codes and error::Code disagree: not in the docs {undocumented:?}; \
             in the docs but not in Code {unknown:?}"
        );
    }
}
