//! An SVG picture of an update run: a row per pod, grouped by Role and
//! replica set, time on the x axis in seconds from the first record.
//!
//! - a bar for each interval the pod was Ready, coloured by revision: the
//!   first revision seen in its replica set is "old", the second "new", any
//!   later one "later";
//! - a cross where the pod was deleted;
//! - a star and a label where the pod became master;
//! - numbered diamonds on a "steps" lane for the strategy's messages, listed
//!   in full under the chart.
//!
//! The output depends only on the records (no clock, no randomness, sorted
//! maps), so the same run always renders to the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::jiff::Timestamp;

use super::notes::parse_master_switched_note;
use super::{Kind, Record, format_time, seconds_between};

/// What to put around the picture.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// The title; by default "Update of `<roles>`".
    pub title: Option<String>,
}

/// Escapes text for SVG/HTML text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A Ready interval, in seconds from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Became Ready.
    pub start: f64,
    /// Stopped being Ready (or the run ended).
    pub end: f64,
    /// The revision the pod ran.
    pub revision: String,
}

/// A mark at one time on a pod's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Seconds from the start.
    pub t: f64,
    /// Deleted: the revision it ran. Master: the previous master.
    pub text: String,
}

/// One pod's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The pod.
    pub pod: String,
    /// Ready intervals, in time order.
    pub bars: Vec<Bar>,
    /// Deletions.
    pub deletions: Vec<Mark>,
    /// Became master.
    pub masters: Vec<Mark>,
}

/// The rows of one replica set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// The Role.
    pub role: String,
    /// The replica set (StatefulSet name).
    pub replicaset: String,
    /// Its revisions in the order they were first seen.
    pub revisions: Vec<String>,
    /// Its pods, in ordinal order.
    pub rows: Vec<Row>,
}

/// A strategy step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Seconds from the start.
    pub t: f64,
    /// The Role.
    pub role: String,
    /// The strategy's message.
    pub message: String,
}

/// A run, laid out for drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Time of the first record.
    pub start: Option<Timestamp>,
    /// Seconds from the first record to the last.
    pub duration: f64,
    /// Replica sets, by Role then name.
    pub groups: Vec<Group>,
    /// Strategy steps, in time order.
    pub steps: Vec<Step>,
}

#[derive(Default)]
struct RowState {
    row: Row,
    role: String,
    replicaset: String,
    /// The revision of the pod's current incarnation.
    revision: String,
    /// Ready since, with the revision.
    open: Option<(f64, String)>,
}

impl RowState {
    fn close(&mut self, t: f64) {
        if let Some((start, revision)) = self.open.take() {
            self.row.bars.push(Bar {
                start,
                end: t.max(start),
                revision,
            });
        }
    }
}

/// Sorts pod names by their text, but a trailing ordinal numerically, so
/// `x-10` comes after `x-9`.
fn natural_key(name: &str) -> (String, u64, String) {
    match name.rsplit_once('-') {
        Some((prefix, n)) => match n.parse::<u64>() {
            Ok(n) => (prefix.to_string(), n, String::new()),
            Err(_) => (name.to_string(), 0, String::new()),
        },
        None => (name.to_string(), 0, name.to_string()),
    }
}

