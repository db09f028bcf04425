//! The HTTP/1.1 server: listeners, one thread per connection (bounded), a fixed pool of
//! workers that run the pure `route()`, and hard limits on everything a client sends.
//!
//! Why not tiny_http (named in DESIGN.md)? Measured with tiny_http 0.12: its connection pool
//! queues a new connection behind a busy one whenever one pool thread is registered as idle
//! (a race in `TaskPool::spawn`), so after a burst of 200 idle connections, 120 were still
//! queued 11 s later and new clients waited behind them; and it reads header lines without any
//! size bound, so one client can make the daemon allocate without limit. Neither can be fixed
//! from outside the crate, and both break what this server must guarantee on a small Pi.
//!
//! Guarantees:
//! - idle or slow clients hold only their own connection thread, never a worker, and are
//!   dropped after `http.client_timeout` without a byte (`SO_RCVTIMEO`/`SO_SNDTIMEO`);
//! - at most [`MAX_CONNECTIONS`] connections; beyond that a client gets 503 at once;
//! - request line up to [`MAX_URL`] bytes (414), at most [`MAX_HEADERS`] headers and
//!   [`MAX_HEADER_BYTES`] bytes of them (431), bodies up to `http.max_body` (413), only with
//!   `Content-Length` (chunked uploads get 501);
//! - on stop, requests being received get [`STOP_GRACE`] to finish, in-flight requests are
//!   answered, idle keep-alive connections are closed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use super::route::route;
use super::{split_target, ApiRequest, ApiResponse, Method};
use crate::app::{lock, App};
use crate::config::ListenAddr;

/// Longest request line accepted (414 beyond).
pub const MAX_URL: usize = 8 * 1024;
/// Most headers accepted (431 beyond).
pub const MAX_HEADERS: usize = 64;
/// Most header bytes accepted (431 beyond).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most simultaneous connections (503 beyond).
pub const MAX_CONNECTIONS: usize = 256;
/// Requests served on one keep-alive connection before it is closed.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
/// How long requests still being received are waited for after a stop.
pub const STOP_GRACE: Duration = Duration::from_secs(1);
/// Listening backlog: std uses 128, which a burst of clients overflows, leaving connections
/// stuck in the SYN queue until the client retransmits.
const BACKLOG: i32 = 1024;
/// Connection threads only parse and copy bytes: a small stack keeps 256 of them cheap.
const CONN_STACK: usize = 128 * 1024;

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Binding a listen address failed (in use, no such address, no permission).
    #[error("cannot listen on {addr}: check that no other program uses it and that the address exists on this machine")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Setting socket options on a listener failed.
    #[error("cannot set the client timeout on {addr}")]
    Timeout {
        addr: String,
        #[source]
        source: nix::Error,
    },
    /// A server thread could not be started.
    #[error("cannot start an http thread")]
    Thread(#[source] std::io::Error),
}

/// A bound, not yet serving, listener.
#[derive(Debug)]
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket, removed again on stop.
    Unix(UnixListener, PathBuf),
}

