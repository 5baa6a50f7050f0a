//! The Phoenix importer on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut file, data).expect("write");
    let _ = alyx_import::phoenix::import(file.path());
});
