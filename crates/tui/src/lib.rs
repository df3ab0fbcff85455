//! netwho's interactive view (`netwho`, `netwho top` on a terminal).
//!
//! Place: a consumer of the pipeline, beside the other sinks. The
//! collector side is [`sink::TuiSink`], a pipeline sink that hands one
//! batch per interval to the view over a bounded channel. The view is
//! split as `docs/conventions.md` says (8): [`state`] (the model folded from batches, the
//! UI state, and the [`state::screen::ViewState`] built from both),
//! [`view`] (pure rendering of a `ViewState`), [`input`] (keys to
//! actions). [`app`] owns the terminal and the loop.

#![warn(missing_docs)]

pub mod app;
pub mod fmt;
pub mod input;
pub mod sink;
pub mod state;
pub mod view;

pub use app::{ReplayLink, TuiConfig, run};
pub use sink::TuiSink;
pub use state::model::Alerted;
