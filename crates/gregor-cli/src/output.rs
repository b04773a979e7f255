//! How the tools print: one JSON value (`--json`, for machines) or text
//! for people, tables with their columns aligned.

/// Prints `value` as JSON, or `text`.
pub fn report(as_json: bool, value: serde_json::Value, text: &str) {
    if as_json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

/// `rows` under `headers`, each column as wide as its widest cell, two
/// spaces apart (the layout of Kafka's tools).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push('\n');
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["orders".to_string(), "12".to_string()],
            vec!["a".to_string(), "3".to_string()],
        ];
        assert_eq!(table(&["TOPIC", "LAG"], &rows), "TOPIC   LAG\norders  12\na       3");
    }
}
