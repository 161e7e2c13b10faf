//! Everything the xtask prints goes through one [`Printer`]: humans read stderr, machines read
//! stdout.
//!
//! Status lines look like cargo's (`   Deploying web-network (222222222222/ap-south-1)`). On a
//! terminal, long-running steps get a live spinner line each (indicatif); elsewhere (CI, pipes)
//! each event is one plain line, so logs stay readable. `--quiet` keeps only warnings and errors;
//! `--verbose` adds detail lines. JSON summaries go to stdout and nothing else does.
//!
//! Nothing printed here may contain a secret: callers pass names, ids and ARNs, never tokens or
//! credentials.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How much the printer says on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// An error that has already been reported to the user; `main` exits with its code and prints
/// nothing more. Used for outcomes such as "the plan has changes" (exit 1) or "the config is
/// invalid" (exit 2) where the details were printed where they arose.
#[derive(Debug, thiserror::Error)]
#[error("exit code {0}")]
pub struct Exit(pub u8);

/// A command line that cannot run as given: a name the config does not have, flags that
/// contradict each other, a flag the chosen mode ignores. It is returned before any AWS call or
/// other change; `main` prints it as one `error:` line and exits with [`Usage::EXIT_CODE`], as
/// clap does for the values it refuses itself (`cli.rs`). The line reads
/// `{input}: {problem}; {fix}`.
#[derive(Debug, thiserror::Error)]
#[error("{input}: {problem}; {fix}")]
pub struct Usage {
    /// The argument as given, e.g. ``workload `eu-wset` `` or `--via site`.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
    /// What to type instead.
    pub fix: String,
}

impl Usage {
    /// Bad input: the exit code of clap's own errors and of an invalid config.
    pub const EXIT_CODE: u8 = 2;

    pub fn new(input: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Usage {
        Usage { input: input.into(), problem: problem.into(), fix: fix.into() }
    }
}

/// `--color`: when the human output on stderr is coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (https://no-color.org) or `CI` is.
    #[default]
    Auto,
    Always,
    Never,
}

/// The one printer of the process. Cheap to clone; clones share the live progress area.
#[derive(Clone)]
pub struct Printer {
    inner: Arc<Inner>,
}

struct Inner {
    verbosity: Verbosity,
    /// Live progress lines are drawn only when stderr is a terminal.
    multi: Option<MultiProgress>,
    color: bool,
    /// Where the lines go instead of stderr: a buffer a test reads ([`Printer::buffer`]).
    sink: Option<Arc<Mutex<Vec<u8>>>>,
}

impl Printer {
    /// A printer for this process: live lines only when stderr is a terminal (and `CI` is unset),
    /// colour as `--color` says.
    pub fn new(verbosity: Verbosity) -> Printer {
        Printer::with_color(verbosity, ColorChoice::Auto)
    }

    /// [`Printer::new`] with an explicit `--color`.
    pub fn with_color(verbosity: Verbosity, choice: ColorChoice) -> Printer {
        let term = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let color = match choice {
            ColorChoice::Auto => term && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
            ColorChoice::Always => true,
            ColorChoice::Never => false,
        };
        let multi = term.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Printer { inner: Arc::new(Inner { verbosity, multi, color, sink: None }) }
    }

    /// A printer that never draws live lines; for tests and for nested runs.
    pub fn plain(verbosity: Verbosity) -> Printer {
        Printer { inner: Arc::new(Inner { verbosity, multi: None, color: false, sink: None }) }
    }

    /// A plain printer writing its lines into the returned buffer instead of stderr (as cargo's
    /// `Shell::from_write`), so a test can read what a user would see.
    pub fn buffer(verbosity: Verbosity) -> (Printer, Buffer) {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let printer =
            Printer { inner: Arc::new(Inner { verbosity, multi: None, color: false, sink: Some(sink.clone()) }) };
        (printer, Buffer(sink))
    }

    pub fn verbosity(&self) -> Verbosity {
        self.inner.verbosity
    }

    /// `   Verb message`, the verb right-aligned and green, like cargo.
    pub fn status(&self, verb: &str, message: impl Display) {
        if self.inner.verbosity >= Verbosity::Normal {
            self.line(&self.format_status(verb, &message.to_string(), &self.green()));
        }
    }

