//! Flow export (`docs/specs/ipfix.md`): IPFIX and NetFlow v9 messages
//! carrying, beside the 5-tuple, counters and times, the processes at
//! both ends of a flow with nProbe's process-plugin elements (ntop's PEN
//! 35632) and netwho's own (uid, unit, container, command line, exe hash,
//! attribution).
//!
//! Place: a pure encoder ([`msg::Encoder`]) over the element table
//! ([`ie`]); the exporter that turns flows into [`msg::Record`]s and
//! sends the messages builds on it.

pub mod ie;
pub mod msg;

#[cfg(test)]
mod tests;
