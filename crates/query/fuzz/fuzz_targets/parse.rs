//! Fuzz the filter parser: no input may panic it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    netwho_query::fuzz_parse(data);
});
