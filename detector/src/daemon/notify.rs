//! systemd's readiness protocol (`sd_notify(3)`, `Type=notify`), spoken directly: each
//! message is one datagram of `KEY=VALUE` lines to the unix socket named by
//! `$NOTIFY_SOCKET` (an abstract socket when the name starts with `@`).
//!
//! Why: with `Type=exec` systemd calls the daemon started while its programs are still
//! loading or failed to attach; with `READY=1` only after attach, and `WATCHDOG=1` sent
//! from the event loop itself, systemd both orders dependants correctly and restarts a
//! daemon whose loop stalled. Everything is a no-op when `$NOTIFY_SOCKET` is unset, and a
//! failed send is logged, never fatal: the detector keeps detecting without a supervisor.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// The environment variables the protocol reads, as passed to [`Notifier::from_vars`].
#[derive(Clone, Debug, Default)]
pub struct NotifyEnv<'a> {
    /// `$NOTIFY_SOCKET`.
    pub socket: Option<&'a OsStr>,
    /// `$WATCHDOG_USEC`: systemd's watchdog timeout.
    pub watchdog_usec: Option<&'a str>,
    /// `$WATCHDOG_PID`: the watchdog applies only to this process (when set).
    pub watchdog_pid: Option<&'a str>,
}

/// Talks to the service manager; inert when there is none.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// Between two `WATCHDOG=1` pings (see [`ping_gap`]); `None` when no watchdog is asked
    /// for.
    ping_every: Option<Duration>,
    last_ping: Option<Instant>,
}

/// The socket address `$NOTIFY_SOCKET` names: a path, or an abstract name after `@`.
pub fn socket_addr(name: &OsStr) -> io::Result<SocketAddr> {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is empty",
        )),
        Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name),
        Some((b'/', _)) => SocketAddr::from_pathname(name),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is neither an absolute path nor an abstract name (@…)",
        )),
    }
}

