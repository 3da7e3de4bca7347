//! `gaia top`: a terminal dashboard (ratatui + crossterm). Flags and drawing only; the data
//! comes through `gaia_core::client`, polled on a thread of its own so keys never wait for
//! the network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use gaia_core::client::Client;
use gaia_core::human;
use gaia_core::model::{Job, JobId, JobState, LogLine, Worker, WorkerState};
use gaia_core::protocol::{JobQuery, StatusResponse};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState};

use crate::common::Conn;
use crate::exit;

#[derive(clap::Args)]
#[command(after_help = "Keys:
  Tab        switch between the workers and the running jobs
  ↑ ↓ (k j)  select
  /          filter by name (Enter applies, Esc clears)
  l, Enter   follow the selected job's log (Esc goes back)
  c          cancel the selected job (asks first)
  p / r / d  pause / resume / drain the selected worker
  q, Ctrl-C  quit (the terminal is restored)")]
pub struct TopArgs {
    #[command(flatten)]
    conn: Conn,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    interval: f64,
}

/// What the poller last saw.
#[derive(Default, Clone)]
struct Snapshot {
    status: Option<StatusResponse>,
    workers: Vec<Worker>,
    /// CPU and GPU history per worker id (percent, oldest first).
    cpu: Vec<(String, Vec<f64>)>,
    gpu: Vec<(String, Vec<f64>)>,
    running: Vec<Job>,
    /// Best-ever history per running job.
    curves: Vec<(JobId, Vec<f64>)>,
    events: Vec<(u64, String)>,
    log: Vec<LogLine>,
    error: Option<String>,
}

/// What the UI asks the poller for.
#[derive(Default)]
struct Wants {
    log_of: Option<JobId>,
}

fn poll(client: &Client, wants: &Mutex<Wants>, prev: &Snapshot, deep: bool) -> Snapshot {
    let mut s = Snapshot::default();
    let result = (|| -> Result<(), gaia_core::error::ClientError> {
        s.status = Some(client.status()?);
        s.workers = client.workers()?.workers;
        s.running = client
            .jobs(&JobQuery {
                state: Some(JobState::Running),
                limit: Some(50),
                ..JobQuery::default()
            })?
            .jobs;
        s.events = client
            .events(None, 8)?
            .events
            .into_iter()
            .map(|e| (e.at, e.message))
            .collect();
        if deep {
            for w in s
                .workers
                .iter()
                .filter(|w| w.state != WorkerState::Offline)
                .take(16)
            {
                if let Ok(t) = client.worker_telemetry(&w.id, "hour") {
                    let last: Vec<_> = t.points.iter().rev().take(40).rev().collect();
                    s.cpu.push((
                        w.id.clone(),
                        last.iter().map(|p| p.cpu_percent as f64).collect(),
                    ));
                    s.gpu.push((
                        w.id.clone(),
                        last.iter()
                            .filter_map(|p| {
                                let u: Vec<f64> = p
                                    .gpus
                                    .iter()
                                    .filter_map(|g| g.utilization.map(f64::from))
                                    .collect();
                                (!u.is_empty()).then(|| u.iter().sum::<f64>() / u.len() as f64)
                            })
                            .collect(),
                    ));
                }
            }
            for j in s.running.iter().take(12) {
                if let Ok(r) = client.rows(j.id, Some(40), None) {
                    s.curves.push((
                        j.id,
                        r.rows
                            .iter()
                            .filter_map(|r| r.best_ever.or(r.best))
                            .filter(|v| v.is_finite())
                            .collect(),
                    ));
                }
            }
        } else {
            s.cpu = prev.cpu.clone();
            s.gpu = prev.gpu.clone();
            s.curves = prev.curves.clone();
        }
        let log_of = wants.lock().unwrap_or_else(|p| p.into_inner()).log_of;
        if let Some(id) = log_of {
            s.log = client.log_tail(id, 200)?.lines;
        }
        Ok(())
    })();
    if let Err(e) = result {
        s.error = Some(e.to_string());
    }
    s
}

