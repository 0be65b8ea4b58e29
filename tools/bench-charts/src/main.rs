//! Draws BENCHMARKS.md's comparison tables as PNG bar charts.
//!
//! ```text
//! bench-charts [BENCHMARKS.md] [OUT_DIR]     # defaults: BENCHMARKS.md docs/charts
//! ```
//!
//! It reads the tables under the headings listed in [`CHARTS`], so the
//! charts always show the numbers the document shows: re-run it (through
//! `scripts/charts.sh`) after the tables change. A cell's value is its first
//! number (`153.8k † (1.20x)` is 153800, `18330 / 50.0k` is 18330); cells
//! without one are left out.
//!
//! Text is drawn with a TrueType font read at run time: `$CHART_FONT`, or
//! DejaVu Sans from Debian's `fonts-dejavu-core`.

use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One chart: the table under `heading`, drawn into `file`.
struct Spec {
    /// The start of the heading line the table follows.
    heading: &'static str,
    file: &'static str,
    title: &'static str,
    y_label: &'static str,
    /// A logarithmic y axis, for values spread over orders of magnitude.
    log: bool,
    /// For tables with one row per server: the column to plot.
    column: Option<&'static str>,
}

const CHARTS: &[Spec] = &[
    Spec {
        heading: "#### Saturation: requests/s",
        file: "echo-saturation-rps.png",
        title: "Loopback echo at saturation: requests/s (higher is better)",
        y_label: "requests/s",
        log: false,
        column: None,
    },
    Spec {
        heading: "#### Saturation: server CPU µs per request",
        file: "echo-saturation-cpu.png",
        title: "At saturation: server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
        column: None,
    },
    Spec {
        heading: "#### Saturation: p99 latency",
        file: "echo-saturation-p99.png",
        title: "At saturation: p99 latency, µs (lower is better; log scale)",
        y_label: "p99 µs",
        log: true,
        column: None,
    },
    Spec {
        heading: "#### Fixed rate: server CPU µs per request",
        file: "echo-rate-cpu.png",
        title: "At a fixed 50k req/s: server CPU µs per request (lower is better)",
        y_label: "µs of server CPU per request",
        log: false,
        column: None,
    },
    Spec {
        heading: "#### Fixed rate: syscalls per request",
        file: "echo-rate-syscalls.png",
        title: "At a fixed 50k req/s: syscalls per request (lower is better)",
        y_label: "syscalls per request",
        log: false,
        column: None,
    },
    Spec {
        heading: "### Idle memory with 10,000 connections",
        file: "echo-idle-memory.png",
        title: "Memory per idle connection, bytes (lower is better)",
        y_label: "bytes per idle connection",
        log: false,
        column: Some("bytes / idle conn"),
    },
];

/// Servers, in the order and colours every chart uses.
const SERVERS: &[(&str, RGBColor)] = &[
    ("percore", RGBColor(214, 69, 65)),
    ("percore-pooled", RGBColor(242, 145, 61)),
    ("tokio", RGBColor(52, 101, 164)),
    ("monoio", RGBColor(78, 154, 6)),
    ("glommio", RGBColor(117, 80, 123)),
    ("raw", RGBColor(136, 138, 133)),
];

/// A markdown table: header cells and row cells, trimmed.
#[derive(Debug, PartialEq)]
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The first table after the line starting with `heading`.
fn table_after(md: &str, heading: &str) -> Option<Table> {
    let mut lines = md.lines().skip_while(|l| !l.starts_with(heading)).skip(1);
    let mut table: Vec<Vec<String>> = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if line.starts_with('#') && table.is_empty() {
            return None; // the next section began before any table
        }
        if line.starts_with('|') {
            let cells = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            table.push(cells);
        } else if !table.is_empty() {
            break;
        }
    }
    if table.len() < 3 {
        return None;
    }
    let header = table.remove(0);
    table.remove(0); // |---|---|
    Some(Table {
        header,
        rows: table,
    })
}

