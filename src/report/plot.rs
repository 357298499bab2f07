//! Line charts written as SVG or PNG files (chosen by the file extension), e.g. accuracy
//! against timestep with the ANN as a reference line.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

/// One named curve of `(x, y)` points.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart of several curves, with an optional horizontal reference line.
#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// A labelled horizontal line (e.g. the ANN's accuracy).
    pub reference: Option<(String, f64)>,
    /// Logarithmic x axis (for timesteps spanning orders of magnitude); needs x > 0.
    pub log_x: bool,
}

/// The chart could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PlotError {
    pub path: String,
    pub message: String,
}

const SIZE: (u32, u32) = (900, 560);
/// Distinguishable line colours on white (Tableau 10).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

impl LineChart {
    /// Writes the chart to `path`; `.svg` gives a vector file, `.png` a bitmap.
    pub fn write(&self, path: &Path) -> Result<(), PlotError> {
        let fail = |message: String| PlotError { path: path.display().to_string(), message };
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !matches!(extension.as_deref(), Some("svg" | "png")) {
            return Err(fail("plot files must end in .svg or .png".into()));
        }
        // plotters measures (SVG) and rasterizes (PNG) text with a font we ship, so the
        // output does not depend on the fonts installed on the machine.
        static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if !*REGISTERED.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()) {
            return Err(fail("cannot load the embedded font".into()));
        }
        // Create the file first: its I/O error is then a plain message, not the drawing
        // backends' debug forms.
        std::fs::File::create(path).map_err(|e| fail(format!("cannot create: {e}")))?;
        if extension.as_deref() == Some("svg") {
            self.draw(SVGBackend::new(path, SIZE).into_drawing_area()).map_err(fail)
        } else {
            self.draw(BitMapBackend::new(path, SIZE).into_drawing_area()).map_err(fail)
        }
    }

    fn bounds(&self) -> ((f64, f64), (f64, f64)) {
        let points = self.series.iter().flat_map(|s| s.points.iter().copied());
        let reference = self.reference.iter().map(|(_, y)| (f64::NAN, *y));
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for (x, y) in points.chain(reference) {
            if x.is_finite() {
                x0 = x0.min(x);
                x1 = x1.max(x);
            }
            if y.is_finite() {
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
        if !x0.is_finite() {
            (x0, x1) = (1.0, 2.0);
        }
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let margin = ((y1 - y0) * 0.05).max(1e-6);
        ((x0, x1), (y0 - margin, y1 + margin))
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(text)?;
        let ((x0, x1), (y0, y1)) = self.bounds();
        let mut builder = ChartBuilder::on(&root);
        builder.caption(&self.title, ("sans-serif", 22)).margin(16).x_label_area_size(44).y_label_area_size(60);
        if self.log_x && x0 > 0.0 {
            let x = (x0..x1).log_scale().with_key_points(log_ticks(x0, x1));
            let mut chart = builder.build_cartesian_2d(x, y0..y1).map_err(text)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .x_label_formatter(&whole_number_label)
                .draw()
                .map_err(text)?;
            self.draw_series(&mut chart, x0, x1).map_err(text)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(text)?;
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(&self.x_label).y_desc(&self.y_label);
            if x1 - x0 >= 5.0 {
                mesh.x_label_formatter(&whole_number_label);
            }
            mesh.draw().map_err(text)?;
            self.draw_series(&mut chart, x0, x1).map_err(text)?;
        }
        root.present().map_err(text)
    }

    /// The plot corner the legend covers fewest points in: of the four boxes of 40 % × 45 %
    /// of the plot area at the corners (x measured on the log scale when the axis is one),
    /// the emptiest; ties go to lower right, then upper right, lower left, upper left.
    fn legend_corner(&self) -> SeriesLabelPosition {
        let ((x0, x1), (y0, y1)) = self.bounds();
        let log = self.log_x && x0 > 0.0;
        let unit_x = |x: f64| if log { (x.ln() - x0.ln()) / (x1.ln() - x0.ln()) } else { (x - x0) / (x1 - x0) };
        let unit_y = |y: f64| (y - y0) / (y1 - y0);
        let corners = [
            (SeriesLabelPosition::LowerRight, true, false),
            (SeriesLabelPosition::UpperRight, true, true),
            (SeriesLabelPosition::LowerLeft, false, false),
            (SeriesLabelPosition::UpperLeft, false, true),
        ];
        let covered = |right: bool, upper: bool| {
            let points = self.series.iter().flat_map(|s| s.points.iter());
            points
                .filter(|(x, y)| {
                    let (u, v) = (unit_x(*x), unit_y(*y));
                    (if right { u >= 0.6 } else { u <= 0.4 }) && (if upper { v >= 0.55 } else { v <= 0.45 })
                })
                .count()
        };
        let mut best = (SeriesLabelPosition::LowerRight, usize::MAX);
        for (position, right, upper) in corners {
            let count = covered(right, upper);
            if count < best.1 {
                best = (position, count);
            }
        }
        best.0
    }

    fn draw_series<'a, DB: DrawingBackend + 'a, X, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
        x0: f64,
        x1: f64,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        for (index, series) in self.series.iter().enumerate() {
            let color = PALETTE[index % PALETTE.len()].to_rgba();
            chart
                .draw_series(LineSeries::new(series.points.iter().copied(), color.stroke_width(2)))?
                .label(series.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        if let Some((name, y)) = &self.reference {
            let style = BLACK.mix(0.6).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(vec![(x0, *y), (x1, *y)], 6, 4, style))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(self.legend_corner())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
    }
}

/// Ticks of a log-scaled timestep axis: the powers of two in `[x0, x1]`, and `x1` itself
/// when it is well past the last of them (a sweep of 100 steps ends at 100, not 64).
/// Timestep sweeps double (8, 16, 32), so these are the steps a reader looks for; the
/// decade ticks the axis would otherwise choose crowd 6 to 10 and can label 10 twice.
fn log_ticks(x0: f64, x1: f64) -> Vec<f64> {
    let mut ticks: Vec<f64> = (0..64)
        .map(|k| 2f64.powi(k))
        .skip_while(|&x| x < x0 * (1.0 - 1e-9))
        .take_while(|&x| x <= x1 * (1.0 + 1e-9))
        .collect();
    if ticks.last().is_none_or(|&last| x1 > last * 1.25) {
        ticks.push(x1);
    }
    ticks
}

/// Axis labels at whole numbers only (timesteps, layer depths): `8`, not `8.0`; the
/// fractional ticks a log axis places between them (9.5 next to 10) stay unlabelled.
fn whole_number_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        LineChart {
            title: "accuracy".into(),
            x_label: "timestep".into(),
            y_label: "accuracy (%)".into(),
            series: vec![Series {
                name: "max".into(),
                points: (1..=32).map(|t| (t as f64, 90.0 - 60.0 / t as f64)).collect(),
            }],
            reference: Some(("ANN".into(), 91.0)),
            log_x: true,
        }
    }

    #[test]
    fn legend_goes_to_the_emptiest_corner() {
        // Accuracy rising from 30 % to 90 %: the lower right and upper left stay empty;
        // lower right wins the tie.
        assert!(matches!(chart().legend_corner(), SeriesLabelPosition::LowerRight));
        // Errors low over most layers and steep at the end: only the upper left is empty.
        let steep = |d: i32| (d as f64 / 20.0).powi(4);
        let growing = LineChart {
            series: vec![Series { name: "deviation".into(), points: (1..=20).map(|d| (d as f64, steep(d))).collect() }],
            reference: None,
            log_x: false,
            ..chart()
        };
        assert!(matches!(growing.legend_corner(), SeriesLabelPosition::UpperLeft));
        // Its mirror image leaves only the lower left.
        let falling = LineChart {
            series: vec![Series { name: "loss".into(), points: (1..=20).map(|d| (d as f64, -steep(d))).collect() }],
            ..growing.clone()
        };
        assert!(matches!(falling.legend_corner(), SeriesLabelPosition::LowerLeft));
    }

    /// The SVG text `chart()` writes, and the directory it lies in.
    fn written_svg() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("a.svg");
        chart().write(&svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        (dir, text)
    }

    #[test]
    fn writes_svg_and_png() {
        let (dir, text) = written_svg();
        assert!(text.contains("<svg") && text.contains("ANN") && text.contains("max"));
        let png = dir.path().join("a.png");
        chart().write(&png).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    }

    #[test]
    fn log_axis_ticks_double() {
        assert_eq!(log_ticks(1.0, 32.0), [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
        assert_eq!(log_ticks(1.0, 40.0), [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
        assert_eq!(log_ticks(1.0, 100.0), [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 100.0]);
        assert_eq!(log_ticks(3.0, 7.0), [4.0, 7.0]);
        assert_eq!(log_ticks(5.0, 7.0), [7.0]);
    }

    #[test]
    fn log_axis_labels_each_tick_once() {
        let (_dir, text) = written_svg();
        // The x labels are the texts of digits only (y labels print with a decimal point).
        let labels: Vec<&str> = text
            .split("</text>")
            .filter_map(|chunk| chunk.rsplit('>').next())
            .map(str::trim)
            .filter(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        for tick in ["1", "2", "4", "8", "16", "32"] {
            assert_eq!(labels.iter().filter(|&&l| l == tick).count(), 1, "x label {tick} in {labels:?}");
        }
        assert!(!labels.contains(&"3") && !labels.contains(&"9"), "{labels:?}");
    }

    #[test]
    fn rejects_unknown_extension() {
        let err = chart().write(Path::new("plot.jpg")).unwrap_err();
        assert!(err.to_string().contains("plot.jpg") && err.to_string().contains(".svg"));
    }
}