/// `▁▂▃▄▅▆▇█` for the last `width` values, scaled to 0..max (0..100 for percents).
fn spark(values: &[f64], width: usize, max: Option<f64>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let vals = &values[values.len().saturating_sub(width)..];
    if vals.is_empty() {
        return String::new();
    }
    let (lo, hi) = match max {
        Some(m) => (0.0, m),
        None => {
            let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        }
    };
    let span = (hi - lo).max(1e-12);
    vals.iter()
        .map(|v| {
            let i = (((v - lo) / span) * 7.0).round().clamp(0.0, 7.0) as usize;
            BARS[i]
        })
        .collect()
}

#[derive(PartialEq, Clone, Copy)]
enum Focus {
    Workers,
    Jobs,
}

enum Mode {
    Normal,
    Filter(String),
    ConfirmCancel(JobId, String),
    ConfirmDrain(String, String),
    Log(JobId),
}

struct Ui {
    snap: Snapshot,
    focus: Focus,
    workers: TableState,
    jobs: TableState,
    filter: String,
    mode: Mode,
    message: Option<(String, Instant)>,
}

impl Ui {
    fn visible_workers(&self) -> Vec<&Worker> {
        let f = self.filter.to_lowercase();
        self.snap
            .workers
            .iter()
            .filter(|w| f.is_empty() || w.name.to_lowercase().contains(&f))
            .collect()
    }

    fn visible_jobs(&self) -> Vec<&Job> {
        let f = self.filter.to_lowercase();
        self.snap
            .running
            .iter()
            .filter(|j| {
                f.is_empty()
                    || j.spec.describe().to_lowercase().contains(&f)
                    || j.worker_name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(&f))
                    || j.id.to_string() == f
            })
            .collect()
    }

    fn say(&mut self, m: impl Into<String>) {
        self.message = Some((m.into(), Instant::now()));
    }
}

