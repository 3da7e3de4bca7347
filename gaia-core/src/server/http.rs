//! Request and response plumbing: bodies with size limits, JSON answers, error mapping.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, RequestError, StoreError};
use crate::protocol::ErrorBody;

/// The response body type: whole bytes or a stream fed by a channel.
pub(crate) enum ResBody {
    Full(Full<Bytes>),
    /// A streamed body; if the producer calls [`StreamTx::fail`], the body ends with an error
    /// so the connection is cut instead of the answer looking complete.
    Stream(
        tokio::sync::mpsc::Receiver<Bytes>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ),
}

/// The producing side of a streamed answer (the body ends when every clone is dropped).
#[derive(Clone)]
pub(crate) struct StreamTx {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::ops::Deref for StreamTx {
    type Target = tokio::sync::mpsc::Sender<Bytes>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl StreamTx {
    /// Marks the answer as broken: the client sees a cut connection, not a short file.
    pub fn fail(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Body for ResBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ResBody::Full(f) => Pin::new(f)
                .poll_frame(cx)
                .map(|o| o.map(|r| r.map_err(|e: Infallible| match e {}))),
            ResBody::Stream(rx, failed) => rx.poll_recv(cx).map(|o| match o {
                Some(b) => Some(Ok(Frame::data(b))),
                None if failed.load(std::sync::atomic::Ordering::SeqCst) => Some(Err(
                    std::io::Error::other("the answer failed while it was being sent"),
                )),
                None => None,
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResBody::Full(f) => f.is_end_stream(),
            ResBody::Stream(..) => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ResBody::Full(f) => f.size_hint(),
            ResBody::Stream(..) => hyper::body::SizeHint::default(),
        }
    }
}

pub(crate) type Res = Response<ResBody>;

/// An error answer: status and message, sent as `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }
    pub fn bad(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Request(RequestError::Invalid(_)) => StatusCode::BAD_REQUEST,
            Error::Request(RequestError::NotFound(_)) => StatusCode::NOT_FOUND,
            Error::Request(RequestError::Conflict(_)) => StatusCode::CONFLICT,
            Error::Request(RequestError::StaleLease(_)) => StatusCode::CONFLICT,
            Error::Store(StoreError::WriterGone) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            eprintln!("gaia serve: internal error: {e}");
        }
        HttpError::new(status, e.to_string())
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        HttpError::from(Error::Store(e))
    }
}

impl From<RequestError> for HttpError {
    fn from(e: RequestError) -> Self {
        HttpError::from(Error::Request(e))
    }
}

pub(crate) type HResult = Result<Res, HttpError>;

/// The body limit of the route a request matched and the longest pause allowed inside the
/// body, for the handler that reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimit {
    pub limit: u64,
    pub idle: std::time::Duration,
}

/// Runs blocking work (store reads, scans, rendering) on tokio's blocking threads, so no async
/// worker thread waits on the disk. The one way handlers leave the async threads for a result;
/// a panic in `f` becomes a 500.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        // redb panics on some damaged pages instead of returning `Corrupted`: say where to look.
        let msg = format!("task failed: {e}; {}", crate::error::PANIC_HINT);
        eprintln!("gaia serve: {msg}");
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    })?
}

/// Security headers every answer carries.
fn secure(mut b: hyper::http::response::Builder) -> hyper::http::response::Builder {
    b = b
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-store");
    b
}

pub(crate) fn bytes_response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Res {
    secure(Response::builder())
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(ResBody::Full(Full::new(body.into())))
        .expect("static headers are valid")
}

pub(crate) fn json<T: Serialize>(status: StatusCode, v: &T) -> Res {
    let body = serde_json::to_vec(v).expect("answers serialize to JSON");
    bytes_response(status, "application/json", body)
}

pub(crate) fn ok<T: Serialize>(v: &T) -> HResult {
    Ok(json(StatusCode::OK, v))
}

pub(crate) fn error_response(e: HttpError) -> Res {
    json(e.status, &ErrorBody { error: e.message })
}

/// A streamed answer: the returned sender feeds the body; dropping it ends the body.
pub(crate) fn stream_response(content_type: &str, extra: &[(&str, String)]) -> (Res, StreamTx) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut b = secure(Response::builder())
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type);
    for (k, v) in extra {
        b = b.header(*k, v.as_str());
    }
    (
        b.body(ResBody::Stream(rx, failed.clone()))
            .expect("headers are valid"),
        StreamTx { tx, failed },
    )
}

