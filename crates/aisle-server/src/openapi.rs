//! `/openapi.json`: the OpenAPI 3.1 document of [`ROUTES`], its schemas and parameters
//! derived from the engine's request and answer types (utoipa), so the document cannot drift
//! from the code. Three rules depend on the running shop and are filled in per request: the
//! event kinds (built-in plus the store's custom kinds, and which of them need an item), the
//! latest event time (now plus the allowed clock skew), and the filter grammar's expansion.

use aisle_engine::Engine;
use aisle_engine::input::{EventIn, ID_MAX_CHARS, ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, needs_item};
use aisle_engine::requests::filter_pattern;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::api::{ROUTES, Reply, Schemas};

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The schema of a path parameter `{name}`: an id.
fn path_parameter(name: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "schema": {"type": "string", "minLength": 1, "maxLength": ID_MAX_CHARS, "pattern": ID_PATTERN},
    })
}

/// Splits the event schema by kind: events of a kind that names a product require `item`.
fn refine_events(schemas: &mut Map<String, Value>, custom_kinds: &[String], latest_ms: i64) {
    let Some(event) = schemas.get(EventIn::name().as_ref()).cloned() else {
        return;
    };
    let mut with_item = Vec::new();
    let mut without_item: Vec<String> = Vec::new();
    for kind in aisle_core::EventKind::BUILTIN {
        if needs_item(kind) {
            with_item.push(kind.to_string());
        } else {
            without_item.push(kind.to_string());
        }
    }
    without_item.extend(custom_kinds.iter().cloned());
    let variant = |kinds: &[String], item_required: bool| {
        let mut v = event.clone();
        v["properties"]["kind"]["enum"] = json!(kinds);
        if item_required {
            if let Some(required) = v["required"].as_array_mut() {
                required.push(json!("item"));
            }
            v["properties"]["item"]["type"] = json!("string");
        }
        v
    };
    // The clock rule: milliseconds up to now plus the allowed skew.
    if let Some(millis) = schemas
        .get_mut(aisle_engine::input::Timestamp::name().as_ref())
        .and_then(|t| t["oneOf"].get_mut(0))
    {
        millis["maximum"] = json!(latest_ms);
    }
    if let Some(text) = schemas
        .get_mut(aisle_engine::input::Timestamp::name().as_ref())
        .and_then(|t| t["oneOf"].get_mut(1))
    {
        text["pattern"] = json!(aisle_engine::input::date_time_pattern(latest_ms));
    }
    let description = event["description"].clone();
    schemas.insert(
        EventIn::name().to_string(),
        json!({
            "description": description,
            "oneOf": [variant(&with_item, true), variant(&without_item, false)],
        }),
    );
}

/// The document for `engine` as it is now.
pub fn document(engine: &Engine) -> Value {
    let mut schemas: Schemas = Vec::new();
    let error = crate::api::schema_of::<ErrorBody>(&mut schemas);
    let error_response = |what: &str| json!({"description": what, "content": {"application/json": {"schema": to_json(&error)}}});
    let mut paths = Map::new();
    for spec in ROUTES {
        let mut parameters: Vec<Value> = (spec.params)().iter().map(to_json).collect();
        for p in &mut parameters {
            // The filter grammar is one rule for the schema and the check.
            if p["name"] == "filter" {
                p["schema"]["pattern"] = json!(filter_pattern());
            }
        }
        let mut rest = spec.path;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            parameters.push(path_parameter(&rest[open + 1..close]));
            rest = &rest[close..];
        }
        let content = match spec.reply {
            Reply::Json(schema) => {
                json!({"application/json": {"schema": to_json(&schema(&mut schemas))}})
            }
            Reply::Html => json!({"text/html": {"schema": {"type": "string"}}}),
            Reply::Metrics => json!({"text/plain": {"schema": {"type": "string"}}}),
        };
        let mut responses = Map::new();
        responses.insert(
            spec.ok.to_string(),
            json!({"description": "Success", "content": content}),
        );
        responses.insert("4XX".into(), error_response("The request was refused"));
        responses.insert(
            "5XX".into(),
            error_response("A fault, or the server is busy"),
        );
        let mut operation = json!({
            "summary": spec.summary,
            "operationId": operation_id(spec.method, spec.path),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = spec.body {
            let schema = to_json(&body(&mut schemas));
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}},
            });
        }
        if spec.method == "POST"
            && spec.path == "/v1/events"
            && let Some(p) = operation["parameters"].as_array_mut()
        {
            p.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Repeat a request safely: the same key and body get the first answer and write nothing; another body is a 422. Keys are kept 24 hours.",
                "schema": {"type": "string", "minLength": 1, "maxLength": ID_MAX_CHARS, "pattern": IDEMPOTENCY_KEY_PATTERN},
            }));
        }
        match spec.role {
            Some(role) => {
                operation["security"] = json!([{"apiKey": []}]);
                operation["x-aisle-role"] = json!(role.name());
                if spec.storefront {
                    operation["x-aisle-storefront"] = json!(true);
                }
            }
            None => operation["security"] = json!([]),
        }
        let entry = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        entry[spec.method.to_lowercase()] = operation;
    }
    let mut components = Map::new();
    for (name, schema) in schemas {
        components.entry(name).or_insert_with(|| to_json(&schema));
    }
    refine_events(
        &mut components,
        &engine.custom_kinds(),
        engine.latest_event_ms(),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "aisle", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Search, recommendations and behaviour analytics for an online shop."},
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    })
}

/// `get_v1_recommend_session` and the like: unique, stable, valid identifiers for generated
/// clients.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        let part = part.trim_start_matches('{').trim_end_matches('}');
        id.extend(
            part.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    if path == "/" {
        id.push_str("_root");
    }
    id
}

/// Every error: `{"error": {"status": 400, "message": "..."}}`.
#[derive(serde::Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The status and the message of an error.
#[derive(serde::Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person.
    pub message: String,
}
