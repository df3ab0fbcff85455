//! netwho's one filter language, sysdig style.
//!
//! Place in the pipeline: below every command, view, sink and the API,
//! beside the model. `proc.name = curl and fd.rport = 443`,
//! `user.name in (alice, bob)`, `fd.rnet != 10.0.0.0/8`,
//! `proc.cmdline contains "--token"`, `not fd.is_local`, `proc.exe =~ "^/usr/"`.
//!
//! lexer → parser → [`Expr`] (spans, printable) → [`Filter`] (typed:
//! numbers, networks and regexes are read once) → [`Filter::matches`] on
//! anything that implements [`Subject`]. [`Filter::scope`] is the part the
//! kernel can apply. Errors carry spans; [`FilterError::render`] puts a
//! caret under the offending column. Pure: no I/O, no clock.

#![warn(missing_docs)]

pub mod ast;
mod compile;
pub mod error;
mod eval;
pub mod fields;
mod lexer;
mod parser;
mod scope;

pub use ast::{Expr, Op};
pub use compile::{Cidr, Filter, Options, canonical, parse_bytes, parse_duration_ns};
pub use error::{FilterError, Span};
pub use eval::{Initiator, Subject};
pub use fields::Field;
pub use parser::parse;
pub use scope::Scope;

/// The fuzz target's body (`fuzz/`; the property tests run it too): any
/// input gives a filter or an error whose span lies inside it, never a
/// panic, and what parses prints as something that parses the same.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match Filter::parse(s) {
        Ok(f) => {
            let printed = f.to_string();
            match parse(&printed) {
                Ok(again) => assert!(&again == f.expr(), "{s:?} printed as {printed:?}"),
                Err(e) => panic!("{s:?} printed as {printed:?}, which fails: {e}"),
            }
        }
        Err(e) => {
            assert!(
                e.span.start <= e.span.end && e.span.end <= s.len(),
                "{s:?}: {e:?}"
            );
            let _ = e.render(s);
        }
    }
}

#[cfg(test)]
mod tests;
