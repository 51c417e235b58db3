//! Plain-text results: markdown tables, report sections, and the machine description that goes with them.
//!
//! Every subcommand returns [`Section`]s; the CLI prints them, and `all` writes them into one markdown file
//! together with the exact command line and the machine it ran on.

use std::fmt::{self, Write as _};

/// A markdown table with right-aligned numeric columns (every column but the first).
#[derive(Clone, Debug)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per header.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let row: Vec<String> = cells.into_iter().map(Into::into).collect();
        assert_eq!(
            row.len(),
            self.headers.len(),
            "row width differs from the header's"
        );
        self.rows.push(row);
    }

    /// True if no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|col| {
                self.rows
                    .iter()
                    .map(|row| row[col].chars().count())
                    .chain([self.headers[col].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            f.write_char('|')?;
            for (col, (cell, &width)) in cells.iter().zip(&widths).enumerate() {
                if col == 0 {
                    write!(f, " {cell:<width$} |")?;
                } else {
                    write!(f, " {cell:>width$} |")?;
                }
            }
            f.write_char('\n')
        };
        line(f, &self.headers)?;
        f.write_char('|')?;
        for (col, &width) in widths.iter().enumerate() {
            let dashes = "-".repeat(width);
            if col == 0 {
                write!(f, " {dashes} |")?;
            } else {
                write!(f, " {}: |", &dashes[1..])?;
            }
        }
        f.write_char('\n')?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// A titled part of a report: paragraphs of notes and tables, in order.
#[derive(Clone, Debug)]
pub struct Section {
    title: String,
    blocks: Vec<Block>,
}

#[derive(Clone, Debug)]
enum Block {
    Text(String),
    Table(Table),
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a paragraph.
    pub fn text(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Text(text.into()));
    }

    /// Appends a table.
    pub fn table(&mut self, table: Table) {
        self.blocks.push(Block::Table(table));
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "## {}\n", self.title)?;
        for block in &self.blocks {
            match block {
                Block::Text(text) => writeln!(f, "{text}\n")?,
                Block::Table(table) => writeln!(f, "{table}")?,
            }
        }
        Ok(())
    }
}

/// What the report says about the machine: logical CPUs (as `nproc` counts them), the CPU model from
/// `/proc/cpuinfo`, and the kernel release.
pub fn machine_description() -> String {
    let cpus = std::thread::available_parallelism()
        .map_or_else(|_| "unknown".to_owned(), |n| n.to_string());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(
        |_| "unknown".to_owned(),
        |release| release.trim().to_owned(),
    );
    format!("{cpus} logical CPUs (nproc), {model}, Linux {kernel}")
}

/// The whole markdown report written by `all`.
pub fn markdown_report(command_line: &str, sections: &[Section]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# Strata L1 benchmark results\n");
    let _ = writeln!(out, "Command: `{command_line}`\n");
    let _ = writeln!(out, "Machine: {}\n", machine_description());
    let _ = writeln!(
        out,
        "Build: release profile, jemalloc as the global allocator (wrapped by a live-bytes counter) for every cache.\n"
    );
    for section in sections {
        let _ = write!(out, "{section}");
    }
    out
}

/// The median (mean of the middle two for an even count); NaN for no values.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = values.into_iter().collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// `x` with a thousands separator every three digits, for readable counts.
pub fn thousands(x: u64) -> String {
    let digits = x.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(3_912_296), "3,912,296");
    }

    #[test]
    fn table_renders_aligned_markdown() {
        let mut table = Table::new(["cache", "Mops/s"]);
        table.row(["strata", "12.5"]);
        let text = table.to_string();
        assert_eq!(
            text,
            "| cache  | Mops/s |\n| ------ | -----: |\n| strata |   12.5 |\n"
        );
    }
}
