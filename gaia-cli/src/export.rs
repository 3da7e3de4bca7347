//! `gaia export`: CSV / JSON / PNG of jobs, a study or everything; a study's result files as ZIP.
//!
//! The server renders and streams; the client writes the stream to the target whole or not at
//! all (`client::save_to_file`); this adds a progress bar on a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use gaia_core::client::{Client, save_to_file};
use gaia_core::error::ClientError;
use gaia_core::export::png::compare::CompareFigure;
use gaia_core::export::png::{DEFAULT_HEIGHT, DEFAULT_WIDTH, PngOptions};
use gaia_core::export::{Format, Target};
use gaia_core::human;
use gaia_core::study::compare::CompareOptions;
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::Conn;
use crate::exit;

#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("selection").required(true).args(["jobs", "study", "all"])),
    group(clap::ArgGroup::new("format").args(["csv", "json", "png", "files"])),
    after_help = "Examples:
  gaia export --job 42 --png                  learning curve → job-42.png
  gaia export --job 42 --csv                  every row, every metric → job-42.csv
  gaia export --job 42 --png --metric sigma --log-y
  gaia export --study classic-control --png   methods compared, one panel per env
  gaia export --study classic-control --csv   one table of the whole study
  gaia export --study classic-control --files its result files → study-classic-control-files.zip
  gaia export --all --json --out all.json
Method comparison (see gaia compare --help for the definitions):
  gaia export --study classic-control --png --figure aggregate    IQM, median, mean, optimality gap
  gaia export --study classic-control --png --figure profile      performance profiles
  gaia export --study classic-control --png --figure improvement  P(X > Y) per pair of methods
  gaia export --study classic-control --png --figure curves       sample-efficiency curves
  gaia export --study classic-control --png --figure ecdf         evaluations to reach the target
  gaia export --study classic-control --json --figure scores      per-run scores for rliable/pandas"
)]
pub struct ExportArgs {
    #[command(flatten)]
    conn: Conn,
    /// A job to export (repeat for several: one file each).
    #[arg(long = "job", value_name = "ID")]
    jobs: Vec<u64>,
    /// A study to export.
    #[arg(long, value_name = "NAME")]
    study: Option<String>,
    /// Every job.
    #[arg(long)]
    all: bool,
    /// CSV: every row with every metric column (RFC 4180).
    #[arg(long)]
    csv: bool,
    /// JSON: every row, full precision, null where a value is missing.
    #[arg(long)]
    json: bool,
    /// PNG: a job's learning curve, or a study's methods compared.
    #[arg(long)]
    png: bool,
    /// A study's result files, as one ZIP.
    #[arg(long)]
    files: bool,
    /// Where to write (default: job-42.png, study-NAME.csv, gaia-all.json, ... here; `-` for
    /// stdout). With several --job, a folder.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// PNG: the metric(s) to draw, comma-separated (default best_ever and mean for a job,
    /// best_ever for a study).
    #[arg(long)]
    metric: Option<String>,
    /// PNG: logarithmic y axis.
    #[arg(long)]
    log_y: bool,
    /// PNG: image size, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// A figure of the study's method comparison (with --study): aggregate, profile,
    /// improvement, curves or ecdf as --png; scores (every scored run) as --json.
    #[arg(long, value_name = "FIGURE")]
    figure: Option<String>,
    /// --figure ecdf: the target (solved, a normalised level such as 0.5, or ENV=SCORE,...).
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
    /// Further studies whose methods the comparison puts beside the study's (--figure).
    #[arg(long = "with", value_name = "STUDY")]
    with: Vec<String>,
    #[command(flatten)]
    compare: crate::compare::CompareFlags,
}

/// Parses `1600x1000`.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT, e.g. 1600x1000"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?}: {v:?} is not a whole number of pixels"))
    };
    Ok((num(w)?, num(h)?))
}

enum What {
    Export(Target, Format),
    Files(String),
    /// A figure of a study's comparison, with the options it was computed with.
    Figure(String, CompareFigure, Box<CompareOptions>),
    /// Every scored run of a study.
    Scores(String, Box<CompareOptions>),
}

