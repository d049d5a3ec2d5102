//! Progress on stderr: indicatif bars on a terminal, one line per phase otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a pull reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Progress bars on stderr (download, extract/join, verify, with byte counts).
    /// When stderr is not a terminal, one line per finished phase instead.
    Bar,
    /// Nothing on stderr.
    Quiet,
}

/// Phases run one after another, so one live bar at a time is enough (no MultiProgress).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A live bar per phase, then its summary line.
    Bars,
    /// Only the summary line per phase (stderr is a pipe or a file).
    Lines,
    Quiet,
}

/// Hands out one [`Phase`] per unit of work and prints notes.
pub(crate) struct Reporter {
    mode: Mode,
}

impl Reporter {
    pub(crate) fn new(progress: Progress) -> Reporter {
        let mode = match progress {
            Progress::Quiet => Mode::Quiet,
            Progress::Bar if std::io::stderr().is_terminal() => Mode::Bars,
            Progress::Bar => Mode::Lines,
        };
        Reporter { mode }
    }

    /// Starts a phase; `total` is the expected byte count when known.
    pub(crate) fn phase(&self, label: String, total: Option<u64>) -> Phase {
        let bar = match self.mode {
            Mode::Bars => {
                let bar = match total {
                    Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                        .with_style(bar_style()),
                    None => {
                        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                            .with_style(spinner_style());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    }
                };
                Some(bar.with_message(label.clone()))
            }
            Mode::Lines | Mode::Quiet => None,
        };
        Phase {
            label,
            lines: self.mode != Mode::Quiet,
            bar,
            pos: 0,
            start: Instant::now(),
            done: false,
        }
    }

    /// One line on stderr unless quiet (e.g. the sha256 of a download).
    pub(crate) fn note(&self, line: &str) {
        if self.mode != Mode::Quiet {
            let _ = writeln!(std::io::stderr(), "llmos: {line}");
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

/// One unit of work with a byte count; cleared (bars) or summarised (lines) at the end.
pub(crate) struct Phase {
    label: String,
    lines: bool,
    bar: Option<ProgressBar>,
    pos: u64,
    start: Instant,
    done: bool,
}

impl Phase {
    pub(crate) fn inc(&mut self, n: u64) {
        self.set(self.pos + n);
    }

    pub(crate) fn set(&mut self, pos: u64) {
        self.pos = pos;
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    /// Ends the phase: clears its bar, or prints its one summary line.
    pub(crate) fn finish(mut self) {
        self.done = true;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.lines {
            let secs = self.start.elapsed().as_secs_f64();
            let _ = writeln!(
                std::io::stderr(),
                "llmos: {}: {} in {secs:.1}s",
                self.label,
                HumanBytes(self.pos)
            );
        }
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        // Failed or interrupted: the error message follows, so just clear the bar.
        if !self.done {
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
        }
    }
}