/// The body length a request declares, if it declares one.
pub(crate) fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The limit and idle timeout the router attached for this request's route (the defaults
/// otherwise).
fn limit_of<B>(req: &Request<B>) -> (u64, std::time::Duration) {
    req.extensions()
        .get::<BodyLimit>()
        .map_or((1 << 20, std::time::Duration::from_secs(30)), |l| {
            (l.limit, l.idle)
        })
}

/// The slowest a body may arrive on average: a body gets its route's idle timeout plus the time
/// its limit takes at this rate, in all (a 1 MiB JSON body 16 s more, a 256 MiB file about an
/// hour), so a client trickling a byte now and then cannot hold a request open for ever.
pub const MIN_BODY_BYTES_PER_SEC: u64 = 64 << 10;

/// A request body being read: 408 after `idle` without data, or once its whole-body deadline
/// ([`MIN_BODY_BYTES_PER_SEC`]) has passed.
struct BodyReader {
    body: Incoming,
    idle: std::time::Duration,
    started: tokio::time::Instant,
    deadline: tokio::time::Instant,
    read: u64,
}

impl BodyReader {
    fn new(body: Incoming, limit: u64, idle: std::time::Duration) -> BodyReader {
        let started = tokio::time::Instant::now();
        let allowance =
            std::time::Duration::from_secs_f64(limit as f64 / MIN_BODY_BYTES_PER_SEC as f64);
        BodyReader {
            body,
            idle,
            started,
            deadline: started + idle + allowance,
            read: 0,
        }
    }

    /// The next data of the body (None at its end).
    async fn next(&mut self) -> Result<Option<Bytes>, HttpError> {
        loop {
            let now = tokio::time::Instant::now();
            let until = (now + self.idle).min(self.deadline);
            let frame = match tokio::time::timeout_at(until, self.body.frame()).await {
                Err(_) if until == self.deadline => {
                    return Err(HttpError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request body came too slowly: {} bytes in {:.0} s (a body must \
                             arrive at {} KiB/s on average)",
                            self.read,
                            self.started.elapsed().as_secs_f64(),
                            MIN_BODY_BYTES_PER_SEC >> 10
                        ),
                    ));
                }
                Err(_) => {
                    return Err(HttpError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request body stalled: nothing arrived for {:.1} s",
                            self.idle.as_secs_f64()
                        ),
                    ));
                }
                Ok(None) => return Ok(None),
                Ok(Some(f)) => {
                    f.map_err(|e| HttpError::bad(format!("could not read the request body: {e}")))?
                }
            };
            // Trailers carry no data; skip them.
            if let Ok(data) = frame.into_data() {
                self.read += data.len() as u64;
                return Ok(Some(data));
            }
        }
    }
}

/// Reads a whole body, refusing more than its route's limit with 413.
pub(crate) async fn read_body(
    req: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Bytes), HttpError> {
    let (limit, idle) = limit_of(&req);
    let declared = declared_length(&req);
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let (parts, body) = req.into_parts();
    let mut body = BodyReader::new(body, limit, idle);
    let mut buf = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    while let Some(data) = body.next().await? {
        if (buf.len() + data.len()) as u64 > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&data);
    }
    Ok((parts, buf.freeze()))
}

/// A body streamed to a file by [`body_to_file`].
pub(crate) struct Stored {
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Up to the first 64 bytes (enough to tell an executable's platform).
    pub head: Vec<u8>,
}

/// Streams a body to `path` (never whole in memory), hashing it on the way and refusing more
/// than its route's limit with 413. The file is synced before this returns; on any error it is
/// removed, so the caller only ever sees a whole file or none.
pub(crate) async fn body_to_file(
    req: Request<Incoming>,
    path: &std::path::Path,
    what: &str,
) -> Result<Stored, HttpError> {
    use sha2::Digest;
    use std::io::Write;
    let (limit, idle) = limit_of(&req);
    let too_big = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is larger than the limit of {limit} bytes"),
        )
    };
    if declared_length(&req).is_some_and(|len| len > limit) {
        return Err(too_big());
    }
    let io = |e| HttpError::from(Error::io(path, e));
    let result = async {
        let mut f = std::fs::File::create(path).map_err(io)?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        let mut head = Vec::with_capacity(64);
        let mut body = BodyReader::new(req.into_body(), limit, idle);
        while let Some(data) = body.next().await? {
            size += data.len() as u64;
            if size > limit {
                return Err(too_big());
            }
            if head.len() < 64 {
                head.extend_from_slice(&data[..data.len().min(64 - head.len())]);
            }
            hasher.update(&data);
            f.write_all(&data).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        Ok(Stored {
            size,
            sha256: hex::encode(hasher.finalize()),
            head,
        })
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

pub(crate) fn too_large(limit: u64) -> HttpError {
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than the limit of {limit} bytes"),
    )
}

/// Parses a JSON body into `T` with a message that says what is wrong and where.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    if bytes.is_empty() {
        return Err(HttpError::bad("the request needs a JSON body"));
    }
    serde_json::from_slice(bytes).map_err(|e| HttpError::bad(format!("invalid JSON body: {e}")))
}

