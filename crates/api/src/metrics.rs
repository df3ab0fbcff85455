//! Prometheus metrics (`GET /metrics`, OpenMetrics text from
//! prometheus-client): payload bytes and connections per unit, user and
//! executable, and netwho's own health.
//!
//! Cardinality is bounded: only the labels the configuration allows are
//! filled (the others are empty), and a label set gets its own series only
//! while fewer than `max_series` exist and the uid whose process asks for
//! it holds fewer than `max_series_per_uid`; later ones are summed into one
//! series whose labels are all `other`. So one user who runs a thousand
//! differently named executables takes a share of the series, never all
//! of them. A series, once given, stays for the daemon's life, so every
//! counter only grows (a top-K that changed its members would make
//! counters jump down).
//!
//! Label values are the processes' own strings (executable paths, unit
//! names): they are escaped as the exposition format requires (`\\`,
//! `\"`, `\n`; prometheus-client writes label values as they are), so no
//! value can end its label, add a series or break the scrape.

use crate::live::Live;
use netwho_sink::series::Key;
pub use netwho_sink::series::{Labels, Series, Slot, default_per_uid};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Encodes the live state's series and the latest status record at each
/// scrape (and the API's refusals, when there is an API).
#[derive(Debug)]
struct LiveCollector(Arc<Live>, Option<Arc<crate::limits::Quotas>>);