pub fn run(a: TopArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    // Fail before the screen is taken: a wrong address or token is a plain error.
    client.status()?;
    let interval = Duration::from_secs_f64(a.interval.clamp(0.2, 60.0));
    let wants = Arc::new(Mutex::new(Wants::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Snapshot>();
    let poller = {
        let (client, wants, stop) = (client.clone(), wants.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut prev = Snapshot::default();
            let mut last_deep: Option<Instant> = None;
            while !stop.load(Ordering::SeqCst) {
                let deep = last_deep.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
                if deep {
                    last_deep = Some(Instant::now());
                }
                let s = poll(&client, &wants, &prev, deep);
                prev = s.clone();
                if tx.send(s).is_err() {
                    return;
                }
                let until = Instant::now() + interval;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })
    };
    // ratatui::init takes raw mode and the alternate screen, and restores both on a panic.
    let mut terminal = ratatui::init();
    let mut ui = Ui {
        snap: Snapshot::default(),
        focus: Focus::Workers,
        workers: TableState::default().with_selected(Some(0)),
        jobs: TableState::default().with_selected(Some(0)),
        filter: String::new(),
        mode: Mode::Normal,
        message: None,
    };
    let result = (|| -> anyhow::Result<()> {
        let mut dirty = true;
        loop {
            while let Ok(s) = rx.try_recv() {
                ui.snap = s;
                dirty = true;
            }
            if dirty {
                terminal.draw(|f| draw(f, &mut ui))?;
                dirty = false;
            }
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        if !on_key(&mut ui, k, &client, &wants) {
                            return Ok(());
                        }
                        dirty = true;
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
            if ui
                .message
                .as_ref()
                .is_some_and(|(_, t)| t.elapsed() > Duration::from_secs(5))
            {
                ui.message = None;
                dirty = true;
            }
        }
    })();
    ratatui::restore();
    stop.store(true, Ordering::SeqCst);
    drop(rx);
    let _ = poller.join();
    result?;
    Ok(exit::OK)
}

/// Handles a key; false to quit.
fn on_key(ui: &mut Ui, k: KeyEvent, client: &Client, wants: &Mutex<Wants>) -> bool {
    let ctrl_c = k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
    if ctrl_c {
        return false;
    }
    match std::mem::replace(&mut ui.mode, Mode::Normal) {
        Mode::Filter(mut text) => {
            match k.code {
                KeyCode::Enter => ui.filter = text,
                KeyCode::Esc => ui.filter.clear(),
                KeyCode::Backspace => {
                    text.pop();
                    ui.mode = Mode::Filter(text);
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    ui.mode = Mode::Filter(text);
                }
                _ => ui.mode = Mode::Filter(text),
            }
            return true;
        }
        Mode::ConfirmCancel(id, desc) => {
            if matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                match client.cancel(id) {
                    Ok(j) => ui.say(format!("job {id} ({desc}): {}", j.state)),
                    Err(e) => ui.say(format!("cancel failed: {e}")),
                }
            } else {
                ui.say("not cancelled");
            }
            return true;
        }
        Mode::ConfirmDrain(id, name) => {
            if matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                match client.drain_worker(&id, Some("gaia top".into()), false) {
                    Ok(w) => ui.say(format!("{name}: {}", w.state)),
                    Err(e) => ui.say(format!("drain failed: {e}")),
                }
            } else {
                ui.say("not drained");
            }
            return true;
        }
        Mode::Log(id) => {
            if matches!(
                k.code,
                KeyCode::Esc | KeyCode::Char('l') | KeyCode::Char('q')
            ) {
                wants.lock().unwrap_or_else(|p| p.into_inner()).log_of = None;
                if k.code == KeyCode::Char('q') {
                    return false;
                }
            } else {
                ui.mode = Mode::Log(id);
            }
            return true;
        }
        Mode::Normal => {}
    }
    let worker = |ui: &Ui| {
        let sel = ui.workers.selected().unwrap_or(0);
        ui.visible_workers()
            .get(sel)
            .map(|w| (w.id.clone(), w.name.clone()))
    };
    let job = |ui: &Ui| {
        let sel = ui.jobs.selected().unwrap_or(0);
        ui.visible_jobs()
            .get(sel)
            .map(|j| (j.id, j.spec.describe()))
    };
    match k.code {
        KeyCode::Char('q') => return false,
        KeyCode::Esc => ui.filter.clear(),
        KeyCode::Tab | KeyCode::BackTab => {
            ui.focus = if ui.focus == Focus::Workers {
                Focus::Jobs
            } else {
                Focus::Workers
            }
        }
        KeyCode::Down | KeyCode::Char('j') => {
            let (state, n) = match ui.focus {
                Focus::Workers => (&mut ui.workers, ui.snap.workers.len()),
                Focus::Jobs => (&mut ui.jobs, ui.snap.running.len()),
            };
            let next = state
                .selected()
                .map_or(0, |s| (s + 1).min(n.saturating_sub(1)));
            state.select(Some(next));
        }
        KeyCode::Up | KeyCode::Char('k') => {
            let state = match ui.focus {
                Focus::Workers => &mut ui.workers,
                Focus::Jobs => &mut ui.jobs,
            };
            let prev = state.selected().map_or(0, |s| s.saturating_sub(1));
            state.select(Some(prev));
        }
        KeyCode::Char('/') => ui.mode = Mode::Filter(ui.filter.clone()),
        KeyCode::Char('c') => match job(ui) {
            Some((id, desc)) => ui.mode = Mode::ConfirmCancel(id, desc),
            None => ui.say("no running job selected"),
        },
        KeyCode::Char('l') | KeyCode::Enter => match job(ui) {
            Some((id, _)) => {
                wants.lock().unwrap_or_else(|p| p.into_inner()).log_of = Some(id);
                ui.snap.log.clear();
                ui.mode = Mode::Log(id);
            }
            None => ui.say("no running job selected"),
        },
        KeyCode::Char('p') => match worker(ui) {
            Some((id, name)) => match client.pause_worker(&id, Some("gaia top".into())) {
                Ok(w) => ui.say(format!("{name}: {} (r resumes)", w.state)),
                Err(e) => ui.say(format!("pause failed: {e}")),
            },
            None => ui.say("no worker selected"),
        },
        KeyCode::Char('r') => match worker(ui) {
            Some((id, name)) => match client.resume_worker(&id) {
                Ok(w) => ui.say(format!("{name}: {}", w.state)),
                Err(e) => ui.say(format!("resume failed: {e}")),
            },
            None => ui.say("no worker selected"),
        },
        KeyCode::Char('d') => match worker(ui) {
            Some((id, name)) => ui.mode = Mode::ConfirmDrain(id, name),
            None => ui.say("no worker selected"),
        },
        _ => {}
    }
    true
}

