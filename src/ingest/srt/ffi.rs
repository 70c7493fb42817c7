//! The few libsrt 1.5 functions cuecast uses (`srt/srt.h`), hand-bound and private to this
//! module, behind a small safe API: [`Socket`] (an owned SRT socket, closed on drop), [`Epoll`]
//! (an owned epoll set, released on drop), [`Handshake`] (a caller as the listen callback sees
//! it) and [`SrtError`] (libsrt's error code and text). Addresses cross the boundary as
//! [`socket2::SockAddr`]. Linked against the system library in its GnuTLS flavour
//! (`libsrt-gnutls-dev` on Debian): the copy Debian's ffmpeg and GStreamer's libav and srt
//! plugins load into this same process. Linking the OpenSSL flavour put two libsrt copies in the
//! process, with the same C++ symbols: both ran their static destructors on one object at exit
//! (a segfault after every shutdown). Constants are the values from `srt.h` /
//! `access_control.h`.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::net::SocketAddr;
use std::sync::OnceLock;

use socket2::SockAddr;

/// An SRT socket id (`SRTSOCKET`): how [`EpollEvent::socket`] names a socket, and what libsrt's
/// own log lines show as `@id`.
pub type SocketId = c_int;

/// `SRT_INVALID_SOCK`.
const INVALID_SOCK: SocketId = -1;
/// `SRT_ERROR`.
const ERROR: c_int = -1;
/// `SRT_EASYNCRCV`: nothing to read or accept on a non-blocking socket.
const EASYNCRCV: c_int = 6002;
/// `SRT_EPOLL_IN`.
const EPOLL_IN: c_int = 0x1;
/// `SRT_EPOLL_ERR`.
const EPOLL_ERR: c_int = 0x8;
/// libsrt's `LOG_WARNING` (syslog levels): libsrt warnings and errors reach the log.
const LOG_LEVEL: c_int = 4;
/// Longest stream id (`SRTO_STREAMID`), bytes.
const MAX_STREAM_ID: usize = 512;

/// `SRT_SOCKOPT` values used here.
mod opt {
    use std::ffi::c_int;
    pub(super) const RCVSYN: c_int = 2;
    pub(super) const LATENCY: c_int = 23;
    pub(super) const PASSPHRASE: c_int = 26;
    pub(super) const PBKEYLEN: c_int = 27;
    pub(super) const STREAMID: c_int = 46;
}

