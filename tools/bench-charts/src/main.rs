//! Draws the benchmark documents' comparison tables as PNG bar charts.
//!
//! ```text
//! bench-charts [OUT_DIR]     # from the repository root; default docs/charts
//! ```
//!
//! Each chart in [`CHARTS`] names its table by document, the heading of the
//! run it belongs to and (when the run has several) the sub-heading above it,
//! so a newer run further down the document with the same sub-headings is
//! never drawn by mistake, and the chart's caption says which run it shows.
//! Re-run it (through `scripts/charts.sh`) after a table changes. A cell's
//! value is its first number (`153.8k † (1.20x)` is 153800, `100,811` is
//! 100811, `18330 / 50.0k` is 18330); cells without one are left out.
//!
//! Text is drawn with a TrueType font read at run time: `$CHART_FONT`, or
//! DejaVu Sans from Debian's `fonts-dejavu-core`.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One chart: which table it draws, how to read it, and into which file.
struct Spec {
    /// The document, relative to the repository root.
    doc: &'static str,
    /// The start of the heading line of the run the table belongs to; it must
    /// match one heading only. Its text (with the date or commit) is the
    /// chart's caption.
    section: &'static str,
    /// The start of the sub-heading within the section that the table
    /// follows; `None` for tables directly under the section heading. The
    /// chart draws the first table there that has the layout's columns.
    heading: Option<&'static str>,
    layout: Layout,
    file: &'static str,
    title: &'static str,
    y_label: &'static str,
    /// A logarithmic y axis, for values spread over orders of magnitude.
    log: bool,
}

/// How a table holds its numbers.
enum Layout {
    /// A column per server (named in [`PALETTE`]) and a row per group, named
    /// by the columns before the first server: the echo tables.
    /// `Some(metric)` is for tables with several metrics side by side
    /// (`server CPU µs/req: percore | tokio | syscalls/req: percore | ...`):
    /// the servers are the columns from `"{metric}: server"` to the next
    /// `"other metric: server"`.
    ServerColumns(Option<&'static str>),
    /// A row per group and series, the value in one column: the HTTP and
    /// file I/O tables, and per-server tables such as idle memory.
    Rows(Rows),
}

struct Rows {
    /// The column that names the group; `None`: every row in one group.
    group: Option<&'static str>,
    /// The column that names the series (server, engine).
    series: &'static str,
    /// The column with the value.
    value: &'static str,
    /// Only rows whose cell in the column is one of these.
    keep: &'static [(&'static str, &'static [&'static str])],
    /// Legend labels, in legend order, each with the series cells drawn as
    /// it (one bar per group: an engine under different names per test);
    /// other series are left out. Empty: every series under its own name.
    labels: &'static [(&'static str, &'static [&'static str])],
}

const BENCHMARKS: &str = "BENCHMARKS.md";
const FULL_RUN: &str = "### Full saturation and idle-memory run with the new default (2026-11-27";
const RECHECK: &str = "### Re-check 2026-11-27: multishot receive by default";