fn labels3(k: &Key) -> [(&'static str, String); 3] {
    [
        ("unit", escape_label(&k.0)),
        ("user", escape_label(&k.1)),
        ("exe", escape_label(&k.2)),
    ]
}

/// A label value as the text format writes it: `\`, `"` and newline
/// escaped (the encoder writes what it is given as it is).
pub fn escape_label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

impl Collector for LiveCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (rows, status, events, evicted, overflowed, overflowed_share, flows_live) = {
            let st = self.0.state();
            (
                st.series.rows(),
                st.status.clone(),
                st.events,
                st.closed_evicted,
                st.series.overflowed,
                st.series.overflowed_share,
                st.flows.len(),
            )
        };
        let bytes = ConstCounter::new(0u64);
        let mut m = enc.encode_descriptor(
            "netwho_payload_bytes",
            "Application payload bytes (what send/recv returned) by direction, unit, user and executable",
            None,
            bytes.metric_type(),
        )?;
        for (k, v) in &rows {
            for (dir, n) in [("sent", v.sent), ("received", v.recv)] {
                let [a, b, c] = labels3(k);
                let l = [("direction", dir.to_string()), a, b, c];
                ConstCounter::new(n).encode(m.encode_family(&l)?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "netwho_connections",
            "Flows opened (connections, and datagram flows per remote) by unit, user and executable",
            None,
            bytes.metric_type(),
        )?;
        for (k, v) in &rows {
            ConstCounter::new(v.conns).encode(m.encode_family(&labels3(k))?)?;
        }
        counter(
            &mut enc,
            "netwho_flow_events",
            "Flow events the daemon folded",
            events,
        )?;
        counter(
            &mut enc,
            "netwho_series_overflow",
            "Processes whose label set was counted in the 'other' series (raise metrics.max_series to see them)",
            overflowed,
        )?;
        counter(
            &mut enc,
            "netwho_series_overflow_share",
            "Of those, label sets refused because their user already had metrics.max_series_per_uid series",
            overflowed_share,
        )?;
        counter(
            &mut enc,
            "netwho_api_closed_flows_evicted",
            "Closed flows let go of before their time because too many closed at once",
            evicted,
        )?;
        counter(
            &mut enc,
            "netwho_api_readers_lagged",
            "API readers dropped for falling too far behind",
            self.0.lagged.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut enc,
            "netwho_api_live_flows",
            "Flows the API holds (open, and closed in the last seconds)",
            flows_live as i64,
        )?;
        gauge(
            &mut enc,
            "netwho_api_readers",
            "Readers following the live batches",
            self.0.subscribers() as i64,
        )?;
        if let Some(q) = &self.1 {
            let mut m = enc.encode_descriptor(
                "netwho_api_refused",
                "API connections, reports and streams refused because their caller (or all callers of its kind) held the most allowed",
                None,
                bytes.metric_type(),
            )?;
            for (kind, n) in q.refused() {
                ConstCounter::new(n).encode(m.encode_family(&[("kind", kind)])?)?;
            }
        }
        let Some(s) = status else {
            return Ok(());
        };
        gauge(
            &mut enc,
            "netwho_flows_open",
            "Flows open now",
            s.flows_open as i64,
        )?;
        gauge(
            &mut enc,
            "netwho_procs_tracked",
            "Processes tracked",
            s.procs_tracked as i64,
        )?;
        gauge(
            &mut enc,
            "netwho_uptime_seconds",
            "Seconds since the sensor attached",
            s.uptime_s as i64,
        )?;
        if let Some(c) = s.coverage {
            counter(
                &mut enc,
                "netwho_coverage_interface_bytes",
                "IP bytes the collector's network namespace's interfaces carried since it started",
                c.interface_bytes,
            )?;
            counter(
                &mut enc,
                "netwho_coverage_attributed_bytes",
                "Of those, the bytes netwho gave to a flow",
                c.attributed_bytes,
            )?;
            if let Some(share) = c.share {
                let g = ConstGauge::new(share);
                g.encode(enc.encode_descriptor(
                    "netwho_coverage_ratio",
                    "Attributed bytes over interface bytes (once 64 KiB went through; forwarded and non-IP traffic is no process's)",
                    None,
                    g.metric_type(),
                )?)?;
            }
        }
        counter(
            &mut enc,
            "netwho_flows_opened",
            "Flows opened",
            s.flows_opened,
        )?;
        counter(
            &mut enc,
            "netwho_flows_closed",
            "Flows closed",
            s.flows_closed,
        )?;
        counter(
            &mut enc,
            "netwho_filtered_out",
            "Flow events the filter did not pass",
            s.filtered_out,
        )?;
        counter(
            &mut enc,
            "netwho_kernel_payload_calls",
            "send/recv calls counted in the kernel",
            s.kernel.payload_calls,
        )?;
        counter(
            &mut enc,
            "netwho_kernel_packets",
            "Packets counted in the kernel",
            s.kernel.packets,
        )?;
        gauge(
            &mut enc,
            "netwho_kernel_flows_tracked",
            "Entries in the kernel flow map",
            s.kernel.flows_tracked as i64,
        )?;
        let d = s.drops;
        let drops = [
            ("ringbuf", d.ringbuf),
            ("flow_map_full", d.flow_map_full),
            ("wire_map_full", d.wire_map_full),
            ("output", d.output),
            ("decode_errors", d.decode_errors),
            ("map_errors", d.map_errors),
            ("storage_fail", d.storage_fail),
            ("lost_full", d.lost_full),
            ("missed_sockets", d.missed_sockets),
            ("notices_lost", d.notices_lost),
        ];
        let mut m = enc.encode_descriptor(
            "netwho_drops",
            "Events and records lost, by kind (every one is counted; see the status record)",
            None,
            bytes.metric_type(),
        )?;
        for (kind, n) in drops {
            ConstCounter::new(n).encode(m.encode_family(&[("kind", kind)])?)?;
        }
        counter(
            &mut enc,
            "netwho_bytes_lost",
            "Payload bytes lost for good (counted on a socket whose close could not be kept)",
            d.bytes_lost,
        )?;
        counter(
            &mut enc,
            "netwho_missed_bytes",
            "Reduced (sock_diag) mode: payload of sockets that ended between two looks, or moved while no process held them",
            d.missed_bytes,
        )?;
        let mut m = enc.encode_descriptor(
            "netwho_ringbuf_drops",
            "Kernel events the full ring buffer lost, by kind (of netwho_drops_total{kind=\"ringbuf\"}; opens keep their counters, closes and exits are kept by the kernel)",
            None,
            bytes.metric_type(),
        )?;
        for (kind, n) in [
            ("open", d.ringbuf_open),
            ("close", d.ringbuf_close),
            ("proc", d.ringbuf_proc),
        ] {
            ConstCounter::new(n).encode(m.encode_family(&[("kind", kind)])?)?;
        }
        counter(
            &mut enc,
            "netwho_flows_untracked",
            "Flows counted on their socket, not in an entry of their own (their user's share of the kernel map was used, or it was full)",
            s.partial.untracked,
        )?;
        counter(
            &mut enc,
            "netwho_kernel_bypass_recv_bytes",
            "TCP bytes processes took past recv() (splice, zero-copy), added to their flows",
            s.kernel.bypass_recv,
        )?;
        Ok(())
    }
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// The alerts' counters (`[alerts]`).
#[derive(Debug)]
struct AlertCollector(Arc<netwho_alerts::Board>);

impl Collector for AlertCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let proto = ConstCounter::new(0u64);
        let mut m = enc.encode_descriptor(
            "netwho_alerts",
            "Alerts raised, by kind (new_destination, new_program, exe_changed)",
            None,
            proto.metric_type(),
        )?;
        for (kind, n) in self.0.raised_by_kind() {
            ConstCounter::new(n).encode(m.encode_family(&[("kind", kind.to_string())])?)?;
        }
        let c = &self.0.counts;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        for (name, help, v) in [
            (
                "netwho_alerts_allowed",
                "Flows an allow rule kept from alerting",
                load(&c.allowed),
            ),
            (
                "netwho_alerts_suppressed",
                "Alerts over alerts.max_per_minute (their cause was learned)",
                load(&c.suppressed),
            ),
            (
                "netwho_alerts_unlearned",
                "Programs, destinations or hashes that did not fit the baseline",
                load(&c.unlearned),
            ),
            (
                "netwho_alerts_webhook_failures",
                "Webhook requests that failed (each try)",
                load(&c.webhook_failures),
            ),
            (
                "netwho_alerts_webhook_lost",
                "Alerts the webhook could not deliver",
                load(&c.webhook_lost),
            ),
        ] {
            counter(&mut enc, name, help, v)?;
        }
        Ok(())
    }
}