/// Builds the drawing model of a run. Records need not be sorted.
///
/// The recorder may write a deletion twice (the pod's deletionTimestamp and
/// the operator's `PodDeleted` Event): a second deletion of the same pod and
/// revision is one mark, and a deletion never ends a Ready interval of
/// another revision (a late Event must not cut the new pod's bar).
pub fn model(records: &[Record]) -> Model {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| r.t);
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Model {
            start: None,
            duration: 0.0,
            groups: Vec::new(),
            steps: Vec::new(),
        };
    };
    let t0 = first.t;
    let duration = seconds_between(t0, last.t).max(0.0);
    let mut rows: BTreeMap<String, RowState> = BTreeMap::new();
    let mut revisions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut steps = Vec::new();
    for r in &sorted {
        let t = seconds_between(t0, r.t);
        if r.kind == Kind::Step {
            steps.push(Step {
                t,
                role: r.role.clone(),
                message: r.detail.clone(),
            });
            continue;
        }
        if r.pod.is_empty() {
            continue;
        }
        let state = rows.entry(r.pod.clone()).or_insert_with(|| RowState {
            row: Row {
                pod: r.pod.clone(),
                ..Row::default()
            },
            ..RowState::default()
        });
        if state.role.is_empty() {
            state.role = r.role.clone();
        }
        if state.replicaset.is_empty() {
            state.replicaset = r.replicaset.clone();
        }
        // A master record names no revision: it is about the pod, not an
        // incarnation.
        if !r.revision.is_empty() && r.kind != Kind::Deleted {
            let known = revisions.entry(state.replicaset.clone()).or_default();
            if !known.contains(&r.revision) {
                known.push(r.revision.clone());
            }
        }
        match r.kind {
            Kind::Created => {
                state.close(t);
                state.revision = r.revision.clone();
            }
            Kind::Ready => {
                let revision = if r.revision.is_empty() {
                    state.revision.clone()
                } else {
                    r.revision.clone()
                };
                match &state.open {
                    Some((_, open)) if *open == revision => {}
                    _ => {
                        state.close(t);
                        state.revision = revision.clone();
                        state.open = Some((t, revision));
                    }
                }
            }
            Kind::Unready => state.close(t),
            Kind::Deleted => {
                if !r.revision.is_empty() {
                    // The old revision of a deleted pod counts as seen in
                    // its replica set, before any newer one seen later.
                    let known = revisions.entry(state.replicaset.clone()).or_default();
                    if !known.contains(&r.revision) {
                        known.push(r.revision.clone());
                    }
                }
                let duplicate = !r.revision.is_empty()
                    && state.row.deletions.iter().any(|d| d.text == r.revision);
                if !duplicate {
                    state.row.deletions.push(Mark {
                        t,
                        text: r.revision.clone(),
                    });
                }
                let same = match &state.open {
                    Some((_, open)) => {
                        open.is_empty() || r.revision.is_empty() || *open == r.revision
                    }
                    None => false,
                };
                if same {
                    state.close(t);
                }
            }
            Kind::Master => {
                let old = parse_master_switched_note(&r.detail)
                    .map(|m| m.old)
                    .unwrap_or_default();
                state.row.masters.push(Mark { t, text: old });
            }
            Kind::Step => {}
        }
    }
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for (_, mut state) in rows {
        state.close(duration);
        let key = (state.role.clone(), state.replicaset.clone());
        let group = groups.entry(key).or_insert_with(|| Group {
            role: state.role.clone(),
            replicaset: state.replicaset.clone(),
            revisions: revisions
                .get(&state.replicaset)
                .cloned()
                .unwrap_or_default(),
            rows: Vec::new(),
        });
        group.rows.push(state.row);
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    for g in &mut groups {
        g.rows.sort_by_key(|r| natural_key(&r.pod));
    }
    Model {
        start: Some(t0),
        duration,
        groups,
        steps,
    }
}

/// How a revision is drawn: (CSS class, fill colour, legend text).
const REVISION_STYLES: [(&str, &str, &str); 4] = [
    ("rev-old", "#8fa3b8", "ready, old revision (first seen)"),
    ("rev-new", "#2e9d5b", "ready, new revision"),
    ("rev-later", "#d08a1e", "ready, a later revision"),
    ("rev-unknown", "#c4c4c4", "ready, revision unknown"),
];

fn revision_style(group: &Group, revision: &str) -> (&'static str, &'static str) {
    let index = if revision.is_empty() {
        3
    } else {
        match group.revisions.iter().position(|r| r == revision) {
            Some(i) => i.min(2),
            None => 3,
        }
    };
    let (class, colour, _) = REVISION_STYLES[index];
    (class, colour)
}

/// Seconds, for humans: `93.4 s (1 min 33 s)`.
pub(crate) fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    format!("{seconds:.1} s ({} min {} s)", whole / 60, whole % 60)
}

/// A tick interval that gives at most ten ticks.
fn tick_step(duration: f64) -> f64 {
    const STEPS: [f64; 16] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| duration / s <= 10.0)
        .unwrap_or_else(|| (duration / 10.0 / 3600.0).ceil() * 3600.0)
}

fn tick_label(t: f64, step: f64) -> String {
    if step < 1.0 {
        format!("{t:.1}s")
    } else if step >= 60.0 && t >= 60.0 {
        format!("{}m", (t / 60.0).round() as u64)
    } else {
        format!("{}s", t.round() as u64)
    }
}

const PLOT_WIDTH: f64 = 900.0;
const ROW_HEIGHT: f64 = 20.0;
const GROUP_HEIGHT: f64 = 24.0;
const CHAR_WIDTH: f64 = 7.0;

/// Renders a run as a standalone SVG document.
pub fn render_svg(records: &[Record], options: &RenderOptions) -> String {
    draw(&model(records), options)
}

