//! netwho-trafficgen: traffic whose exact payload counts are known.
//!
//! Every role prints, as JSON lines on stdout, the ground truth of each flow
//! it took part in: its pid, comm, effective uid/gid, both endpoints, and the
//! sums of what send()/recv() returned. Servers print `{"ready":...}` once
//! listening. Every loop is bounded in count and every socket in time.

#![expect(
    clippy::disallowed_methods,
    reason = "a traffic generator paces itself with the clock"
)]

use clap::{Parser, Subcommand};
use netwho_e2e::{SEED_CLIENT, SEED_SERVER, pattern};
use serde_json::json;
use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server waits for a client that paused on purpose (its
/// `--pause-after`: until a test has started netwho, which under QEMU with
/// many clients to wait for can take longer than `IO_TIMEOUT`).
const PAUSE_TIMEOUT: Duration = Duration::from_secs(120);
const CHUNK: usize = 64 * 1024;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

/// COUNT datagrams of SIZE bytes from SRC to TO, ports PORT_BASE.. .
#[derive(clap::Args, Clone, Copy)]
struct Datagrams {
    #[arg(long)]
    to: IpAddr,
    #[arg(long)]
    port_base: u16,
    #[arg(long)]
    count: u16,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    src: IpAddr,
}

/// A paced benchmark client's settings.
#[derive(clap::Args)]
struct Paced {
    #[arg(long)]
    to: IpAddr,
    #[arg(long)]
    port: u16,
    #[arg(long)]
    rate: u32,
    #[arg(long)]
    secs: f64,
    #[arg(long, default_value_t = 100)]
    size: u64,
}

#[derive(Subcommand)]
enum Role {
    /// Accept CONNS connections; on each read EXPECT bytes, write REPLY,
    /// read to EOF. With --skip, the first SKIP bytes are not ground truth
    /// (they were sent before netwho started).
    TcpServer {
        #[arg(long)]
        bind: IpAddr,
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 1)]
        conns: u32,
        #[arg(long)]
        expect: u64,
        #[arg(long)]
        reply: u64,
        #[arg(long, default_value_t = 0)]
        skip: u64,
    },
    /// CONNS sequential connections: write SEND bytes, read EXPECT, close.
    TcpClient {
        #[arg(long)]
        to: IpAddr,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 1)]
        conns: u32,
        #[arg(long)]
        send: u64,
        #[arg(long)]
        expect: u64,
        /// Become this user before connecting
        #[arg(long)]
        as_user: Option<String>,
        /// Send this many bytes, print {"paused":true}, wait for a line on
        /// stdin, then go on (those bytes are not ground truth)
        #[arg(long, default_value_t = 0)]
        pause_after: u64,
    },
    /// Bind COUNT UDP sockets on PORT_BASE.. and read one datagram on each.
    UdpServer {
        #[arg(long)]
        bind: IpAddr,
        #[arg(long)]
        port_base: u16,
        #[arg(long)]
        count: u16,
    },
    /// COUNT datagrams of SIZE bytes, each from a fresh socket closed at
    /// once, to PORT_BASE.. . SRC is the address routing will pick (for the
    /// ground truth: an unbound socket does not know it).
    UdpOneshot {
        #[command(flatten)]
        d: Datagrams,
        /// Send every datagram from one socket instead (one flow per remote)
        #[arg(long)]
        one_socket: bool,
    },
    /// Run COUNT short-lived processes, each sending one datagram (to
    /// PORT_BASE + i) and exiting at once; they print their own truth.
    SpawnUdp {
        #[command(flatten)]
        d: Datagrams,
        /// Become this user first (the children are that user too)
        #[arg(long)]
        as_user: Option<String>,
    },
    /// Allocate and touch MIB MiB, send the datagrams, exit without freeing.
    Hungry {
        #[command(flatten)]
        d: Datagrams,
        #[arg(long)]
        mib: usize,
    },
    /// Benchmarks: serve until killed. `echo`: read SIZE, write SIZE back
    /// and close first (TIME_WAIT stays here, not on the client's
    /// ephemeral ports); `sink`: read to EOF.
    BenchServer {
        #[arg(long)]
        bind: IpAddr,
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long)]
        sink: bool,
        #[arg(long, default_value_t = 100)]
        size: u64,
    },
    /// Benchmarks: connections at RATE per second (0: as fast as possible)
    /// for SECS seconds, each sending SIZE bytes and reading SIZE back.
    RateClient(Paced),
    /// Benchmarks: a DNS server on BIND:53 (UDP) that answers every A
    /// question with ANSWER (TTL 60), until killed.
    DnsServer {
        #[arg(long)]
        bind: IpAddr,
        #[arg(long)]
        answer: std::net::Ipv4Addr,
    },
    /// Benchmarks: RATE lookups per second for SECS seconds, each a fresh
    /// UDP socket asking DNS at TO:53 for a name of its own (as libc
    /// does), then a connection to the answer's address on PORT (SIZE
    /// bytes each way).
    DnsClient(Paced),
    /// Benchmarks: send as fast as possible for SECS seconds.
    BulkClient {
        #[arg(long)]
        to: IpAddr,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        secs: f64,
    },
    /// Storms: THREADS threads accepting connections, each read to EOF
    /// and closed (serves until killed).
    StormServer {
        #[arg(long)]
        bind: IpAddr,
        #[arg(long, default_value_t = 4)]
        threads: u32,
    },
    /// Storms: THREADS threads making connections as fast as they can for
    /// SECS seconds (at most RATE per second in all, 0: no limit), each
    /// sending SIZE bytes, then closing after the server's EOF (TIME_WAIT
    /// stays here: give the namespace tcp_tw_reuse and a wide port range).
    StormClient {
        #[arg(long)]
        to: IpAddr,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 4)]
        threads: u32,
        #[arg(long)]
        secs: f64,
        #[arg(long, default_value_t = 0)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        size: u64,
    },
    /// One UDP socket sends SIZE bytes to each of COUNT ports, ROUNDS
    /// times, EVERY_MS apart (a flood of flows held open); prints one truth
    /// line per remote at the end.
    UdpSpray {
        #[command(flatten)]
        d: Datagrams,
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        #[arg(long, default_value_t = 0)]
        every_ms: u64,
    },
    /// Connect, send SEND bytes, then take EXPECT bytes (and the EOF) with
    /// splice(2) into a pipe, never recv(): the application moves the bytes
    /// without sock_recvmsg. With --pause-at, print {"paused": N} after N
    /// bytes and wait for a line on stdin.
    SpliceClient {
        #[arg(long)]
        to: IpAddr,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        send: u64,
        #[arg(long)]
        expect: u64,
        #[arg(long, default_value_t = 0)]
        pause_at: u64,
    },
    /// The parent connects and sends; forks; closes its copy and waits. The
    /// child renames itself, sends more and reads the reply.
    Handoff {
        #[arg(long)]
        to: IpAddr,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        parent_send: u64,
        #[arg(long)]
        child_send: u64,
        #[arg(long)]
        child_expect: u64,
        #[arg(long)]
        child_name: String,
        /// The parent holds the connection this long after its send before
        /// forking, and the child waits this long before its own
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
        /// The parent exits right after the fork (the child outlives it)
        #[arg(long)]
        parent_exits: bool,
    },
}