const CHARTS: &[Spec] = &[
    Spec {
        doc: BENCHMARKS,
        section: FULL_RUN,
        heading: Some("#### Saturation: requests/s"),
        layout: Layout::ServerColumns(None),
        file: "echo-saturation-rps.png",
        title: "Loopback echo at saturation: requests/s (higher is better)",
        y_label: "requests/s",
        log: false,
    },
    Spec {
        doc: BENCHMARKS,
        section: FULL_RUN,
        heading: Some("#### Saturation: server CPU µs per request"),
        layout: Layout::ServerColumns(None),
        file: "echo-saturation-cpu.png",
        title: "Echo at saturation: server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
    },
    Spec {
        doc: BENCHMARKS,
        section: FULL_RUN,
        heading: Some("#### Saturation: p99 latency"),
        layout: Layout::ServerColumns(None),
        file: "echo-saturation-p99.png",
        title: "Echo at saturation: p99 latency, µs (lower is better; log scale)",
        y_label: "p99 µs",
        log: true,
    },
    Spec {
        doc: BENCHMARKS,
        section: FULL_RUN,
        heading: Some("#### Idle connections: server RSS"),
        layout: Layout::Rows(Rows {
            group: None,
            series: "server",
            value: "bytes / idle conn",
            keep: &[],
            labels: &[],
        }),
        file: "echo-idle-memory.png",
        title: "Memory per idle connection, bytes (lower is better)",
        y_label: "bytes per idle connection",
        log: false,
    },
    // The fixed-rate cells were last measured in this A/B run, where
    // `percore` is the plain mode and `percore-pooled` today's default.
    Spec {
        doc: BENCHMARKS,
        section: RECHECK,
        heading: None,
        layout: Layout::ServerColumns(Some("server CPU µs/req")),
        file: "echo-rate-cpu.png",
        title: "Echo at a fixed 50k req/s: server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
    },
    Spec {
        doc: BENCHMARKS,
        section: RECHECK,
        heading: None,
        layout: Layout::ServerColumns(Some("syscalls/req")),
        file: "echo-rate-syscalls.png",
        title: "Echo at a fixed 50k req/s: syscalls per request (lower is better)",
        y_label: "syscalls per request",
        log: false,
    },
    Spec {
        doc: BENCHMARKS,
        section: "### Re-check 2026-11-27 (later): who is saturated",
        heading: None,
        layout: Layout::Rows(HTTP_ROWS),
        file: "http-rps.png",
        title: "HTTP/1.1 (hyper), 1 server core, wrk -c256: requests/s (higher is better)",
        y_label: "requests/s",
        log: false,
    },
    Spec {
        doc: BENCHMARKS,
        section: "### Re-check 2026-11-27 (later): who is saturated",
        heading: None,
        layout: Layout::Rows(Rows {
            value: "server CPU µs/req",
            ..HTTP_ROWS
        }),
        file: "http-cpu.png",
        title: "HTTP/1.1 (hyper): server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
    },
    Spec {
        doc: "docs/bench-fs.md",
        section: "### Results: 2026-11-27, two full runs",
        heading: None,
        layout: Layout::Rows(Rows {
            group: Some("test"),
            series: "engine",
            value: "IOPS (mean of 2 runs)",
            keep: &[
                ("QD", &["32"]),
                (
                    "test",
                    &[
                        "4k randread cold",
                        "4k randread O_DIRECT",
                        "4k randread warm",
                    ],
                ),
            ],
            labels: &[
                ("fio io_uring", &["fio io_uring"]),
                (
                    "percore (default / O_DIRECT)",
                    &[
                        "percore (default)",
                        "percore (default: RWF_NOWAIT first)",
                        "percore O_DIRECT",
                    ],
                ),
                (
                    "percore batched (submit_now off)",
                    &[
                        "percore batched (submit_now off)",
                        "percore O_DIRECT batched (submit_now off)",
                    ],
                ),
                ("tokio::fs", &["tokio::fs"]),
            ],
        }),
        file: "fs-qd32.png",
        title: "File I/O, 4 KiB random reads at QD 32: IOPS (higher is better; log scale)",
        y_label: "IOPS",
        log: true,
    },
];

/// Both HTTP charts read the same rows; only the value column differs.
const HTTP_ROWS: Rows = Rows {
    group: Some("path"),
    series: "server",
    value: "req/s",
    keep: &[],
    labels: &[],
};

const RED: RGBColor = RGBColor(214, 69, 65);
const ORANGE: RGBColor = RGBColor(242, 145, 61);
const BLUE: RGBColor = RGBColor(52, 101, 164);
const GREY: RGBColor = RGBColor(136, 138, 133);

/// The colour of every series a chart draws, so a server keeps its colour
/// across charts. In echo tables, columns not named here are not servers.
const PALETTE: &[(&str, RGBColor)] = &[
    ("percore", RED),
    ("percore-pooled", ORANGE),
    ("percore-plain", RGBColor(240, 160, 150)),
    ("percore-nopf", RGBColor(150, 30, 40)),
    ("tokio", BLUE),
    ("monoio", RGBColor(78, 154, 6)),
    ("glommio", RGBColor(117, 80, 123)),
    ("raw", GREY),
    ("fio io_uring", GREY),
    ("percore (default / O_DIRECT)", RED),
    ("percore batched (submit_now off)", ORANGE),
    ("tokio::fs", BLUE),
];