/// Renders a run as an HTML page holding the SVG.
pub fn render_html(records: &[Record], options: &RenderOptions) -> String {
    let model = model(records);
    let title = title(&model, options);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n<body style=\"margin:0;background:#fff\">\n{}</body>\n</html>\n",
        escape(&title),
        draw(&model, options)
    )
}

fn title(model: &Model, options: &RenderOptions) -> String {
    if let Some(t) = &options.title {
        return t.clone();
    }
    let mut roles: Vec<&str> = model
        .groups
        .iter()
        .map(|g| g.role.as_str())
        .chain(model.steps.iter().map(|s| s.role.as_str()))
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "Update timeline".to_string()
    } else {
        format!("Update of {}", roles.join(", "))
    }
}

fn star(cx: f64, cy: f64, r: f64) -> String {
    let mut points = Vec::with_capacity(10);
    for i in 0..10 {
        let radius = if i % 2 == 0 { r } else { r * 0.45 };
        let angle = std::f64::consts::PI * (i as f64) / 5.0 - std::f64::consts::FRAC_PI_2;
        points.push(format!(
            "{:.1},{:.1}",
            cx + radius * angle.cos(),
            cy + radius * angle.sin()
        ));
    }
    points.join(" ")
}

/// Draws a legend item's shape at a given x.
type LegendShape = Box<dyn Fn(f64) -> String>;