/// The registry `/metrics` encodes.
pub fn registry(
    live: &Arc<Live>,
    quotas: Option<Arc<crate::limits::Quotas>>,
    alerts: Option<Arc<netwho_alerts::Board>>,
) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(LiveCollector(Arc::clone(live), quotas)));
    if let Some(b) = alerts {
        r.register_collector(Box::new(AlertCollector(b)));
    }
    r
}

/// The exposition text.
pub fn encode(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, r)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::Payload;
    use netwho_model::record::Names;
    use netwho_sink::series::Vals;

    fn names(user: &str, unit: &str) -> Names {
        Names {
            user: user.into(),
            unit: unit.into(),
            ..Names::default()
        }
    }

    #[test]
    fn series_are_bounded_and_never_shrink() {
        let mut s = Series::new(2, 2, Labels::default());
        let d = Payload {
            bytes_sent: 10,
            bytes_recv: 1,
        };
        s.add(1, &names("a", "x.service"), "/bin/a", d, 1);
        s.add(2, &names("b", "x.service"), "/bin/b", d, 1);
        s.add(3, &names("c", "x.service"), "/bin/c", d, 1);
        s.add(1, &names("a", "x.service"), "/bin/a", d, 0);
        let rows = s.rows();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(&*rows[2].0.0, "other");
        assert_eq!(
            rows[0].1,
            Vals {
                sent: 20,
                recv: 2,
                conns: 1
            }
        );
        assert_eq!(s.total(), (40, 4, 3));
        assert_eq!(s.overflowed, 1);
    }

    #[test]
    fn labels_left_out_are_empty_and_sets_merge() {
        let mut s = Series::new(10, 10, Labels::from_names(&["user"]).unwrap());
        let d = Payload {
            bytes_sent: 5,
            bytes_recv: 0,
        };
        s.add(1, &names("a", "x.service"), "/bin/a", d, 1);
        s.add(1, &names("a", "y.service"), "/bin/b", d, 1);
        let rows = s.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!((&*rows[0].0.0, &*rows[0].0.1, &*rows[0].0.2), ("", "a", ""));
        assert!(Labels::from_names(&["pid"]).is_err());
    }

    #[test]
    fn the_exposition_has_the_series_and_health() {
        let live = Live::new(crate::live::LiveConfig::default());
        live.state().series.add(
            1000,
            &names("alice", "web.service"),
            "/usr/bin/curl",
            Payload {
                bytes_sent: 7,
                bytes_recv: 9,
            },
            1,
        );
        let text = encode(&registry(&live, None, None)).unwrap();
        assert!(
            text.contains(
                r#"netwho_payload_bytes_total{direction="sent",unit="web.service",user="alice",exe="/usr/bin/curl"} 7"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"netwho_connections_total{unit="web.service",user="alice",exe="/usr/bin/curl"} 1"#
        ));
        assert!(text.contains("netwho_api_readers 0"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    /// An executable path chosen to close its label and write a series of
    /// its own stays one label value.
    #[test]
    fn hostile_label_values_cannot_add_series() {
        let live = Live::new(crate::live::LiveConfig::default());
        let forged = "/tmp/x\"} 1\nnetwho_forged_total{a=\"b";
        live.state().series.add(
            1000,
            &names("mallory", "a\\\"\n.service"),
            forged,
            Payload {
                bytes_sent: 1,
                bytes_recv: 0,
            },
            1,
        );
        let text = encode(&registry(&live, None, None)).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("netwho_forged")),
            "{text}"
        );
        assert!(
            text.contains(r#"exe="/tmp/x\"} 1\nnetwho_forged_total{a=\"b"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"unit="a\\\"\n.service""#), "{text}");
    }

    /// One user's thousand executables take their share; the series of
    /// others are still made.
    #[test]
    fn no_uid_takes_every_series() {
        let mut s = Series::new(200, default_per_uid(200), Labels::default());
        let d = Payload {
            bytes_sent: 1,
            bytes_recv: 1,
        };
        for i in 0..1000 {
            s.add(
                666,
                &names("mallory", "m.service"),
                &format!("/tmp/{i}"),
                d,
                1,
            );
        }
        assert_eq!(s.len(), 50);
        assert_eq!((s.overflowed, s.overflowed_share), (950, 950));
        s.add(0, &names("root", "sshd.service"), "/usr/sbin/sshd", d, 1);
        s.add(
            33,
            &names("www-data", "nginx.service"),
            "/usr/sbin/nginx",
            d,
            1,
        );
        assert_eq!(s.len(), 52);
        assert!(s.rows().iter().any(|(k, _)| &*k.2 == "/usr/sbin/sshd"));
        assert_eq!(
            s.total(),
            (1002, 1002, 1002),
            "the refused still count in other"
        );
    }
}
