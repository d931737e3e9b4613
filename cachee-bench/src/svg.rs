//! A small line-chart renderer: the suite draws its own plots as standalone SVG files.

use std::fmt::Write;

/// How an axis maps values to positions.
#[derive(Clone, Copy, Debug)]
pub enum Scale {
    Linear,
    /// Base-10 logarithm (values must be positive).
    Log,
    /// Percentile "nines": `p` maps to `-log10(1 - p)`, so 0.9, 0.99, 0.999 are evenly
    /// spaced (the usual way to show latency tails).
    Nines,
}

impl Scale {
    fn map(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.max(1e-12).log10(),
            Scale::Nines => -(1.0 - v.min(1.0 - 1e-9)).log10(),
        }
    }
}

pub struct Axis {
    pub label: String,
    pub scale: Scale,
    /// Tick positions with their labels.
    pub ticks: Vec<(f64, String)>,
}

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
}

const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Log-axis ticks at powers of ten (and 2×, 5× when the range is short).
pub fn log_ticks(lo: f64, hi: f64, fmt: impl Fn(f64) -> String) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    let (lo, hi) = (lo.max(1e-12), hi.max(lo * 1.0001));
    let dense = hi / lo < 1e3;
    let mut p = 10f64.powf(lo.log10().floor());
    while p <= hi * 1.0001 {
        for m in if dense {
            &[1.0, 2.0, 5.0][..]
        } else {
            &[1.0][..]
        } {
            let v = p * m;
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                out.push((v, fmt(v)));
            }
        }
        p *= 10.0;
    }
    out
}

/// Evenly spaced linear ticks.
pub fn linear_ticks(lo: f64, hi: f64, n: usize, fmt: impl Fn(f64) -> String) -> Vec<(f64, String)> {
    let step = nice_step((hi - lo) / n.max(1) as f64);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 {
        out.push((v, fmt(v)));
        v += step;
    }
    out
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

impl Chart {
    /// Renders the chart; the axis ranges span the ticks.
    pub fn render(&self) -> String {
        let (w, h) = (760.0, 460.0);
        let (left, right, top, bottom) = (80.0, 190.0, 44.0, 60.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let range = |a: &Axis| {
            let vals: Vec<f64> = a.ticks.iter().map(|t| a.scale.map(t.0)).collect();
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() && hi > lo {
                (lo, hi)
            } else {
                (0.0, 1.0)
            }
        };
        let (x0, x1) = range(&self.x);
        let (y0, y1) = range(&self.y);
        let px = |v: f64| left + (self.x.scale.map(v) - x0) / (x1 - x0) * pw;
        let py = |v: f64| top + ph - (self.y.scale.map(v) - y0) / (y1 - y0) * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        // The title's first line is the heading, a second line (after '\n') smaller.
        for (i, line) in self.title.lines().take(2).enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="{}">{}</text>"#,
                w / 2.0,
                16 + 15 * i,
                if i == 0 { 14 } else { 11 },
                escape(line)
            );
        }
        for (v, label) in &self.x.ticks {
            let x = px(*v);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#e0e0e0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 18.0,
                escape(label)
            );
        }
        for (v, label) in &self.y.ticks {
            let y = py(*v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0,
                escape(label)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + pw / 2.0,
            h - 15.0,
            escape(&self.x.label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            top + ph / 2.0,
            escape(&self.y.label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let pts: Vec<String> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            if pts.len() == 1 {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{}" cy="{}" r="3" fill="{colour}"/>"#,
                    pts[0].split(',').next().unwrap_or("0"),
                    pts[0].split(',').nth(1).unwrap_or("0")
                );
            } else if !pts.is_empty() {
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                    pts.join(" ")
                );
            }
            let ly = top + 10.0 + 18.0 * i as f64;
            let lx = left + pw + 14.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
                lx + 20.0,
                lx + 26.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_inside_the_plot() {
        let chart = Chart {
            title: "t <1>".into(),
            x: Axis {
                label: "x".into(),
                scale: Scale::Log,
                ticks: log_ticks(10.0, 1000.0, |v| format!("{v}")),
            },
            y: Axis {
                label: "y".into(),
                scale: Scale::Nines,
                ticks: vec![(0.5, "50%".into()), (0.999, "99.9%".into())],
            },
            series: vec![
                Series {
                    name: "a".into(),
                    points: vec![(10.0, 0.5), (1000.0, 0.999)],
                },
                Series {
                    name: "b".into(),
                    points: vec![(100.0, 0.9)],
                },
            ],
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;"), "titles are escaped");
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        // The first series spans the plot corner to corner: left 80, right 570, top 44, bottom 400.
        assert!(svg.contains("points=\"80.0,400.0 570.0,44.0\""), "{svg}");
    }

    #[test]
    fn ticks_cover_the_range() {
        let t = log_ticks(20.0, 5000.0, |v| format!("{v}"));
        let v: Vec<f64> = t.iter().map(|t| t.0).collect();
        assert_eq!(v.first(), Some(&20.0));
        assert_eq!(v.last(), Some(&5000.0));
        let l = linear_ticks(0.0, 1.0, 5, |v| format!("{v:.1}"));
        assert_eq!(l.len(), 6);
        assert_eq!(l[5].1, "1.0");
    }
}
