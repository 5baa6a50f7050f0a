//! The ROOT importer on any bytes: an error, never a panic, hang or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, data).expect("write");
    let mut events = 0usize;
    let _ = alyx_import::import_file_batches(file.path(), None, None, 256, &mut |batch| {
        events += batch.len();
        Ok(())
    });
});
