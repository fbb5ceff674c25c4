//! Figures: drawn as SVG by plotters (no font files or system libraries needed), then rasterised
//! to a PNG beside it by resvg (text in the PNG uses the system's fonts; without any, the PNG has
//! no labels and the SVG still has them). Both are written atomically.

use crate::error::{Error, Result};
use crate::run::run_dir::write_atomic;
use plotters::prelude::*;
use resvg::{tiny_skia, usvg};
use std::path::Path;
use std::sync::OnceLock;

/// Pixels per SVG unit in the PNG (a 720×480 figure becomes 1440×960).
const PNG_SCALE: f32 = 2.0;

/// Write `svg` to `path` and its rendering to `path` with the extension `png`.
fn save(path: &Path, svg: &str) -> Result<()> {
    write_atomic(path, svg.as_bytes())?;
    static OPTIONS: OnceLock<usvg::Options<'static>> = OnceLock::new();
    let opt = OPTIONS.get_or_init(|| {
        let mut o = usvg::Options::default();
        let db = o.fontdb_mut();
        db.load_system_fonts();
        // plotters asks for "sans-serif", which fontdb maps to Arial: use a family that exists.
        let families: Vec<String> = db
            .faces()
            .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
            .collect();
        let chosen = [
            "DejaVu Sans",
            "Liberation Sans",
            "Arial",
            "Helvetica",
            "Noto Sans",
        ]
        .iter()
        .map(|s| s.to_string())
        .find(|f| families.contains(f))
        .or_else(|| families.first().cloned());
        if let Some(family) = chosen {
            db.set_sans_serif_family(family.clone());
            db.set_serif_family(family.clone());
            o.font_family = family;
        }
        o
    });
    let tree = usvg::Tree::from_str(svg, opt).map_err(|e| plot_err(path, e))?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * PNG_SCALE).ceil() as u32,
        (size.height() * PNG_SCALE).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or_else(|| plot_err(path, "empty figure"))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE),
        &mut pixmap.as_mut(),
    );
    let png = pixmap.encode_png().map_err(|e| plot_err(path, e))?;
    write_atomic(&path.with_extension("png"), &png)
}

/// Ten distinct colours (the "tab10" palette): Table I has ten settings.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("cannot draw the plot: {e}"))
}

/// One named series of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

fn span(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Height of one legend line below a line plot, in pixels.
const LEGEND_LINE: i32 = 18;

/// Lines with markers, one per series, with a legend below the plot (inside it, a legend of
/// long labels hid the very curves it named).
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let mut svg = String::new();
    {
        let legend_h = 12 + LEGEND_LINE * series.len() as i32;
        let full =
            SVGBackend::with_string(&mut svg, (720, 480 + legend_h as u32)).into_drawing_area();
        full.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let (root, legend) = full.split_vertically(480);
        let xs = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        let ys = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        for (i, s) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
                .map_err(|e| plot_err(path, e))?;
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| plot_err(path, e))?;
            let y = 6 + LEGEND_LINE * i as i32 + LEGEND_LINE / 2;
            legend
                .draw(&PathElement::new(
                    vec![(72, y), (96, y)],
                    color.stroke_width(2),
                ))
                .map_err(|e| plot_err(path, e))?;
            legend
                .draw(&Text::new(
                    s.name.clone(),
                    (104, y - 7),
                    ("sans-serif", 13).into_font(),
                ))
                .map_err(|e| plot_err(path, e))?;
        }
        full.present().map_err(|e| plot_err(path, e))?;
    }
    save(path, &svg)
}

/// A histogram of `counts` over equal bins starting at `lo` with width `width`.
pub fn histogram(
    path: &Path,
    title: &str,
    x_label: &str,
    lo: f64,
    width: f64,
    counts: &[u64],
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let hi = lo + width * counts.len() as f64;
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("cells")
            .draw()
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], COLORS[0].filled())
            }))
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    save(path, &svg)
}
