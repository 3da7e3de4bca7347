//! A job's chart: its learning curve, from rows already read. Pure: a job and its rows in, a
//! [`Figure`] out.

use super::{PngOptions, XKind};
use crate::error::{Error, RequestError};
use crate::export::plot::{Figure, Line, Panel};
use crate::model::{Job, JobKind, Row};

/// A job of a built-in kind (hash, sum, ...) has a result and no rows: asking for its curve is
/// a request error that says so.
pub(super) fn has_curve(job: &Job) -> Result<(), Error> {
    if job.spec.kind.is_builtin() {
        return Err(Error::Request(RequestError::Invalid(format!(
            "job {id} is a {kind} job: it has a result, not a learning curve \
             (see it with `gaia show {id}`)",
            id = job.id,
            kind = job.spec.kind
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
        lines: Vec::new(),
        bands: Vec::new(),
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
        });
    }
    Ok(Figure {
        title: format!("job {}: {}{}", job.id, job_label(job), study_suffix(job)),
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
    if s.kind != JobKind::Experiment {
        return s.describe();
    }
    let mut out = format!(
        "{} on {}",
        s.method.as_deref().unwrap_or("?"),
        s.env.as_deref().unwrap_or(crate::model::DEFAULT_ENV)
    );
    if let Some(seed) = s.seed {
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

    #[test]
    fn captions_group_thousands() {
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
    }
}
