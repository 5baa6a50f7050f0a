//! The ROOT importer on any bytes: an error, never a panic, hang or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The importer calls oxyroot under `catch_unwind` (a panic in it is an error about the
        // file, by design: it is a third-party parser); libFuzzer's hook would abort on such a
        // panic before it is caught (one raised in the standard library on oxyroot's behalf, a
        // capacity overflow, is recognised by its backtrace). Every other panic still aborts.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_oxyroot = info.location().is_some_and(|l| l.file().contains("/oxyroot-"))
                || std::backtrace::Backtrace::force_capture()
                    .to_string()
                    .contains("/oxyroot-");
            if !in_oxyroot {
                abort(info);
            }
        }));
    },
    |data: &[u8]| {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, data).expect("write");
        let mut events = 0usize;
        let _ = alyx_import::import_file_batches(file.path(), None, None, 256, &mut |batch| {
            events += batch.len();
            Ok(())
        });
    }
);
