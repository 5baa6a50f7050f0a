//! What a peer can hand a desktop: a saved notebook, its cells' outputs, a sync message.
#![no_main]

use alyx_analysis::notebook::{CellOutput, Notebook, SyncState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CellOutput::read(text);
    }
    if let Ok(mut nb) = Notebook::load(data, "fuzz") {
        let _ = nb.cells();
        let _ = nb.history();
        let _ = nb.to_markdown();
    }
    let mut nb = Notebook::new("target", "fuzz");
    let _ = Notebook::message_has_changes(data);
    let _ = nb.receive_sync(&mut SyncState::new(), data);
    let _ = nb.cells();
});