fn state_color(s: WorkerState) -> Color {
    match s {
        WorkerState::Busy => Color::Green,
        WorkerState::Idle => Color::Cyan,
        WorkerState::Offline => Color::DarkGray,
        WorkerState::Draining | WorkerState::Paused => Color::Yellow,
        WorkerState::Quarantined => Color::Red,
    }
}

fn draw(f: &mut Frame, ui: &mut Ui) {
    let area = f.area();
    let [head, body, events, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(5),
        Constraint::Length(1),
    ])
    .areas(area);
    // Header: the farm in one line.
    let head_text = match &ui.snap.status {
        Some(s) => {
            let n = |k: &str| s.jobs.get(k).copied().unwrap_or(0);
            format!(
                " gaia top · {} · workers {}/{} · queued {} · running {} · done {} · failed {}",
                s.version,
                s.workers_online,
                s.workers_total,
                n("queued"),
                n("running"),
                n("succeeded"),
                n("failed") + n("lost") + n("timed_out"),
            )
        }
        None => " gaia top · connecting…".to_string(),
    };
    f.render_widget(
        Paragraph::new(head_text).style(Style::new().add_modifier(Modifier::REVERSED)),
        head,
    );
    if let Mode::Log(id) = ui.mode {
        draw_log(f, ui, id, body);
    } else {
        let [wa, ja] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        draw_workers(f, ui, wa);
        draw_jobs(f, ui, ja);
    }
    let lines: Vec<Line> = ui
        .snap
        .events
        .iter()
        .rev()
        .take(events.height.saturating_sub(2) as usize)
        .map(|(at, m)| {
            Line::from(vec![
                Span::raw(format!("{} ", human::ago(*at))).dark_gray(),
                Span::raw(m.clone()),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(" events ")),
        events,
    );
    let foot_text = match (&ui.mode, &ui.message, &ui.snap.error) {
        (Mode::Filter(t), _, _) => format!(" filter: {t}▏ (Enter applies, Esc clears)"),
        (_, Some((m, _)), _) => format!(" {m}"),
        (_, None, Some(e)) => format!(" server: {e}"),
        (Mode::Log(_), _, _) => " Esc back · q quit".to_string(),
        _ => {
            let f = if ui.filter.is_empty() {
                String::new()
            } else {
                format!(" [filter: {}]", ui.filter)
            };
            format!(
                " q quit · Tab switch · / filter · l log · c cancel · p pause · r resume · d drain{f}"
            )
        }
    };
    f.render_widget(Paragraph::new(foot_text).dark_gray(), foot);
    match &ui.mode {
        Mode::ConfirmCancel(id, desc) => confirm(f, &format!("Cancel job {id} ({desc})? [y/N]")),
        Mode::ConfirmDrain(_, name) => confirm(
            f,
            &format!("Drain {name}: finish its running jobs, claim no new ones? [y/N]"),
        ),
        _ => {}
    }
}

fn confirm(f: &mut Frame, text: &str) {
    let area = f.area();
    let w = (text.chars().count() as u16 + 4).min(area.width);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + area.height / 2 - 1,
        w,
        3,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text.to_string()).block(Block::bordered().title(" confirm ")),
        r,
    );
}

