//! The OpenAPI document, generated from the route annotations and wire types.

use serde_json::{Map, Value, json};
use std::sync::OnceLock;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "feedloop", description = "The self-hosted feedback loop for LLM products."),
    modifiers(&ApiKeyScheme),
    components(schemas(crate::error::ErrorCode, crate::error::ApiError))
)]
struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The base document the routes add their paths to.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The complete document (built once), as JSON: the routes' annotations, with the answers
/// every route shares added ([`add_shared_responses`]) and flattened wire types closed
/// ([`close_flattened_schemas`]). JSON rather than utoipa's types because those do not read
/// every schema they write (`"type": ["string", "null"]`), so the completed document could
/// not go back into them.
pub fn openapi_document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let document = crate::routes::api().split_for_parts().1;
        let mut json = serde_json::to_value(&document).expect("the document serialises");
        add_shared_responses(&mut json);
        close_flattened_schemas(&mut json);
        json
    })
}

/// The error answers that do not come from a handler but from what runs before it, added to
/// every operation they apply to unless its annotation documents them already: the caller
/// checks (401 without a valid key, 403 for a role that may not, 429 past the rate limit), the
/// path and query extractors (400, and 404/422 for a path naming nothing or breaking a rule),
/// and the JSON body extractor (400 malformed, 413 too large, 415 not JSON, 422 invalid field).
fn add_shared_responses(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                continue;
            }
            let secured = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|requirements| {
                    requirements
                        .iter()
                        .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
                });
            let parameters_in = |place: &str| {
                operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == place))
            };
            let (in_path, in_query) = (parameters_in("path"), parameters_in("query"));
            let has_body = operation.get("requestBody").is_some();
            let mut shared: Vec<(&str, &str)> = Vec::new();
            if secured {
                shared.extend([
                    ("401", "no API key, or an unknown or revoked one"),
                    ("403", "the caller's role does not allow this"),
                    ("429", "rate limit exceeded; see Retry-After"),
                ]);
            }
            if in_path {
                shared.extend([
                    ("400", "a malformed path parameter"),
                    ("404", "nothing of that name or id"),
                    ("422", "a path parameter breaks a rule"),
                ]);
            }
            if in_query {
                shared.push(("400", "an unknown or malformed query parameter"));
            }
            if has_body {
                shared.extend([
                    ("400", "the body is not valid JSON"),
                    ("413", "the body is larger than the limit"),
                    ("415", "the body is not application/json"),
                    (
                        "422",
                        "a field is missing, of the wrong type, or breaks a rule",
                    ),
                ]);
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, description) in shared {
                responses.entry(status).or_insert_with(|| {
                    json!({
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                    })
                });
            }
        }
    }
}

/// A wire type that flattens another (`TraceView` is a `TraceBody` and its timestamps) is an
/// `allOf` of the two; when the inner one rejects unknown fields (`additionalProperties:
/// false`), no value can match the `allOf`. Such an `allOf` is replaced by the one object it
/// means: the properties and required fields of all parts, closed to others.
fn close_flattened_schemas(document: &mut Value) {
    let components = document
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    close_all_of(document, &components);
}

fn close_all_of(value: &mut Value, components: &Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                close_all_of(child, components);
            }
            if let Some(merged) = object
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|parts| merge_closed_parts(parts, components))
            {
                object.remove("allOf");
                object.extend(merged);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| close_all_of(item, components)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// The parts of an `allOf` as one closed object, if every part is an object schema with
/// properties and at least one is closed; `None` leaves the `allOf` as it is (a part that is
/// itself composed, say).
fn merge_closed_parts(parts: &[Value], components: &Value) -> Option<Map<String, Value>> {
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut any_closed = false;
    for part in parts {
        let part = resolve(part, components)?;
        let part_properties = part.get("properties")?.as_object()?;
        if part.get("allOf").is_some() || part.get("oneOf").is_some() {
            return None;
        }
        any_closed |= part.get("additionalProperties") == Some(&Value::Bool(false));
        properties.extend(part_properties.clone());
        for name in part
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    if !any_closed {
        return None;
    }
    let mut merged = Map::new();
    merged.insert("type".into(), json!("object"));
    merged.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        merged.insert("required".into(), Value::Array(required));
    }
    merged.insert("additionalProperties".into(), Value::Bool(false));
    Some(merged)
}

/// A schema with its `$ref` (to a component) followed, one level.
fn resolve<'a>(schema: &'a Value, components: &'a Value) -> Option<&'a Value> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => components.get(reference.strip_prefix("#/components/schemas/")?),
        None => Some(schema),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secured_operation_documents_the_caller_checks() {
        let document = openapi_document();
        let operation = &document["paths"]["/api/v1/traces"]["get"];
        for status in ["200", "400", "401", "403", "429"] {
            assert!(
                operation["responses"].get(status).is_some(),
                "GET /api/v1/traces lacks {status}"
            );
        }
        let ingest = &document["paths"]["/api/v1/ingest"]["post"]["responses"];
        for status in ["400", "413", "415", "422"] {
            assert!(
                ingest.get(status).is_some(),
                "POST /api/v1/ingest lacks {status}"
            );
        }
        let health = &document["paths"]["/healthz"]["get"]["responses"];
        assert!(health.get("401").is_none(), "/healthz needs no key");
    }

    #[test]
    fn a_flattened_closed_type_becomes_one_closed_object() {
        let view = &openapi_document()["components"]["schemas"]["TraceView"];
        assert!(view.get("allOf").is_none(), "{view}");
        assert_eq!(view["additionalProperties"], false);
        for field in ["id", "input", "output", "created_at", "updated_at"] {
            assert!(view["properties"].get(field).is_some(), "{field}: {view}");
        }
        let required = view["required"].as_array().unwrap();
        assert!(required.contains(&json!("created_at")), "{view}");
    }
}
