//! Query text from a user: the parser, the checker for every engine, and the printers and the
//! page plan of whatever is accepted.
#![no_main]

use alyx_query::{Dialect, Engine, plan, prepare, to_sql};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for engine in [Engine::Local, Engine::Postgres, Engine::Spark] {
        if let Ok(checked) = prepare(text, engine) {
            let _ = to_sql(checked.query(), Dialect::Alyx);
            let _ = checked.engine_sql();
            if let Ok(page) = plan::page(&checked, &plan::Cursor::default(), 100) {
                let _ = to_sql(page.query(), Dialect::Postgres);
            }
        }
    }
    let _ = alyx_query::parse::condition(text);
});