/// `srt_listen_callback_fn`.
type ListenCallback = unsafe extern "C" fn(
    opaque: *mut c_void,
    ns: SocketId,
    hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int;

/// libsrt's log handler (`SRT_LOG_HANDLER_FN`).
type LogHandler = unsafe extern "C" fn(
    opaque: *mut c_void,
    level: c_int,
    file: *const c_char,
    line: c_int,
    area: *const c_char,
    message: *const c_char,
);

#[link(name = "srt-gnutls")]
unsafe extern "C" {
    fn srt_startup() -> c_int;
    fn srt_cleanup() -> c_int;
    fn srt_create_socket() -> SocketId;
    fn srt_bind(u: SocketId, name: *const libc::sockaddr, namelen: c_int) -> c_int;
    fn srt_listen(u: SocketId, backlog: c_int) -> c_int;
    fn srt_accept(u: SocketId, addr: *mut libc::sockaddr, addrlen: *mut c_int) -> SocketId;
    fn srt_listen_callback(
        lsn: SocketId,
        hook: Option<ListenCallback>,
        opaque: *mut c_void,
    ) -> c_int;
    fn srt_close(u: SocketId) -> c_int;
    fn srt_getsockname(u: SocketId, name: *mut libc::sockaddr, namelen: *mut c_int) -> c_int;
    fn srt_setsockflag(u: SocketId, opt: c_int, val: *const c_void, len: c_int) -> c_int;
    fn srt_getsockflag(u: SocketId, opt: c_int, val: *mut c_void, len: *mut c_int) -> c_int;
    fn srt_recvmsg(u: SocketId, buf: *mut c_char, len: c_int) -> c_int;
    fn srt_getlasterror_str() -> *const c_char;
    fn srt_getlasterror(errno_loc: *mut c_int) -> c_int;
    fn srt_epoll_create() -> c_int;
    fn srt_epoll_add_usock(eid: c_int, u: SocketId, events: *const c_int) -> c_int;
    fn srt_epoll_remove_usock(eid: c_int, u: SocketId) -> c_int;
    fn srt_epoll_uwait(eid: c_int, events: *mut EpollEvent, size: c_int, timeout_ms: i64) -> c_int;
    fn srt_epoll_release(eid: c_int) -> c_int;
    fn srt_setrejectreason(u: SocketId, value: c_int) -> c_int;
    fn srt_setloglevel(level: c_int);
    fn srt_setloghandler(opaque: *mut c_void, handler: Option<LogHandler>);
}

/// A failed libsrt call: which one, and libsrt's error code and text for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {message} (SRT error {code})")]
pub struct SrtError {
    call: &'static str,
    code: c_int,
    message: String,
}

impl SrtError {
    /// The last libsrt error of this thread, as the result of `call`.
    fn last(call: &'static str) -> SrtError {
        // SAFETY: both functions only read libsrt's thread-local error state; a null
        // `errno_loc` is allowed.
        let (code, text) = unsafe {
            (
                srt_getlasterror(std::ptr::null_mut()),
                srt_getlasterror_str(),
            )
        };
        // SAFETY: null or a NUL-terminated string owned by libsrt, valid until the next libsrt
        // call on this thread; it is copied before that.
        let message = unsafe { c_string(text) };
        SrtError {
            call,
            code,
            message,
        }
    }

    /// An error that does not come from libsrt's error state.
    fn other(call: &'static str, message: &str) -> SrtError {
        SrtError {
            call,
            code: ERROR,
            message: message.to_string(),
        }
    }

    /// libsrt's error code (`SRT_ERRNO`).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// libsrt's text for the error.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Checks the `SRT_ERROR` convention of most libsrt calls.
fn check(call: &'static str, rc: c_int) -> Result<(), SrtError> {
    if rc == ERROR {
        Err(SrtError::last(call))
    } else {
        Ok(())
    }
}

/// A hold on libsrt's global state: its threads and its socket table. libsrt counts its
/// `srt_startup` and `srt_cleanup` calls; the last [`Library`] dropped stops its threads. Every
/// socket and epoll set must be gone before (a [`Library`] is the last field of what owns
/// them). Holding none when the process exits matters: libsrt's static destructors would
/// otherwise run while its garbage-collection thread still uses them, a segfault at exit.
#[derive(Debug)]
pub struct Library(());

impl Library {
    /// Starts libsrt (or takes one more hold on it) and routes its warnings and errors to
    /// `tracing` (target `libsrt`).
    pub fn start() -> Result<Library, SrtError> {
        // SAFETY: library initialisation, reference counted by libsrt; no preconditions.
        if unsafe { srt_startup() } < 0 {
            return Err(SrtError::last("srt_startup"));
        }
        static LOGGING: OnceLock<()> = OnceLock::new();
        LOGGING.get_or_init(|| {
            // SAFETY: plain settings; the handler is a `'static` function that ignores the
            // (null) opaque pointer.
            unsafe {
                srt_setloglevel(LOG_LEVEL);
                srt_setloghandler(std::ptr::null_mut(), Some(on_log));
            }
        });
        Ok(Library(()))
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: pairs with the `srt_startup` of `start`; whoever holds this value drops its
        // sockets and epoll sets first (see the type's docs).
        unsafe { srt_cleanup() };
    }
}

/// libsrt log lines → `tracing` (target `libsrt`).
unsafe extern "C" fn on_log(
    _opaque: *mut c_void,
    level: c_int,
    _file: *const c_char,
    _line: c_int,
    _area: *const c_char,
    message: *const c_char,
) {
    // SAFETY: libsrt passes a NUL-terminated message valid for the call (or null).
    let text = unsafe { c_string(message) };
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if level <= 3 {
        tracing::warn!(target: "libsrt", "{text}");
    } else {
        tracing::info!(target: "libsrt", "{text}");
    }
}

/// A copy of a C string from libsrt (lossy UTF-8); empty for null.
///
/// # Safety
/// `text` is null or a NUL-terminated string valid for the call.
unsafe fn c_string(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: non-null, so NUL-terminated and valid (caller).
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// The address in a `sockaddr` from libsrt, if it is IPv4 or IPv6; an IPv4-mapped IPv6
/// address comes back as IPv4.
///
/// # Safety
/// `addr` is null or points to a valid `sockaddr` of its family's size.
unsafe fn peer_address(addr: *const libc::sockaddr) -> Option<SocketAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid sockaddr, so its family can be read.
    let len = match c_int::from(unsafe { (*addr).sa_family }) {
        libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
        _ => return None,
    };
    // SAFETY: `len` bytes of `addr` are a valid sockaddr of its family (caller); they are
    // copied into zeroed storage of `sockaddr_storage` size and the length set to match.
    let address = unsafe {
        SockAddr::try_init(|storage, storage_len| {
            std::ptr::copy_nonoverlapping(addr.cast::<u8>(), storage.cast::<u8>(), len);
            *storage_len = libc::socklen_t::try_from(len).unwrap_or(0);
            Ok(())
        })
    };
    canonical(&address.ok()?.1)
}

/// `address` as a `SocketAddr`, an IPv4-mapped IPv6 address as IPv4.
fn canonical(address: &SockAddr) -> Option<SocketAddr> {
    let address = address.as_socket()?;
    Some(SocketAddr::new(address.ip().to_canonical(), address.port()))
}

/// Fills a `SockAddr` through a libsrt call that writes a `sockaddr` and its length.
fn address_from(
    call: &'static str,
    fill: impl FnOnce(*mut libc::sockaddr, *mut c_int) -> c_int,
) -> Result<(c_int, SockAddr), SrtError> {
    // SAFETY: libsrt writes at most `*len` bytes (the storage's size) of a sockaddr of the
    // family it reports and sets `*len` to what it wrote; `socklen_t` and `c_int` have the same
    // size on the supported targets.
    let filled =
        unsafe { SockAddr::try_init(|storage, len| Ok(fill(storage.cast(), len.cast::<c_int>()))) };
    match filled {
        Ok((rc, address)) => Ok((rc, address)),
        Err(err) => Err(SrtError::other(call, &err.to_string())),
    }
}

/// An SRT socket owned by this process, closed on drop.
#[derive(Debug)]
pub struct Socket {
    id: SocketId,
}

impl Socket {
    /// `srt_create_socket`.
    pub fn new() -> Result<Socket, SrtError> {
        // SAFETY: creating a socket has no preconditions.
        let id = unsafe { srt_create_socket() };
        if id == INVALID_SOCK {
            return Err(SrtError::last("srt_create_socket"));
        }
        Ok(Socket { id })
    }

    /// The socket's id.
    pub fn id(&self) -> SocketId {
        self.id
    }

    fn set_int(&self, call: &'static str, option: c_int, value: c_int) -> Result<(), SrtError> {
        // SAFETY: `value` lives across the call; libsrt copies the `c_int` it points to.
        let rc = unsafe {
            srt_setsockflag(
                self.id,
                option,
                (&raw const value).cast(),
                std::mem::size_of::<c_int>() as c_int,
            )
        };
        check(call, rc)
    }

    /// `SRTO_RCVSYN`: whether receiving (and accepting) blocks.
    pub fn set_blocking_receive(&self, blocking: bool) -> Result<(), SrtError> {
        self.set_int("SRTO_RCVSYN", opt::RCVSYN, c_int::from(blocking))
    }

    /// `SRTO_LATENCY`, ms.
    pub fn set_latency_ms(&self, latency_ms: i32) -> Result<(), SrtError> {
        self.set_int("SRTO_LATENCY", opt::LATENCY, latency_ms)
    }

    /// `SRTO_PBKEYLEN`: the key length, bytes (16, 24, 32).
    pub fn set_key_length(&self, bytes: i32) -> Result<(), SrtError> {
        self.set_int("SRTO_PBKEYLEN", opt::PBKEYLEN, bytes)
    }

    /// `SRTO_PASSPHRASE`.
    pub fn set_passphrase(&self, passphrase: &str) -> Result<(), SrtError> {
        set_passphrase(self.id, passphrase)
    }

    /// Calls `decide` for every caller's handshake on this listener before libsrt answers it:
    /// `Ok` lets the handshake continue, `Err(code)` rejects it with that reason
    /// (`SRT_REJX_*`, which the caller sees); a panic in `decide` rejects too. `decide` lives as
    /// long as the process: libsrt may call it from its own threads for as long as it runs.
    pub fn on_handshake<F>(&self, decide: F) -> Result<(), SrtError>
    where
        F: Fn(&Handshake<'_>) -> Result<(), i32> + Send + Sync + 'static,
    {
        let opaque: &'static F = Box::leak(Box::new(decide));
        // SAFETY: `opaque` is leaked, so valid for every later callback; `on_listen::<F>` only
        // reads it as an `&F`, and `F: Sync` allows that from libsrt's threads.
        let rc = unsafe {
            srt_listen_callback(
                self.id,
                Some(on_listen::<F>),
                std::ptr::from_ref(opaque).cast_mut().cast(),
            )
        };
        check("srt_listen_callback", rc)
    }

    /// `srt_bind`.
    pub fn bind(&self, address: SocketAddr) -> Result<(), SrtError> {
        let address = SockAddr::from(address);
        let len = c_int::try_from(address.len()).unwrap_or(c_int::MAX);
        // SAFETY: `address` is a valid sockaddr of `len` bytes, alive across the call.
        let rc = unsafe { srt_bind(self.id, address.as_ptr().cast(), len) };
        check("srt_bind", rc)
    }

    /// `srt_listen`.
    pub fn listen(&self, backlog: i32) -> Result<(), SrtError> {
        // SAFETY: an id of ours; libsrt checks its state.
        check("srt_listen", unsafe { srt_listen(self.id, backlog) })
    }

    /// The bound address (`srt_getsockname`).
    pub fn local_addr(&self) -> Result<SocketAddr, SrtError> {
        let (rc, address) = address_from("srt_getsockname", |name, len| {
            // SAFETY: `name`/`len` describe writable storage (see `address_from`).
            unsafe { srt_getsockname(self.id, name, len) }
        })?;
        check("srt_getsockname", rc)?;
        canonical(&address)
            .ok_or_else(|| SrtError::other("srt_getsockname", "not an IP socket address"))
    }

    /// Accepts one pending caller (`srt_accept`): the new socket and the caller's address.
    pub fn accept(&self) -> Result<(Socket, Option<SocketAddr>), SrtError> {
        let (id, address) = address_from("srt_accept", |addr, len| {
            // SAFETY: `addr`/`len` describe writable storage (see `address_from`).
            unsafe { srt_accept(self.id, addr, len) }
        })?;
        if id == INVALID_SOCK {
            return Err(SrtError::last("srt_accept"));
        }
        Ok((Socket { id }, canonical(&address)))
    }

    /// The stream id the caller sent (`SRTO_STREAMID`); empty if it sent none.
    pub fn stream_id(&self) -> String {
        let mut buf = [0u8; MAX_STREAM_ID + 1];
        let mut len = MAX_STREAM_ID as c_int;
        // SAFETY: `buf` has room for `len` bytes; libsrt writes at most `len` and updates it.
        let rc =
            unsafe { srt_getsockflag(self.id, opt::STREAMID, buf.as_mut_ptr().cast(), &mut len) };
        if rc == ERROR {
            return String::new();
        }
        let len = usize::try_from(len).unwrap_or(0).min(MAX_STREAM_ID);
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }

    /// One message into `buf` (`srt_recvmsg`): `Some(length)`, or `None` when nothing is
    /// waiting on a non-blocking socket; an error when the connection broke.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<usize>, SrtError> {
        let len = c_int::try_from(buf.len()).unwrap_or(c_int::MAX);
        // SAFETY: `buf` is writable for `len` bytes; libsrt writes at most that many.
        let n = unsafe { srt_recvmsg(self.id, buf.as_mut_ptr().cast(), len) };
        if n > 0 {
            return Ok(usize::try_from(n).ok());
        }
        let error = SrtError::last("srt_recvmsg");
        if n < 0 && error.code != EASYNCRCV {
            Err(error)
        } else {
            Ok(None)
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the id is ours and used no more; libsrt checks it.
        unsafe { srt_close(self.id) };
    }
}

fn set_passphrase(id: SocketId, passphrase: &str) -> Result<(), SrtError> {
    let len = c_int::try_from(passphrase.len())
        .map_err(|_| SrtError::other("SRTO_PASSPHRASE", "value too long"))?;
    // SAFETY: the pointer/length pair describes `passphrase`; libsrt copies it.
    let rc = unsafe { srt_setsockflag(id, opt::PASSPHRASE, passphrase.as_ptr().cast(), len) };
    check("SRTO_PASSPHRASE", rc)
}

/// A caller in the handshake, as [`Socket::on_handshake`]'s callback sees it. The socket stays
/// libsrt's until it is accepted.
#[derive(Debug)]
pub struct Handshake<'a> {
    socket: SocketId,
    peer: Option<SocketAddr>,
    stream_id: &'a str,
}

impl Handshake<'_> {
    /// The new socket's id (libsrt logs it as `@id`).
    pub fn socket(&self) -> SocketId {
        self.socket
    }

    /// The caller's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The stream id the caller sent.
    pub fn stream_id(&self) -> &str {
        self.stream_id
    }

    /// The passphrase the caller must use (`SRTO_PASSPHRASE` on the new socket).
    pub fn set_passphrase(&self, passphrase: &str) -> Result<(), SrtError> {
        set_passphrase(self.socket, passphrase)
    }
}

/// The handshake hook registered by [`Socket::on_handshake`].
unsafe extern "C" fn on_listen<F>(
    opaque: *mut c_void,
    ns: SocketId,
    _hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int
where
    F: Fn(&Handshake<'_>) -> Result<(), i32> + Send + Sync + 'static,
{
    // SAFETY: `opaque` is the leaked `F` registered with this listener.
    let decide = unsafe { &*opaque.cast_const().cast::<F>() };
    // SAFETY: libsrt passes a valid peer address (or null).
    let peer = unsafe { peer_address(peer) };
    // SAFETY: libsrt passes a NUL-terminated stream id valid for the call (or null).
    let stream_id = unsafe { c_string(stream_id) };
    let handshake = Handshake {
        socket: ns,
        peer,
        stream_id: &stream_id,
    };
    let decision = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide(&handshake)));
    match decision {
        Ok(Ok(())) => 0,
        Ok(Err(code)) => {
            // SAFETY: `ns` is the socket libsrt is handshaking.
            unsafe { srt_setrejectreason(ns, code) };
            -1
        }
        Err(_) => -1,
    }
}

/// One readiness event from [`Epoll::wait`] (`SRT_EPOLL_EVENT`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EpollEvent {
    fd: SocketId,
    events: c_int,
}

