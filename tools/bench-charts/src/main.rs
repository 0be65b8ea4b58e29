//! Draws the benchmark results in `docs/bench-data/*.csv` as PNG bar charts.
//!
//! ```text
//! bench-charts [OUT_DIR]     # from the repository root; default docs/charts
//! ```
//!
//! Each chart in [`CHARTS`] names a CSV file, the columns that make its
//! groups, series and values, and the rows it keeps. The CSV files are the
//! results BENCHMARKS.md and docs/bench-fs.md show: a newer run replaces a
//! file's rows (`scripts/bench_report.py --data DIR` writes the echo files,
//! `scripts/bench-fs.sh` the file I/O rows; the HTTP rows are copied from
//! `scripts/bench-http.sh`'s report), so no chart depends on a heading of
//! either page. Re-run it (through
//! `scripts/charts.sh`) after a CSV changes.
//!
//! The CSV format: a header row, then one row per measured cell and series;
//! fields separated by commas, never quoted (no field holds a comma or a
//! double quote); a `date` (YYYY-MM-DD) and a `commit` column say where each
//! row comes from, and the chart's caption lists them. Values are plain
//! numbers (`143800`, `6.33`); a cell's value is its first number, so
//! `153.8k` (153800) and `100,811` are read too; an empty cell is no bar.
//! Files and their columns:
//!
//! - `echo-saturation.csv`: date, commit, conns, size, server, req_per_s,
//!   client_bound (1: the client used ≥ 90 % of its core), server_cpu_pct,
//!   client_cpu_pct, server_cpu_us_per_req, p99_us
//! - `echo-rate.csv`: date, commit, rate, conns, size, server, sustained
//!   (1: delivered ≥ 95 % of the rate in most rounds; empty: not recorded),
//!   server_cpu_us_per_req, syscalls_per_req
//! - `echo-idle-memory.csv`: date, commit, server, rss_before_mib,
//!   rss_after_mib, bytes_per_idle_conn, conns_open
//! - `http.csv`: date, commit, path, server, req_per_s, p99_ms, errors,
//!   server_cpu_us_per_req
//! - `fs.csv`: date, commit, test, engine, qd, iops (mean of the runs),
//!   iops_run1, iops_run2 (bench-fs.sh's one-run file has mib_s instead of
//!   the two runs; the chart reads only test, engine, qd and iops)
//!
//! Text is drawn with a TrueType font read at run time: `$CHART_FONT`, or
//! DejaVu Sans from Debian's `fonts-dejavu-core`.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The directory of the results, relative to the repository root.
const DATA: &str = "docs/bench-data";

/// One chart: which rows of which CSV file it draws, and into which file.
struct Spec {
    /// The CSV file, in [`DATA`].
    csv: &'static str,
    rows: Rows,
    file: &'static str,
    title: &'static str,
    y_label: &'static str,
    /// A logarithmic y axis, for values spread over orders of magnitude.
    log: bool,
}

/// Which columns of a CSV file a chart reads.
struct Rows {
    /// The columns that name a group of bars, joined (`16 conns, 64 B`);
    /// empty: every row in one group.
    group: &'static [&'static str],
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

/// The echo charts' groups: one per cell.
const ECHO_CELL: &[&str] = &["conns", "size"];

