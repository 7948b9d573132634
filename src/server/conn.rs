//! Connection hygiene for both listening ports: a connection limit per port (a connection
//! beyond it is accepted and closed at once, and counted), accept errors that back off
//! instead of ending the server or spinning, TCP keepalive, and on the gRPC port an idle
//! timeout that counts requests, not bytes, so HTTP/2 PINGs cannot keep a connection open.
//!
//! The gRPC idle timeout has two halves: [`TrackLayer`] (around the tonic router) counts
//! each connection's requests in flight in its [`Activity`], which it finds in the
//! request's [`ConnInfo`]; [`Conn`] (around the socket) ends the connection when its
//! socket has nothing to read or cannot be written and the activity has been idle too long.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo, UdsConnectInfo};

use crate::telemetry::PortMetrics;

/// How long the acceptor waits after an accept error that is not the peer's doing (such
/// as EMFILE): the listener stays readable, so retrying at once would spin, while 100 ms
/// costs ten failed syscalls a second and takes a freed descriptor promptly.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one warning per kind of trouble per port in this period; the rest are counted
/// into the next one, so a flood of refusals cannot flood the log.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Descriptors the process needs besides its connections: standard streams, listeners,
/// the runtime's epoll and wake-up descriptors, the bundle watcher, the decision log and
/// the bundle file a reload has open, with room to spare.
pub const RESERVED_FILES: usize = 64;

/// TCP keepalive probes sent before a silent peer is declared gone.
const KEEPALIVE_PROBES: u32 = 3;

/// How both ports bound their connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Connections the gRPC port serves at once.
    pub max_grpc: usize,
    /// Connections the admin port serves at once.
    pub max_admin: usize,
    /// A gRPC connection with no request in flight for this long is closed; `None` never.
    pub idle_timeout: Option<Duration>,
    /// HTTP/2 PING interval on the gRPC port, and the TCP keepalive idle time on both
    /// ports; `None` turns both off.
    pub keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed; also the TCP
    /// keepalive probe interval.
    pub keepalive_timeout: Duration,
    /// The admin port closes a connection that has not sent a whole request head this long
    /// after it opened or after its previous response; `None` never.
    pub header_read_timeout: Option<Duration>,
}

/// A warning when the open-files soft limit `limit` (`None`: unlimited) cannot hold every
/// connection the limits allow plus [`RESERVED_FILES`]: past it, accepts fail with EMFILE
/// before the connection limit ever refuses anything.
pub fn open_files_warning(limit: Option<u64>, config: &Config, admin: bool) -> Option<String> {
    let limit = usize::try_from(limit?).unwrap_or(usize::MAX);
    let admin = if admin { config.max_admin } else { 0 };
    let needed = config
        .max_grpc
        .saturating_add(admin)
        .saturating_add(RESERVED_FILES);
    if limit >= needed {
        return None;
    }
    let fits = limit.saturating_sub(admin).saturating_sub(RESERVED_FILES);
    let advice = if fits > 0 {
        format!("lower `--max-connections` to {fits} or raise the limit (`ulimit -n`)")
    } else {
        "raise the limit (`ulimit -n`), or lower `--admin-max-connections` and \
         `--max-connections`"
            .to_owned()
    };
    Some(format!(
        "the open-files limit of {limit} is below the {needed} descriptors the connection \
         limits may take ({} gRPC + {admin} admin + {RESERVED_FILES} for the rest of the \
         process): {advice}",
        config.max_grpc
    ))
}

/// Logs [`open_files_warning`] for this process's own soft limit.
pub fn check_open_files(config: &Config, admin: bool) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    if let Some(warning) = open_files_warning(limit, config, admin) {
        tracing::warn!("{warning}");
    }
}

// === impl Gate ===

/// Counts and bounds the open connections of one port.
pub struct Gate {
    /// `grpc` or `admin`, for logs.
    port: &'static str,
    max: usize,
    /// Connections admitted and not yet dropped. Only the port's acceptor admits, but
    /// connections end on any worker, hence the atomic.
    open: AtomicUsize,
    metrics: PortMetrics,
}

impl Gate {
    /// A gate letting at most `max` connections of `port` (`grpc`, `admin`) in at once.
    pub fn new(port: &'static str, max: usize, metrics: &PortMetrics) -> Arc<Gate> {
        Arc::new(Gate {
            port,
            max,
            open: AtomicUsize::new(0),
            metrics: metrics.clone(),
        })
    }