fn comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

fn ids() -> (u32, u32) {
    // SAFETY: geteuid/getegid cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

fn canon(a: SocketAddr) -> (String, u16) {
    (a.ip().to_canonical().to_string(), a.port())
}

fn truth(role: &str, proto: &str, local: SocketAddr, remote: SocketAddr, sent: u64, recv: u64) {
    let (uid, gid) = ids();
    let (laddr, lport) = canon(local);
    let (raddr, rport) = canon(remote);
    println!(
        "{}",
        json!({
            "role": role, "pid": std::process::id(), "ppid": std::os::unix::process::parent_id(),
            "comm": comm(), "uid": uid, "gid": gid,
            "proto": proto, "laddr": laddr, "lport": lport, "raddr": raddr, "rport": rport,
            "bytes_sent": sent, "bytes_recv": recv,
        })
    );
    let _ = std::io::stdout().flush();
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("trafficgen: {msg}");
    std::process::exit(1)
}

/// Write `n` bytes of the role's pattern (`netwho_e2e::pattern`), returning
/// the sum of what write() returned.
fn send_n(s: &mut TcpStream, n: u64, seed: u8) -> u64 {
    // one period longer than a chunk: any offset's chunk is a slice of it
    let buf = pattern(seed, 0, CHUNK + 251);
    let mut done = 0u64;
    while done < n {
        let want = usize::try_from((n - done).min(CHUNK as u64)).unwrap_or(CHUNK);
        let at = (done % 251) as usize;
        match s.write(&buf[at..at + want]) {
            Ok(0) => die("connection closed while sending"),
            Ok(k) => done += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => die(format!("send: {e}")),
        }
    }
    done
}

/// Read exactly `n` bytes (or to EOF if `n` is None), returning the sum of
/// what read() returned.
fn recv_n(s: &mut TcpStream, n: Option<u64>) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let want = match n {
            Some(n) if done >= n => return done,
            Some(n) => usize::try_from((n - done).min(CHUNK as u64)).unwrap_or(CHUNK),
            None => CHUNK,
        };
        match s.read(&mut buf[..want]) {
            Ok(0) if n.is_none() => return done,
            Ok(0) => die(format!("EOF after {done} bytes")),
            Ok(k) => done += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => die(format!("recv: {e}")),
        }
    }
}

