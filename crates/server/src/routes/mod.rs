//! The route table. Each submodule holds the handlers of one resource.

mod clusters;
mod datasets;
mod gateway;
mod ingest;
mod keys;
mod lessons;
mod meta;
mod otlp;
mod privacy;
mod read;
mod review;
pub(crate) mod search;
mod signals;
mod taxonomy;

mod analytics;
mod audit;
mod auth;
mod members;
mod tokens;
mod webhooks;

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The API's routes with their OpenAPI description.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(ingest::post_traces, read::list_traces))
        .routes(routes!(read::get_trace))
        .routes(routes!(ingest::post_feedback, read::list_feedback))
        .routes(routes!(ingest::post_ingest))
        .routes(routes!(read::get_session))
        .routes(routes!(search::search))
        .routes(routes!(search::similar))
        .routes(routes!(taxonomy::get_taxonomy))
        .routes(routes!(taxonomy::add_category))
        .routes(routes!(taxonomy::retire_category))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(keys::rotate_key))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(members::list_members, members::add_member))
        .routes(routes!(members::change_member, members::remove_member))
        .routes(routes!(audit::list_audit))
        .routes(routes!(tokens::create_feedback_token))
        .routes(routes!(lessons::list_lessons, lessons::create_lesson))
        .routes(routes!(lessons::get_lesson, lessons::change_lesson))
        .routes(routes!(lessons::lesson_versions))
        .routes(routes!(lessons::lesson_effect))
        .routes(routes!(lessons::from_feedback))
        .routes(routes!(lessons::propose))
        .routes(routes!(lessons::get_settings, lessons::put_settings))
        .routes(routes!(lessons::repeat_mistakes))
        .routes(routes!(lessons::context))
        .routes(routes!(signals::post_signals))
        .routes(routes!(signals::get_settings, signals::put_settings))
        .routes(routes!(signals::recompute))
        .routes(routes!(privacy::get_settings, privacy::put_settings))
        .routes(routes!(privacy::run_retention))
        .routes(routes!(privacy::erase, privacy::list_erasures))
        .routes(routes!(clusters::list_clusters))
        .routes(routes!(clusters::get_cluster))
        .routes(routes!(clusters::refresh_clusters))
        .routes(routes!(datasets::list_datasets, datasets::create_dataset))
        .routes(routes!(datasets::get_dataset))
        .routes(routes!(datasets::add_items, datasets::list_items))
        .routes(routes!(datasets::from_feedback))
        .routes(routes!(datasets::create_version, datasets::list_versions))
        .routes(routes!(datasets::export))
        .routes(routes!(datasets::export_manifest))
        .routes(routes!(meta::stats))
        .routes(routes!(meta::project))
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::readyz))
        .routes(routes!(review::list_queues, review::create_queue))
        .routes(routes!(
            review::get_queue,
            review::update_queue,
            review::delete_queue
        ))
        .routes(routes!(review::list_items, review::enqueue))
        .routes(routes!(review::item_counts))
        .routes(routes!(review::get_item))
        .routes(routes!(review::item_history))
        .routes(routes!(review::post_action))
        .routes(routes!(review::reserve_next))
        .routes(routes!(review::agreement))
        .routes(routes!(analytics::feedback))
        .routes(routes!(analytics::compare_sets))
        .routes(routes!(analytics::alerts))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::deliveries))
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    api.route("/api/v1/openapi.json", axum::routing::get(meta::openapi_json))
        .route("/metrics", axum::routing::get(meta::metrics))
        .route(
            "/v1/chat/completions",
            axum::routing::post(gateway::chat_completions),
        )
        .route("/v1/models", axum::routing::get(gateway::models))
        .route("/v1/traces", axum::routing::post(otlp::export_traces))
        .fallback(web_asset)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::permissions::check_permission,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::request_timeout,
        ))
        .layer(axum::middleware::from_fn(crate::access::public_key_cors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::limit_in_flight,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::analytics::metrics::track_requests,
        ))
        .layer(CatchPanicLayer::custom(|_| internal_error()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
}

/// The browser side (UI, widget, demo page) for any path no API route takes.
async fn web_asset(request: Request<axum::body::Body>) -> Response {
    use axum::http::{Method, header};
    let asset = matches!(*request.method(), Method::GET | Method::HEAD)
        .then(|| feedloop_web::lookup(request.uri().path()))
        .flatten();
    let Some(asset) = asset else {
        return not_found().await.into_response();
    };
    let headers = request.headers();
    let html = asset.content_type.starts_with("text/html");
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, asset.content_type)
        .header(header::ETAG, asset.etag)
        // Revalidated on every use (the ETag makes that a 304): a new binary serves new files.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::VARY, "Accept-Encoding")
        .header("X-Content-Type-Options", "nosniff");
    if html {
        response = response
            .header(
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            )
            .header(header::X_FRAME_OPTIONS, "DENY");
    }
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    if not_modified {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(axum::body::Body::empty())
            .expect("static headers are valid");
    }
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next() == Some("gzip") && parts.all(|param| param != "q=0")
        });
    let body: &'static [u8] = if gzip {
        response = response.header(header::CONTENT_ENCODING, "gzip");
        asset.gzip
    } else {
        asset.bytes
    };
    response
        .body(axum::body::Body::from(body))
        .expect("static headers are valid")
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::RouteNotFound,
        "no such route; see /api/v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take this method",
    )
}

fn internal_error() -> Response {
    tracing::error!("a handler panicked");
    let mut response =
        ApiError::new(ErrorCode::Internal, "internal error; see the server log").into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