/// Query parameters, percent-decoded.
pub(crate) fn query_pairs(req_query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = req_query else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` and `+` in a URL component (invalid escapes are kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A typed view of query parameters with clear errors.
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn parse<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, HttpError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| HttpError::bad(format!("query parameter {k}={v:?} is not valid"))),
        }
    }
}

/// Streams an open file as the answer's body, read in 256 KiB chunks on a task of its own. A
/// read error mid-way cuts the connection ([`StreamTx::fail`]) rather than ending the body as
/// if the file were whole. The one file-streaming loop of the server.
pub(crate) fn file_response(
    mut file: tokio::fs::File,
    content_type: &str,
    headers: &[(&str, String)],
) -> Res {
    use tokio::io::AsyncReadExt;
    let (res, tx) = stream_response(content_type, headers);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
                Err(_) => {
                    tx.fail();
                    break;
                }
            }
        }
    });
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_stream_ends_in_an_error_not_a_short_body() {
        let (res, tx) = stream_response("text/csv", &[]);
        tx.send(Bytes::from_static(b"a,b\r\n")).await.unwrap();
        tx.fail();
        drop(tx);
        assert!(res.into_body().collect().await.is_err());

        let (res, tx) = stream_response("text/csv", &[]);
        tx.send(Bytes::from_static(b"a,b\r\n")).await.unwrap();
        drop(tx);
        assert_eq!(
            res.into_body().collect().await.unwrap().to_bytes(),
            "a,b\r\n"
        );
    }

    /// Serves every request with a streamed answer: `chunks`, then a failure or a clean end.
    async fn streaming_server(chunks: usize, fail: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                let service = hyper::service::service_fn(move |_req| async move {
                    let (res, tx) = stream_response("text/csv", &[]);
                    tokio::spawn(async move {
                        for i in 0..chunks {
                            let line = format!("{i},{}\r\n", "x".repeat(1000));
                            if tx.send(Bytes::from(line)).await.is_err() {
                                return;
                            }
                        }
                        if fail {
                            tx.fail();
                        }
                    });
                    Ok::<_, Infallible>(res)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), service),
                );
            }
        });
        url
    }

    /// What the client makes of a streamed answer the server cut: HTTP/1.1 chunked framing ends
    /// with a zero-length chunk, which a failed stream never sends (hyper closes the
    /// connection), and ureq reports the connection closing before it as an error. So the
    /// framing itself is the end-of-stream signal; nothing in the body has to be sniffed.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_cut_stream_is_an_error_for_the_client_and_a_whole_one_is_not() {
        for (chunks, fail) in [(0, true), (3, true), (500, true), (0, false), (500, false)] {
            let url = streaming_server(chunks, fail).await;
            let got = tokio::task::spawn_blocking(move || {
                let client = crate::client::Client::new(&url, None).unwrap();
                let mut out = Vec::new();
                let r = client.download("/export.csv", &mut out);
                (r, out.len())
            })
            .await
            .unwrap();
            match (fail, got) {
                (true, (Err(crate::error::ClientError::Interrupted { bytes, .. }), n)) => {
                    assert_eq!(bytes as usize, n, "what was written is what it says");
                    assert!(n <= chunks * 1010, "{n}");
                }
                (false, (Ok(n), len)) => assert_eq!(n as usize, len),
                (fail, (r, _)) => panic!("fail={fail} chunks={chunks}: {r:?}"),
            }
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz%"), "%zz%");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("100%25"), "100%");
    }
}
