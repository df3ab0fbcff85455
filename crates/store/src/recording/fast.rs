//! The entries every flow writes (`Open`, `Update`, `Final`, `Close`)
//! decoded by hand, as postcard decodes them: a report over ten million
//! flows spent a third of its time in postcard's generic visitors. Anything
//! this does not read exactly as postcard would (another kind, a value out
//! of range) gives `None` and the caller decodes it with postcard; the
//! tests hold the two equal, for well-formed and for damaged bytes.

use super::format::{CountRec, Counters, Entry, FlowUsageRec, OpenRec, ProtoRec, TrackRec};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `Entry`'s variant numbers that are decoded here.
const OPEN: u32 = 3;
const UPDATE: u32 = 4;
const FINAL: u32 = 5;
const CLOSE: u32 = 6;

struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&x, rest) = self.b.split_first()?;
        self.b = rest;
        Some(x)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (x, rest) = self.b.split_at_checked(n)?;
        self.b = rest;
        Some(x)
    }

    /// A varint of at most `max` bytes whose last byte is at most `last`
    /// (postcard's rule for a `bits`-wide integer).
    fn varint(&mut self, max: u32, last: u8) -> Option<u64> {
        let mut out = 0u64;
        for i in 0..max {
            let v = self.byte()?;
            out |= u64::from(v & 0x7F) << (7 * i);
            if v & 0x80 == 0 {
                return (i < max - 1 || v <= last).then_some(out);
            }
        }
        None
    }

    fn u64(&mut self) -> Option<u64> {
        self.varint(10, 1)
    }

    fn u32(&mut self) -> Option<u32> {
        self.varint(5, 0x0F).and_then(|v| u32::try_from(v).ok())
    }

    fn u16(&mut self) -> Option<u16> {
        self.varint(3, 0x03).and_then(|v| u16::try_from(v).ok())
    }

    fn i64(&mut self) -> Option<i64> {
        let z = self.u64()?;
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.byte()? {
            0 => Some(None),
            1 => f(self).map(Some),
            _ => None,
        }
    }

    fn f64(&mut self) -> Option<f64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(f64::from_le_bytes(a))
    }

    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.u64()?).ok()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).ok().map(str::to_owned)
    }

    fn addr(&mut self) -> Option<(IpAddr, u16)> {
        let ip = match self.u32()? {
            0 => {
                let b = self.bytes(4)?;
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            1 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.bytes(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            _ => return None,
        };
        Some((ip, self.u16()?))
    }

    fn pair(&mut self) -> Option<(u64, u64)> {
        Some((self.u64()?, self.u64()?))
    }

    fn counters(&mut self) -> Option<Counters> {
        Some((
            [self.u64()?, self.u64()?],
            [self.u64()?, self.u64()?, self.u64()?, self.u64()?],
        ))
    }

    fn proto(&mut self) -> Option<ProtoRec> {
        Some(match self.u32()? {
            0 => ProtoRec::Tcp,
            1 => ProtoRec::Udp,
            2 => ProtoRec::UdpLite,
            3 => ProtoRec::Icmp,
            4 => ProtoRec::Icmpv6,
            5 => ProtoRec::Sctp,
            6 => ProtoRec::Mptcp,
            7 => ProtoRec::Raw(self.u16()?),
            8 => ProtoRec::Other(self.u16()?),
            9 => ProtoRec::Packet,
            10 => ProtoRec::Unknown,
            _ => return None,
        })
    }

    fn track(&mut self) -> Option<TrackRec> {
        Some(TrackRec {
            cpu_ns: self.u64()?,
            rss_bytes: self.u64()?,
            rss_peak_bytes: self.u64()?,
            major_faults: self.u64()?,
            iowait_ns: self.opt(Self::u64)?,
            at_ns: self.u64()?,
            prev: self.opt(Self::pair)?,
            exited: self.bool()?,
        })
    }

    fn usage(&mut self) -> Option<FlowUsageRec> {
        Some(FlowUsageRec {
            rss_bytes: self.u64()?,
            rss_peak_bytes: self.u64()?,
            cpu_pct: self.opt(Self::f64)?,
            major_faults: self.u64()?,
            iowait_ns: self.opt(Self::u64)?,
        })
    }

    fn open(&mut self) -> Option<OpenRec> {
        Some(OpenRec {
            flow: self.u64()?,
            dt_ns: self.i64()?,
            announced: self.bool()?,
            flow_id: self.u64()?,
            cookie: self.u64()?,
            proc: self.u32()?,
            names: self.u32()?,
            sha: self.opt(Self::u32)?,
            proto: self.proto()?,
            local: self.addr()?,
            remote: self.addr()?,
            packet: self.bool()?,
            netns: self.u32()?,
            direction: self.byte()?,
            tcp_state: self.opt(Self::byte)?,
            opened_ns: self.u64()?,
            comm: self.string()?,
            uid: self.u32()?,
            gid: self.u32()?,
            cgroup_id: self.u64()?,
            attribution: self.byte()?,
            counters: self.counters()?,
            cpu_base: self.opt(Self::pair)?,
            track: self.opt(Self::track)?,
        })
    }

    fn count(&mut self) -> Option<CountRec> {
        Some(CountRec {
            flow: self.u64()?,
            dt_ns: self.i64()?,
            counters: self.counters()?,
            tcp_state: self.opt(Self::byte)?,
            closed: self.opt(|c| Some((c.u64()?, c.opt(Self::byte)?)))?,
            sha: self.opt(Self::u32)?,
            usage: self.opt(Self::usage)?,
            track: self.opt(Self::track)?,
        })
    }
}

/// A flow's `Open`, `Update`, `Final` or `Close` entry, decoded as postcard
/// decodes it (bytes after it are left, as postcard leaves them); `None`:
/// another kind, or bytes to leave to postcard.
pub(crate) fn flow_entry(body: &[u8]) -> Option<Entry> {
    let mut c = Cur { b: body };
    Some(match c.u32()? {
        OPEN => Entry::Open(c.open()?),
        UPDATE => Entry::Update(c.count()?),
        FINAL => Entry::Final(c.count()?),
        CLOSE => Entry::Close(c.count()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn postcard_of(body: &[u8]) -> Option<Entry> {
        postcard::take_from_bytes::<Entry>(body)
            .ok()
            .map(|(e, _)| e)
    }

    /// Equal, with NaNs equal to each other (a recorded `cpu_pct` may be one).
    fn same(a: &Entry, b: &Entry) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    fn track() -> impl Strategy<Value = TrackRec> {
        (
            any::<[u64; 5]>(),
            any::<Option<u64>>(),
            any::<Option<(u64, u64)>>(),
            any::<bool>(),
        )
            .prop_map(|(v, iowait_ns, prev, exited)| TrackRec {
                cpu_ns: v[0],
                rss_bytes: v[1],
                rss_peak_bytes: v[2],
                major_faults: v[3],
                iowait_ns,
                at_ns: v[4],
                prev,
                exited,
            })
    }

    fn addr() -> impl Strategy<Value = (IpAddr, u16)> {
        (
            prop_oneof![
                any::<[u8; 4]>().prop_map(IpAddr::from),
                any::<[u8; 16]>().prop_map(IpAddr::from),
            ],
            any::<u16>(),
        )
    }

    fn proto() -> impl Strategy<Value = ProtoRec> {
        prop_oneof![
            Just(ProtoRec::Tcp),
            Just(ProtoRec::Udp),
            Just(ProtoRec::UdpLite),
            Just(ProtoRec::Icmp),
            Just(ProtoRec::Icmpv6),
            Just(ProtoRec::Sctp),
            Just(ProtoRec::Mptcp),
            any::<u16>().prop_map(ProtoRec::Raw),
            any::<u16>().prop_map(ProtoRec::Other),
            Just(ProtoRec::Packet),
            Just(ProtoRec::Unknown),
        ]
    }

    fn open() -> impl Strategy<Value = Entry> {
        (
            (
                any::<u64>(),
                any::<i64>(),
                any::<bool>(),
                any::<u64>(),
                any::<u64>(),
            ),
            (any::<u32>(), any::<u32>(), any::<Option<u32>>(), proto()),
            (addr(), addr(), any::<bool>(), any::<u32>(), any::<u8>()),
            (
                any::<Option<u8>>(),
                any::<u64>(),
                ".{0,20}",
                any::<[u32; 2]>(),
            ),
            (any::<u64>(), any::<u8>(), any::<([u64; 2], [u64; 4])>()),
            (any::<Option<(u64, u64)>>(), proptest::option::of(track())),
        )
            .prop_map(|(a, b, c, d, e, f)| {
                Entry::Open(OpenRec {
                    flow: a.0,
                    dt_ns: a.1,
                    announced: a.2,
                    flow_id: a.3,
                    cookie: a.4,
                    proc: b.0,
                    names: b.1,
                    sha: b.2,
                    proto: b.3,
                    local: c.0,
                    remote: c.1,
                    packet: c.2,
                    netns: c.3,
                    direction: c.4,
                    tcp_state: d.0,
                    opened_ns: d.1,
                    comm: d.2,
                    uid: d.3[0],
                    gid: d.3[1],
                    cgroup_id: e.0,
                    attribution: e.1,
                    counters: e.2,
                    cpu_base: f.0,
                    track: f.1,
                })
            })
    }

    fn count() -> impl Strategy<Value = Entry> {
        (
            (
                0u8..3,
                any::<u64>(),
                any::<i64>(),
                any::<([u64; 2], [u64; 4])>(),
            ),
            (
                any::<Option<u8>>(),
                any::<Option<(u64, Option<u8>)>>(),
                any::<Option<u32>>(),
            ),
            (
                proptest::option::of((
                    any::<[u64; 3]>(),
                    any::<Option<f64>>(),
                    any::<Option<u64>>(),
                )),
                proptest::option::of(track()),
            ),
        )
            .prop_map(|(a, b, c)| {
                let rec = CountRec {
                    flow: a.1,
                    dt_ns: a.2,
                    counters: a.3,
                    tcp_state: b.0,
                    closed: b.1,
                    sha: b.2,
                    usage: c.0.map(|(v, cpu_pct, iowait_ns)| FlowUsageRec {
                        rss_bytes: v[0],
                        rss_peak_bytes: v[1],
                        cpu_pct,
                        major_faults: v[2],
                        iowait_ns,
                    }),
                    track: c.1,
                };
                match a.0 {
                    0 => Entry::Update(rec),
                    1 => Entry::Final(rec),
                    _ => Entry::Close(rec),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn flow_entries_decode_as_postcard_decodes_them(e in prop_oneof![open(), count()]) {
            let bytes = postcard::to_allocvec(&e).expect("encodes");
            let fast = flow_entry(&bytes);
            prop_assert!(fast.as_ref().is_some_and(|f| same(f, &e)), "{:?} != {:?}", fast, e);
        }

        /// Damaged bytes (a byte changed, the entry cut short or run on):
        /// what this reads, postcard reads the same; what it leaves, postcard
        /// decodes on its own.
        #[test]
        fn damaged_entries_never_decode_otherwise_than_postcard(
            e in prop_oneof![open(), count()],
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![0u8..4, any::<u8>()],
            cut in any::<prop::sample::Index>(),
            tail in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut bytes = postcard::to_allocvec(&e).expect("encodes");
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let mut short = bytes.clone();
            short.truncate(cut.index(bytes.len()));
            bytes.extend_from_slice(&tail);
            for b in [&bytes, &short] {
                if let Some(fast) = flow_entry(b) {
                    let slow = postcard_of(b);
                    prop_assert!(slow.as_ref().is_some_and(|s| same(s, &fast)), "{:?} != {:?}", fast, slow);
                }
            }
        }
    }

    #[test]
    fn other_kinds_and_overlong_varints_are_left_to_postcard() {
        let end = postcard::to_allocvec(&Entry::End { dt_ns: 5 }).expect("encodes");
        assert!(flow_entry(&end).is_none());
        // a u32 of six bytes, and a fifth byte too large for a u32
        assert!(
            Cur {
                b: &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]
            }
            .u32()
            .is_none()
        );
        assert!(
            Cur {
                b: &[0xFF, 0xFF, 0xFF, 0xFF, 0x10]
            }
            .u32()
            .is_none()
        );
        assert_eq!(
            Cur {
                b: &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
            }
            .u32(),
            Some(u32::MAX)
        );
        // a u64's tenth byte holds one bit
        let mut max = vec![0xFF; 9];
        max.push(0x01);
        assert_eq!(Cur { b: &max }.u64(), Some(u64::MAX));
        max[9] = 0x02;
        assert!(Cur { b: &max }.u64().is_none());
        assert!(postcard::from_bytes::<u64>(&max).is_err());
    }
}