/// Draws a model. Writing into a String cannot fail, hence the ignored
/// `fmt::Result`s.
pub(crate) fn draw(model: &Model, options: &RenderOptions) -> String {
    let title = title(model, options);
    let longest = model
        .groups
        .iter()
        .flat_map(|g| g.rows.iter().map(|r| r.pod.chars().count() + 2))
        .chain(
            model
                .groups
                .iter()
                .map(|g| g.role.chars().count() + g.replicaset.chars().count() + 3),
        )
        .max()
        .unwrap_or(10);
    let left = (longest as f64 * CHAR_WIDTH + 24.0).max(160.0);
    let span = if model.duration > 0.0 {
        model.duration
    } else {
        1.0
    };
    let x = |t: f64| left + t / span * PLOT_WIDTH;
    let width = left + PLOT_WIDTH + 80.0;

    let legend_y = 70.0;
    let axis_y = 104.0;
    let steps_lane = if model.steps.is_empty() {
        0.0
    } else {
        ROW_HEIGHT
    };
    let rows_top = axis_y + 8.0 + steps_lane;
    let rows_height: f64 = model
        .groups
        .iter()
        .map(|g| GROUP_HEIGHT + g.rows.len() as f64 * ROW_HEIGHT)
        .sum();
    let plot_bottom = rows_top + rows_height;
    let shown_steps = model.steps.len().min(MAX_LISTED_STEPS);
    let list_lines = shown_steps + usize::from(model.steps.len() > shown_steps);
    let height = plot_bottom
        + 40.0
        + if list_lines > 0 {
            24.0 + list_lines as f64 * 16.0
        } else {
            0.0
        };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, "<title>{}</title>", escape(&title));
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text class="title" x="16" y="28" font-size="18" font-weight="bold">{}</text>"#,
        escape(&title)
    );
    let started = model.start.map(format_time).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        s,
        r##"<text class="duration" x="16" y="50" fill="#444">total {} from {} UTC</text>"##,
        escape(&human_duration(model.duration)),
        escape(&started),
    );

    // Legend: a shape drawn at the item's x, then its text.
    let mut items: Vec<(LegendShape, &str)> = Vec::new();
    for (_, colour, text) in REVISION_STYLES.iter().take(3) {
        items.push((
            Box::new(move |lx: f64| {
                format!(
                    r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="10" fill="{colour}"/>"#,
                    legend_y - 5.0
                )
            }),
            text,
        ));
    }
    items.push((
        Box::new(move |lx: f64| cross(lx + 7.0, legend_y, "")),
        "deleted",
    ));
    items.push((
        Box::new(move |lx: f64| {
            format!(
                r##"<polygon points="{}" fill="#f1c40f" stroke="#8a6d00"/>"##,
                star(lx + 7.0, legend_y, 7.0)
            )
        }),
        "became master",
    ));
    if !model.steps.is_empty() {
        items.push((
            Box::new(move |lx: f64| diamond(lx + 7.0, legend_y, "")),
            "strategy step",
        ));
    }
    let mut lx = 16.0;
    for (shape, text) in items {
        let _ = writeln!(
            s,
            r#"<g class="legend">{}<text x="{:.1}" y="{:.1}">{}</text></g>"#,
            shape(lx),
            lx + 18.0,
            legend_y + 4.0,
            escape(text)
        );
        lx += 18.0 + text.chars().count() as f64 * 6.2 + 18.0;
    }

    // Axis and grid.
    let step = tick_step(span);
    let mut tick = 0.0;
    while tick <= span + 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            s,
            r##"<line class="grid" x1="{tx:.1}" y1="{axis_y:.1}" x2="{tx:.1}" y2="{plot_bottom:.1}" stroke="#e3e3e3"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text class="tick" x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#666">{}</text>"##,
            axis_y - 4.0,
            escape(&tick_label(tick, step))
        );
        tick += step;
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">seconds from the first record</text>"##,
        left + PLOT_WIDTH / 2.0,
        plot_bottom + 20.0
    );

    // Steps lane.
    if !model.steps.is_empty() {
        let y = axis_y + 8.0 + ROW_HEIGHT / 2.0;
        let _ = writeln!(
            s,
            r#"<text class="lane-label" x="16" y="{:.1}" font-style="italic">strategy steps</text>"#,
            y + 4.0
        );
        for (i, step) in model.steps.iter().enumerate() {
            let tip = format!("{}. +{:.1}s {}: {}", i + 1, step.t, step.role, step.message);
            let _ = writeln!(s, "{}", diamond(x(step.t), y, &tip));
        }
    }

    // Rows.
    let mut y = rows_top;
    for group in &model.groups {
        let header = if group.role.is_empty() {
            group.replicaset.clone()
        } else {
            format!("{} / {}", group.role, group.replicaset)
        };
        let _ = writeln!(
            s,
            r##"<text class="group-label" x="16" y="{:.1}" font-weight="bold">{}</text>"##,
            y + 16.0,
            escape(&header)
        );
        let _ = writeln!(
            s,
            r##"<line x1="16" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#bbbbbb"/>"##,
            y + 21.0,
            left + PLOT_WIDTH,
            y + 21.0
        );
        y += GROUP_HEIGHT;
        for row in &group.rows {
            let cy = y + ROW_HEIGHT / 2.0;
            let _ = writeln!(
                s,
                r#"<text class="pod-label" x="28" y="{:.1}">{}</text>"#,
                cy + 4.0,
                escape(&row.pod)
            );
            for bar in &row.bars {
                let (class, colour) = revision_style(group, &bar.revision);
                let (x1, x2) = (x(bar.start), x(bar.end));
                let _ = writeln!(
                    s,
                    r#"<rect class="bar {class}" data-pod="{}" data-start="{:.3}" data-end="{:.3}" x="{x1:.1}" y="{:.1}" width="{:.1}" height="12" rx="2" fill="{colour}"><title>{}: ready {:.1}s to {:.1}s, revision {}</title></rect>"#,
                    escape(&row.pod),
                    bar.start,
                    bar.end,
                    cy - 6.0,
                    (x2 - x1).max(1.0),
                    escape(&row.pod),
                    bar.start,
                    bar.end,
                    escape(if bar.revision.is_empty() {
                        "unknown"
                    } else {
                        &bar.revision
                    }),
                );
            }
            for d in &row.deletions {
                let tip = format!(
                    "{}: deleted at {:.1}s{}",
                    row.pod,
                    d.t,
                    if d.text.is_empty() {
                        String::new()
                    } else {
                        format!(", revision {}", d.text)
                    }
                );
                let _ = writeln!(s, "{}", cross(x(d.t), cy, &tip));
            }
            for m in &row.masters {
                let tip = format!(
                    "{}: became master at {:.1}s{}",
                    row.pod,
                    m.t,
                    if m.text.is_empty() {
                        String::new()
                    } else {
                        format!(" (was {})", m.text)
                    }
                );
                let mx = x(m.t);
                let _ = writeln!(
                    s,
                    r##"<g class="master" data-pod="{}"><polygon points="{}" fill="#f1c40f" stroke="#8a6d00"/><text x="{:.1}" y="{:.1}" font-size="10" font-weight="bold" fill="#5a4500" stroke="#ffffff" stroke-width="3" paint-order="stroke">master</text><title>{}</title></g>"##,
                    escape(&row.pod),
                    star(mx, cy, 7.0),
                    mx + 9.0,
                    cy + 4.0,
                    escape(&tip)
                );
            }
            y += ROW_HEIGHT;
        }
    }

    // Steps, in full.
    if list_lines > 0 {
        let mut ly = plot_bottom + 48.0;
        let _ = writeln!(
            s,
            r#"<text x="16" y="{ly:.1}" font-weight="bold">Strategy steps</text>"#
        );
        for (i, step) in model.steps.iter().take(shown_steps).enumerate() {
            ly += 16.0;
            let role = if step.role.is_empty() {
                String::new()
            } else {
                format!("{}: ", step.role)
            };
            let _ = writeln!(
                s,
                r#"<text class="step" x="16" y="{ly:.1}">{}. +{:.1}s {}{}</text>"#,
                i + 1,
                step.t,
                escape(&role),
                escape(&truncate(&step.message, 160))
            );
        }
        if model.steps.len() > shown_steps {
            ly += 16.0;
            let _ = writeln!(
                s,
                r##"<text x="16" y="{ly:.1}" fill="#666">... and {} more</text>"##,
                model.steps.len() - shown_steps
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Steps listed under the chart; the rest are only counted (each still has
/// its diamond, with the message as a tooltip).
const MAX_LISTED_STEPS: usize = 40;

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn cross(cx: f64, cy: f64, tip: &str) -> String {
    let tip = if tip.is_empty() {
        String::new()
    } else {
        format!("<title>{}</title>", escape(tip))
    };
    format!(
        r##"<g class="deleted" stroke="#c0392b" stroke-width="2.5"><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>{tip}</g>"##,
        cx - 5.0,
        cy - 5.0,
        cx + 5.0,
        cy + 5.0,
        cx - 5.0,
        cy + 5.0,
        cx + 5.0,
        cy - 5.0
    )
}

fn diamond(cx: f64, cy: f64, tip: &str) -> String {
    let tip = if tip.is_empty() {
        String::new()
    } else {
        format!("<title>{}</title>", escape(tip))
    };
    format!(
        r##"<g class="step-mark"><polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="#5b6ee1"/>{tip}</g>"##,
        cx,
        cy - 6.0,
        cx + 6.0,
        cy,
        cx,
        cy + 6.0,
        cx - 6.0,
        cy
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_time;

    fn rec(secs: f64, kind: Kind, pod: &str, revision: &str) -> Record {
        let base = parse_time("2025-03-01T10:00:00Z").expect("time");
        let t = base
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs_f64(secs))
            .expect("in range");
        let mut r = Record::new(t, kind);
        r.pod = pod.into();
        r.replicaset = "s-0".into();
        r.role = "storage".into();
        r.revision = revision.into();
        r
    }

    #[test]
    fn a_pod_rolled_once() {
        let records = vec![
            rec(0.0, Kind::Created, "s-0-1", "a"),
            rec(0.0, Kind::Ready, "s-0-1", "a"),
            rec(10.0, Kind::Deleted, "s-0-1", "a"),
            // The same deletion from the Event, late, after the new pod.
            rec(11.0, Kind::Created, "s-0-1", "b"),
            rec(11.5, Kind::Deleted, "s-0-1", "a"),
            rec(14.0, Kind::Ready, "s-0-1", "b"),
            rec(20.0, Kind::Master, "s-0-1", ""),
        ];
        let m = model(&records);
        assert_eq!(m.duration, 20.0);
        assert_eq!(m.groups.len(), 1);
        let g = &m.groups[0];
        assert_eq!(g.revisions, ["a", "b"]);
        let row = &g.rows[0];
        assert_eq!(
            row.bars,
            [
                Bar {
                    start: 0.0,
                    end: 10.0,
                    revision: "a".into()
                },
                Bar {
                    start: 14.0,
                    end: 20.0,
                    revision: "b".into()
                },
            ]
        );
        assert_eq!(row.deletions.len(), 1);
        assert_eq!(row.masters.len(), 1);
    }

    #[test]
    fn pods_sort_by_ordinal() {
        let records: Vec<Record> = [10, 9, 1]
            .iter()
            .map(|n| rec(0.0, Kind::Created, &format!("s-0-{n}"), "a"))
            .collect();
        let pods: Vec<String> = model(&records).groups[0]
            .rows
            .iter()
            .map(|r| r.pod.clone())
            .collect();
        assert_eq!(pods, ["s-0-1", "s-0-9", "s-0-10"]);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn empty_runs_render() {
        let svg = render_svg(&[], &RenderOptions::default());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn ticks() {
        assert_eq!(tick_step(93.0), 10.0);
        assert_eq!(tick_step(1.0), 0.1);
        assert_eq!(tick_step(600.0), 60.0);
        assert_eq!(human_duration(93.44), "93.4 s (1 min 33 s)");
    }
}