/// The first number in a cell: `153.8k † (1.20x)` is 153800.
fn value(cell: &str) -> Option<f64> {
    let start = cell.find(|c: char| c.is_ascii_digit())?;
    let rest = &cell[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let n: f64 = rest[..end].parse().ok()?;
    Some(match rest[end..].chars().next() {
        Some('k') => n * 1e3,
        Some('M') => n * 1e6,
        _ => n,
    })
}

/// A chart's data: group labels, and per server its value in each group.
#[derive(Debug, PartialEq)]
struct Data {
    groups: Vec<String>,
    series: Vec<(String, Vec<Option<f64>>)>,
}

fn data(table: &Table, column: Option<&str>) -> Result<Data, String> {
    if let Some(column) = column {
        // One row per server: a single group.
        let col = table
            .header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| format!("no column {column:?} in {:?}", table.header))?;
        let series = table
            .rows
            .iter()
            .map(|r| (r[0].clone(), vec![r.get(col).and_then(|c| value(c))]))
            .collect();
        return Ok(Data {
            groups: vec![String::new()],
            series,
        });
    }
    let first_server = table
        .header
        .iter()
        .position(|h| SERVERS.iter().any(|(s, _)| s == h))
        .ok_or_else(|| format!("no server column in {:?}", table.header))?;
    let groups = table
        .rows
        .iter()
        .map(|r| {
            table.header[..first_server]
                .iter()
                .zip(r)
                .map(|(h, c)| match h.as_str() {
                    "conns" => format!("{c} conns"),
                    "rate" => format!("{c} req/s"),
                    _ => c.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let series = table
        .header
        .iter()
        .enumerate()
        .filter(|(_, h)| SERVERS.iter().any(|(s, _)| s == *h))
        .map(|(i, h)| {
            let values = table
                .rows
                .iter()
                .map(|r| r.get(i).and_then(|c| value(c)))
                .collect();
            (h.clone(), values)
        })
        .collect();
    Ok(Data { groups, series })
}

fn color(server: &str) -> RGBColor {
    SERVERS
        .iter()
        .find(|(s, _)| *s == server)
        .map_or(RGBColor(0, 0, 0), |(_, c)| *c)
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

fn draw(spec: &Spec, data: &Data, path: &Path) -> Result<(), Box<dyn Error>> {
    let width = 240 + 150 * data.groups.len() as u32;
    let root = BitMapBackend::new(path, (width.max(900), 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = data
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let min = data
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(f64::MAX, |a, &b| a.min(b));
    let groups = data.groups.len();
    let bars = data.series.len() as f64;
    let slot = 0.8 / bars;
    let x_range = -0.5..groups as f64 - 0.5;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(spec.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(if data.groups[0].is_empty() { 10 } else { 40 })
        .y_label_area_size(80);

    // The two axis kinds are different types: draw through one closure each.
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
            for (k, (server, values)) in data.series.iter().enumerate() {
                let fill = color(server);
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
                    .label(server.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 12, y + 6)], fill.filled())
                    });
                chart.draw_series(values.iter().enumerate().filter_map(|(g, v)| {
                    v.map(|v| {
                        Text::new(
                            short(v),
                            (x0(g) + slot * 0.5, v),
                            ("sans-serif", 12)
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
        // A decade of headroom above the tallest bar keeps the legend clear.
        let top = 10f64.powf(max.log10().ceil() + 1.0);
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
    let mut args = std::env::args().skip(1);
    let md_path = PathBuf::from(args.next().unwrap_or_else(|| "BENCHMARKS.md".into()));
    let out_dir = PathBuf::from(args.next().unwrap_or_else(|| "docs/charts".into()));
    let md =
        std::fs::read_to_string(&md_path).map_err(|e| format!("{}: {e}", md_path.display()))?;
    load_font()?;
    std::fs::create_dir_all(&out_dir)?;
    let mut missing = 0;
    for spec in CHARTS {
        let Some(table) = table_after(&md, spec.heading) else {
            eprintln!("bench-charts: no table under {:?}; skipped", spec.heading);
            missing += 1;
            continue;
        };
        let data = data(&table, spec.column)?;
        let path = out_dir.join(spec.file);
        draw(spec, &data, &path)?;
        println!("{}", path.display());
    }
    if missing == CHARTS.len() {
        return Err(format!("no chartable table in {}", md_path.display()).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD: &str = "\
#### Saturation: requests/s (median)

| conns | size | percore | tokio |
|---|---|---|---|
| 16 | 64 B | 153.8k † (1.20x) | 127.9k † |
| 256 | 1 KiB | n/a | 100.6k |

### Idle memory

| server | bytes / idle conn |
|---|---|
| percore | 4968 |
| tokio | 4864 |
";

    #[test]
    fn values_are_the_first_number() {
        assert_eq!(value("153.8k † (1.20x)"), Some(153_800.0));
        assert_eq!(value("18330 / 50.0k"), Some(18_330.0));
        assert_eq!(value("0.182"), Some(0.182));
        assert_eq!(value("n/a"), None);
    }

    #[test]
    fn grouped_table() {
        let t = table_after(MD, "#### Saturation: requests/s").unwrap();
        let d = data(&t, None).unwrap();
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
    fn one_row_per_server() {
        let t = table_after(MD, "### Idle memory").unwrap();
        let d = data(&t, Some("bytes / idle conn")).unwrap();
        assert_eq!(d.groups.len(), 1);
        assert_eq!(d.series[1], ("tokio".to_string(), vec![Some(4864.0)]));
        assert!(table_after(MD, "### Nothing").is_none());
    }
}
