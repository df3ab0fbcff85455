//! Errors: what fails when the server starts ([`StartError`]), and what
//! a request gets back ([`ApiError`]: a status and a JSON body
//! `{"error": "..."}` whose sentence says what to do).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
/// Why the API could not start (each says what to do).
pub enum StartError {
    #[error("cannot create the API socket's directory {path}: {source}")]
    /// The socket's directory could not be made.
    SocketDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error(
        "another process is serving the API socket {0} (is a daemon already running? stop it, or set api.socket to another path)"
    )]
    /// Another process serves the socket.
    SocketInUse(PathBuf),
    #[error("cannot listen on the API socket {path}: {source}")]
    /// The socket could not be bound.
    Socket {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} for the API: {source}")]
    /// The TCP address could not be bound.
    Tcp {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    #[error("api.listen needs a token: set api.token_file (it is created if missing)")]
    /// TCP without a token.
    NoToken,
    #[error("starting the API server: {0}")]
    /// The server's runtime could not start.
    Runtime(std::io::Error),
    #[error(
        "the API cannot give up root{}: {source} (set api.user to an existing user, or to \"\" to serve as the daemon's own user)",
        run_as.map(|r| format!(" to serve as uid {} gid {}", r.uid, r.gid)).unwrap_or_default()
    )]
    /// The API thread could not take its user.
    Identity {
        /// The user it was to take.
        run_as: Option<crate::config::RunAs>,
        /// Why.
        source: std::io::Error,
    },
}

/// A request's failure.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The sentence.
    pub message: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is wrong (the sentence says how).
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 500: the daemon failed.
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
