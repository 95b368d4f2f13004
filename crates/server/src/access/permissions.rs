//! The permission of every route, in one table, checked before the handler runs: a caller
//! without the permission gets 401/403 before its body is read or parsed (so a forbidden caller
//! learns nothing from validation errors and cannot make the server parse a large body).
//! Handlers still call `require` with the same permission; this is the first wall.
//!
//! Deliberate choices: `POST /api/v1/context` is `Ingest` (apps call it before each LLM call and
//! it records an injection); feedback and signals are `Feedback` (ingest keys, public keys,
//! feedback tokens, reviewers); queue definitions are settings (`Admin`) while working their
//! items is `Review`; dataset exports are `Review` (they copy data out); the audit log, keys,
//! people, privacy settings, retention runs and erasure are `Admin`; the taxonomy (its names
//! only) is read by any caller, public keys and feedback tokens included, for the widget.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use feedloop_core::auth::Permission;

use crate::AppState;
use crate::extract::ProjectKey;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// No credentials (health, sign-in).
    Open,
    /// A session cookie, checked by the handler (me, logout).
    Session,
    /// Any authenticated caller of the project.
    Authenticated,
    Needs(Permission),
}

/// The requirement of a route (its method and path template); `None` for routes outside
/// `/api/v1` and for routes this table does not know, which then rely on their handler alone.
pub fn requirement(method: &Method, path: &str) -> Option<Requirement> {
    use Permission::{Admin, Feedback, Ingest, Read, Review};
    use Requirement::{Authenticated, Needs, Open, Session};
    if !path.starts_with("/api/v1/") && !matches!(path, "/healthz" | "/readyz") {
        // The gateway, OTLP and /metrics: their handlers authenticate (or are open).
        return None;
    }
    let requirement = match (method.as_str(), path) {
        (_, "/healthz" | "/readyz" | "/api/v1/openapi.json" | "/api/v1/auth/login") => Open,
        (_, "/api/v1/auth/me" | "/api/v1/auth/logout") => Session,
        // Every caller: the widget shows the taxonomy's reasons with a public key or a token.
        (_, "/api/v1/project") | ("GET", "/api/v1/taxonomy") => Authenticated,
        // What apps write.
        ("POST", "/api/v1/traces" | "/api/v1/ingest" | "/api/v1/context") => Needs(Ingest),
        ("POST", "/api/v1/feedback-tokens") => Needs(Ingest),
        ("POST", "/api/v1/feedback" | "/api/v1/signals") => Needs(Feedback),
        // Reads. Search and compare are POSTs that change nothing.
        ("GET", _) if path == "/api/v1/datasets/{name}/export" => Needs(Review),
        ("GET", "/api/v1/keys" | "/api/v1/members" | "/api/v1/audit" | "/api/v1/erasure") => {
            Needs(Admin)
        }
        ("GET", _) => Needs(Read),
        ("POST", "/api/v1/search" | "/api/v1/analytics/compare") => Needs(Read),
        // Review work: lessons, datasets, queue items, cluster refresh.
        (
            "POST",
            "/api/v1/lessons" | "/api/v1/lessons/from-feedback" | "/api/v1/lessons/propose",
        )
        | ("PATCH", "/api/v1/lessons/{id}") => Needs(Review),
        (
            "POST",
            "/api/v1/datasets"
            | "/api/v1/datasets/{name}/items"
            | "/api/v1/datasets/{name}/items/from-feedback"
            | "/api/v1/datasets/{name}/versions",
        ) => Needs(Review),
        (
            "POST",
            "/api/v1/queues/{queue}/items"
            | "/api/v1/queues/{queue}/items/{item}/actions"
            | "/api/v1/queues/{queue}/reserve",
        ) => Needs(Review),
        ("POST", "/api/v1/clusters/refresh") => Needs(Review),
        // Settings, keys, people, deletions.
        ("PUT", "/api/v1/loop/settings" | "/api/v1/signals/settings") => Needs(Admin),
        ("POST", "/api/v1/signals/recompute") => Needs(Admin),
        ("POST" | "PUT" | "DELETE", "/api/v1/queues" | "/api/v1/queues/{queue}") => Needs(Admin),
        ("POST" | "DELETE", "/api/v1/webhooks" | "/api/v1/webhooks/{id}") => Needs(Admin),
        (
            "POST" | "DELETE",
            "/api/v1/taxonomy/categories" | "/api/v1/taxonomy/categories/{name}",
        ) => Needs(Admin),
        ("POST" | "DELETE", "/api/v1/keys" | "/api/v1/keys/{id}" | "/api/v1/keys/{id}/rotate") => {
            Needs(Admin)
        }
        ("POST" | "PUT" | "DELETE", "/api/v1/members" | "/api/v1/members/{user_id}") => {
            Needs(Admin)
        }
        ("PUT", "/api/v1/privacy/settings") => Needs(Admin),
        ("POST", "/api/v1/privacy/retention/run" | "/api/v1/erasure") => Needs(Admin),
        _ => return None,
    };
    Some(requirement)
}

/// Authenticates and checks the route's permission before the handler; the caller is left in
/// the request's extensions for the handler's [`ProjectKey`] extractor.
pub async fn check_permission(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(path) = request.extensions().get::<MatchedPath>() else {
        return next.run(request).await;
    };
    let permission = match requirement(request.method(), path.as_str()) {
        None | Some(Requirement::Open | Requirement::Session) => return next.run(request).await,
        Some(Requirement::Authenticated) => None,
        Some(Requirement::Needs(permission)) => Some(permission),
    };
    let (mut parts, body) = request.into_parts();
    let key = match ProjectKey::from_request_parts(&mut parts, &state).await {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    if let Some(permission) = permission
        && let Err(error) = key.require(permission)
    {
        return error.into_response();
    }
    parts.extensions.insert(key);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_outside_the_json_api_are_left_to_their_handlers() {
        for path in [
            "/metrics",
            "/v1/models",
            "/v1/chat/completions",
            "/v1/traces",
        ] {
            assert_eq!(requirement(&Method::GET, path), None, "{path}");
            assert_eq!(requirement(&Method::POST, path), None, "{path}");
        }
        assert_eq!(
            requirement(&Method::GET, "/api/v1/openapi.json"),
            Some(Requirement::Open)
        );
        assert_eq!(
            requirement(&Method::GET, "/api/v1/traces"),
            Some(Requirement::Needs(Permission::Read))
        );
        assert_eq!(
            requirement(&Method::GET, "/api/v1/datasets/{name}/export"),
            Some(Requirement::Needs(Permission::Review))
        );
    }

    #[test]
    fn the_widget_reads_the_taxonomy_with_any_credential_but_changes_it_only_as_admin() {
        assert_eq!(
            requirement(&Method::GET, "/api/v1/taxonomy"),
            Some(Requirement::Authenticated)
        );
        assert_eq!(
            requirement(&Method::POST, "/api/v1/taxonomy/categories"),
            Some(Requirement::Needs(Permission::Admin))
        );
    }
}
