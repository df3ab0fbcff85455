//! The pipeline: sensor → flow table → sinks.
//!
//! Place: between the sources and the outputs. [`Pipeline::run`] starts
//! the sensor's view of the world (every running process, every socket that
//! predates it), then loops: poll the sensor, complete its events with what
//! only /proc knows ([`enricher`]), apply them to the pure
//! [`FlowTable`](netwho_model::FlowTable), and hand each resulting flow
//! event to every [`Sink`]. Sinks write through an [`Output`](netwho_sink::output::Output), a
//! bounded queue whose overflow is counted. Status records carry every
//! counter of loss. Clocks are injected, so a fake sensor and a manual clock
//! drive the whole loop in tests.

#![warn(missing_docs)]

pub mod coverage;
pub mod enricher;
pub mod fanout;
pub mod histsink;
pub mod recsink;
pub mod replay;
mod run;
pub mod scope;
pub mod topsink;
pub mod toptree;

pub use netwho_sink::{RecordRef, Sink, SinkControl};
pub use run::{Clocks, Pipeline, PipelineConfig, PipelineError, Stopped};
