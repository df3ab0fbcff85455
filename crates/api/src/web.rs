//! The web page (`GET /`): one HTML file with its script and style inline,
//! compiled into the binary; it reads the same API any client does.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("../web/index.html");

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
}
