//! SQL as the user reads and writes it: tokens and syntax highlighting for egui (the query
//! builder's editor and the notebook's cells).

use bevy_egui::egui;

/// Words, numbers, quoted strings and identifiers, and single punctuation.
pub fn tokens(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' || c == b'`' {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == c {
                    if bytes.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(bytes.len());
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                    || bytes[i] >= 0x80)
            {
                i += 1;
            }
        } else if (c == b'<' || c == b'>')
            && bytes.get(i + 1).is_some_and(|n| *n == b'=' || *n == b'>')
        {
            i += 2;
        } else {
            i += 1;
        }
        if let Some(t) = sql.get(start..i) {
            out.push(t);
        }
    }
    out
}

/// `sql` with keywords, functions, numbers and strings coloured.
pub fn highlighted(sql: &str, ui: &egui::Ui) -> egui::text::LayoutJob {
    let mut job = egui::text::LayoutJob::default();
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let plain = ui.visuals().text_color();
    let mut rest = sql;
    while !rest.is_empty() {
        let (token, gap_len) = match tokens(rest).first() {
            Some(t) => {
                let at = rest.find(t).unwrap_or(0);
                (*t, at)
            }
            None => ("", rest.len()),
        };
        if gap_len > 0 {
            job.append(
                &rest[..gap_len],
                0.0,
                egui::TextFormat::simple(font.clone(), plain),
            );
        }
        if token.is_empty() {
            break;
        }
        let after = &rest[gap_len + token.len()..];
        let upper = token.to_ascii_uppercase();
        let color = if token.starts_with('\'') {
            egui::Color32::from_rgb(230, 160, 90)
        } else if token.starts_with(|c: char| c.is_ascii_digit()) {
            egui::Color32::from_rgb(140, 200, 120)
        } else if after.trim_start().starts_with('(')
            && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            egui::Color32::from_rgb(220, 200, 110)
        } else if KEYWORDS.contains(&upper.as_str()) {
            egui::Color32::from_rgb(110, 160, 240)
        } else {
            plain
        };
        job.append(token, 0.0, egui::TextFormat::simple(font.clone(), color));
        rest = after;
    }
    job
}

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "JOIN", "LEFT", "ON", "AS", "AND", "OR", "NOT", "GROUP", "BY",
    "HAVING", "ORDER", "ASC", "DESC", "LIMIT", "OFFSET", "WITH", "UNION", "ALL", "DISTINCT",
    "BETWEEN", "IN", "IS", "NULL", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "TRUE", "FALSE",
];
