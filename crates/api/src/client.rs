//! The client end, for `netwho top --connect` and `netwho report
//! --connect`: blocking calls (the CLI has no async runtime of its own;
//! this one runs only while a call waits) over the daemon's Unix socket,
//! or over TCP with the token.

use bytes::{Buf as _, Bytes};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::runtime::Runtime;

/// Where the daemon is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The daemon's Unix socket.
    Unix(PathBuf),
    /// `HOST:PORT`, with the token.
    Tcp {
        /// `HOST:PORT`.
        addr: String,
        /// The API token.
        token: String,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "{}", p.display()),
            Target::Tcp { addr, .. } => write!(f, "{addr}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
/// Why the daemon could not be asked (each says what to do).
pub enum ClientError {
    #[error(
        "no daemon answers at {target}: {error} (is 'netwho daemon' running? its socket is api.socket in its configuration)"
    )]
    /// Nothing answers at the target.
    Connect {
        /// Where.
        target: Target,
        /// (not the error's source: the sentence says it already)
        error: std::io::Error,
    },
    #[error("talking to the daemon at {target}: {detail}")]
    /// The conversation failed.
    Http {
        /// Where.
        target: Target,
        /// What went wrong.
        detail: String,
    },
    #[error("the daemon refused: {0}")]
    /// The daemon answered with an error (its sentence).
    Refused(String),
    #[error("starting the client: {0}")]
    /// The client's runtime could not start.
    Runtime(std::io::Error),
}

/// A connection to the daemon's API.
#[derive(Debug)]
pub struct Client {
    rt: Arc<Runtime>,
    target: Target,
}

/// A response: its status and its body, read as it arrives.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, streamed.
    pub body: BodyReader,
}

/// A response body as a blocking reader.
#[derive(Debug)]
pub struct BodyReader {
    rt: Arc<Runtime>,
    body: Incoming,
    chunk: Bytes,
    /// Kept so the connection lives as long as the body.
    _sender: SendRequest<Empty<Bytes>>,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.body.frame()) {
                None => return Ok(0),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.chunk = d;
                    }
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

impl Reply {
    /// The whole body as text.
    pub fn text(mut self) -> std::io::Result<String> {
        let mut s = String::new();
        self.body.read_to_string(&mut s)?;
        Ok(s)
    }

    /// The body if the status is 200; otherwise the daemon's error
    /// sentence (its JSON `error`) as [`ClientError::Refused`].
    pub fn ok(self) -> Result<Reply, ClientError> {
        if self.status == 200 {
            return Ok(self);
        }
        let status = self.status;
        let text = self.text().unwrap_or_default();
        let msg = serde_json::from_str::<crate::wire::ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("HTTP {status}: {}", text.trim()));
        Err(ClientError::Refused(msg))
    }
}

impl Client {
    /// A client of the daemon at `target`.
    pub fn new(target: Target) -> Result<Client, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        Ok(Client {
            rt: Arc::new(rt),
            target,
        })
    }

    /// Where it connects.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// `GET /api/v1/status`, as the type the server writes.
    pub fn status(&self) -> Result<crate::wire::StatusDoc, ClientError> {
        let text = self.get("/api/v1/status", &[])?.ok()?.text();
        let http = |detail: String| ClientError::Http {
            target: self.target.clone(),
            detail,
        };
        let text = text.map_err(|e| http(format!("reading the status: {e}")))?;
        serde_json::from_str(&text).map_err(|e| http(format!("the status did not parse: {e}")))
    }

    /// `GET path` with `query` (name, value) pairs.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Reply, ClientError> {
        let mut uri = path.to_string();
        if !query.is_empty() {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            uri.push('?');
            uri.push_str(&ser.finish());
        }
        let target = self.target.clone();
        let http = |e: &dyn std::fmt::Display| ClientError::Http {
            target: target.clone(),
            detail: e.to_string(),
        };
        let (sender, resp) = self.rt.block_on(async {
            let refused = |error| ClientError::Connect {
                target: target.clone(),
                error,
            };
            let mut sender = match &self.target {
                Target::Unix(p) => {
                    let s = tokio::net::UnixStream::connect(p).await.map_err(refused)?;
                    handshake(s).await
                }
                Target::Tcp { addr, .. } => {
                    let s = tokio::net::TcpStream::connect(addr.as_str())
                        .await
                        .map_err(refused)?;
                    handshake(s).await
                }
            }
            .map_err(|e| http(&e))?;
            let mut req = hyper::Request::get(uri.as_str()).header(hyper::header::HOST, "netwho");
            if let Target::Tcp { token, .. } = &self.target {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let req = req.body(Empty::<Bytes>::new()).map_err(|e| http(&e))?;
            let resp = sender.send_request(req).await.map_err(|e| http(&e))?;
            Ok::<_, ClientError>((sender, resp))
        })?;
        Ok(Reply {
            status: resp.status().as_u16(),
            body: BodyReader {
                rt: Arc::clone(&self.rt),
                body: resp.into_body(),
                chunk: Bytes::new(),
                _sender: sender,
            },
        })
    }
}

async fn handshake<S>(s: S) -> Result<SendRequest<Empty<Bytes>>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::debug!("api client: the connection ended: {e}");
        }
    });
    Ok(sender)
}
