//! The figures of a method comparison, drawn from a [`Comparison`] (what the server computed:
//! no statistics here): the aggregates with their intervals, performance profiles, the
//! probability of improvement, sample-efficiency curves and the ECDF of running times. Each
//! figure's note says what was computed: the score, the normalisation, runs per cell and the
//! resamples, so a figure pasted into a paper carries its own caption.

use super::PngOptions;
use crate::error::{Error, RequestError};
use crate::export::plot::{Band, Figure, IntervalMark, Line, Panel};
use crate::protocol::Comparison;
use crate::stats::Interval;

/// The figures of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareFigure {
    /// IQM, median, mean and optimality gap per method with their intervals.
    Aggregate,
    /// Fraction of runs above each normalised score, with bands.
    Profile,
    /// P(X > Y) for pairs of methods with intervals.
    Improvement,
    /// IQM of the normalised best-ever against evaluations, with bands.
    Curves,
    /// ECDF of the evaluations needed to reach the target (levels of it).
    Ecdf,
}

impl CompareFigure {
    /// Every figure, in the order the dashboard shows them.
    pub const ALL: [CompareFigure; 5] = [
        CompareFigure::Aggregate,
        CompareFigure::Profile,
        CompareFigure::Improvement,
        CompareFigure::Curves,
        CompareFigure::Ecdf,
    ];

    /// Its name (`--figure`, `figure=`).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareFigure::Aggregate => "aggregate",
            CompareFigure::Profile => "profile",
            CompareFigure::Improvement => "improvement",
            CompareFigure::Curves => "curves",
            CompareFigure::Ecdf => "ecdf",
        }
    }

    /// Sets what the comparison must compute for this figure.
    pub fn require(self, opts: &mut crate::study::compare::CompareOptions) {
        match self {
            CompareFigure::Profile => opts.profile = true,
            CompareFigure::Curves => opts.curves = true,
            CompareFigure::Ecdf => {
                opts.target.get_or_insert_with(Default::default);
            }
            CompareFigure::Aggregate | CompareFigure::Improvement => {}
        }
    }
}

impl std::str::FromStr for CompareFigure {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CompareFigure::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                RequestError::Invalid(format!(
                    "figure {s:?}: use aggregate, profile, improvement, curves or ecdf"
                ))
            })
    }
}

/// Pairs shown in the improvement figure at most; beyond, the best method (by IQM) against
/// each other one.
const MAX_PAIRS: usize = 15;

fn missing(what: &str) -> Error {
    Error::Request(RequestError::Invalid(format!(
        "the comparison has no {what} (nothing scored yet?)"
    )))
}