fn draw_workers(f: &mut Frame, ui: &mut Ui, area: Rect) {
    let spark_w = 12usize;
    let rows: Vec<Row> = ui
        .visible_workers()
        .into_iter()
        .map(|w| {
            let cpu = ui
                .snap
                .cpu
                .iter()
                .find(|(id, _)| *id == w.id)
                .map(|(_, v)| spark(v, spark_w, Some(100.0)))
                .unwrap_or_default();
            let gpu = if w.hardware.gpus.is_empty() {
                "-".to_string()
            } else {
                ui.snap
                    .gpu
                    .iter()
                    .find(|(id, _)| *id == w.id)
                    .map(|(_, v)| spark(v, spark_w, Some(100.0)))
                    .unwrap_or_default()
            };
            let state = match &w.hold {
                Some(h) if w.state == WorkerState::Quarantined => {
                    format!("quarantined: {}", h.reason)
                }
                _ => w.state.to_string(),
            };
            Row::new(vec![
                Cell::from(w.name.clone()),
                Cell::from(state).style(Style::new().fg(state_color(w.state))),
                Cell::from(format!("{:>3.0}% {cpu}", w.usage.cpu_percent)),
                Cell::from(format!("{:>3.0}%", w.usage.memory_percent)),
                Cell::from(gpu),
                Cell::from(
                    w.running
                        .iter()
                        .map(|j| j.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ])
        })
        .collect();
    let focused = ui.focus == Focus::Workers;
    let table = Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(12),
            Constraint::Length(17),
            Constraint::Length(4),
            Constraint::Length(12),
            Constraint::Min(4),
        ],
    )
    .header(Row::new(["WORKER", "STATE", "CPU", "RAM", "GPU", "JOBS"]).bold())
    .block(
        Block::new()
            .borders(Borders::TOP)
            .title(format!(" workers ({}) ", ui.snap.workers.len()))
            .border_style(if focused {
                Style::new().cyan()
            } else {
                Style::new()
            }),
    )
    .row_highlight_style(if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    });
    f.render_stateful_widget(table, area, &mut ui.workers);
}

fn draw_jobs(f: &mut Frame, ui: &mut Ui, area: Rect) {
    let rows: Vec<Row> = ui
        .visible_jobs()
        .into_iter()
        .map(|j| {
            let curve = ui
                .snap
                .curves
                .iter()
                .find(|(id, _)| *id == j.id)
                .map(|(_, v)| spark(v, 14, None))
                .unwrap_or_default();
            let best = human::score(j.progress.best_ever.or(j.progress.best));
            let pct = j
                .progress
                .fraction
                .map(|p| format!("{:>3.0}%", p * 100.0))
                .unwrap_or_else(|| "  - ".into());
            Row::new(vec![
                Cell::from(format!("#{}", j.id)),
                Cell::from(j.spec.describe()),
                Cell::from(j.worker_name.clone().unwrap_or_default()),
                Cell::from(pct),
                Cell::from(best),
                Cell::from(curve).style(Style::new().green()),
            ])
        })
        .collect();
    let focused = ui.focus == Focus::Jobs;
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Min(14),
            Constraint::Length(12),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Length(14),
        ],
    )
    .header(Row::new(["JOB", "WHAT", "WORKER", "DONE", "BEST", "BEST-EVER"]).bold())
    .block(
        Block::new()
            .borders(Borders::TOP)
            .title(format!(" running jobs ({}) ", ui.snap.running.len()))
            .border_style(if focused {
                Style::new().cyan()
            } else {
                Style::new()
            }),
    )
    .row_highlight_style(if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    });
    f.render_stateful_widget(table, area, &mut ui.jobs);
}

fn draw_log(f: &mut Frame, ui: &Ui, id: JobId, area: Rect) {
    let height = area.height.saturating_sub(1) as usize;
    let lines: Vec<Line> = ui
        .snap
        .log
        .iter()
        .rev()
        .take(height)
        .rev()
        .map(|l| {
            let style = match l.level {
                gaia_core::model::Level::Error => Style::new().red(),
                gaia_core::model::Level::Warning => Style::new().yellow(),
                gaia_core::model::Level::Info => Style::new(),
            };
            Line::styled(l.text.clone(), style)
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::TOP)
                .title(format!(" log of job {id} (following) ")),
        ),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_and_keep_the_newest() {
        assert_eq!(spark(&[0.0, 50.0, 100.0], 10, Some(100.0)), "▁▅█");
        assert_eq!(spark(&[1.0, 2.0, 3.0, 4.0], 2, None), "▁█");
        assert_eq!(spark(&[], 5, None), "");
        assert_eq!(spark(&[7.0, 7.0], 5, None).chars().count(), 2);
    }
}
