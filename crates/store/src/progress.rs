//! Progress on stderr: indicatif bars on a terminal, one line per phase otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a pull reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Progress bars on stderr (download, extract/join, verify, with byte counts).
    /// When stderr is not a terminal, one line per finished phase instead.
    Bar,
    /// Nothing on stderr.
    Quiet,
}

enum Mode {
    /// A live bar per running phase (download and extract overlap), then its
    /// summary line printed above the bars.
    Bars(MultiProgress),
    /// Only the summary line per phase (stderr is a pipe or a file).
    Lines,
    Quiet,
}

/// Hands out one [`Phase`] per unit of work and prints notes. Shared by the
/// download and extract threads of a pull.
pub(crate) struct Reporter {
    mode: Mode,
}

impl Reporter {
    pub(crate) fn new(progress: Progress) -> Reporter {
        let mode = match progress {
            Progress::Quiet => Mode::Quiet,
            Progress::Bar if std::io::stderr().is_terminal() => {
                Mode::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            Progress::Bar => Mode::Lines,
        };
        Reporter { mode }
    }

    /// Starts a phase; `total` is the expected byte count when known.
    pub(crate) fn phase(&self, label: String, total: Option<u64>) -> Phase<'_> {
        let bar = match &self.mode {
            Mode::Bars(multi) => {
                let style = if total.is_some() {
                    bar_style()
                } else {
                    spinner_style()
                };
                // Added to the MultiProgress before it ticks, or it would draw on its own.
                let bar = multi.add(ProgressBar::new(total.unwrap_or(0)).with_style(style));
                bar.set_message(label.clone());
                if total.is_none() {
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
                Some(bar)
            }
            Mode::Lines | Mode::Quiet => None,
        };
        Phase {
            reporter: self,
            label,
            bar,
            pos: 0,
            start: Instant::now(),
            done: false,
        }
    }

    /// One line on stderr unless quiet (e.g. the sha256 of a download).
    pub(crate) fn note(&self, line: &str) {
        let line = format!("llmos: {line}");
        match &self.mode {
            // Printed above the live bars, so neither garbles the other.
            Mode::Bars(multi) => {
                if multi.println(&line).is_err() {
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
            }
            Mode::Lines => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            Mode::Quiet => {}
        }
    }

    fn remove(&self, bar: &ProgressBar) {
        if let Mode::Bars(multi) = &self.mode {
            multi.remove(bar);
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "[{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta:>3}  {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {bytes:>10} {bytes_per_sec:>12}  {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// One unit of work with a byte count; its bar is cleared and a summary line
/// printed when it finishes.
pub(crate) struct Phase<'r> {
    reporter: &'r Reporter,
    label: String,
    bar: Option<ProgressBar>,
    pos: u64,
    start: Instant,
    done: bool,
}

impl Phase<'_> {
    pub(crate) fn inc(&mut self, n: u64) {
        self.set(self.pos + n);
    }

    pub(crate) fn set(&mut self, pos: u64) {
        self.pos = pos;
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    /// Ends the phase: clears its bar and prints its one summary line.
    pub(crate) fn finish(mut self) {
        self.done = true;
        self.clear_bar();
        let secs = self.start.elapsed().as_secs_f64();
        self.reporter.note(&format!(
            "{}: {} in {secs:.1}s",
            self.label,
            HumanBytes(self.pos)
        ));
    }

    fn clear_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            self.reporter.remove(&bar);
        }
    }
}

impl Drop for Phase<'_> {
    fn drop(&mut self) {
        // Failed or interrupted: the error message follows, so just clear the bar.
        if !self.done {
            self.clear_bar();
        }
    }
}
