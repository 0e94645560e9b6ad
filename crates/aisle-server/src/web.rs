//! The dashboard and the demo storefront: single HTML files with their own small scripts and
//! SVG charts, compiled into the binary (no front-end build, no dependencies).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use crate::App;

const DASHBOARD: &str = include_str!("../web/dashboard.html");
const SHOP: &str = include_str!("../web/shop.html");

/// The storefront with the demo key (if any) put where its script reads it. The key is
/// public by design: its `demo` role reaches only the storefront's routes. The dashboard gets
/// no key: its reader types one (or opens `/#key=KEY`).
fn with_key(page: &str, app: &App) -> Html<String> {
    let key = serde_json::to_string(&app.config.demo_key).unwrap_or_else(|_| "null".into());
    Html(page.replace("\"__AISLE_DEMO_KEY__\"", &key))
}

pub async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

pub async fn shop(State(app): State<Arc<App>>) -> Html<String> {
    with_key(SHOP, &app)
}
