//! The one table the bench prints: figure, measured value, target, ratio, pass or miss.

use std::fmt::Write as _;

/// Which side of the target a ratio must be on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    AtLeast(f64),
    AtMost(f64),
    /// A figure shown for what it says, with no target (such as a cost in µs).
    None,
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(target) => ratio >= target,
            Target::AtMost(target) => ratio <= target,
            Target::None => true,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtLeast(target) => format!("≥ {target}"),
            Target::AtMost(target) => format!("≤ {target}"),
            Target::None => "—".to_owned(),
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) measured: String,
    pub(crate) target: Target,
    pub(crate) ratio: f64,
}

impl Row {
    pub(crate) fn new(
        figure: impl Into<String>,
        measured: impl Into<String>,
        target: Target,
        ratio: f64,
    ) -> Self {
        Row {
            figure: figure.into(),
            measured: measured.into(),
            target,
            ratio,
        }
    }

    pub(crate) fn passed(&self) -> bool {
        self.ratio.is_finite() && self.target.met(self.ratio)
    }

    /// Whether the figure has a target to meet.
    pub(crate) fn has_target(&self) -> bool {
        !matches!(self.target, Target::None)
    }
}

/// The rows as a Markdown table (it reads as well in a terminal as in BENCHMARKS.md).
pub(crate) fn render(rows: &[Row]) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            [
                row.figure.clone(),
                row.measured.clone(),
                row.target.text(),
                format!("{:.3}", row.ratio),
                match (row.has_target(), row.passed()) {
                    (false, _) => "—",
                    (true, true) => "pass",
                    (true, false) => "MISS",
                }
                .to_owned(),
            ]
        })
        .collect();
    let header = ["figure", "measured", "target", "ratio", "result"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String; 5]| {
        out.push('|');
        for (cell, width) in cells.iter().zip(widths) {
            let pad = width - cell.chars().count();
            let _ = write!(out, " {cell}{} |", " ".repeat(pad));
        }
        out.push('\n');
    };
    line(&mut out, &header);
    line(&mut out, &widths.map(|w| "-".repeat(w)));
    for row in &cells {
        line(&mut out, row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_passes_and_misses() {
        let rows = [
            Row::new("a", "1", Target::AtLeast(0.95), 0.96),
            Row::new("b", "2", Target::AtMost(1.05), 1.2),
        ];
        let text = render(&rows);
        assert!(
            text.lines().nth(2).unwrap().ends_with("| pass   |"),
            "{text}"
        );
        assert!(
            text.lines().nth(3).unwrap().ends_with("| MISS   |"),
            "{text}"
        );
        assert!(!Row::new("c", "", Target::AtMost(1.0), f64::NAN).passed());
    }
}