    /// A slot for one more connection, or `None` (counted) at the limit.
    fn admit(self: &Arc<Gate>) -> Option<Slot> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.metrics.open.increment(1.0);
            Some(Slot(self.clone()))
        } else {
            self.metrics.refused.increment(1);
            None
        }
    }

    /// The port's connection metrics.
    pub fn metrics(&self) -> &PortMetrics {
        &self.metrics
    }
}

/// One admitted connection's place under the limit, given back on drop.
struct Slot(Arc<Gate>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.open.decrement(1.0);
    }
}

// === impl Acceptor ===

/// A listening socket the [`Acceptor`] takes connections from.
pub trait Listener: Send + Unpin + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next accepted socket, its options set.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>>;
}

/// A TCP listener that sets `TCP_NODELAY` and TCP keepalive on what it accepts.
pub struct Tcp {
    listener: TcpListener,
    keepalive: Option<TcpKeepalive>,
}

impl Tcp {
    /// Keepalive as `config` says.
    pub fn new(listener: TcpListener, config: &Config) -> Tcp {
        // The kernel's keepalive finds a dead peer even where no PING is sent: the admin
        // port, and a gRPC client whose host vanished.
        let keepalive = config.keepalive_interval.map(|idle| {
            TcpKeepalive::new()
                .with_time(idle)
                .with_interval(config.keepalive_timeout)
                .with_retries(KEEPALIVE_PROBES)
        });
        Tcp {
            listener,
            keepalive,
        }
    }
}

impl Listener for Tcp {
    type Io = TcpStream;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let (stream, _) = ready!(self.listener.poll_accept(cx))?;
        // Small answers go out at once; a failure costs latency, not correctness.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        if let Some(keepalive) = &self.keepalive
            && let Err(e) = SockRef::from(&stream).set_tcp_keepalive(keepalive)
        {
            tracing::debug!("cannot set TCP keepalive: {e}");
        }
        Poll::Ready(Ok(stream))
    }
}

impl Listener for UnixListener {
    type Io = UnixStream;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<UnixStream>> {
        let (stream, _) = ready!(UnixListener::poll_accept(self, cx))?;
        Poll::Ready(Ok(stream))
    }
}

/// Accepts connections under a port's limit. It never fails: a connection beyond the
/// limit is closed at once rather than left in the kernel's backlog holding a descriptor,
/// and an accept error is logged and retried after a pause.
pub struct Acceptor<L> {
    listener: L,
    gate: Arc<Gate>,
    idle_timeout: Option<Duration>,
    backoff: Option<Pin<Box<Sleep>>>,
    refusals: Every,
    errors: Every,
}

impl<L: Listener> Acceptor<L> {
    /// `idle_timeout` is the [`Conn`] idle timeout of every connection accepted.
    pub fn new(listener: L, gate: Arc<Gate>, idle_timeout: Option<Duration>) -> Acceptor<L> {
        Acceptor {
            listener,
            gate,
            idle_timeout,
            backoff: None,
            refusals: Every::new(WARN_EVERY),
            errors: Every::new(WARN_EVERY),
        }
    }