    /// A status line shown only with `--verbose`.
    pub fn detail(&self, verb: &str, message: impl Display) {
        if self.inner.verbosity >= Verbosity::Verbose {
            self.line(&self.format_status(verb, &message.to_string(), &self.cyan()));
        }
    }

    /// `warning: message`; shown even with `--quiet`.
    pub fn warn(&self, message: impl Display) {
        let label = self.paint(&Style::new().yellow().bold(), "warning");
        self.line(&format!("{label}: {message}"));
    }

    /// `error: message`; shown even with `--quiet`.
    pub fn error(&self, message: impl Display) {
        let label = self.paint(&Style::new().red().bold(), "error");
        self.line(&format!("{label}: {message}"));
    }

    /// `note: message`, for what the user should know but need not act on.
    pub fn note(&self, message: impl Display) {
        if self.inner.verbosity >= Verbosity::Normal {
            let label = self.paint(&Style::new().cyan().bold(), "note");
            self.line(&format!("{label}: {message}"));
        }
    }

    /// A raw line on stderr (tables, previews). Suppressed by `--quiet`.
    pub fn text(&self, text: impl Display) {
        if self.inner.verbosity >= Verbosity::Normal {
            self.line(&text.to_string());
        }
    }

    /// Emphasis for a word inside a message (bold on a terminal).
    pub fn bold(&self, text: impl Display) -> String {
        self.paint(&Style::new().bold(), &text.to_string())
    }

    /// Prints `value` as pretty JSON on stdout: the machine-readable result of a command.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        writeln!(lock, "{text}")?;
        lock.flush()?;
        Ok(())
    }

    /// Starts a live line for a long step: a spinner on a terminal, a plain status line otherwise.
    /// Finish it with [`Progress::finish`] or [`Progress::fail`].
    pub fn progress(&self, verb: &str, message: impl Display) -> Progress {
        let message = message.to_string();
        let bar = match &self.inner.multi {
            Some(multi) if self.inner.verbosity >= Verbosity::Normal => {
                let bar = multi.add(ProgressBar::new_spinner());
                let style = ProgressStyle::with_template("{prefix:>12.cyan.bold} {msg} {spinner} {elapsed:.dim}")
                    .expect("static progress template");
                bar.set_style(style);
                bar.set_prefix(verb.to_string());
                bar.set_message(message.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            _ => {
                self.status(verb, &message);
                None
            }
        };
        Progress { printer: self.clone(), bar, message }
    }

    fn line(&self, text: &str) {
        match (&self.inner.sink, &self.inner.multi) {
            (Some(sink), _) => {
                let mut sink = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                sink.extend_from_slice(text.as_bytes());
                sink.push(b'\n');
            }
            (None, Some(multi)) => multi.suspend(|| eprintln!("{text}")),
            (None, None) => eprintln!("{text}"),
        }
    }

    fn format_status(&self, verb: &str, message: &str, style: &Style) -> String {
        let verb = format!("{verb:>12}");
        format!("{} {message}", self.paint(style, &verb))
    }

    fn paint(&self, style: &Style, text: &str) -> String {
        if self.inner.color { style.apply_to(text).to_string() } else { text.to_string() }
    }

    fn green(&self) -> Style {
        Style::new().green().bold()
    }

    fn cyan(&self) -> Style {
        Style::new().cyan().bold()
    }
}

/// What a [`Printer::buffer`] printer wrote.
#[derive(Clone)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// Everything written so far.
    pub fn contents(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// One live line; see [`Printer::progress`].
pub struct Progress {
    printer: Printer,
    bar: Option<ProgressBar>,
    message: String,
}

impl Progress {
    /// Updates the live line (on a terminal) or prints a detail line (elsewhere, with `--verbose`).
    pub fn update(&self, message: impl Display) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {message}", self.message)),
            None => self.printer.detail("", format!("{}: {message}", self.message)),
        }
    }

    /// Ends the line with a final status, e.g. `finish("Created", "web-network ...")`.
    pub fn finish(self, verb: &str, message: impl Display) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.printer.status(verb, message);
    }

    /// Ends the line with an error line.
    pub fn fail(self, message: impl Display) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.printer.error(message);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Renders rows as an aligned text table (first row is the header).
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().filter_map(|row| row.get(column)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["STACK".to_string(), "ACTION".to_string()],
            vec!["web-network".to_string(), "created".to_string()],
        ];
        assert_eq!(table(&rows), "STACK        ACTION\nweb-network  created\n");
    }
}
