//! The little HTTP/1.1 client netwho's exporters share (OTLP/HTTP, the
//! alerts' webhook): `http://` URLs taken apart and checked, connections
//! with timeouts, and answers read with every length bounded.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest answer read (headers and body).
pub const MAX_ANSWER: usize = 64 << 10;

/// An `http://HOST[:PORT][/PATH]` URL, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// The host as given (a name, an IPv4 address, or `[IPv6]`).
    pub host: String,
    /// The port, if the URL gives one.
    pub port: Option<u16>,
    /// The path as given (empty when none), free of spaces and control
    /// characters.
    pub path: String,
}

/// What is wrong with a URL (each caller says it in its own words).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// No `SCHEME://`.
    NoScheme,
    /// `https://`: netwho speaks plain HTTP only.
    Https,
    /// Another scheme.
    Scheme(String),
    /// The path holds spaces, control characters or a fragment.
    Path,
    /// An IPv6 address without its `]`.
    Bracket,
    /// No usable host (empty, user info, spaces, non-ASCII).
    Host,
    /// The port is not 1 to 65535.
    Port,
}

/// Takes an `http://` URL apart.
pub fn parse_url(s: &str) -> Result<HttpUrl, UrlError> {
    let rest = match s.split_once("://") {
        Some(("http", r)) => r,
        Some(("https", _)) => return Err(UrlError::Https),
        Some((other, _)) => return Err(UrlError::Scheme(other.to_string())),
        None => return Err(UrlError::NoScheme),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.contains('#') || path.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(UrlError::Path);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((h, p)) = v6.split_once(']') else {
            return Err(UrlError::Bracket);
        };
        (format!("[{h}]"), p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty()
        || host.contains(['@', ' '])
        || host.bytes().any(|b| !(b' '..0x7f).contains(&b))
    {
        return Err(UrlError::Host);
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(UrlError::Port)?,
        ),
    };
    Ok(HttpUrl {
        host,
        port,
        path: path.to_string(),
    })
}

/// A TCP connection to `host` (a name, an address or `[IPv6]`) and
/// `port`: 5 s to connect (each address in turn), 10 s for each write
/// and read, no Nagle delay.
pub fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut last = io::Error::other("the host name resolved to no address");
    for a in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(Duration::from_secs(10)))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// `Retry-After` in seconds, when given.
    pub retry_after: Option<Duration>,
    /// The body (at most [`MAX_ANSWER`]).
    pub body: Vec<u8>,
    /// The connection may be used again.
    pub keep_alive: bool,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads an HTTP/1.1 answer: status, the headers that matter, and a body
/// by Content-Length, chunks, or to the end of the connection (bounded).
pub fn read_answer(stream: &mut TcpStream) -> io::Result<Answer> {
    let mut r = BufReader::new(stream.take(MAX_ANSWER as u64 + 1));
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or("");
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| bad("not an HTTP answer"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep_alive = version == "HTTP/1.1";
    let mut retry_after = None;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("the answer's headers were cut"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            "retry-after" => {
                retry_after = value.parse::<u64>().ok().map(Duration::from_secs);
            }
            _ => {}
        }
    }
    let mut body = Vec::new();
    if status == 204 || status == 304 || (100..200).contains(&status) {
        // no body
    } else if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let n = usize::from_str_radix(size, 16).map_err(|_| bad("a bad chunk size"))?;
            if n == 0 {
                // trailers, to the empty line
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() + n > MAX_ANSWER {
                return Err(bad("an answer longer than netwho reads"));
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        if n > MAX_ANSWER {
            return Err(bad("an answer longer than netwho reads"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
        keep_alive = false;
        if body.len() > MAX_ANSWER {
            return Err(bad("an answer longer than netwho reads"));
        }
    }
    Ok(Answer {
        status,
        retry_after,
        body,
        keep_alive,
    })
}

/// Largest request body [`read_request`] takes.
pub const MAX_REQUEST: usize = 64 << 20;

/// One request as a server reads it: its path and body (by
/// Content-Length, at most [`MAX_REQUEST`]); `None` when the connection
/// ended before one. For the receivers netwho's tests run (an OTLP
/// collector, a webhook).
pub fn read_request<R: BufRead>(r: &mut R) -> io::Result<Option<(String, Vec<u8>)>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| bad("not an HTTP request"))?
        .to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(bad("the request's headers were cut"));
        }
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().map_err(|_| bad("a bad Content-Length"))?;
        }
    }
    if len > MAX_REQUEST {
        return Err(bad("a request longer than netwho reads"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some((path, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn requests_are_read_and_bounded() {
        let read = |raw: &[u8]| read_request(&mut &raw[..]);
        assert_eq!(
            read(b"POST /v1/logs HTTP/1.1\r\nContent-Length: 2\r\n\r\nab").unwrap(),
            Some(("/v1/logs".to_string(), b"ab".to_vec()))
        );
        assert_eq!(read(b"").unwrap(), None);
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\n",
            b"\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
        ] {
            assert!(read(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn urls_are_taken_apart_or_refused() {
        let u = parse_url("http://[fd00:231::1]:9000/x?y").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("[fd00:231::1]", Some(9000), "/x?y")
        );
        assert_eq!(parse_url("http://h").unwrap().port, None);
        for (bad, e) in [
            ("h:80", UrlError::NoScheme),
            ("https://h/", UrlError::Https),
            ("ftp://h/", UrlError::Scheme("ftp".into())),
            ("http://h/a#b", UrlError::Path),
            ("http://h/a\r\nX: y", UrlError::Path),
            ("http://[::1/", UrlError::Bracket),
            ("http://u@h/", UrlError::Host),
            ("http://h:0/", UrlError::Port),
        ] {
            assert_eq!(parse_url(bad), Err(e), "{bad:?}");
        }
    }

    fn answer_of(raw: &[u8]) -> io::Result<Answer> {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let raw = raw.to_vec();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(&raw);
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let a = read_answer(&mut c);
        t.join().unwrap();
        a
    }

    #[test]
    fn answers_by_length_chunks_or_close() {
        let a = answer_of(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.keep_alive),
            (200, &b"abc"[..], true)
        );
        let a = answer_of(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(a.body, b"abc");
        let a = answer_of(b"HTTP/1.0 503 Busy\r\nRetry-After: 7\r\n\r\nlater").unwrap();
        assert_eq!(
            (a.status, a.retry_after, a.keep_alive, a.body.as_slice()),
            (503, Some(Duration::from_secs(7)), false, &b"later"[..])
        );
    }

    #[test]
    fn hostile_answers_are_errors_and_bounded() {
        for raw in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n",
            b"HTTP/1.1 200 OK\r\nX: y\r\n",
        ] {
            assert!(answer_of(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
        // an endless header section stops at the bound
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_ANSWER * 2));
        assert!(answer_of(&huge).is_err());
    }
}