    /// The gate this acceptor admits through.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// The next connection admitted.
    pub async fn accept(&mut self) -> Conn<L::Io> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The next connection admitted; never an error (see [`Acceptor`]).
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Conn<L::Io>> {
        loop {
            if let Some(backoff) = &mut self.backoff {
                ready!(backoff.as_mut().poll(cx));
                self.backoff = None;
            }
            match ready!(self.listener.poll_accept(cx)) {
                Ok(io) => match self.gate.admit() {
                    Some(slot) => return Poll::Ready(Conn::new(io, slot, self.idle_timeout)),
                    None => {
                        drop(io);
                        if let Some(also) = self.refusals.ready() {
                            tracing::warn!(
                                port = self.gate.port,
                                "{} connections are open, the limit: closing new ones{}",
                                self.gate.max,
                                since_last(also)
                            );
                        }
                    }
                },
                // The peer gave up between connecting and our accept: nothing to wait for.
                Err(e) if peer_gone(&e) => {}
                Err(e) => {
                    self.gate.metrics.accept_errors.increment(1);
                    if let Some(also) = self.errors.ready() {
                        tracing::warn!(
                            port = self.gate.port,
                            "cannot accept a connection: {e}; retrying in {ACCEPT_BACKOFF:?}{}",
                            since_last(also)
                        );
                    }
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

/// The incoming connections of a tonic server; the error never happens.
impl<L: Listener> tokio_stream::Stream for Acceptor<L> {
    type Item = Result<Conn<L::Io>, Infallible>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::into_inner(self)
            .poll_accept(cx)
            .map(|conn| Some(Ok(conn)))
    }
}

/// The count of events a warning stands for beyond its own, when there are any.
fn since_last(also: u64) -> String {
    if also == 0 {
        String::new()
    } else {
        format!(" ({also} more since the last warning)")
    }
}

fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Lets an event through at most once per period, counting the ones held back.
struct Every {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Every {
    fn new(period: Duration) -> Every {
        Every {
            period,
            last: None,
            held: 0,
        }
    }

    /// `Some(events held back since the last one let through)`, or `None` to hold this one.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + self.period) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

// === impl Activity ===

/// What one connection is doing, shared by its socket ([`Conn`]) and its requests
/// ([`TrackLayer`]).
pub struct Activity {
    opened: Instant,
    /// Requests whose response has not been sent in full.
    in_flight: AtomicUsize,
    /// Microseconds from `opened` to the latest start or end of a request.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(0),
        }
    }

    /// Marks a request in flight until the guard drops.
    ///
    /// Called in the connection's own task, the one that checks for idleness: program
    /// order makes the count visible there, so the increment needs no ordering and the
    /// start needs no time stamp (a connection with a request in flight is not idle; its
    /// idleness is measured from when its last request ended). Two fewer ordered atomics
    /// and a clock read fewer on every request: these lines are shared by the cores that
    /// run a connection's streams.
    pub fn begin(self: &Arc<Activity>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn stamp(&self) {
        let micros = u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last.fetch_max(micros, Ordering::Release);
    }

    /// Since when the connection has had no request in flight; `None` while one is.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_micros(self.last.load(Ordering::Acquire)))
    }
}

/// One request in flight on a connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // INVARIANT (stamp before release): whoever sees the count fall to zero also sees
        // the time the request ended, so it never measures idleness from before it.
        self.0.stamp();
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
}

// === impl Conn ===

/// An accepted connection: holds its place under the port's limit and, with an idle
/// timeout, ends itself once no request has been in flight for that long. It ends by
/// reading end-of-file (or failing a blocked write), which makes hyper drop the
/// connection and close the socket.
pub struct Conn<T> {
    // INVARIANT (slot before socket): fields drop in order, so the slot is free before
    // the socket closes, and a client that saw its connection close finds room.
    slot: Slot,
    io: T,
    activity: Arc<Activity>,
    idle: Option<Idle>,
}

struct Idle {
    after: Duration,
    timer: Pin<Box<Sleep>>,
    /// Bytes were read since the socket last had nothing to read.
    fresh: bool,
    /// The deadline passed with fresh bytes, and the connection was given one more turn.
    deferred: bool,
    expired: bool,
}

impl<T> Conn<T> {
    fn new(io: T, slot: Slot, idle_timeout: Option<Duration>) -> Conn<T> {
        let activity = Arc::new(Activity::new());
        let idle = idle_timeout.map(|after| Idle {
            after,
            timer: Box::pin(tokio::time::sleep(after)),
            fresh: false,
            deferred: false,
            expired: false,
        });
        Conn {
            slot,
            io,
            activity,
            idle,
        }
    }

    /// Whether the connection has idled out; arms the timer to wake its task otherwise.
    fn idled_out(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(idle) = &mut self.idle else {
            return false;
        };
        if idle.expired {
            return true;
        }
        let fresh = std::mem::take(&mut idle.fresh);
        let now = Instant::now();
        match self.activity.idle_since() {
            Some(since) if since + idle.after <= now => {
                // Fresh bytes may be a request that HTTP/2 has read but not yet handed to
                // the service: give the connection one more turn to start it. Only one,
                // so a stream of PINGs cannot keep the connection open.
                if fresh && !idle.deferred {
                    idle.deferred = true;
                    cx.waker().wake_by_ref();
                    return false;
                }
                idle.expired = true;
                self.slot.0.metrics.idle_closed.increment(1);
                return true;
            }
            Some(since) => {
                let deadline = since + idle.after;
                if idle.timer.deadline() != deadline {
                    idle.timer.as_mut().reset(deadline);
                }
            }
            // The end of a request does not wake this task, so look again later.
            None => {
                if idle.timer.deadline() <= now {
                    idle.timer.as_mut().reset(now + idle.after);
                }
            }
        }
        idle.deferred = false;
        if idle.timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        false
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Conn<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = Pin::into_inner(self);
        if this.idle.as_ref().is_some_and(|i| i.expired) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending if this.idled_out(cx) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before
                    && let Some(idle) = &mut this.idle
                {
                    idle.fresh = true;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Conn<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = Pin::into_inner(self);
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            // A peer that stops reading blocks the writes and, behind them, the reads.
            Poll::Pending if this.idled_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = Pin::into_inner(self);
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending if this.idled_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    /// Not vectored, on purpose. h2 sends a DATA payload from 256 bytes up as an I/O slice
    /// of its own when the socket takes vectored writes, and then flushes before it buffers
    /// another frame: an answer of 256 bytes or more (an Allow naming its statements, any
    /// Check answer) cost two `writev`s of its own, its body then its trailers, and no
    /// answers shared a write. Without vectored writes h2 copies payloads under 1 KiB into
    /// its buffer and writes a batch of answers at once (BENCHMARKS.md, issue 12).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).io).poll_shutdown(cx)
    }
}

/// A socket whose writes h2 must not vector (see [`Conn`]'s `is_write_vectored`): for a
/// server without warden's connection limits, the no-op baseline of `warden load`, so
/// that it writes its answers as warden's server does.
pub struct Unvectored<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for Unvectored<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Unvectored<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut Pin::into_inner(self).0).poll_write(cx, buf)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut Pin::into_inner(self).0).poll_shutdown(cx)
    }
}