impl EpollEvent {
    /// The socket the event is for.
    pub fn socket(&self) -> SocketId {
        self.fd
    }

    /// `SRT_EPOLL_ERR`: the connection broke (or the socket closed).
    pub fn is_error(&self) -> bool {
        self.events & EPOLL_ERR != 0
    }
}

/// An SRT epoll set (`srt_epoll_create`), released on drop.
#[derive(Debug)]
pub struct Epoll {
    id: c_int,
}

impl Epoll {
    /// `srt_epoll_create`.
    pub fn new() -> Result<Epoll, SrtError> {
        // SAFETY: creating an epoll id has no preconditions.
        let id = unsafe { srt_epoll_create() };
        if id < 0 {
            return Err(SrtError::last("srt_epoll_create"));
        }
        Ok(Epoll { id })
    }

    /// Watches `socket` for readability (data, or a pending caller on a listener) and errors.
    pub fn watch(&self, socket: &Socket) -> Result<(), SrtError> {
        let events = EPOLL_IN | EPOLL_ERR;
        // SAFETY: our epoll id and a live socket; `events` outlives the call.
        if unsafe { srt_epoll_add_usock(self.id, socket.id, &events) } < 0 {
            return Err(SrtError::last("srt_epoll_add_usock"));
        }
        Ok(())
    }

