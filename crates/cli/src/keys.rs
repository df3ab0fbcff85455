//! Keys of `netwho top -r` on a terminal: pause, speed, seek.
//!
//! The terminal is put in non-canonical mode without echo (output
//! processing stays, so the tables print as before) and restored when the
//! guard is dropped, also when a panic unwinds. A thread reads the keys
//! and sends replay commands on a bounded channel; keys typed faster than
//! the replay takes them are dropped (they would be stale by then).

use netwho_pipeline::replay::ReplayCmd;
use std::io::Read as _;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Recorded ns a seek moves: arrows left/right, and up/down.
const SEEK_SHORT: i64 = 10_000_000_000;
const SEEK_LONG: i64 = 60_000_000_000;

/// What each key does (for `--help` and the start-up line).
pub const HELP: &str = "keys: space pause, + faster, - slower, \u{2190}/\u{2192} 10 s back/on, \u{2193}/\u{2191} 1 min back/on, q quit";

/// The commands in a run of bytes read from the terminal, and how many
/// bytes they took: an escape sequence cut at the end of `bytes` (a read
/// can end inside one) is not taken, for the next read to complete.
pub fn parse(bytes: &[u8]) -> (Vec<ReplayCmd>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b && bytes.len() - i < 3 && bytes[i + 1..].iter().all(|b| *b == b'[') {
            return (out, i);
        }
        let cmd = match bytes[i] {
            b' ' | b'p' => Some(ReplayCmd::Pause),
            b'+' | b'=' => Some(ReplayCmd::Faster),
            b'-' | b'_' => Some(ReplayCmd::Slower),
            b'l' => Some(ReplayCmd::Seek(SEEK_SHORT)),
            b'h' => Some(ReplayCmd::Seek(-SEEK_SHORT)),
            b'k' => Some(ReplayCmd::Seek(SEEK_LONG)),
            b'j' => Some(ReplayCmd::Seek(-SEEK_LONG)),
            b'q' => Some(ReplayCmd::Quit),
            0x1b if bytes.get(i + 1) == Some(&b'[') => {
                let arrow = match bytes.get(i + 2) {
                    Some(b'C') => Some(ReplayCmd::Seek(SEEK_SHORT)),
                    Some(b'D') => Some(ReplayCmd::Seek(-SEEK_SHORT)),
                    Some(b'A') => Some(ReplayCmd::Seek(SEEK_LONG)),
                    Some(b'B') => Some(ReplayCmd::Seek(-SEEK_LONG)),
                    _ => None,
                };
                i += 2;
                arrow
            }
            _ => None,
        };
        out.extend(cmd);
        i += 1;
    }
    (out, bytes.len())
}

/// The terminal's settings before netwho changed them.
pub struct TermGuard {
    saved: libc::termios,
}

impl TermGuard {
    /// Keys one by one, unechoed, if standard input and output are a
    /// terminal; None otherwise (nothing is changed then).
    pub fn raw_keys() -> Option<TermGuard> {
        // SAFETY: isatty reads no memory of ours.
        let tty = unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 };
        if !tty {
            return None;
        }
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a valid pointer to a termios.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !(libc::ICANON | libc::ECHO);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        // SAFETY: as above; the settings are a copy of the terminal's own.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) } != 0 {
            return None;
        }
        Some(TermGuard { saved })
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        // SAFETY: restoring the settings read in raw_keys.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}

/// Read keys from standard input on a thread of its own; the commands
/// arrive on the returned channel. The thread ends with the input or when
/// the receiver is gone.
pub fn spawn_reader() -> Receiver<ReplayCmd> {
    let (tx, rx) = sync_channel(16);
    let _ = std::thread::Builder::new()
        .name("netwho-keys".into())
        .spawn(move || {
            netwho_enrich::caps::drop_all_here("the key reader");
            read_keys(&tx);
        });
    rx
}

fn read_keys(tx: &SyncSender<ReplayCmd>) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64];
    // bytes of an escape sequence the last read ended inside
    let mut kept = 0;
    loop {
        let n = match stdin.read(&mut buf[kept..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => kept + n,
        };
        let (cmds, used) = parse(&buf[..n]);
        buf.copy_within(used..n, 0);
        kept = n - used;
        for cmd in cmds {
            match tx.try_send(cmd) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_arrows_become_commands() {
        assert_eq!(
            parse(b" +-q\x1b[C\x1b[D\x1b[A\x1b[Bx").0,
            vec![
                ReplayCmd::Pause,
                ReplayCmd::Faster,
                ReplayCmd::Slower,
                ReplayCmd::Quit,
                ReplayCmd::Seek(SEEK_SHORT),
                ReplayCmd::Seek(-SEEK_SHORT),
                ReplayCmd::Seek(SEEK_LONG),
                ReplayCmd::Seek(-SEEK_LONG),
            ]
        );
        // vi keys; other escape sequences (F1) ignored
        assert_eq!(
            parse(b"hl\x1bOP"),
            (
                vec![ReplayCmd::Seek(-SEEK_SHORT), ReplayCmd::Seek(SEEK_SHORT)],
                5
            )
        );
        // an arrow cut by the end of a read is left for the next one
        assert_eq!(parse(b" \x1b["), (vec![ReplayCmd::Pause], 1));
        assert_eq!(parse(b"\x1b"), (vec![], 0));
        assert_eq!(parse(b"\x1b[D").0, vec![ReplayCmd::Seek(-SEEK_SHORT)]);
    }
}
