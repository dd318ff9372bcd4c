//! The summary tables people read: a header, rows of cells padded to each
//! column's widest by the width a terminal gives them, the status column
//! coloured, and a last `REASON` column only when a row has a reason.

use runnerkit_core::Status;
use unicode_width::UnicodeWidthStr;

use super::Style;
use super::human::{pad, paint};

/// One column: its header, and whether its cells line up on the right.
pub(super) struct Column {
    pub header: &'static str,
    pub right: bool,
}

/// One row: a cell per column, the row's status (painted in the column
/// headed `STATUS`), and why it did not run, if it did not.
pub(super) struct Row {
    pub cells: Vec<String>,
    pub status: Status,
    pub reason: Option<String>,
}

/// The table, opened by an empty line, each line trimmed at its end.
pub(super) fn render(columns: &[Column], rows: &[Row], style: Style) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.cells.get(i))
                .map(|cell| cell.width())
                .chain([c.header.width()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let status_column = columns.iter().position(|c| c.header == "STATUS");
    let line = |cells: &[String], status: Option<Status>, reason: Option<&str>| {
        let mut text = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let (column, width) = (&columns[i], widths[i]);
                let padded = if column.right {
                    let fill = width.saturating_sub(cell.width());
                    format!("{:fill$}{cell}", "")
                } else {
                    pad(cell, width)
                };
                // Coloured after padding: escape codes have no width on screen.
                match status {
                    Some(status) if style.color && status_column == Some(i) => {
                        padded.replacen(status.as_str(), &paint(status, style), 1)
                    }
                    _ => padded,
                }
            })
            .collect::<Vec<_>>()
            .join("  ");
        if let Some(reason) = reason {
            text.push_str("  ");
            text.push_str(reason);
        }
        format!("{}\n", text.trim_end())
    };
    let reasons = rows.iter().any(|r| r.reason.is_some());
    let headers: Vec<String> = columns.iter().map(|c| c.header.to_owned()).collect();
    let mut text = format!("\n{}", line(&headers, None, reasons.then_some("REASON")));
    for row in rows {
        text.push_str(&line(&row.cells, Some(row.status), row.reason.as_deref()));
    }
    text
}