/// The figure `kind` of comparison `c`.
pub fn compare_figure(
    c: &Comparison,
    kind: CompareFigure,
    opts: &PngOptions,
) -> Result<Figure, Error> {
    let studies = c.studies.join(" + ");
    let color = |label: &str| {
        c.methods
            .iter()
            .position(|m| m.method == label)
            .unwrap_or(0)
    };
    let mut fig = Figure {
        title: String::new(),
        note: note(c),
        width: opts.width,
        height: opts.height,
        panels: Vec::new(),
    };
    let pct = format!("{:.0} %", c.confidence * 100.0);
    match kind {
        CompareFigure::Aggregate => {
            fig.title = format!(
                "{studies}: aggregate normalised scores over {} ({pct} CIs)",
                envs_text(c)
            );
            let rows: Vec<_> = c.methods.iter().filter(|m| m.iqm.is_some()).collect();
            let categories: Vec<String> = rows.iter().map(|m| m.method.clone()).collect();
            // Per panel: its caption, the statistic it shows, its x axis.
            type Pick = (
                &'static str,
                fn(&crate::protocol::MethodResult) -> Option<Interval>,
                &'static str,
            );
            let pick: [Pick; 4] = [
                ("IQM", |m| m.iqm, "normalised score"),
                ("Median", |m| m.median, "normalised score"),
                ("Mean", |m| m.mean, "normalised score"),
                (
                    "Optimality gap",
                    |m| m.optimality_gap,
                    "shortfall below 1 (lower is better)",
                ),
            ];
            for (caption, get, x_label) in pick {
                fig.panels.push(Panel {
                    caption: caption.into(),
                    x_label: x_label.into(),
                    categories: categories.clone(),
                    intervals: rows
                        .iter()
                        .enumerate()
                        .filter_map(|(i, m)| {
                            let v = get(m)?;
                            Some(IntervalMark {
                                category: i,
                                estimate: v.estimate,
                                low: v.low,
                                high: v.high,
                                color: color(&m.method),
                            })
                        })
                        .collect(),
                    ..Panel::default()
                });
            }
            if rows.is_empty() {
                fig.panels.clear();
            }
        }
        CompareFigure::Profile => {
            let p = c.profile.as_ref().ok_or_else(|| missing("profiles"))?;
            fig.title = format!(
                "{studies}: performance profiles over {} ({pct} CIs)",
                envs_text(c)
            );
            let lo = p.taus.first().copied().unwrap_or(0.0);
            let hi = p.taus.last().copied().unwrap_or(1.0);
            fig.panels.push(Panel {
                caption: "fraction of runs with a normalised score above τ".into(),
                x_label: "normalised score τ".into(),
                y_label: "fraction of runs > τ".into(),
                x_range: Some((lo, hi)),
                y_range: Some((-0.02, 1.02)),
                bands: p
                    .lines
                    .iter()
                    .map(|l| {
                        band(
                            &l.method,
                            color(&l.method),
                            &p.taus,
                            &l.points,
                            runs_of(c, &l.method),
                        )
                    })
                    .collect(),
                ..Panel::default()
            });
        }
        CompareFigure::Improvement => {
            fig.title = format!(
                "{studies}: probability of improvement over {} ({pct} CIs)",
                envs_text(c)
            );
            let mut caption =
                "probability that a run of the first method scores higher than one of the second"
                    .to_string();
            let best = c
                .methods
                .iter()
                .filter_map(|m| m.iqm.map(|i| (m.method.as_str(), i.estimate)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|b| b.0);
            let few = c.improvement.len() <= MAX_PAIRS;
            if !few {
                caption = "the method of the best IQM against each other: probability that one of its runs scores higher".into();
            }
            // All pairs as computed (X listed before Y), or, when there are many, P(best > Y).
            let shown: Vec<(String, Interval, usize)> = c
                .improvement
                .iter()
                .filter(|p| few || Some(p.x.as_str()) == best || Some(p.y.as_str()) == best)
                .map(|p| {
                    if !few && Some(p.y.as_str()) == best {
                        let i = p.p;
                        let flipped = Interval {
                            estimate: 1.0 - i.estimate,
                            low: 1.0 - i.high,
                            high: 1.0 - i.low,
                        };
                        (format!("P({} > {})", p.y, p.x), flipped, color(&p.y))
                    } else {
                        (format!("P({} > {})", p.x, p.y), p.p, color(&p.x))
                    }
                })
                .collect();
            if !shown.is_empty() {
                fig.panels.push(Panel {
                    caption,
                    x_label: "P(X > Y), averaged over environments".into(),
                    x_range: Some((-0.02, 1.02)),
                    x_rules: vec![0.5],
                    categories: shown.iter().map(|s| s.0.clone()).collect(),
                    intervals: shown
                        .iter()
                        .enumerate()
                        .map(|(i, (_, v, col))| IntervalMark {
                            category: i,
                            estimate: v.estimate,
                            low: v.low,
                            high: v.high,
                            color: *col,
                        })
                        .collect(),
                    ..Panel::default()
                });
            }
        }
        CompareFigure::Curves => {
            let cs = c.curves.as_ref().ok_or_else(|| missing("curves"))?;
            fig.title = format!(
                "{studies}: sample efficiency over {} (IQM, {pct} CIs)",
                envs_text(c)
            );
            fig.panels.push(Panel {
                caption: "IQM of the normalised best-ever over runs".into(),
                x_label: "evaluations".into(),
                y_label: "IQM normalised best-ever".into(),
                bands: cs
                    .lines
                    .iter()
                    .map(|l| {
                        band(
                            &l.method,
                            color(&l.method),
                            &cs.evals,
                            &l.points,
                            runs_of(c, &l.method),
                        )
                    })
                    .collect(),
                ..Panel::default()
            });
        }
        CompareFigure::Ecdf => {
            let t = c.target.as_ref().ok_or_else(|| missing("target"))?;
            fig.title = format!(
                "{studies}: evaluations to reach the target ({}) over {}",
                t.target,
                envs_text(c)
            );
            let xs = t.methods.iter().flat_map(|m| m.ecdf.iter().map(|p| p.0));
            let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
            let end = c
                .curves
                .as_ref()
                .and_then(|cs| cs.evals.last().copied())
                .unwrap_or(hi)
                .max(hi);
            let mut lines = Vec::new();
            for m in &t.methods {
                if m.ecdf.is_empty() && lo > hi {
                    continue;
                }
                let mut pts = vec![(lo.min(hi), 0.0)];
                pts.extend(m.ecdf.iter().copied());
                let last = pts.last().map_or(0.0, |p| p.1);
                pts.push((end.max(lo), last));
                lines.push(Line {
                    label: format!(
                        "{} (success {})",
                        m.method,
                        crate::human::percent(m.success.estimate)
                    ),
                    points: pts,
                    color: color(&m.method),
                    width: 3,
                    step: true,
                });
            }
            if lo <= hi {
                fig.panels.push(Panel {
                    caption: format!(
                        "fraction of (run, target) pairs reached, targets {}–{} % of the way from low to the target",
                        pct_of(t.ecdf_levels.first()),
                        pct_of(t.ecdf_levels.last())
                    ),
                    x_label: "evaluations (log scale)".into(),
                    y_label: "fraction of (run, target) pairs".into(),
                    log_x: true,
                    y_range: Some((-0.02, 1.02)),
                    lines,
                    ..Panel::default()
                });
            }
        }
    }
    Ok(fig)
}

fn pct_of(v: Option<&f64>) -> String {
    format!("{:.0}", v.copied().unwrap_or(0.0) * 100.0)
}

/// A method's runs in the aggregated environments.
fn runs_of(c: &Comparison, label: &str) -> u64 {
    c.methods
        .iter()
        .find(|m| m.method == label)
        .map_or(0, |m| m.runs)
}

/// A line with its interval band.
fn band(label: &str, color: usize, x: &[f64], points: &[Interval], runs: u64) -> Band {
    Band {
        label: format!("{label} ({runs} runs)"),
        color,
        x: x.to_vec(),
        mid: points.iter().map(|p| p.estimate).collect(),
        lo: points.iter().map(|p| p.low).collect(),
        hi: points.iter().map(|p| p.high).collect(),
        dashed_after: None,
    }
}

/// `CartPole-v1 and sphere`, `3 environments` (the note names them).
fn envs_text(c: &Comparison) -> String {
    match c.envs.len() {
        0 => "no environment".into(),
        1 => c.envs[0].clone(),
        2 => format!("{} and {}", c.envs[0], c.envs[1]),
        n => format!("{n} environments"),
    }
}

/// The caption under a figure: score, normalisation, runs per cell, resamples, provisional.
pub fn note(c: &Comparison) -> String {
    let mut parts = vec![format!("Score: {}.", c.score.definition)];
    let shown: Vec<&crate::protocol::EnvNorm> = c
        .normalisation
        .iter()
        .filter(|n| c.envs.contains(&n.env))
        .collect();
    let how = |source: &str| match source {
        "shipped" => "random → solved",
        "override" => "given",
        _ => "min–max of the study's runs",
    };
    let norm: Vec<String> = if shown.len() <= 4 {
        shown
            .iter()
            .map(|n| {
                format!(
                    "{} {}→{} ({})",
                    n.env,
                    crate::human::score(Some(n.low)),
                    crate::human::score(Some(n.high)),
                    how(&n.source)
                )
            })
            .collect()
    } else {
        ["shipped", "override", "min-max"]
            .iter()
            .filter_map(|src| {
                let envs: Vec<&str> = shown
                    .iter()
                    .filter(|n| n.source == *src)
                    .map(|n| n.env.as_str())
                    .collect();
                (!envs.is_empty()).then(|| format!("{} for {}", how(src), envs.join(", ")))
            })
            .collect()
    };
    if !norm.is_empty() {
        parts.push(format!(
            "Normalised (score − low)/(high − low): {}.",
            norm.join("; ")
        ));
    }
    let counts: Vec<u64> = c
        .methods
        .iter()
        .flat_map(|m| {
            m.cells
                .iter()
                .filter(|x| c.envs.contains(&x.env))
                .map(|x| x.runs)
        })
        .collect();
    if let (Some(lo), Some(hi)) = (counts.iter().min(), counts.iter().max()) {
        let left: usize = c
            .methods
            .iter()
            .flat_map(|m| m.cells.iter().map(|x| x.left_out.len()))
            .sum();
        parts.push(format!(
            "Runs per method × environment: {}{}.",
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}–{hi}")
            },
            if left > 0 {
                format!(" ({left} left out: failed, lost, cancelled or unscored)")
            } else {
                String::new()
            }
        ));
    }
    parts.push(format!(
        "{:.0} % CIs: percentile stratified bootstrap, {} resamples, seed {}.",
        c.confidence * 100.0,
        crate::human::count(c.resamples),
        c.seed
    ));
    if c.provisional {
        parts.push("PROVISIONAL: the study is still running.".into());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::plot::render;
    use crate::export::plot::testutil::{coloured, decode};
    use crate::stats::Bootstrap;
    use crate::study::compare::testdata::study;
    use crate::study::compare::{CompareOptions, compare};

    /// Every figure of a comparison of `methods` methods, rendered; written to
    /// `$GAIA_FIGURES_OUT` when set, to be looked at.
    fn figures(methods: usize) -> Vec<(CompareFigure, Vec<u8>)> {
        let s = study(
            "paper",
            methods,
            &["CartPole-v1", "sphere", "Acrobot-v1"],
            5,
        );
        let mut o = CompareOptions {
            boot: Bootstrap {
                resamples: 500,
                ..Bootstrap::default()
            },
            ..CompareOptions::default()
        };
        for f in CompareFigure::ALL {
            f.require(&mut o);
        }
        let c = compare(&[s], &o).unwrap();
        CompareFigure::ALL
            .into_iter()
            .map(|f| {
                let fig = compare_figure(&c, f, &PngOptions::default()).unwrap();
                assert!(!fig.panels.is_empty(), "{f:?} has no panel");
                assert!(
                    fig.note.contains("5 runs")
                        || fig.note.contains("Runs per method × environment: 5"),
                    "{}",
                    fig.note
                );
                let png = render(&fig).unwrap();
                if let Some(dir) = std::env::var_os("GAIA_FIGURES_OUT") {
                    std::fs::create_dir_all(&dir).unwrap();
                    let path =
                        std::path::Path::new(&dir).join(format!("{methods}-{}.png", f.as_str()));
                    std::fs::write(path, &png).unwrap();
                }
                (f, png)
            })
            .collect()
    }

    #[test]
    fn every_figure_renders_with_two_and_twelve_methods() {
        for n in [2, 12] {
            for (f, png) in figures(n) {
                let (w, h, img) = decode(&png);
                assert_eq!((w, h), (1600, 1000), "{f:?}");
                // Data is drawn in colour.
                let data = coloured(&img, w, (0, w, 0, h));
                assert!(
                    data > 2000,
                    "{n} methods, {f:?}: only {data} coloured pixels"
                );
            }
        }
    }

    #[test]
    fn many_pairs_show_the_best_method_against_each_other() {
        let s = study("many", 7, &["CartPole-v1"], 4);
        let c = compare(&[s], &CompareOptions::default()).unwrap();
        assert_eq!(c.improvement.len(), 21);
        let fig = compare_figure(&c, CompareFigure::Improvement, &PngOptions::default()).unwrap();
        let cats = &fig.panels[0].categories;
        assert_eq!(cats.len(), 6);
        assert!(
            cats.iter().all(|c| c.starts_with("P(method_01 > ")),
            "{cats:?}"
        );
        // Few pairs: all of them, as computed.
        let s = study("few", 3, &["CartPole-v1"], 4);
        let c = compare(&[s], &CompareOptions::default()).unwrap();
        let fig = compare_figure(&c, CompareFigure::Improvement, &PngOptions::default()).unwrap();
        assert_eq!(
            fig.panels[0].categories,
            [
                "P(method_01 > method_02)",
                "P(method_01 > method_03)",
                "P(method_02 > method_03)"
            ]
        );
        assert_eq!(fig.panels[0].x_rules, [0.5]);
    }

    #[test]
    fn a_figure_whose_data_was_not_computed_says_so() {
        let s = study("s", 2, &["CartPole-v1"], 3);
        let c = compare(&[s], &CompareOptions::default()).unwrap();
        let e = compare_figure(&c, CompareFigure::Profile, &PngOptions::default()).unwrap_err();
        assert!(e.to_string().contains("profiles"), "{e}");
        assert_eq!(
            "ecdf".parse::<CompareFigure>().unwrap(),
            CompareFigure::Ecdf
        );
        assert!("pie".parse::<CompareFigure>().is_err());
    }
}