/// The ping period for `$WATCHDOG_USEC` / `$WATCHDOG_PID` seen by process `me`: half the
/// timeout, or `None` when unset, unparsable, zero, or meant for another process.
pub fn ping_period(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The loop checks whether a ping is due only when it turns, which an idle loop does at
/// least this often (the housekeeping tick).
pub const LOOP_TURN_MAX: Duration = super::ticks::HOUSEKEEPING;

/// Never ping more often than this (a busy loop turns thousands of times a second).
const MIN_PING_GAP: Duration = Duration::from_millis(100);

/// The least time between two pings for a ping `period` (half the timeout): the period less
/// one loop turn, so that a ping due just after a turn still goes out within the period.
pub fn ping_gap(period: Duration) -> Duration {
    period.saturating_sub(LOOP_TURN_MAX).max(MIN_PING_GAP)
}

/// `STATUS=` with the key counters (one line: systemctl shows it as is).
pub fn status_message(events: u64, lost: u64, alerts: u64) -> String {
    format!("STATUS=attached; {events} events, {lost} lost, {alerts} alerts")
}

/// `RELOADING=1` with the `MONOTONIC_USEC=` systemd (>= 253) requires alongside it.
pub fn reloading_message(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")
}

/// `CLOCK_MONOTONIC` in microseconds (what `MONOTONIC_USEC=` is measured in).
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

impl Notifier {
    /// Reads the protocol's variables from this process's environment.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::from_vars(&NotifyEnv {
            socket: socket.as_deref(),
            watchdog_usec: usec.as_deref(),
            watchdog_pid: pid.as_deref(),
        })
    }

    /// A notifier for these variables; inert (every call a no-op) without a socket or when
    /// the socket cannot be set up (logged).
    pub fn from_vars(env: &NotifyEnv) -> Notifier {
        let inert = Notifier {
            target: None,
            ping_every: None,
            last_ping: None,
        };
        let Some(name) = env.socket else {
            return inert;
        };
        let target = socket_addr(name).and_then(|addr| Ok((UnixDatagram::unbound()?, addr)));
        match target {
            Ok(target) => Notifier {
                target: Some(target),
                ping_every: ping_period(env.watchdog_usec, env.watchdog_pid, std::process::id())
                    .map(ping_gap),
                last_ping: None,
            },
            Err(e) => {
                tracing::warn!(socket = ?name, error = %e, "cannot notify the service manager");
                inert
            }
        }
    }

    /// Whether a service manager listens (tests; callers need not check).
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    fn send(&self, message: &str) {
        if let Some((sock, addr)) = &self.target
            && let Err(e) = sock.send_to_addr(message.as_bytes(), addr)
        {
            tracing::warn!(error = %e, message, "sd_notify failed");
        }
    }

    /// `READY=1`: the programs are attached and the rules loaded (also after a reload).
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// `STATUS=` with the key counters.
    pub fn status(&self, events: u64, lost: u64, alerts: u64) {
        self.send(&status_message(events, lost, alerts));
    }

    /// `RELOADING=1` before a SIGHUP reload (then [`ready`](Self::ready) after it).
    pub fn reloading(&self) {
        self.send(&reloading_message(monotonic_usec()));
    }

    /// `STOPPING=1` when the daemon begins to stop.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Called on every turn of the event loop: pings the watchdog when half its timeout has
    /// passed since the last ping. A loop that stops turning stops pinging, which is the
    /// point: systemd then restarts the daemon.
    pub fn alive(&mut self) {
        let Some(every) = self.ping_every else {
            return;
        };
        let now = Instant::now();
        if self
            .last_ping
            .is_none_or(|last| now.duration_since(last) >= every)
        {
            self.send("WATCHDOG=1");
            self.last_ping = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_and_path_names() {
        let a = socket_addr(OsStr::new("@detector/notify")).unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"detector/notify"[..]));
        assert!(a.as_pathname().is_none());
        let p = socket_addr(OsStr::new("/run/systemd/notify")).unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        for bad in ["", "relative/path"] {
            assert!(socket_addr(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn watchdog_pings_at_half_the_timeout_for_this_process_only() {
        let half = |ms| Some(Duration::from_millis(ms));
        assert_eq!(ping_period(Some("1000000"), None, 7), half(500));
        assert_eq!(ping_period(Some("30000000"), Some("7"), 7), half(15_000));
        assert_eq!(ping_period(Some("30000000"), Some("8"), 7), None);
        assert_eq!(ping_period(Some("0"), None, 7), None);
        assert_eq!(ping_period(Some("soon"), None, 7), None);
        assert_eq!(ping_period(None, None, 7), None);
    }

    #[test]
    fn pings_leave_room_for_one_loop_turn() {
        let ms = Duration::from_millis;
        assert_eq!(ping_gap(ms(15_000)), ms(14_500));
        assert_eq!(ping_gap(ms(1_000)), ms(500));
        assert_eq!(ping_gap(ms(500)), MIN_PING_GAP);
    }

    #[test]
    fn messages_keep_the_protocol_shape() {
        assert_eq!(
            status_message(12, 0, 3),
            "STATUS=attached; 12 events, 0 lost, 3 alerts"
        );
        assert_eq!(reloading_message(42), "RELOADING=1\nMONOTONIC_USEC=42");
        assert!(monotonic_usec() > 0);
    }

    #[test]
    fn no_socket_is_a_no_op_and_an_abstract_socket_receives() {
        let mut none = Notifier::from_vars(&NotifyEnv::default());
        assert!(!none.is_active());
        none.ready();
        none.alive();

        let name = format!("detector-notify-test-{}", std::process::id());
        let listen =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        listen
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let socket = format!("@{name}");
        let mut n = Notifier::from_vars(&NotifyEnv {
            socket: Some(OsStr::new(&socket)),
            watchdog_usec: Some("60000000"),
            watchdog_pid: None,
        });
        n.ready();
        n.alive();
        n.alive(); // within 30 s of the first: no second ping
        n.stopping();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        for _ in 0..3 {
            let len = listen.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(got, ["READY=1", "WATCHDOG=1", "STOPPING=1"]);
    }
}
