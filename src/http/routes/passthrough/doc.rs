//! The passthrough in the OpenAPI document: one route with a free path, one operation per
//! method (each its own `operationId`), every status it can answer. These functions are
//! never mounted: `super::passthrough` serves every method.

/// Generates the documented operation for one method.
macro_rules! passthrough_doc {
    ($name:ident, $method:ident, $summary:literal $(, $body:tt)?) => {
        #[doc = $summary]
        #[utoipa::path($method, path = "/api/v2/servers/{server}/gns3/{path}", tag = "gns3 passthrough",
            operation_id = stringify!($name),
            description = "Forwards the call (method, query string, body, and the headers `Accept`, \
                `Accept-Language`, `Content-Type`, `Content-Encoding`, `Content-Disposition`, `If-*` and `Range`) \
                to the server's own API, `/v2/{path}` or `/v3/{path}` (`X-Gns3-Api` says which), with the \
                hub's GNS3 credentials, through the server's connector: its timeout, circuit breaker, and \
                retries for `GET`/`HEAD` without a body. Bodies stream both ways. `GET`/`HEAD` need a viewer, \
                other methods an operator; a project-scoped credential reaches only `projects/{its id}/...` \
                and reads outside projects; every call but a `GET` is in the audit trail. GNS3's \
                notification streams are refused (`use_event_stream`): use `/ws/gns3/events/`. \
                See docs/api.md, section GNS3 passthrough.",
            params(("server" = String, Path, description = "Configured server name", example = "default"),
                   ("path" = String, Path, description = "The GNS3 path below `/v2/` or `/v3/`, slashes \
                        included as they are (an encoded `/`, `.` or `..` segment is refused)",
                        example = "projects")),
            $(request_body(description = "Passed on to GNS3 as it is (optional)", content($body)),)?
            responses(
                (status = "2XX", description = "GNS3's answer, status, headers and body as GNS3 sent them",
                    content(("*/*")),
                    headers(("X-Gns3-Api" = String, description = "The API that answered: `v2` or `v3`"))),
                (status = "3XX", description = "GNS3's redirect, passed on"),
                (status = 400, description = "A path segment that is ambiguous (`invalid_path`), a notification \
                    stream or WebSocket (`use_event_stream`), a body that broke off (`invalid_body`), or \
                    GNS3's 400 (`gns3_rejected`)", body = crate::error::ErrorBody),
                // 401 (with `WWW-Authenticate`) comes from `openapi::common`, as on every route.
                (status = 403, description = "The role is too low (`insufficient_role`), a project out of the \
                    credential's scope (`project_out_of_scope`), a path the configuration refuses \
                    (`passthrough_denied`), or GNS3's 403 (`gns3_forbidden`)", body = crate::error::ErrorBody),
                (status = 404, description = "No such server (`unknown_server`), or GNS3's 404 (`not_found`)",
                    body = crate::error::ErrorBody),
                (status = 405, description = "GNS3's 405 (`gns3_rejected`)", body = crate::error::ErrorBody),
                (status = 409, description = "GNS3's 409 (`gns3_conflict`)", body = crate::error::ErrorBody),
                (status = 422, description = "GNS3's 422 (`gns3_rejected`, v3)", body = crate::error::ErrorBody),
                (status = "4XX", description = "Another 4xx of GNS3's (405, 413...), passed on \
                    (`gns3_rejected`, `details.gns3_body` holds GNS3's own body)", body = crate::error::ErrorBody),
                (status = 500, description = "The passthrough rules could not be read (`internal`)",
                    body = crate::error::ErrorBody),
                (status = 502, description = "GNS3 answered 5xx (`gns3_error`), refused the hub's credentials \
                    (`gns3_auth_failed`) or misbehaved (`gns3_protocol`)", body = crate::error::ErrorBody),
                (status = 503, description = "GNS3 unreachable (`gns3_unavailable`), circuit open \
                    (`circuit_open`) or the connector restarting (`connector_unavailable`)",
                    body = crate::error::ErrorBody,
                    headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))))]
        #[allow(dead_code)]
        pub fn $name() {}
    };
}

passthrough_doc!(gns3_get, get, "A GNS3 read (`GET`), passed through");
passthrough_doc!(gns3_head, head, "A GNS3 `HEAD`, passed through");
passthrough_doc!(gns3_post, post, "A GNS3 `POST`, passed through", ("*/*"));
passthrough_doc!(gns3_put, put, "A GNS3 `PUT`, passed through", ("*/*"));
passthrough_doc!(gns3_patch, patch, "A GNS3 `PATCH`, passed through", ("*/*"));
passthrough_doc!(gns3_delete, delete, "A GNS3 `DELETE`, passed through", ("*/*"));