const CHARTS: &[Spec] = &[
    Spec {
        csv: "echo-saturation.csv",
        rows: Rows {
            value: "req_per_s",
            ..ECHO_SAT
        },
        file: "echo-saturation-rps.png",
        title: "Loopback echo at saturation: requests/s (higher is better)",
        y_label: "requests/s",
        log: false,
    },
    Spec {
        csv: "echo-saturation.csv",
        rows: Rows {
            value: "server_cpu_us_per_req",
            ..ECHO_SAT
        },
        file: "echo-saturation-cpu.png",
        title: "Echo at saturation: server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
    },
    Spec {
        csv: "echo-saturation.csv",
        rows: Rows {
            value: "p99_us",
            ..ECHO_SAT
        },
        file: "echo-saturation-p99.png",
        title: "Echo at saturation: p99 latency, µs (lower is better; log scale)",
        y_label: "p99 µs",
        log: true,
    },
    Spec {
        csv: "echo-idle-memory.csv",
        rows: Rows {
            group: &[],
            series: "server",
            value: "bytes_per_idle_conn",
            keep: &[],
            labels: &[],
        },
        file: "echo-idle-memory.png",
        title: "Memory per idle connection, bytes (lower is better)",
        y_label: "bytes per idle connection",
        log: false,
    },
    Spec {
        csv: "echo-rate.csv",
        rows: Rows {
            value: "server_cpu_us_per_req",
            ..ECHO_RATE
        },
        file: "echo-rate-cpu.png",
        title: "Echo at a fixed offered rate: server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
    },
    Spec {
        csv: "echo-rate.csv",
        rows: Rows {
            value: "syscalls_per_req",
            ..ECHO_RATE
        },
        file: "echo-rate-syscalls.png",
        title: "Echo at a fixed offered rate: syscalls per request (lower is better)",
        y_label: "syscalls per request",
        log: false,
    },
    Spec {
        csv: "http.csv",
        rows: Rows {
            value: "req_per_s",
            ..HTTP_ROWS
        },
        file: "http-rps.png",
        title: "HTTP/1.1 (hyper), 1 server core, wrk -c256: requests/s (higher is better)",
        y_label: "requests/s",
        log: false,
    },
    Spec {
        csv: "http.csv",
        rows: Rows {
            value: "server_cpu_us_per_req",
            ..HTTP_ROWS
        },
        file: "http-cpu.png",
        title: "HTTP/1.1 (hyper): server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
    },
    Spec {
        csv: "fs.csv",
        rows: Rows {
            group: &["test"],
            series: "engine",
            value: "iops",
            keep: &[
                ("qd", &["32"]),
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
        },
        file: "fs-qd32.png",
        title: "File I/O, 4 KiB random reads at QD 32: IOPS (higher is better; log scale)",
        y_label: "IOPS",
        log: true,
    },
];

/// The saturation charts read the same rows; only the value column differs.
const ECHO_SAT: Rows = Rows {
    group: ECHO_CELL,
    series: "server",
    value: "",
    keep: &[],
    labels: &[],
};

/// The fixed-rate charts: one group per offered rate and cell.
const ECHO_RATE: Rows = Rows {
    group: &["rate", "conns", "size"],
    ..ECHO_SAT
};

const HTTP_ROWS: Rows = Rows {
    group: &["path"],
    ..ECHO_SAT
};

const RED: RGBColor = RGBColor(214, 69, 65);
const ORANGE: RGBColor = RGBColor(242, 145, 61);
const BLUE: RGBColor = RGBColor(52, 101, 164);
const GREY: RGBColor = RGBColor(136, 138, 133);

/// The colour of every series a chart draws, so a server keeps its colour
/// across charts.
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

/// A CSV file: header cells and row cells, trimmed.
#[derive(Debug, PartialEq)]
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Reads the format described at the top of this file: a quote is an
    /// error rather than a field read wrongly, as is a row whose length
    /// differs from the header's.
    fn parse(text: &str) -> Result<Table, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let split = |(n, line): (usize, &str)| -> Result<Vec<String>, String> {
            if line.contains('"') {
                return Err(format!("line {}: quoted fields are not supported", n + 1));
            }
            Ok(line.split(',').map(|c| c.trim().to_string()).collect())
        };
        let header = split(lines.next().ok_or("empty file")?)?;
        let mut rows = Vec::new();
        for (n, line) in lines {
            let row = split((n, line))?;
            if row.len() != header.len() {
                return Err(format!(
                    "line {}: {} fields, the header has {}",
                    n + 1,
                    row.len(),
                    header.len()
                ));
            }
            rows.push(row);
        }
        Ok(Table { header, rows })
    }

    fn column(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("no column {name:?} in {:?}", self.header))
    }
}

/// The first number in a cell: `153.8k` is 153800, `100,811` is 100811.
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