fn color(series: &str) -> Result<RGBColor, String> {
    PALETTE
        .iter()
        .find(|(s, _)| *s == series)
        .map(|(_, c)| *c)
        .ok_or_else(|| format!("no colour for {series:?}: add it to PALETTE"))
}

/// A markdown table: header cells and row cells, trimmed.
#[derive(Debug, PartialEq)]
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn column(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("no column {name:?} in {:?}", self.header))
    }
}

/// A document's lines, each with its heading level: `None` for text, and
/// for `#` comments in code blocks, which are not headings.
fn outline(md: &str) -> Vec<(&str, Option<usize>)> {
    let mut fenced = false;
    md.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return (line, None);
            }
            let level = line
                .find(|c| c != '#')
                .filter(|&n| n > 0 && !fenced && line[n..].starts_with(' '));
            (line, level)
        })
        .collect()
}

/// The one heading that starts with `prefix`; two are an error, as the
/// chart could then be drawing the wrong run.
fn find(lines: &[(&str, Option<usize>)], prefix: &str) -> Result<usize, String> {
    let mut hits = lines
        .iter()
        .enumerate()
        .filter(|(_, (line, level))| level.is_some() && line.starts_with(prefix))
        .map(|(i, _)| i);
    let first = hits
        .next()
        .ok_or_else(|| format!("no heading {prefix:?}"))?;
    match hits.next() {
        Some(_) => Err(format!("more than one heading starts with {prefix:?}")),
        None => Ok(first),
    }
}

/// The section heading's text, and the tables directly under `heading`
/// within it (or directly under the section heading). The section ends at
/// the next heading of its level or above.
fn tables_in(
    md: &str,
    section: &str,
    heading: Option<&str>,
) -> Result<(String, Vec<Table>), String> {
    let lines = outline(md);
    let start = find(&lines, section)?;
    let level = lines[start].1;
    let body = &lines[start + 1..];
    let body = &body[..body
        .iter()
        .position(|(_, l)| l.is_some() && *l <= level)
        .unwrap_or(body.len())];
    let body = match heading {
        Some(h) => &body[find(body, h).map_err(|e| format!("in {section:?}: {e}"))? + 1..],
        None => body,
    };
    let span = &body[..body
        .iter()
        .position(|(_, l)| l.is_some())
        .unwrap_or(body.len())];

    let mut tables = Vec::new();
    let mut block: Vec<Vec<String>> = Vec::new();
    // A trailing empty line closes the last block.
    for line in span.iter().map(|(l, _)| l.trim()).chain([""]) {
        if line.starts_with('|') {
            let cells = line.trim_matches('|').split('|');
            block.push(cells.map(|c| c.trim().to_string()).collect());
        } else if !block.is_empty() {
            // Header, |---|, and at least one row.
            if block.len() >= 3 {
                let header = block.remove(0);
                block.remove(0);
                tables.push(Table {
                    header,
                    rows: std::mem::take(&mut block),
                });
            }
            block.clear();
        }
    }
    let title = lines[start].0.trim_start_matches('#').trim().to_string();
    Ok((title, tables))
}

