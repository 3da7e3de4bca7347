//! A job's chart: its learning curve, from rows already read. Pure: a job and its rows in, a
//! [`Figure`] out.

use super::{PngOptions, XKind};
use crate::error::{Error, RequestError};
use crate::export::plot::{Figure, Line, Panel};
use crate::model::{Job, Row};

/// A job of a built-in kind (hash, sum, ...) has a result and no rows: asking for its curve is
/// a request error that says so.
pub(super) fn has_curve(job: &Job) -> Result<(), Error> {
    if job.spec.kind().is_builtin() {
        return Err(Error::Request(RequestError::Invalid(format!(
            "job {id} is a {kind} job: it has a result, not a learning curve \
             (see it with `gaia show {id}`)",
            id = job.id,
            kind = job.spec.kind()
        ))));
    }
    Ok(())
}

/// The attempt whose curve a job's chart shows (the current one; 1 before any) and how many
/// rows the job says that attempt has (0 before any).
pub(super) fn shown_attempt(job: &Job) -> (u32, u64) {
    let attempt = job.attempt.max(1);
    let total = if attempt == job.attempt {
        job.progress.rows
    } else {
        0
    };
    (attempt, total)
}

/// The learning curve of a job's current attempt: one line per metric (best_ever and mean
/// unless `opts` names others) against evaluations, else generations, else row numbers.
/// `rows` are that attempt's rows in order, whole or downsampled (see `job_rows`); none: a
/// figure that says "no data yet". A metric no row has is a request error that lists the
/// metrics the rows do have.
pub(super) fn job_figure(job: &Job, rows: &[Row], opts: &PngOptions) -> Result<Figure, Error> {
    has_curve(job)?;
    let metrics: Vec<String> = if opts.metrics.is_empty() {
        vec!["best_ever".into(), "mean".into()]
    } else {
        opts.metrics.clone()
    };
    let (_, total) = shown_attempt(job);
    let xk = if rows.iter().any(|r| r.evals.is_some()) {
        XKind::Evals
    } else if rows.iter().any(|r| r.generation.is_some()) {
        XKind::Generation
    } else {
        XKind::Seq
    };
    let mut panel = Panel {
        caption: format!(
            "{}, {} rows{}",
            job.state,
            grouped(total.max(rows.len() as u64)),
            if job.attempt > 1 {
                format!(" of attempt {}", job.attempt)
            } else {
                String::new()
            }
        ),
        x_label: xk.label().into(),
        y_label: metrics.join(" / ") + if opts.log_y { " (log scale)" } else { "" },
        log_y: opts.log_y,
        ..Panel::default()
    };
    for (i, m) in metrics.iter().enumerate() {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((xk.of(r)?, r.metric(m)?)))
            .collect();
        if points.is_empty() && !rows.is_empty() {
            let mut known: Vec<String> = crate::model::CORE_METRICS
                .iter()
                .filter(|c| rows.iter().any(|r| r.metric(c).is_some()))
                .map(|c| c.to_string())
                .collect();
            for r in rows {
                for (k, _) in &r.metrics {
                    if !known.contains(k) {
                        known.push(k.clone());
                    }
                }
            }
            return Err(Error::Request(RequestError::Invalid(format!(
                "job {} has no metric {m:?}; its metrics: {}",
                job.id,
                known.join(", ")
            ))));
        }
        panel.lines.push(Line {
            label: m.clone(),
            points,
            color: i,
            width: if i == 0 { 3 } else { 2 },
            step: false,
        });
    }
    Ok(Figure {
        title: format!("job {}: {}{}", job.id, job_label(job), study_suffix(job)),
        note: String::new(),
        width: opts.width,
        height: opts.height,
        panels: if rows.is_empty() {
            Vec::new()
        } else {
            vec![panel]
        },
    })
}

/// "cma_es on CartPole-v1, seed 3" for an experiment, its description otherwise.
fn job_label(job: &Job) -> String {
    let s = &job.spec;
    let Some(e) = s.experiment() else {
        return s.describe();
    };
    let mut out = format!("{} on {}", e.method, e.env);
    if let Some(seed) = e.seed {
        out.push_str(&format!(", seed {seed}"));
    }
    for (k, v) in &s.params {
        out.push_str(&format!(", {k}={v}"));
    }
    out
}

