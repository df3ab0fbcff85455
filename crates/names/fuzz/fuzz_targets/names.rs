//! Fuzz the names parsers (DNS answers, TLS ClientHellos, QUIC Initials)
//! and the book they feed: no input may panic them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    netwho_names::fuzz_input(data);
});