    /// Stops watching `socket`.
    pub fn unwatch(&self, socket: &Socket) {
        // SAFETY: our epoll id and a live socket.
        unsafe { srt_epoll_remove_usock(self.id, socket.id) };
    }

    /// Waits up to `timeout_ms` for events (level-triggered) and fills the start of `events`;
    /// how many were filled (0 on timeout).
    pub fn wait(&self, events: &mut [EpollEvent], timeout_ms: i64) -> usize {
        let size = c_int::try_from(events.len()).unwrap_or(c_int::MAX);
        // SAFETY: `events` has room for `size` entries of libsrt's `SRT_EPOLL_EVENT` layout.
        let n = unsafe { srt_epoll_uwait(self.id, events.as_mut_ptr(), size, timeout_ms) };
        usize::try_from(n).unwrap_or(0)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: our epoll id, used no more.
        unsafe { srt_epoll_release(self.id) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_come_back_through_sockaddr() {
        for addr in ["127.0.0.1:8890", "[::1]:9000", "0.0.0.0:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let raw = SockAddr::from(addr);
            // SAFETY: `raw` holds a valid sockaddr of its family.
            let back = unsafe { peer_address(raw.as_ptr().cast()) };
            assert_eq!(back, Some(addr));
        }
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
        let raw = SockAddr::from(mapped);
        // SAFETY: as above.
        let back = unsafe { peer_address(raw.as_ptr().cast()) };
        assert_eq!(back, Some("10.0.0.1:5000".parse().unwrap()));
        // SAFETY: null is allowed.
        assert_eq!(unsafe { peer_address(std::ptr::null()) }, None);
    }

    #[test]
    fn a_listener_binds_port_zero_and_reports_the_port_it_got() {
        let _library = Library::start().unwrap();
        let socket = Socket::new().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let bound = socket.local_addr().unwrap();
        assert_eq!(bound.ip(), std::net::Ipv4Addr::LOCALHOST);
        assert_ne!(bound.port(), 0);
        let unbound = Socket::new().unwrap();
        let error = unbound.listen(1).unwrap_err();
        assert!(error.code() > 0 && !error.message().is_empty(), "{error}");
        assert!(error.to_string().starts_with("srt_listen: "), "{error}");
    }
}