/// Waits (up to the I/O timeout) until `n` bytes are ready to read, or what
/// is ready stops growing (the receive window is full).
fn wait_buffered(s: &TcpStream, n: u64) {
    use std::os::fd::AsRawFd;
    let start = std::time::Instant::now();
    let (mut last, mut same) = (0u64, 0u32);
    while start.elapsed() < IO_TIMEOUT {
        let mut ready: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer we pass.
        let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut ready) };
        let ready = u64::try_from(ready).unwrap_or(0);
        if rc < 0 || ready >= n {
            return;
        }
        same = if ready == last && ready > 0 {
            same + 1
        } else {
            0
        };
        if same >= 20 {
            return;
        }
        last = ready;
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn timeouts(s: &TcpStream) {
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
}

fn become_user(name: &str) {
    let cname = std::ffi::CString::new(name).unwrap_or_else(|_| die("bad user name"));
    // SAFETY: getpwnam returns a pointer into static storage or NULL; we
    // copy the ids out at once, single-threaded.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        die(format!("no user {name}"));
    }
    // SAFETY: pw is non-null and points to a valid passwd.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: plain credential syscalls; failure is checked.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(gid) == 0
            && libc::setuid(uid) == 0
    };
    if !ok {
        die(format!(
            "cannot become {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
}

fn tcp_server(bind: IpAddr, port: u16, conns: u32, expect: u64, reply: u64, skip: u64) {
    let l = TcpListener::bind((bind, port)).unwrap_or_else(|e| die(format!("bind: {e}")));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("{}", json!({"ready": true, "port": port}));
    let _ = std::io::stdout().flush();
    let mut handles = Vec::new();
    for _ in 0..conns {
        let (mut s, peer) = l.accept().unwrap_or_else(|e| die(format!("accept: {e}")));
        handles.push(std::thread::spawn(move || {
            timeouts(&s);
            let local = s.local_addr().unwrap_or_else(|e| die(e));
            recv_n(&mut s, Some(skip));
            if skip > 0 {
                // the client paused after those: its next bytes come when
                // the test says go
                let _ = s.set_read_timeout(Some(PAUSE_TIMEOUT));
            }
            let mut recv = recv_n(&mut s, Some(expect));
            timeouts(&s);
            let sent = send_n(&mut s, reply, SEED_SERVER);
            recv += recv_n(&mut s, None);
            drop(s);
            truth("server", "tcp", local, peer, sent, recv);
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}

fn tcp_client(to: IpAddr, port: u16, conns: u32, send: u64, expect: u64, pause_after: u64) {
    for _ in 0..conns {
        let mut s = TcpStream::connect((to, port)).unwrap_or_else(|e| die(format!("connect: {e}")));
        timeouts(&s);
        if pause_after > 0 {
            send_n(&mut s, pause_after, SEED_CLIENT);
            println!("{}", json!({"paused": true}));
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
        let local = s.local_addr().unwrap_or_else(|e| die(e));
        let remote = s.peer_addr().unwrap_or_else(|e| die(e));
        let sent = send_n(&mut s, send, SEED_CLIENT);
        let mut recv = recv_n(&mut s, Some(expect));
        let _ = s.shutdown(Shutdown::Write);
        recv += recv_n(&mut s, None);
        drop(s);
        truth("client", "tcp", local, remote, sent, recv);
    }
}

fn udp_server(bind: IpAddr, port_base: u16, count: u16) {
    let socks: Vec<UdpSocket> = (0..count)
        .map(|i| {
            let s = UdpSocket::bind((bind, port_base + i))
                .unwrap_or_else(|e| die(format!("bind: {e}")));
            let _ = s.set_read_timeout(Some(IO_TIMEOUT));
            s
        })
        .collect();
    println!("{}", json!({"ready": true, "port": port_base}));
    let _ = std::io::stdout().flush();
    let mut buf = vec![0u8; 65536];
    for s in &socks {
        let (n, peer) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| die(format!("recv_from: {e}")));
        let local = s.local_addr().unwrap_or_else(|e| die(e));
        truth("server", "udp", local, peer, 0, n as u64);
    }
}

/// An unbound-address UDP socket of `to`'s family (routing picks the source).
fn udp_socket(to: IpAddr) -> UdpSocket {
    let any = if to.is_ipv4() {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    };
    UdpSocket::bind((any, 0)).unwrap_or_else(|e| die(format!("socket: {e}")))
}

fn udp_oneshot(d: Datagrams, one_socket: bool) {
    let Datagrams {
        to,
        port_base,
        count,
        size,
        src,
    } = d;
    let fresh = || udp_socket(to);
    let shared = one_socket.then(fresh);
    let payload = pattern(SEED_CLIENT, 0, size);
    for i in 0..count {
        let own = if shared.is_none() {
            Some(fresh())
        } else {
            None
        };
        let Some(s) = own.as_ref().or(shared.as_ref()) else {
            die("no socket")
        };
        let n = s
            .send_to(&payload, (to, port_base + i))
            .unwrap_or_else(|e| die(format!("send_to: {e}")));
        let lport = s.local_addr().map(|a| a.port()).unwrap_or(0);
        drop(own);
        truth(
            "client",
            "udp",
            SocketAddr::new(src, lport),
            SocketAddr::new(to, port_base + i),
            n as u64,
            0,
        );
    }
}

fn storm_server(bind: IpAddr, threads: u32) {
    let l = TcpListener::bind((bind, 0)).unwrap_or_else(|e| die(format!("bind: {e}")));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("{}", json!({"ready": true, "port": port}));
    let _ = std::io::stdout().flush();
    let l = std::sync::Arc::new(l);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let l = std::sync::Arc::clone(&l);
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    let Ok(mut s) = conn else { continue };
                    timeouts(&s);
                    recv_n(&mut s, None);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn storm_client(to: IpAddr, port: u16, threads: u32, secs: f64, rate: u32, size: u64) {
    let start = std::time::Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let per_thread = f64::from(rate) / f64::from(threads.max(1));
    let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let total = std::sync::Arc::clone(&total);
            std::thread::spawn(move || {
                let mut done: u64 = 0;
                while std::time::Instant::now() < end {
                    if per_thread > 0.0 {
                        let due = start + Duration::from_secs_f64(done as f64 / per_thread);
                        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let mut s = TcpStream::connect((to, port))
                        .unwrap_or_else(|e| die(format!("connect: {e}")));
                    timeouts(&s);
                    send_n(&mut s, size, SEED_CLIENT);
                    let _ = s.shutdown(Shutdown::Write);
                    recv_n(&mut s, None);
                    done += 1;
                    if total.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 999 {
                        // under way: whoever waits for the storm may go on
                        println!("{}", json!({"storming": true}));
                        let _ = std::io::stdout().flush();
                    }
                }
                done
            })
        })
        .collect();
    let done: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"done": true, "conns": done, "secs": secs, "rate": done as f64 / secs})
    );
}

fn udp_spray(d: Datagrams, rounds: u32, every_ms: u64) {
    let Datagrams {
        to,
        port_base,
        count,
        size,
        src,
    } = d;
    let s = udp_socket(to);
    let payload = pattern(SEED_CLIENT, 0, size);
    let mut sent = vec![0u64; usize::from(count)];
    for round in 0..rounds {
        if round > 0 {
            std::thread::sleep(Duration::from_millis(every_ms));
        }
        for i in 0..count {
            let n = s
                .send_to(&payload, (to, port_base + i))
                .unwrap_or_else(|e| die(format!("send_to: {e}")));
            sent[usize::from(i)] += n as u64;
        }
        println!("{}", json!({"round": round}));
        let _ = std::io::stdout().flush();
    }
    let lport = s.local_addr().map(|a| a.port()).unwrap_or(0);
    for i in 0..count {
        truth(
            "client",
            "udp",
            SocketAddr::new(src, lport),
            SocketAddr::new(to, port_base + i),
            sent[usize::from(i)],
            0,
        );
    }
}

/// Move up to `want` bytes from `fd` to `to` with splice(2); 0 at EOF.
fn splice_once(fd: i32, to: i32, want: usize) -> usize {
    loop {
        // SAFETY: two valid descriptors, no offsets.
        let n = unsafe {
            libc::splice(
                fd,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                want,
                libc::SPLICE_F_MOVE,
            )
        };
        if n >= 0 {
            return usize::try_from(n).unwrap_or(0);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            die(format!("splice: {e}"));
        }
    }
}

fn splice_client(to: IpAddr, port: u16, send: u64, expect: u64, pause_at: u64) {
    use std::os::fd::AsRawFd;
    let mut s = TcpStream::connect((to, port)).unwrap_or_else(|e| die(format!("connect: {e}")));
    timeouts(&s);
    let local = s.local_addr().unwrap_or_else(|e| die(e));
    let remote = s.peer_addr().unwrap_or_else(|e| die(e));
    let sent = send_n(&mut s, send, SEED_CLIENT);
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        die("pipe failed");
    }
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap_or_else(|e| die(e));
    let mut got = 0u64;
    let mut paused = pause_at == 0;
    let mut shut = false;
    loop {
        if got >= expect && !shut {
            // all of the reply: our EOF, then the server's
            let _ = s.shutdown(Shutdown::Write);
            shut = true;
        }
        let want = if paused {
            CHUNK as u64
        } else {
            (pause_at - got).min(CHUNK as u64)
        };
        let n = splice_once(
            s.as_raw_fd(),
            fds[1],
            usize::try_from(want).unwrap_or(CHUNK),
        );
        if n == 0 {
            break;
        }
        // empty the pipe into /dev/null, also by splice
        let mut left = n;
        while left > 0 {
            let k = splice_once(fds[0], null.as_raw_fd(), left);
            if k == 0 {
                die("the pipe ran dry");
            }
            left -= k;
        }
        got += n as u64;
        if !paused && got >= pause_at {
            paused = true;
            println!("{}", json!({"paused": got}));
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
    }
    if got != expect {
        die(format!("spliced {got} bytes, expected {expect}"));
    }
    // SAFETY: closing the pipe we made.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    drop(s);
    truth("client", "tcp", local, remote, sent, got);
}

/// How a hand-off goes: `hold` before the fork (parent) and before the
/// child's send; whether the parent exits instead of waiting.
#[derive(Clone, Copy)]
struct Pace {
    hold: Duration,
    parent_exits: bool,
}

fn handoff(
    to: IpAddr,
    port: u16,
    (parent_send, child_send, child_expect): (u64, u64, u64),
    name: &str,
    pace: Pace,
) {
    let mut s = TcpStream::connect((to, port)).unwrap_or_else(|e| die(format!("connect: {e}")));
    timeouts(&s);
    let local = s.local_addr().unwrap_or_else(|e| die(e));
    let remote = s.peer_addr().unwrap_or_else(|e| die(e));
    let sent = send_n(&mut s, parent_send, SEED_CLIENT);
    std::thread::sleep(pace.hold);
    // SAFETY: fork in a single-threaded process; the child only uses the
    // socket, prctl and stdout, then exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        die("fork failed");
    }
    if pid == 0 {
        let cname = std::ffi::CString::new(name).unwrap_or_else(|_| die("bad name"));
        // SAFETY: PR_SET_NAME reads a NUL-terminated string we own.
        unsafe { libc::prctl(libc::PR_SET_NAME, cname.as_ptr()) };
        std::thread::sleep(pace.hold);
        let sent = send_n(&mut s, child_send, SEED_CLIENT);
        // the whole reply waits in the buffer first: the read that drains it
        // sends a window update, an ACK from inside the child's first read
        wait_buffered(&s, child_expect);
        let mut recv = recv_n(&mut s, Some(child_expect));
        let _ = s.shutdown(Shutdown::Write);
        recv += recv_n(&mut s, None);
        drop(s);
        truth("child", "tcp", local, remote, sent, recv);
        std::process::exit(0);
    }
    // the parent hands the connection over
    drop(s);
    if pace.parent_exits {
        truth("parent", "tcp", local, remote, sent, 0);
        std::process::exit(0);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    truth("parent", "tcp", local, remote, sent, 0);
}

fn bench_server(bind: IpAddr, port: u16, sink: bool, size: u64) {
    let l = TcpListener::bind((bind, port)).unwrap_or_else(|e| die(format!("bind: {e}")));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("{}", json!({"ready": true, "port": port}));
    let _ = std::io::stdout().flush();
    for conn in l.incoming() {
        let Ok(mut s) = conn else { continue };
        std::thread::spawn(move || {
            timeouts(&s);
            if sink {
                recv_n(&mut s, None);
            } else {
                recv_n(&mut s, Some(size));
                send_n(&mut s, size, SEED_SERVER);
            }
        });
    }
}

fn rate_client(p: Paced) {
    let to = p.to;
    paced(&p, "conns", |_| to);
}

/// Connections at `p.rate` per second (0: as fast as possible) for
/// `p.secs` seconds to the address `target` gives for each (the i-th),
/// SIZE bytes each way; prints how many as `what`.
fn paced(p: &Paced, what: &str, mut target: impl FnMut(u64) -> IpAddr) {
    let start = std::time::Instant::now();
    let end = start + Duration::from_secs_f64(p.secs);
    let mut done: u64 = 0;
    while std::time::Instant::now() < end {
        if p.rate > 0 {
            // keep the schedule: connection i starts at i / rate
            let due = start + Duration::from_secs_f64(done as f64 / f64::from(p.rate));
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let to = target(done);
        let mut s =
            TcpStream::connect((to, p.port)).unwrap_or_else(|e| die(format!("connect: {e}")));
        timeouts(&s);
        send_n(&mut s, p.size, SEED_CLIENT);
        recv_n(&mut s, Some(p.size));
        // the server closes first
        recv_n(&mut s, None);
        done += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"done": true, what: done, "secs": secs, "rate": done as f64 / secs})
    );
}

/// A DNS question for `name` (type A), id `id`.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(u8::try_from(label.len()).unwrap_or_else(|_| die("label")));
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn dns_server(bind: IpAddr, answer: std::net::Ipv4Addr) {
    let s = UdpSocket::bind((bind, 53)).unwrap_or_else(|e| die(format!("bind: {e}")));
    println!("{}", json!({"ready": true, "port": 53}));
    let _ = std::io::stdout().flush();
    let mut buf = [0u8; 512];
    loop {
        let Ok((n, peer)) = s.recv_from(&mut buf) else {
            continue;
        };
        if n < 17 {
            continue;
        }
        // the question as it came, flagged an answer with one record: a
        // pointer to the question's name, A, IN, TTL 60, the address
        let mut a = buf[..n].to_vec();
        a[2] = 0x81;
        a[3] = 0x80;
        a[6] = 0;
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        a.extend_from_slice(&answer.octets());
        let _ = s.send_to(&a, peer);
    }
}

fn dns_client(p: Paced) {
    let bind: IpAddr = if p.to.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let server = p.to;
    paced(&p, "lookups", |done| {
        let u = UdpSocket::bind((bind, 0)).unwrap_or_else(|e| die(format!("bind: {e}")));
        let _ = u.set_read_timeout(Some(Duration::from_secs(2)));
        u.connect((server, 53))
            .unwrap_or_else(|e| die(format!("connect: {e}")));
        let id = (done & 0xffff) as u16;
        u.send(&dns_query(id, &format!("host{done}.bench.example")))
            .unwrap_or_else(|e| die(format!("send: {e}")));
        let mut buf = [0u8; 512];
        let n = u
            .recv(&mut buf)
            .unwrap_or_else(|e| die(format!("no answer: {e}")));
        if n < 4 {
            die("short answer");
        }
        let a = &buf[n - 4..n];
        std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).into()
    });
}

fn bulk_client(to: IpAddr, port: u16, secs: f64) {
    let mut s = TcpStream::connect((to, port)).unwrap_or_else(|e| die(format!("connect: {e}")));
    timeouts(&s);
    let buf = vec![0x5au8; CHUNK];
    let start = std::time::Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    while std::time::Instant::now() < end {
        match s.write(&buf) {
            Ok(k) => sent += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => die(format!("send: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = s.shutdown(Shutdown::Write);
    recv_n(&mut s, None);
    println!(
        "{}",
        json!({"done": true, "bytes": sent, "secs": secs, "bytes_per_s": sent as f64 / secs})
    );
}

/// COUNT processes that each send one datagram and exit at once.
fn spawn_udp(d: Datagrams) {
    let Datagrams {
        to,
        port_base,
        count,
        size,
        src,
    } = d;
    let me = std::env::current_exe().unwrap_or_else(|e| die(e));
    for i in 0..count {
        let status = std::process::Command::new(&me)
            .args(["udp-oneshot", "--count", "1"])
            .args(["--to", &to.to_string(), "--src", &src.to_string()])
            .args(["--port-base", &(port_base + i).to_string()])
            .args(["--size", &size.to_string()])
            .status()
            .unwrap_or_else(|e| die(format!("spawn: {e}")));
        if !status.success() {
            die(format!("child {i} failed: {status}"));
        }
    }
}

fn main() {
    match Cli::parse().role {
        Role::BenchServer {
            bind,
            port,
            sink,
            size,
        } => bench_server(bind, port, sink, size),
        Role::RateClient(p) => rate_client(p),
        Role::BulkClient { to, port, secs } => bulk_client(to, port, secs),
        Role::DnsServer { bind, answer } => dns_server(bind, answer),
        Role::DnsClient(p) => dns_client(p),
        Role::TcpServer {
            bind,
            port,
            conns,
            expect,
            reply,
            skip,
        } => {
            tcp_server(bind, port, conns, expect, reply, skip);
        }
        Role::TcpClient {
            to,
            port,
            conns,
            send,
            expect,
            as_user,
            pause_after,
        } => {
            if let Some(u) = as_user {
                become_user(&u);
            }
            tcp_client(to, port, conns, send, expect, pause_after);
        }
        Role::UdpServer {
            bind,
            port_base,
            count,
        } => udp_server(bind, port_base, count),
        Role::UdpOneshot { d, one_socket } => udp_oneshot(d, one_socket),
        Role::StormServer { bind, threads } => storm_server(bind, threads),
        Role::StormClient {
            to,
            port,
            threads,
            secs,
            rate,
            size,
        } => storm_client(to, port, threads, secs, rate, size),
        Role::UdpSpray {
            d,
            rounds,
            every_ms,
        } => udp_spray(d, rounds, every_ms),
        Role::SpliceClient {
            to,
            port,
            send,
            expect,
            pause_at,
        } => splice_client(to, port, send, expect, pause_at),
        Role::SpawnUdp { d, as_user } => {
            if let Some(u) = as_user {
                become_user(&u);
            }
            spawn_udp(d);
        }
        Role::Hungry { d, mib } => {
            // every page written, so it is resident
            let hog = vec![0x5au8; mib << 20];
            println!("{}", json!({"allocated": hog.len()}));
            udp_oneshot(d, false);
            let _ = std::io::stdout().flush();
            std::hint::black_box(&hog);
            std::process::exit(0);
        }
        Role::Handoff {
            to,
            port,
            parent_send,
            child_send,
            child_expect,
            child_name,
            hold_ms,
            parent_exits,
        } => {
            handoff(
                to,
                port,
                (parent_send, child_send, child_expect),
                &child_name,
                Pace {
                    hold: Duration::from_millis(hold_ms),
                    parent_exits,
                },
            );
        }
    }
}