impl What {
    fn default_name(&self) -> String {
        match self {
            What::Export(t, f) => format!("{}.{}", t.file_stem(), f.ext()),
            What::Files(s) => format!("study-{s}-files.zip"),
            What::Figure(s, f, _) => format!("study-{s}-{}.png", f.as_str()),
            What::Scores(s, _) => format!("study-{s}-scores.json"),
        }
    }
}

pub fn run(a: ExportArgs) -> anyhow::Result<i32> {
    let format = if a.csv {
        Some(Format::Csv)
    } else if a.json {
        Some(Format::Json)
    } else if a.png {
        Some(Format::Png)
    } else {
        None
    };
    let format = match (format, &a.out) {
        (Some(f), _) => Some(f),
        (None, Some(out)) if !a.files => out
            .extension()
            .and_then(|e| e.to_str())
            .and_then(|e| Format::from_ext(&e.to_ascii_lowercase())),
        _ => None,
    };
    let targets: Vec<Target> = if !a.jobs.is_empty() {
        a.jobs.iter().map(|id| Target::Job(*id)).collect()
    } else if let Some(s) = &a.study {
        vec![Target::Study(s.clone())]
    } else {
        vec![Target::All]
    };
    let compare_flags = a.compare.score.is_some()
        || !a.compare.norm.is_empty()
        || a.compare.resamples.is_some()
        || a.compare.seed.is_some()
        || a.target.is_some()
        || !a.with.is_empty();
    if compare_flags && a.figure.is_none() {
        anyhow::bail!(
            "--score, --norm, --resamples, --seed, --target and --with shape a comparison figure: add --figure"
        );
    }
    let what: Vec<What> = if let Some(f) = &a.figure {
        let Some(study) = &a.study else {
            anyhow::bail!("--figure draws a study's method comparison: add --study NAME");
        };
        if a.files || a.metric.is_some() || a.log_y {
            anyhow::bail!(
                "--figure draws a comparison: --files, --metric and --log-y do not apply"
            );
        }
        let mut opts = a.compare.options()?;
        opts.with = a.with.clone();
        if let Some(t) = &a.target {
            opts.target = Some(t.parse()?);
        }
        if f == "scores" {
            if format.is_some_and(|f| f != Format::Json) {
                anyhow::bail!("--figure scores is JSON: use --json");
            }
            vec![What::Scores(study.clone(), Box::new(opts))]
        } else {
            let kind: CompareFigure = f.parse()?;
            if format.is_some_and(|f| f != Format::Png) {
                anyhow::bail!("--figure {f} is a PNG: use --png (or --json --figure scores)");
            }
            kind.require(&mut opts);
            vec![What::Figure(study.clone(), kind, Box::new(opts))]
        }
    } else if a.files {
        match &a.study {
            Some(s) => vec![What::Files(s.clone())],
            None => anyhow::bail!("--files downloads a study's result files: add --study NAME"),
        }
    } else {
        let Some(format) = format else {
            anyhow::bail!("choose a format: --csv, --json or --png");
        };
        targets
            .into_iter()
            .map(|t| What::Export(t, format))
            .collect()
    };
    let png_flags = a.metric.is_some() || a.log_y || a.size.is_some();
    let figure_png = what.iter().any(|w| matches!(w, What::Figure(..)));
    if png_flags && format != Some(Format::Png) && !figure_png {
        anyhow::bail!("--metric, --log-y and --size shape a PNG: add --png");
    }
    let (width, height) = a.size.unwrap_or((DEFAULT_WIDTH, DEFAULT_HEIGHT));
    let png = PngOptions {
        width,
        height,
        metrics: a
            .metric
            .as_deref()
            .map(|m| m.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
        log_y: a.log_y,
    };
    png.validate()?;
    let client = a.conn.client()?;
    let several = what.len() > 1;
    if several && let Some(dir) = &a.out {
        if dir.as_os_str() == "-" {
            anyhow::bail!("several jobs cannot all go to stdout: export them one at a time");
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    for w in &what {
        let dest = match (&a.out, several) {
            (Some(out), false) => out.clone(),
            (Some(dir), true) => dir.join(w.default_name()),
            (None, _) => PathBuf::from(w.default_name()),
        };
        export_one(&client, w, &png, &dest)?;
    }
    Ok(exit::OK)
}

fn export_one(client: &Client, what: &What, png: &PngOptions, dest: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let to_stdout = dest.as_os_str() == "-";
    let bar = Bar::new(std::io::stderr().is_terminal());
    let lines = matches!(what, What::Export(_, Format::Csv | Format::Json));
    let mut expected: Option<u64> = None;
    // An answer cut short is an error from the client (HTTP framing says so), and
    // save_to_file then leaves no file behind.
    let result = if to_stdout {
        let mut sink = Progress::new(std::io::stdout().lock(), &bar, lines);
        run_export(client, what, png, &mut sink, &bar, &mut expected)
    } else {
        save_to_file(dest, |out| {
            run_export(
                client,
                what,
                png,
                &mut Progress::new(out, &bar, lines),
                &bar,
                &mut expected,
            )
        })
    };
    bar.finish();
    let bytes = result?;
    if !to_stdout {
        println!("{}", dest.display());
        let rows = match expected {
            Some(r) if lines => format!("{}, ", human::plural(r, "row")),
            _ => String::new(),
        };
        eprintln!(
            "wrote {}: {rows}{} in {}",
            dest.display(),
            human::bytes(bytes),
            human::seconds(started.elapsed().as_secs_f64())
        );
    }
    Ok(())
}

fn run_export(
    client: &Client,
    what: &What,
    png: &PngOptions,
    out: &mut dyn Write,
    bar: &Bar,
    expected: &mut Option<u64>,
) -> Result<u64, ClientError> {
    match what {
        What::Export(target, format) => client.export(target, *format, png, out, &mut |rows| {
            *expected = rows;
            bar.start(rows);
        }),
        What::Files(study) => {
            bar.start(None);
            client.study_files_zip(study, out)
        }
        What::Figure(study, kind, opts) => {
            bar.start(None);
            client.compare_figure(study, opts, *kind, png, out)
        }
        What::Scores(study, opts) => {
            bar.start(None);
            client.study_scores(study, opts, out)
        }
    }
}

/// A progress bar on a terminal, nothing otherwise: rows when the answer says how many,
/// bytes received when it does not.
struct Bar {
    tty: bool,
    bar: std::cell::RefCell<Option<(ProgressBar, bool)>>,
}

impl Bar {
    fn new(tty: bool) -> Bar {
        Bar {
            tty,
            bar: std::cell::RefCell::new(None),
        }
    }

    fn start(&self, rows: Option<u64>) {
        if !self.tty {
            return;
        }
        let (bar, template) = match rows {
            Some(n) => (
                ProgressBar::new(n),
                "{spinner} [{bar:40}] {human_pos}/{human_len} rows  {elapsed}  ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{spinner} {bytes} received  {bytes_per_sec}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.borrow_mut() = Some((bar, rows.is_some()));
    }

    fn advance(&self, rows: u64, bytes: u64) {
        if let Some((b, by_rows)) = &*self.bar.borrow() {
            b.inc(if *by_rows { rows } else { bytes });
        }
    }

    fn finish(&self) {
        if let Some((b, _)) = self.bar.borrow_mut().take() {
            b.finish_and_clear();
        }
    }
}

/// Moves the bar as rows (line ends past the header) and bytes go by to `inner`.
struct Progress<'a, W: Write> {
    inner: W,
    bar: &'a Bar,
    lines: bool,
    header_done: bool,
}

impl<'a, W: Write> Progress<'a, W> {
    fn new(inner: W, bar: &'a Bar, lines: bool) -> Self {
        Progress {
            inner,
            bar,
            lines,
            header_done: false,
        }
    }
}

impl<W: Write> Write for Progress<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut rows = if self.lines {
            buf[..n].iter().filter(|b| **b == b'\n').count() as u64
        } else {
            0
        };
        // The header line (CSV) or the document's head (JSON) is not a row.
        if rows > 0 && !self.header_done {
            self.header_done = true;
            rows -= 1;
        }
        self.bar.advance(rows, n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse() {
        assert_eq!(super::parse_size("1600x1000"), Ok((1600, 1000)));
        assert_eq!(super::parse_size("800X600"), Ok((800, 600)));
        assert!(super::parse_size("800").is_err());
        assert!(super::parse_size("axb").unwrap_err().contains("\"a\""));
    }
}