impl<T: Connected> Connected for Unvectored<T> {
    type ConnectInfo = T::ConnectInfo;
    fn connect_info(&self) -> T::ConnectInfo {
        self.0.connect_info()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection idled out")
}

/// What tonic puts into every request's extensions for a [`Conn`].
#[derive(Clone)]
pub struct ConnInfo {
    activity: Arc<Activity>,
    peer: Peer,
}

/// The socket's own connect info, put back into the request by [`TrackLayer`] so that
/// `tonic::Request::remote_addr` still answers.
#[derive(Clone)]
pub enum Peer {
    Tcp(TcpConnectInfo),
    Unix(UdsConnectInfo),
}

impl From<TcpConnectInfo> for Peer {
    fn from(info: TcpConnectInfo) -> Peer {
        Peer::Tcp(info)
    }
}

impl From<UdsConnectInfo> for Peer {
    fn from(info: UdsConnectInfo) -> Peer {
        Peer::Unix(info)
    }
}

impl<T> Connected for Conn<T>
where
    T: Connected,
    T::ConnectInfo: Into<Peer>,
{
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        ConnInfo {
            activity: self.activity.clone(),
            peer: self.io.connect_info().into(),
        }
    }
}

// === impl TrackLayer ===

/// Counts each request in flight on its connection, from the call until its response
/// body has been sent (or dropped), so a long response stream is not idleness.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// The service [`TrackLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, Req, Res> tower::Service<http::Request<Req>> for Track<S>
where
    S: tower::Service<http::Request<Req>, Response = http::Response<Res>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    Res: Send + 'static,
{
    type Response = http::Response<TrackedBody<Res>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Req>) -> Self::Future {
        // Begun here, in the connection's task, before its socket is read again: the
        // idle check there cannot miss a request already handed to the service.
        let (in_flight, peer) = match req.extensions().get::<ConnInfo>() {
            Some(info) => (Some(info.activity.begin()), Some(info.peer.clone())),
            None => (None, None),
        };
        match peer {
            Some(Peer::Tcp(info)) => {
                req.extensions_mut().insert(info);
            }
            Some(Peer::Unix(info)) => {
                req.extensions_mut().insert(info);
            }
            None => {}
        }
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped.
pub struct TrackedBody<B> {
    body: B,
    _in_flight: Option<InFlight>,
}

impl<B: http_body::Body + Unpin> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut Pin::into_inner(self).body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests;