/// The first number in a cell: `153.8k † (1.20x)` is 153800, `100,811`
/// is 100811.
fn value(cell: &str) -> Option<f64> {
    let start = cell.find(|c: char| c.is_ascii_digit())?;
    let rest = &cell[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(rest.len());
    let n: f64 = rest[..end].replace(',', "").parse().ok()?;
    Some(match rest[end..].chars().next() {
        Some('k') => n * 1e3,
        Some('M') => n * 1e6,
        _ => n,
    })
}

/// A group's label from its cell: `16` under `conns` is `16 conns`.
fn group_label(column: &str, cell: &str) -> String {
    let cell = cell.trim_matches('`');
    match column {
        "conns" => format!("{cell} conns"),
        "rate" => format!("{cell} req/s"),
        "path" => format!("GET {cell}"),
        _ => cell.to_string(),
    }
}

/// A chart's data: group labels, and per series its value in each group.
#[derive(Debug, PartialEq)]
struct Data {
    groups: Vec<String>,
    series: Vec<(String, Vec<Option<f64>>)>,
}

impl Layout {
    fn data(&self, table: &Table) -> Result<Data, String> {
        let data = match self {
            Layout::ServerColumns(metric) => server_columns(table, *metric)?,
            Layout::Rows(rows) => rows.data(table)?,
        };
        if data
            .series
            .iter()
            .all(|(_, v)| v.iter().all(Option::is_none))
        {
            return Err(format!("no values in {:?}", table.header));
        }
        Ok(data)
    }
}

fn server_columns(table: &Table, metric: Option<&str>) -> Result<Data, String> {
    // `server CPU µs/req: percore` names server `percore`.
    let server = |h: &str| h.split_once(": ").map_or(h, |(_, s)| s).to_string();
    let known = |h: &str| PALETTE.iter().any(|(s, _)| *s == h);
    let header = &table.header;
    let first = header
        .iter()
        .position(|h| known(&server(h)))
        .ok_or_else(|| format!("no server column in {header:?}"))?;
    let columns: Vec<usize> = match metric {
        None => (first..header.len())
            .filter(|&i| known(&header[i]))
            .collect(),
        Some(metric) => {
            let start = header
                .iter()
                .position(|h| h.starts_with(&format!("{metric}: ")))
                .ok_or_else(|| format!("no column {metric:?}: ... in {header:?}"))?;
            let end = (start + 1..header.len())
                .find(|&i| header[i].contains(": "))
                .unwrap_or(header.len());
            (start..end).collect()
        }
    };
    let groups = table
        .rows
        .iter()
        .map(|r| {
            header[..first]
                .iter()
                .zip(r)
                .map(|(h, c)| group_label(h, c))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let series = columns
        .into_iter()
        .map(|i| {
            let values = table.rows.iter().map(|r| r.get(i).and_then(|c| value(c)));
            (server(&header[i]), values.collect())
        })
        .collect();
    Ok(Data { groups, series })
}

impl Rows {
    fn data(&self, table: &Table) -> Result<Data, String> {
        let group = self.group.map(|g| table.column(g)).transpose()?;
        let series = table.column(self.series)?;
        let value_col = table.column(self.value)?;
        let keep = self
            .keep
            .iter()
            .map(|(c, cells)| Ok((table.column(c)?, *cells)))
            .collect::<Result<Vec<_>, String>>()?;

        let mut data = Data {
            groups: Vec::new(),
            series: self
                .labels
                .iter()
                .map(|(label, _)| (label.to_string(), Vec::new()))
                .collect(),
        };
        let mut points = Vec::new();
        for row in &table.rows {
            let cell = |i: usize| row.get(i).map_or("", String::as_str);
            if !keep.iter().all(|(c, cells)| cells.contains(&cell(*c))) {
                continue;
            }
            let name = cell(series);
            let label = if self.labels.is_empty() {
                name
            } else {
                match self.labels.iter().find(|(_, cells)| cells.contains(&name)) {
                    Some((label, _)) => label,
                    None => continue,
                }
            };
            let g = match group {
                Some(i) => group_label(&table.header[i], cell(i)),
                None => String::new(),
            };
            let gi = index(&mut data.groups, g.clone(), |x| *x == g);
            let si = index(&mut data.series, (label.to_string(), Vec::new()), |s| {
                s.0 == label
            });
            points.push((gi, si, value(cell(value_col))));
        }
        // A label that no row matched: the table's names changed.
        for (s, (label, _)) in data.series.iter().enumerate() {
            if !points.iter().any(|p| p.1 == s) {
                return Err(format!("no row for {label:?}"));
            }
        }
        for (_, values) in &mut data.series {
            values.resize(data.groups.len(), None);
        }
        for (g, s, v) in points {
            let (label, values) = &mut data.series[s];
            if values[g].is_some() {
                return Err(format!("two values for {label:?} in {:?}", data.groups[g]));
            }
            values[g] = v;
        }
        Ok(data)
    }
}

/// The position of the item `is` matches, pushing `new` if there is none.
fn index<T>(items: &mut Vec<T>, new: T, is: impl Fn(&T) -> bool) -> usize {
    items.iter().position(is).unwrap_or_else(|| {
        items.push(new);
        items.len() - 1
    })
}

impl Spec {
    /// The caption (document and run) and the numbers of the chart.
    fn data(&self, md: &str) -> Result<(String, Data), String> {
        let (title, tables) = tables_in(md, self.section, self.heading)?;
        let mut why = format!("no table under {:?}", self.heading.unwrap_or(self.section));
        for table in &tables {
            match self.layout.data(table) {
                Ok(data) => return Ok((format!("{}: {title}", self.doc), data)),
                Err(e) => why = e,
            }
        }
        Err(why)
    }
}

/// `153800` as `153.8k`, `6.28` as `6.28`.
fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn draw(spec: &Spec, caption: &str, data: &Data, path: &Path) -> Result<(), Box<dyn Error>> {
    let width = 240 + 160 * data.groups.len() as u32;
    let root = BitMapBackend::new(path, (width.max(900), 500)).into_drawing_area();
    root.fill(&WHITE)?;
    // The run the numbers come from, under the chart.
    let (plot_area, footer) = root.split_vertically(476);
    footer.draw(&Text::new(
        caption.to_string(),
        (12, 2),
        ("sans-serif", 13).into_font().color(&BLACK.mix(0.6)),
    ))?;
    let values = || data.series.iter().flat_map(|(_, v)| v.iter().flatten());
    let max = values().fold(0.0f64, |a, &b| a.max(b));
    let min = values().fold(f64::MAX, |a, &b| a.min(b));
    let groups = data.groups.len();
    let bars = data.series.len() as f64;
    let slot = 0.8 / bars;
    let x_range = -0.5..groups as f64 - 0.5;
    let mut builder = ChartBuilder::on(&plot_area);
    builder
        .caption(spec.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(if data.groups[0].is_empty() { 10 } else { 40 })
        .y_label_area_size(80);

    // The two axis kinds are different types: draw through one macro each.
    macro_rules! plot {
        ($chart:expr, $base:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .disable_x_axis()
                .light_line_style(WHITE)
                .bold_line_style(BLACK.mix(0.15))
                .y_desc(spec.y_label)
                .y_label_formatter(&|v: &f64| short(*v))
                .label_style(("sans-serif", 14))
                .draw()?;
            for (k, (series, values)) in data.series.iter().enumerate() {
                let fill = color(series)?;
                let x0 = |g: usize| g as f64 - 0.4 + slot * k as f64;
                chart
                    .draw_series(values.iter().enumerate().filter_map(|(g, v)| {
                        v.map(|v| {
                            Rectangle::new(
                                [(x0(g) + slot * 0.06, $base), (x0(g) + slot * 0.94, v)],
                                fill.filled(),
                            )
                        })
                    }))?
                    .label(series.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 12, y + 6)], fill.filled())
                    });
                chart.draw_series(values.iter().enumerate().filter_map(|(g, v)| {
                    v.map(|v| {
                        Text::new(
                            short(v),
                            (x0(g) + slot * 0.5, v),
                            ("sans-serif", 11)
                                .into_font()
                                .color(&BLACK)
                                .pos(Pos::new(HPos::Center, VPos::Bottom)),
                        )
                    })
                }))?;
            }
            for (g, label) in data.groups.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(g as f64, $base));
                root.draw(&Text::new(
                    label.clone(),
                    (x, y + 10),
                    ("sans-serif", 15)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 14))
                .draw()?;
        }};
    }
    if spec.log {
        let base = 10f64.powf((min.max(1e-3)).log10().floor());
        // The tallest bar at two thirds of the height, as on a linear axis:
        // the legend and the bar labels need the room above it.
        let top = base * (max / base).powf(1.5);
        plot!(
            builder.build_cartesian_2d(x_range, (base..top).log_scale())?,
            base
        );
    } else {
        // Room above the tallest bar for its label and the legend.
        plot!(builder.build_cartesian_2d(x_range, 0.0..max * 1.5)?, 0.0);
    }
    root.present()?;
    Ok(())
}