impl Bound {
    /// The address as the config writes it, with the real port for `:0`.
    pub fn describe(&self) -> String {
        match self {
            Bound::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "tcp".into()),
            Bound::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

/// Binds every address. Linux copies `SO_RCVTIMEO`/`SO_SNDTIMEO` from a listening socket to
/// each socket it accepts, so the client timeout is set once here.
pub fn bind(addrs: &[ListenAddr], client_timeout: Duration) -> Result<Vec<Bound>, HttpError> {
    let tv = TimeVal::new(
        client_timeout.as_secs() as _,
        client_timeout.subsec_micros() as _,
    );
    let mut out = Vec::new();
    for addr in addrs {
        let name = addr.to_string();
        let terr = |source| HttpError::Timeout {
            addr: name.clone(),
            source,
        };
        match addr {
            ListenAddr::Tcp(a) => {
                let l = tcp_listener(a).map_err(|source| HttpError::Bind {
                    addr: name.clone(),
                    source,
                })?;
                setsockopt(&l, sockopt::ReceiveTimeout, &tv).map_err(terr)?;
                setsockopt(&l, sockopt::SendTimeout, &tv).map_err(terr)?;
                out.push(Bound::Tcp(l));
            }
            ListenAddr::Unix(p) => {
                remove_stale_socket(p);
                let l = UnixListener::bind(p).map_err(|source| HttpError::Bind {
                    addr: name.clone(),
                    source,
                })?;
                setsockopt(&l, sockopt::ReceiveTimeout, &tv).map_err(terr)?;
                setsockopt(&l, sockopt::SendTimeout, &tv).map_err(terr)?;
                out.push(Bound::Unix(l, p.clone()));
            }
        }
    }
    Ok(out)
}

fn tcp_listener(addr: &std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    // The LAN address may not be configured yet when the unit starts at boot (DHCP, a bridge
    // still coming up): bind anyway, and serve as soon as the address appears.
    // IP_FREEBIND is honoured by IPv6 sockets too (checked by the listen test).
    setsockopt(&fd, sockopt::IpFreebind, &true)?;
    if addr.is_ipv6() {
        // "[::]:9880" means IPv6 only; list "0.0.0.0:9880" as well for IPv4.
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(*addr),
    )?;
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(TcpListener::from(fd))
}

/// A socket file left by a previous run would make bind fail; remove it, but only if it is a
/// socket (never delete a regular file someone named by mistake).
fn remove_stale_socket(p: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(p) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A request for a worker, with the channel its answer goes back on.
struct Job {
    req: ApiRequest,
    reply: mpsc::Sender<ApiResponse>,
}

/// An open connection, as the stop logic sees it.
struct ConnEntry {
    stream: Stream,
    idle: Arc<AtomicBool>,
}

/// What connection threads share.
struct Shared {
    app: Arc<App>,
    jobs: Mutex<Option<SyncSender<Job>>>,
    conns: Mutex<HashMap<u64, ConnEntry>>,
    next_id: AtomicU64,
    active: AtomicUsize,
}

/// The running server.
pub struct Running {
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    unix_paths: Vec<PathBuf>,
    /// What each listener serves, for logs and `demo`'s URL.
    pub addresses: Vec<String>,
}

/// Starts serving on bound listeners with `app.config.http.workers` workers.
pub fn start(app: Arc<App>, bound: Vec<Bound>) -> Result<Running, HttpError> {
    let (tx, rx) = mpsc::sync_channel::<Job>(64);
    let rx = Arc::new(Mutex::new(rx));
    let shared = Arc::new(Shared {
        app: app.clone(),
        jobs: Mutex::new(Some(tx)),
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        active: AtomicUsize::new(0),
    });
    let mut running = Running {
        shared: shared.clone(),
        acceptors: Vec::new(),
        workers: Vec::new(),
        unix_paths: Vec::new(),
        addresses: Vec::new(),
    };
    for i in 0..app.config.http.workers {
        let (app, rx) = (app.clone(), rx.clone());
        let t = std::thread::Builder::new()
            .name(format!("http-worker-{i}"))
            .spawn(move || worker(&app, &rx));
        running.workers.push(t.map_err(HttpError::Thread)?);
    }
    for b in bound {
        let desc = b.describe();
        log::info!("serving http on {desc}");
        running.addresses.push(desc);
        if let Bound::Unix(_, p) = &b {
            running.unix_paths.push(p.clone());
        }
        let s = shared.clone();
        let t = std::thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || acceptor(&s, b));
        running.acceptors.push(t.map_err(HttpError::Thread)?);
    }
    Ok(running)
}

fn worker(app: &App, rx: &Mutex<Receiver<Job>>) {
    loop {
        let next = lock(rx).recv_timeout(Duration::from_millis(200));
        match next {
            Ok(job) => {
                let resp = route(app, &job.req);
                let _ = job.reply.send(resp);
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A connected client socket of either kind.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> std::io::Result<Stream> {
        match self {
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
        }
    }
    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

fn acceptor(shared: &Arc<Shared>, bound: Bound) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        if shared.app.is_stopping() {
            return;
        }
        // Poll with a timeout so a stop is noticed without a wake-up connection.
        let ready = {
            let fd = match &bound {
                Bound::Tcp(l) => l.as_fd(),
                Bound::Unix(l, _) => l.as_fd(),
            };
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::from(200u16)), Ok(n) if n > 0)
        };
        if !ready {
            continue;
        }
        let accepted = match &bound {
            Bound::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), a.to_string())),
            Bound::Unix(l, _) => l
                .accept()
                .map(|(s, _)| (Stream::Unix(s), "unix".to_string())),
        };
        match accepted {
            Ok((stream, client)) => spawn_connection(shared, stream, client),
            Err(e) => {
                log::warn!("http: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, mut stream: Stream, client: String) {
    if shared.active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        shared.active.fetch_sub(1, Ordering::SeqCst);
        let r = ApiResponse::error(
            503,
            "too_many_connections",
            format!("more than {MAX_CONNECTIONS} open connections; try again"),
        );
        let _ = write_response(&mut stream, &r, false, true);
        return;
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let idle = Arc::new(AtomicBool::new(true));
    if let Ok(clone) = stream.try_clone() {
        lock(&shared.conns).insert(
            id,
            ConnEntry {
                stream: clone,
                idle: idle.clone(),
            },
        );
    }
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("http-conn".into())
        .stack_size(CONN_STACK)
        .spawn(move || {
            connection(&s, stream, &client, &idle);
            lock(&s.conns).remove(&id);
            s.active.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::warn!("http: cannot start a connection thread: {e}");
        lock(&shared.conns).remove(&id);
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves requests on one connection until it closes, errs, or the daemon stops.
fn connection(shared: &Shared, stream: Stream, client: &str, idle: &AtomicBool) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(8 * 1024, stream);
    let max_body = shared.app.config.http.max_body;
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        idle.store(true, Ordering::SeqCst);
        if shared.app.is_stopping() {
            return;
        }
        // Wait for the first byte of the next request while "idle", so a stop can close us.
        match reader.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(_) => {}
        }
        idle.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let parsed = read_request(&mut reader, &mut writer, max_body, client);
        let (req, keep_alive) = match parsed {
            Ok(x) => x,
            Err(ReadError::Closed) => return,
            Err(ReadError::Respond(resp)) => {
                let _ = write_response(&mut writer, &resp, false, true);
                return;
            }
        };
        let is_head = req.method == Method::Head;
        let (method, path) = (req.method.as_str().to_string(), req.path.clone());
        let resp = match dispatch(shared, req) {
            Some(r) => r,
            None => ApiResponse::error(503, "stopping", "pirouterd is stopping"),
        };
        let keep = keep_alive && !shared.app.is_stopping();
        log::debug!(
            "{client} {method} {} -> {} in {:?}",
            path.get(..200).unwrap_or(&path),
            resp.status,
            started.elapsed()
        );
        if write_response(&mut writer, &resp, is_head, !keep).is_err() || !keep {
            return;
        }
    }
}

/// Hands a request to the workers and waits for the answer.
fn dispatch(shared: &Shared, req: ApiRequest) -> Option<ApiResponse> {
    let tx = lock(&shared.jobs).clone()?;
    let (rtx, rrx) = mpsc::channel();
    tx.send(Job { req, reply: rtx }).ok()?;
    drop(tx);
    rrx.recv().ok()
}

enum ReadError {
    /// The client closed or timed out before a full request line: just close.
    Closed,
    /// Answer this, then close.
    Respond(ApiResponse),
}

/// Reads a line ending in `\n` of at most `max` bytes (without the line end).
fn read_line(r: &mut impl BufRead, max: usize) -> Result<Option<Vec<u8>>, std::io::Error> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let (chunk, found) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if line.len() + chunk.len() > max + 2 {
            return Ok(None);
        }
        line.extend_from_slice(chunk);
        let n = chunk.len();
        r.consume(n);
        if found {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

fn bad(status: u16, code: &str, msg: impl Into<String>) -> ReadError {
    ReadError::Respond(ApiResponse::error(status, code, msg))
}

/// Reads and checks one request: request line, headers, body.
fn read_request(
    r: &mut BufReader<Stream>,
    w: &mut Stream,
    max_body: usize,
    client: &str,
) -> Result<(ApiRequest, bool), ReadError> {
    let line = match read_line(r, MAX_URL) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(bad(
                414,
                "uri_too_long",
                format!("the request line is longer than {MAX_URL} bytes"),
            ))
        }
        Err(_) => return Err(ReadError::Closed),
    };
    let line = String::from_utf8(line)
        .map_err(|_| bad(400, "bad_request", "the request line is not text"))?;
    let mut parts = line.split(' ');
    let (Some(m), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(400, "bad_request", "expected `METHOD /path HTTP/1.1`"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => {
            return Err(bad(
                505,
                "http_version",
                "only HTTP/1.0 and HTTP/1.1 are served",
            ))
        }
    };
    if !target.starts_with('/') {
        return Err(bad(
            400,
            "bad_request",
            "the request target must be a path starting with /",
        ));
    }
    let method = match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other if !other.is_empty() && other.bytes().all(|b| b.is_ascii_uppercase()) => {
            Method::Other(other.into())
        }
        _ => return Err(bad(400, "bad_request", "malformed method")),
    };
    let too_large = || {
        bad(431, "headers_too_large", format!("at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes of headers are accepted"))
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut header_bytes = 0;
    loop {
        let l = match read_line(r, MAX_HEADER_BYTES.saturating_sub(header_bytes)) {
            Ok(Some(l)) => l,
            Ok(None) => return Err(too_large()),
            Err(_) => return Err(ReadError::Closed),
        };
        if l.is_empty() {
            break;
        }
        header_bytes += l.len() + 2;
        if headers.len() == MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
            return Err(too_large());
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err(bad(
                400,
                "bad_request",
                "folded header lines are not accepted",
            ));
        }
        let l =
            String::from_utf8(l).map_err(|_| bad(400, "bad_request", "a header is not text"))?;
        let Some((k, v)) = l.split_once(':') else {
            return Err(bad(
                400,
                "bad_request",
                format!("malformed header line {:?}", l.get(..60).unwrap_or(&l)),
            ));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some() {
        return Err(bad(
            501,
            "chunked_body",
            "chunked request bodies are not accepted: send Content-Length",
        ));
    }
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let len = match lengths.as_slice() {
        [] => 0,
        [one] => one
            .parse::<usize>()
            .map_err(|_| bad(400, "bad_request", "Content-Length is not a number"))?,
        _ => return Err(bad(400, "bad_request", "more than one Content-Length")),
    };
    if len > max_body {
        return Err(bad(
            413,
            "body_too_large",
            format!("request bodies are limited to {max_body} bytes"),
        ));
    }
    let connection = header("connection").map(str::to_ascii_lowercase);
    let keep_alive = if http10 {
        connection.as_deref() == Some("keep-alive")
    } else {
        connection.as_deref() != Some("close")
    };
    if len > 0 && header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        let _ = w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut body = vec![0u8; len];
    if r.read_exact(&mut body).is_err() {
        return Err(bad(
            408,
            "body_timeout",
            "the request body did not arrive in time",
        ));
    }
    let (path, query) = split_target(target);
    Ok((
        ApiRequest {
            method,
            path,
            query,
            headers,
            body,
            client: client.to_string(),
        },
        keep_alive,
    ))
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Writes a response: the head, then the shared body straight from its buffer, in as few
/// `writev` calls as the socket allows (no copy of the body per client).
fn write_response(
    w: &mut impl Write,
    r: &ApiResponse,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type
    );
    let no_body = r.status == 304 || r.status == 204;
    if !no_body {
        let _ = write!(head, "Content-Length: {}\r\n", r.body.len());
    }
    for (k, v) in &r.headers {
        if !v.contains(['\r', '\n']) {
            let _ = write!(head, "{k}: {v}\r\n");
        }
    }
    head.extend_from_slice(if close {
        b"Connection: close\r\n\r\n"
    } else {
        b"\r\n"
    });
    let body: &[u8] = if head_only || no_body { &[] } else { &r.body };
    write_all_vectored(w, &head, body)?;
    w.flush()
}

fn write_all_vectored(w: &mut impl Write, a: &[u8], b: &[u8]) -> std::io::Result<()> {
    use std::io::IoSlice;
    let mut bufs = [IoSlice::new(a), IoSlice::new(b)];
    let mut slices: &mut [IoSlice<'_>] = &mut bufs;
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Running {
    /// Stops: no new connections, requests being received get [`STOP_GRACE`], in-flight ones
    /// are answered, idle keep-alive connections are closed, unix socket files removed.
    /// `app.stopping` must already be set.
    pub fn stop(self) {
        for t in self.acceptors {
            let _ = t.join();
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            {
                let conns = lock(&self.shared.conns);
                for c in conns.values() {
                    if c.idle.load(Ordering::SeqCst) || Instant::now() > deadline {
                        c.stream.shutdown();
                    }
                }
            }
            if self.shared.active.load(Ordering::SeqCst) == 0
                || Instant::now() > deadline + Duration::from_secs(1)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Workers end once every sender is gone and the queue is drained.
        lock(&self.shared.jobs).take();
        for t in self.workers {
            let _ = t.join();
        }
        for p in &self.unix_paths {
            remove_stale_socket(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_limits_length() {
        let mut r = std::io::Cursor::new(b"GET / HTTP/1.1\r\nrest".to_vec());
        assert_eq!(
            read_line(&mut r, 100).expect("io").expect("fits"),
            b"GET / HTTP/1.1"
        );
        let mut r = std::io::Cursor::new(vec![b'a'; 500]);
        assert!(read_line(&mut r, 100).expect("io").is_none());
    }

    #[test]
    fn responses_have_length_and_connection() {
        let mut out = Vec::new();
        let r = ApiResponse::bytes(200, "text/plain", "hi").with_header("X-A", "1");
        write_response(&mut out, &r, false, true).expect("write");
        let s = String::from_utf8(out).expect("utf8");
        assert_eq!(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nX-A: 1\r\nConnection: close\r\n\r\nhi");
        let mut out = Vec::new();
        write_response(&mut out, &r, true, false).expect("write");
        assert!(
            String::from_utf8(out)
                .expect("utf8")
                .ends_with("X-A: 1\r\n\r\n"),
            "HEAD has no body"
        );
    }
}
