//! Flow export (`docs/specs/ipfix.md`): IPFIX and NetFlow v9 messages
//! carrying, beside the 5-tuple, counters and times, the processes at
//! both ends of a flow with nProbe's process-plugin elements (ntop's PEN
//! 35632) and netwho's own (uid, unit, container, command line, exe hash,
//! attribution).
//!
//! Place: an output of the pipeline. [`sink::ExportSink`] takes flow
//! events, [`flows::Flows`] (pure) decides when a record is due and joins
//! both ends of local connections, the pure encoder ([`msg::Encoder`],
//! over the element table [`ie`]) makes messages, and [`net`] sends them
//! from the output's writer thread. [`fleet`] is the record a daemon
//! publishes to the fleet (every field, as a JSON line).

#![warn(missing_docs)]

pub mod fleet;
pub mod flows;
pub mod http;
pub mod ie;
pub mod msg;
pub mod net;
pub mod otlp;
pub mod pcapng;
pub mod sink;

#[cfg(test)]
mod tests;
