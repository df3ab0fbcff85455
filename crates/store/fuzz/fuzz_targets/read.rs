//! Fuzz the recording reader: no input may panic it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    netwho_store::recording::fuzz_read(data);
});