/// " (study s)" for a job of a study, nothing otherwise.
fn study_suffix(job: &Job) -> String {
    match &job.spec.study {
        Some(s) => format!(" (study {s})"),
        None => String::new(),
    }
}

/// `1234567` → `1,234,567` (for captions, never for data).
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::png::stored_job;
    use crate::model::{JobSpec, JobState, Progress};

    fn job(attempt: u32, rows: u64) -> Job {
        let spec = JobSpec {
            env: Some("sphere".into()),
            seed: Some(2),
            study: Some("s".into()),
            ..JobSpec::experiment("cma_es", 1000)
        };
        let progress = Progress {
            rows,
            ..Progress::default()
        };
        stored_job(7, spec, JobState::Succeeded, attempt, progress)
    }

    fn row(seq: u64, evals: Option<f64>, generation: Option<u64>) -> Row {
        Row {
            seq,
            generation,
            evals,
            best_ever: Some(seq as f64 * 2.0),
            mean: Some(seq as f64),
            metrics: vec![("fitness".into(), 1.0)],
            ..Row::default()
        }
    }

    #[test]
    fn captions_group_thousands() {
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
    }

    #[test]
    fn a_job_figure_is_built_from_its_rows_alone() {
        let rows: Vec<Row> = (0..3)
            .map(|i| row(i, Some((i + 1) as f64 * 10.0), Some(i + 1)))
            .collect();
        let fig = job_figure(&job(1, 3), &rows, &PngOptions::default()).unwrap();
        assert_eq!(fig.title, "job 7: cma_es on sphere, seed 2 (study s)");
        assert_eq!((fig.width, fig.height), (1600, 1000));
        let p = &fig.panels[0];
        assert_eq!(p.caption, "succeeded, 3 rows");
        assert_eq!(
            (p.x_label.as_str(), p.y_label.as_str()),
            ("evaluations", "best_ever / mean")
        );
        let lines: Vec<(&str, usize, u32)> = p
            .lines
            .iter()
            .map(|l| (l.label.as_str(), l.color, l.width))
            .collect();
        assert_eq!(lines, [("best_ever", 0, 3), ("mean", 1, 2)]);
        assert_eq!(p.lines[0].points, [(10.0, 0.0), (20.0, 2.0), (30.0, 4.0)]);

        // The job's own row count (a downsampled curve has fewer points) and its attempt.
        let opts = PngOptions {
            metrics: vec!["fitness".into()],
            log_y: true,
            ..PngOptions::default()
        };
        let fig = job_figure(&job(2, 1_500_000), &rows, &opts).unwrap();
        let p = &fig.panels[0];
        assert_eq!(p.caption, "succeeded, 1,500,000 rows of attempt 2");
        assert_eq!(p.y_label, "fitness (log scale)");
        assert!(p.log_y);
    }

    #[test]
    fn the_x_axis_falls_back_to_generations_then_rows() {
        let by_gen: Vec<Row> = (0..3).map(|i| row(i, None, Some(i + 5))).collect();
        let fig = job_figure(&job(1, 3), &by_gen, &PngOptions::default()).unwrap();
        assert_eq!(fig.panels[0].x_label, "generation");
        assert_eq!(fig.panels[0].lines[0].points[0], (5.0, 0.0));
        let bare: Vec<Row> = (0..3).map(|i| row(i, None, None)).collect();
        let fig = job_figure(&job(1, 3), &bare, &PngOptions::default()).unwrap();
        assert_eq!(fig.panels[0].x_label, "row");
        assert_eq!(fig.panels[0].lines[1].points[2], (2.0, 2.0));
    }

    #[test]
    fn an_unknown_metric_names_the_ones_the_rows_have() {
        let rows = vec![row(0, Some(1.0), None)];
        let opts = PngOptions {
            metrics: vec!["sigma".into()],
            ..PngOptions::default()
        };
        let e = job_figure(&job(1, 1), &rows, &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "job 7 has no metric \"sigma\"; its metrics: evals, best_ever, mean, fitness"
        );
        // No rows yet: a figure without panels ("no data yet"), not an error.
        let fig = job_figure(&job(0, 0), &[], &opts).unwrap();
        assert!(fig.panels.is_empty());
        assert_eq!(shown_attempt(&job(0, 0)), (1, 0));
    }
}
