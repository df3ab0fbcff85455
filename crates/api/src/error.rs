//! Errors: what fails when the server starts ([`StartError`]), and what
//! a request gets back ([`ApiError`]: a status and a JSON body
//! `{"error": "..."}` whose sentence says what to do).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the API socket's directory {path}: {source}")]
    SocketDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another process is serving the API socket {0} (is a daemon already running? stop it, or set api.socket to another path)"
    )]
    SocketInUse(PathBuf),
    #[error("cannot listen on the API socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} for the API: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("api.listen needs a token: set api.token_file (it is created if missing)")]
    NoToken,
    #[error("starting the API server: {0}")]
    Runtime(std::io::Error),
    #[error(
        "the API cannot give up root{}: {source} (set api.user to an existing user, or to \"\" to serve as the daemon's own user)",
        run_as.map(|r| format!(" to serve as uid {} gid {}", r.uid, r.gid)).unwrap_or_default()
    )]
    Identity {
        run_as: Option<crate::config::RunAs>,
        source: std::io::Error,
    },
}

/// A request's failure.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::wire::ErrorBody {
            error: self.message,
        };
        (self.status, axum::Json(body)).into_response()
    }
}