/// A group's label from its cell: `16` under `conns` is `16 conns`,
/// `50000` under `rate` is `50.0k req/s`.
fn group_label(column: &str, cell: &str) -> String {
    match column {
        "conns" => format!("{cell} conns"),
        "rate" => match value(cell) {
            Some(v) => format!("{} req/s", short(v)),
            None => format!("{cell} req/s"),
        },
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

impl Rows {
    /// The chart's numbers, and the indices of the rows they come from.
    fn data(&self, table: &Table) -> Result<(Data, Vec<usize>), String> {
        let group = self
            .group
            .iter()
            .map(|g| table.column(g))
            .collect::<Result<Vec<_>, String>>()?;
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
        let mut used = Vec::new();
        for (n, row) in table.rows.iter().enumerate() {
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
            let g = group
                .iter()
                .map(|&i| group_label(&table.header[i], cell(i)))
                .collect::<Vec<_>>()
                .join(", ");
            let gi = index(&mut data.groups, g.clone(), |x| *x == g);
            let si = index(&mut data.series, (label.to_string(), Vec::new()), |s| {
                s.0 == label
            });
            points.push((gi, si, value(cell(value_col))));
            used.push(n);
        }
        // A label that no row matched: the file's names changed.
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
        if data
            .series
            .iter()
            .all(|(_, v)| v.iter().all(Option::is_none))
        {
            return Err(format!("no values in column {:?}", self.value));
        }
        Ok((data, used))
    }
}

/// The position of the item `is` matches, pushing `new` if there is none.
fn index<T>(items: &mut Vec<T>, new: T, is: impl Fn(&T) -> bool) -> usize {
    items.iter().position(is).unwrap_or_else(|| {
        items.push(new);
        items.len() - 1
    })
}

/// Where the drawn rows come from, for the caption: `2026-11-27, commit
/// 3c2a83c`, each distinct date and commit once, in file order.
fn provenance(table: &Table, rows: &[usize]) -> String {
    let distinct = |column: &str| {
        let mut seen: Vec<&str> = Vec::new();
        if let Ok(c) = table.column(column) {
            for &r in rows {
                let cell = table.rows[r][c].as_str();
                if !cell.is_empty() && !seen.contains(&cell) {
                    seen.push(cell);
                }
            }
        }
        seen.join(" / ")
    };
    let (dates, commits) = (distinct("date"), distinct("commit"));
    match (dates.is_empty(), commits.is_empty()) {
        (false, false) => format!("{dates}, commit {commits}"),
        (false, true) => dates,
        (true, false) => format!("commit {commits}"),
        (true, true) => "no date or commit in the file".into(),
    }
}

impl Spec {
    /// The caption (file and run) and the numbers of the chart.
    fn data(&self, table: &Table) -> Result<(String, Data), String> {
        let (data, rows) = self.rows.data(table)?;
        let caption = format!("{DATA}/{}: {}", self.csv, provenance(table, &rows));
        Ok((caption, data))
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
    let mut tables = HashMap::new();
    for spec in CHARTS {
        if !tables.contains_key(spec.csv) {
            let path = Path::new(DATA).join(spec.csv);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let table = Table::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            tables.insert(spec.csv, table);
        }
        // Rows the chart cannot find are an error, not a skip: the old PNG
        // would go on showing numbers the results no longer have.
        let (caption, data) = spec
            .data(&tables[spec.csv])
            .map_err(|e| format!("{DATA}/{} for {}: {e}", spec.csv, spec.file))?;
        let path = out_dir.join(spec.file);
        draw(spec, &caption, &data, &path)?;
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAT: &str = "\
date,commit,conns,size,server,req_per_s,p99_us
2026-11-27,3c2a83c,16,64 B,percore,143800,208
2026-11-27,3c2a83c,16,64 B,tokio,123700,207
2026-12-06,a8857f6,256,1 KiB,percore,,3679
2026-11-27,3c2a83c,256,1 KiB,tokio,100.6k,4539
";

    fn rows(group: &'static [&'static str], value: &'static str) -> Rows {
        Rows {
            group,
            series: "server",
            value,
            keep: &[],
            labels: &[],
        }
    }

    #[test]
    fn values_are_the_first_number() {
        assert_eq!(value("153.8k"), Some(153_800.0));
        assert_eq!(value("18330 / 50.0k"), Some(18_330.0));
        assert_eq!(value("100,811"), Some(100_811.0));
        assert_eq!(value("0.182"), Some(0.182));
        assert_eq!(value(""), None);
    }

    #[test]
    fn groups_from_several_columns_and_an_empty_cell_is_no_bar() {
        let table = Table::parse(SAT).unwrap();
        let spec = Spec {
            csv: "sat.csv",
            rows: rows(ECHO_CELL, "req_per_s"),
            file: "x.png",
            title: "",
            y_label: "",
            log: false,
        };
        let (caption, d) = spec.data(&table).unwrap();
        assert_eq!(
            caption,
            "docs/bench-data/sat.csv: 2026-11-27 / 2026-12-06, commit 3c2a83c / a8857f6"
        );
        assert_eq!(d.groups, ["16 conns, 64 B", "256 conns, 1 KiB"]);
        assert_eq!(
            d.series,
            [
                ("percore".to_string(), vec![Some(143_800.0), None]),
                ("tokio".to_string(), vec![Some(123_700.0), Some(100_600.0)]),
            ]
        );
    }

    #[test]
    fn malformed_files_and_missing_columns_are_errors() {
        assert!(Table::parse("a,b\n1\n").unwrap_err().contains("1 fields"));
        assert!(
            Table::parse("a,b\n\"1,2\",3\n")
                .unwrap_err()
                .contains("quoted")
        );
        assert!(Table::parse("").unwrap_err().contains("empty"));
        let table = Table::parse(SAT).unwrap();
        let err = rows(ECHO_CELL, "server_cpu_us_per_req")
            .data(&table)
            .unwrap_err();
        assert!(err.contains("no column"), "{err}");
        let err = rows(&["rate"], "p99_us").data(&table).unwrap_err();
        assert!(err.contains("no column \"rate\""), "{err}");
    }

    #[test]
    fn one_group_when_no_group_column() {
        let table = Table::parse("server,bytes\npercore,1529\ntokio,4864\n").unwrap();
        let (d, used) = rows(&[], "bytes").data(&table).unwrap();
        assert_eq!(d.groups, [""]);
        assert_eq!(d.series[0], ("percore".to_string(), vec![Some(1529.0)]));
        assert_eq!(d.series[1], ("tokio".to_string(), vec![Some(4864.0)]));
        assert_eq!(used, [0, 1]);
        let table = Table::parse("server,bytes\npercore,1529\n").unwrap();
        assert_eq!(provenance(&table, &[0]), "no date or commit in the file");
    }

    #[test]
    fn rate_groups_read_as_the_tables_write_them() {
        assert_eq!(group_label("rate", "50000"), "50.0k req/s");
        assert_eq!(group_label("path", "/json"), "GET /json");
    }

    const FS: &str = "\
test,engine,qd,iops
warm,fio,32,300
warm,percore (default: nowait),32,500
warm,percore ring only,32,501
cold,fio,32,67
cold,fio,1,27
cold,percore (default),32,70
seq,fio,32,9
";

    fn fs_rows(labels: &'static [(&'static str, &'static [&'static str])]) -> Rows {
        Rows {
            group: &["test"],
            series: "engine",
            value: "iops",
            keep: &[("qd", &["32"]), ("test", &["cold", "warm"])],
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
        let table = Table::parse(FS).unwrap();
        let (d, _) = rows.data(&table).unwrap();
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
        assert!(twice.data(&table).unwrap_err().contains("two values"));
        let gone = fs_rows(&[("tokio::fs", &["tokio::fs"])]);
        assert!(gone.data(&table).unwrap_err().contains("no row"));
    }

    /// Every chart finds its rows in the results as they are now.
    #[test]
    fn every_chart_finds_its_rows() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for spec in CHARTS {
            let text = std::fs::read_to_string(root.join(DATA).join(spec.csv)).unwrap();
            let table = Table::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", spec.csv));
            let (caption, data) = spec
                .data(&table)
                .unwrap_or_else(|e| panic!("{}: {e}", spec.file));
            assert!(!caption.contains("no date"), "{}: {caption}", spec.file);
            for (series, _) in &data.series {
                color(series).unwrap();
            }
        }
    }
}
