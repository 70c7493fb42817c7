//! Hand-written bindings to the few libsrt 1.5 functions cuecast uses (`srt/srt.h`), and small
//! safe wrappers. Linked against the system library (`libsrt-openssl-dev` on Debian, the
//! library OBS and ffmpeg use). Constants are the values from `srt.h` / `access_control.h`.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

/// An SRT socket id.
pub type SrtSocket = c_int;

/// `SRT_INVALID_SOCK`.
pub const INVALID_SOCK: SrtSocket = -1;
/// `SRT_ERROR`.
pub const ERROR: c_int = -1;

/// `SRT_SOCKOPT` values used here.
#[allow(missing_docs)]
pub mod opt {
    use std::ffi::c_int;
    pub const RCVSYN: c_int = 2;
    pub const LATENCY: c_int = 23;
    pub const PASSPHRASE: c_int = 26;
    pub const PBKEYLEN: c_int = 27;
    pub const RCVLATENCY: c_int = 43;
    pub const PEERLATENCY: c_int = 44;
    pub const STREAMID: c_int = 46;
    pub const PEERIDLETIMEO: c_int = 55;
}

/// `SRT_EPOLL_IN`.
pub const EPOLL_IN: c_int = 0x1;
/// `SRT_EPOLL_ERR`.
pub const EPOLL_ERR: c_int = 0x8;
/// `SRT_EASYNCRCV`: nothing to read or accept on a non-blocking socket.
pub const EASYNCRCV: c_int = 6002;

/// `SRT_EPOLL_EVENT`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EpollEvent {
    /// The socket.
    pub fd: SrtSocket,
    /// `EPOLL_IN | EPOLL_ERR …`.
    pub events: c_int,
}

/// `srt_listen_callback_fn`.
pub type ListenCallback = unsafe extern "C" fn(
    opaque: *mut c_void,
    ns: SrtSocket,
    hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int;

/// libsrt's log handler (`SRT_LOG_HANDLER_FN`).
pub type LogHandler = unsafe extern "C" fn(
    opaque: *mut c_void,
    level: c_int,
    file: *const c_char,
    line: c_int,
    area: *const c_char,
    message: *const c_char,
);

#[link(name = "srt")]
unsafe extern "C" {
    pub fn srt_startup() -> c_int;
    pub fn srt_create_socket() -> SrtSocket;
    pub fn srt_bind(u: SrtSocket, name: *const libc::sockaddr, namelen: c_int) -> c_int;
    pub fn srt_listen(u: SrtSocket, backlog: c_int) -> c_int;
    pub fn srt_accept(u: SrtSocket, addr: *mut libc::sockaddr, addrlen: *mut c_int) -> SrtSocket;
    pub fn srt_listen_callback(
        lsn: SrtSocket,
        hook: Option<ListenCallback>,
        opaque: *mut c_void,
    ) -> c_int;
    pub fn srt_close(u: SrtSocket) -> c_int;
    pub fn srt_getsockname(u: SrtSocket, name: *mut libc::sockaddr, namelen: *mut c_int) -> c_int;
    pub fn srt_setsockflag(u: SrtSocket, opt: c_int, val: *const c_void, len: c_int) -> c_int;
    pub fn srt_getsockflag(u: SrtSocket, opt: c_int, val: *mut c_void, len: *mut c_int) -> c_int;
    pub fn srt_recvmsg(u: SrtSocket, buf: *mut c_char, len: c_int) -> c_int;
    pub fn srt_getlasterror_str() -> *const c_char;
    pub fn srt_getlasterror(errno_loc: *mut c_int) -> c_int;
    pub fn srt_epoll_create() -> c_int;
    pub fn srt_epoll_add_usock(eid: c_int, u: SrtSocket, events: *const c_int) -> c_int;
    pub fn srt_epoll_remove_usock(eid: c_int, u: SrtSocket) -> c_int;
    pub fn srt_epoll_uwait(
        eid: c_int,
        events: *mut EpollEvent,
        size: c_int,
        timeout_ms: i64,
    ) -> c_int;
    pub fn srt_epoll_release(eid: c_int) -> c_int;
    pub fn srt_setrejectreason(u: SrtSocket, value: c_int) -> c_int;
    pub fn srt_setloglevel(level: c_int);
    pub fn srt_setloghandler(opaque: *mut c_void, handler: Option<LogHandler>);
}

/// The last libsrt error of this thread: (code, message).
pub fn last_error() -> (c_int, String) {
    // SAFETY: both functions read thread-local state; the string is owned by libsrt and
    // copied before the next call.
    unsafe {
        let code = srt_getlasterror(std::ptr::null_mut());
        let text = srt_getlasterror_str();
        let message = if text.is_null() {
            String::new()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        };
        (code, message)
    }
}

/// Sets an integer (or boolean) option.
pub fn set_int(u: SrtSocket, option: c_int, value: c_int) -> Result<(), String> {
    // SAFETY: `value` lives across the call; libsrt copies it.
    let rc = unsafe {
        srt_setsockflag(
            u,
            option,
            (&raw const value).cast(),
            std::mem::size_of::<c_int>() as c_int,
        )
    };
    if rc == ERROR {
        Err(last_error().1)
    } else {
        Ok(())
    }
}

/// Sets a string option (passphrase).
pub fn set_str(u: SrtSocket, option: c_int, value: &str) -> Result<(), String> {
    let len = c_int::try_from(value.len()).map_err(|_| "value too long".to_string())?;
    // SAFETY: the pointer/length pair describes `value`; libsrt copies it.
    let rc = unsafe { srt_setsockflag(u, option, value.as_ptr().cast(), len) };
    if rc == ERROR {
        Err(last_error().1)
    } else {
        Ok(())
    }
}

/// Reads the stream id of an accepted socket.
pub fn stream_id(u: SrtSocket) -> String {
    let mut buf = [0u8; 513];
    let mut len = 512 as c_int;
    // SAFETY: `buf` holds `len` bytes; libsrt writes at most `len` and updates it.
    let rc = unsafe { srt_getsockflag(u, opt::STREAMID, buf.as_mut_ptr().cast(), &mut len) };
    if rc == ERROR {
        return String::new();
    }
    let len = usize::try_from(len).unwrap_or(0).min(512);
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// A `sockaddr` for `addr`, as (storage, length).
pub fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, c_int) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as c_int)
}

/// The address in a `sockaddr` from libsrt, if it is IPv4 or IPv6.
///
/// # Safety
/// `addr` is null or points to a valid `sockaddr` of its family's size.
pub unsafe fn from_sockaddr(addr: *const libc::sockaddr) -> Option<SocketAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid sockaddr; the family selects the layout.
    unsafe {
        match c_int::from((*addr).sa_family) {
            libc::AF_INET => {
                let sin = &*addr.cast::<libc::sockaddr_in>();
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let sin6 = &*addr.cast::<libc::sockaddr_in6>();
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let ip = match ip.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(ip),
                };
                Some(SocketAddr::new(ip, u16::from_be(sin6.sin6_port)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for addr in ["127.0.0.1:8890", "[::1]:9000", "0.0.0.0:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let (storage, _) = to_sockaddr(addr);
            // SAFETY: `storage` holds a sockaddr written by `to_sockaddr`.
            let back = unsafe { from_sockaddr((&raw const storage).cast()) };
            assert_eq!(back, Some(addr));
        }
    }
}