fn load_font() -> Result<(), Box<dyn Error>> {
    let path = std::env::var_os("CHART_FONT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "font {}: {e} (install Debian's fonts-dejavu-core, or set CHART_FONT to a .ttf)",
            path.display()
        )
    })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{}: not a TrueType font", path.display()))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "docs/charts".into()),
    );
    load_font()?;
    std::fs::create_dir_all(&out_dir)?;
    let mut docs = HashMap::new();
    for spec in CHARTS {
        if !docs.contains_key(spec.doc) {
            let md = std::fs::read_to_string(spec.doc).map_err(|e| format!("{}: {e}", spec.doc))?;
            docs.insert(spec.doc, md);
        }
        // A table the chart cannot find is an error, not a skip: the old
        // PNG would go on showing numbers the document no longer has.
        let (caption, data) = spec
            .data(&docs[spec.doc])
            .map_err(|e| format!("{} for {}: {e}", spec.doc, spec.file))?;
        let path = out_dir.join(spec.file);
        draw(spec, &caption, &data, &path)?;
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD: &str = "\
### Results: 2026-11-26

#### Saturation: requests/s (median)

| conns | size | percore | tokio |
|---|---|---|---|
| 1 | 64 B | 1 | 2 |

### Full run (2026-11-27, commit abc)

```sh
# a comment, not a heading
```

#### Saturation: requests/s (median)

| conns | size | percore | tokio | percore / best peer |
|---|---|---|---|---|
| 16 | 64 B | 153.8k † (1.20x) | 127.9k † | 1.20x |
| 256 | 1 KiB | n/a | 100.6k | - |

#### Idle connections: server RSS

| server | bytes / idle conn |
|---|---|
| percore | 1,529 |
| tokio | 4864 |

### Re-check 2026-11-27: A/B

| rate | size | server CPU µs/req: percore | percore-nopf |
|---|---|---|---|
| 50.0k | 64 B | 7.08 (0.90×) | **6.49 (0.82×)** |

| rate | size | syscalls/req: percore | tokio |
|---|---|---|---|
| 50.0k | 64 B | 0.191 | 2.134 |

| size | req/s: percore | tokio | server CPU µs/req: percore | tokio |
|---|---|---|---|---|
| 64 B | 154.7k | 146.3k | 6.02 | 6.59 |

### Re-check 2026-11-27 (later)

| path | server | req/s | server CPU µs/req |
|---|---|---:|---:|
| `/` | percore | 100,811 | 8.55 |
| `/` | tokio | 96,943 | 10.04 |
| `/json` | tokio | 88,877 | 11.08 |
";

    fn spec(section: &'static str, heading: Option<&'static str>, layout: Layout) -> Spec {
        Spec {
            doc: "X.md",
            section,
            heading,
            layout,
            file: "x.png",
            title: "",
            y_label: "",
            log: false,
        }
    }

    #[test]
    fn values_are_the_first_number() {
        assert_eq!(value("153.8k † (1.20x)"), Some(153_800.0));
        assert_eq!(value("18330 / 50.0k"), Some(18_330.0));
        assert_eq!(value("100,811"), Some(100_811.0));
        assert_eq!(value("**6.49 (0.82×)**"), Some(6.49));
        assert_eq!(value("0.182"), Some(0.182));
        assert_eq!(value("n/a"), None);
    }

    #[test]
    fn the_sub_heading_is_looked_up_in_its_section_only() {
        let s = spec(
            "### Full run",
            Some("#### Saturation: requests/s"),
            Layout::ServerColumns(None),
        );
        let (caption, d) = s.data(MD).unwrap();
        assert_eq!(caption, "X.md: Full run (2026-11-27, commit abc)");
        assert_eq!(d.groups, ["16 conns, 64 B", "256 conns, 1 KiB"]);
        assert_eq!(
            d.series,
            [
                ("percore".to_string(), vec![Some(153_800.0), None]),
                ("tokio".to_string(), vec![Some(127_900.0), Some(100_600.0)]),
            ]
        );
    }

    #[test]
    fn missing_or_ambiguous_headings_are_errors() {
        let saturation = Some("#### Saturation: requests/s");
        let err = |section, heading| {
            spec(section, heading, Layout::ServerColumns(None))
                .data(MD)
                .unwrap_err()
        };
        assert!(err("### Re-check 2026-11-27", None).contains("more than one"));
        assert!(err("### Nothing", None).contains("no heading"));
        // The section ends before the next `###`: the A/B run has no such table.
        assert!(err("### Re-check 2026-11-27: A/B", saturation).contains("no heading"));
        // The idle-memory table has no server columns.
        assert!(err("### Full run", Some("#### Idle")).contains("no server column"));
    }

    #[test]
    fn a_metric_picks_the_table_and_its_columns() {
        let data = |metric| {
            spec(
                "### Re-check 2026-11-27: A/B",
                None,
                Layout::ServerColumns(Some(metric)),
            )
            .data(MD)
            .unwrap()
            .1
        };
        let cpu = data("server CPU µs/req");
        assert_eq!(cpu.groups, ["50.0k req/s, 64 B"]);
        assert_eq!(
            cpu.series,
            [
                ("percore".to_string(), vec![Some(7.08)]),
                ("percore-nopf".to_string(), vec![Some(6.49)]),
            ]
        );
        assert_eq!(
            data("syscalls/req").series[1],
            ("tokio".to_string(), vec![Some(2.134)])
        );
        assert_eq!(
            data("req/s").series,
            [
                ("percore".to_string(), vec![Some(154_700.0)]),
                ("tokio".to_string(), vec![Some(146_300.0)]),
            ]
        );
    }

    #[test]
    fn one_row_per_server() {
        let s = spec(
            "### Full run",
            Some("#### Idle connections"),
            Layout::Rows(Rows {
                group: None,
                series: "server",
                value: "bytes / idle conn",
                keep: &[],
                labels: &[],
            }),
        );
        let d = s.data(MD).unwrap().1;
        assert_eq!(d.groups, [""]);
        assert_eq!(d.series[0], ("percore".to_string(), vec![Some(1529.0)]));
        assert_eq!(d.series[1], ("tokio".to_string(), vec![Some(4864.0)]));
    }

    #[test]
    fn rows_grouped_by_a_column() {
        let s = spec(
            "### Re-check 2026-11-27 (later)",
            None,
            Layout::Rows(HTTP_ROWS),
        );
        let d = s.data(MD).unwrap().1;
        assert_eq!(d.groups, ["GET /", "GET /json"]);
        assert_eq!(
            d.series,
            [
                ("percore".to_string(), vec![Some(100_811.0), None]),
                ("tokio".to_string(), vec![Some(96_943.0), Some(88_877.0)]),
            ]
        );
    }

    const FS: &str = "\
### Results

| test | engine | QD | IOPS |
|---|---|---:|---:|
| warm | fio | 32 | 300 |
| warm | percore (default: nowait) | 32 | 500 |
| warm | percore ring only | 32 | 501 |
| cold | fio | 32 | 67 |
| cold | fio | 1 | 27 |
| cold | percore (default) | 32 | 70 |
| seq | fio | 32 | 9 |
";

    fn fs_rows(labels: &'static [(&'static str, &'static [&'static str])]) -> Rows {
        Rows {
            group: Some("test"),
            series: "engine",
            value: "IOPS",
            keep: &[("QD", &["32"]), ("test", &["cold", "warm"])],
            labels,
        }
    }

    #[test]
    fn rows_filtered_and_relabelled() {
        let rows = fs_rows(&[
            (
                "percore",
                &["percore (default)", "percore (default: nowait)"],
            ),
            ("fio", &["fio"]),
        ]);
        let table = &tables_in(FS, "### Results", None).unwrap().1[0];
        let d = rows.data(table).unwrap();
        assert_eq!(d.groups, ["warm", "cold"]);
        assert_eq!(
            d.series,
            [
                ("percore".to_string(), vec![Some(500.0), Some(70.0)]),
                ("fio".to_string(), vec![Some(300.0), Some(67.0)]),
            ]
        );
        // Two engines of one group drawn as one bar, or a label without rows.
        let twice = fs_rows(&[(
            "percore",
            &["percore (default: nowait)", "percore ring only"],
        )]);
        assert!(twice.data(table).unwrap_err().contains("two values"));
        let gone = fs_rows(&[("tokio::fs", &["tokio::fs"])]);
        assert!(gone.data(table).unwrap_err().contains("no row"));
    }

    /// Every chart finds its table in the documents as they are now.
    #[test]
    fn every_chart_finds_its_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for spec in CHARTS {
            let md = std::fs::read_to_string(root.join(spec.doc)).unwrap();
            let (_, data) = spec
                .data(&md)
                .unwrap_or_else(|e| panic!("{}: {e}", spec.file));
            for (series, _) in &data.series {
                color(series).unwrap();
            }
        }
    }
}
