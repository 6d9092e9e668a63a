// SVG rendering: fixed-size panels laid out in a grid, axes with round ticks.
#include "serve_bench/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace shardlm::serve_bench {

namespace {

constexpr double kPanelW = 420, kPanelH = 300;
constexpr double kLeft = 64, kRight = 16, kTop = 34, kBottom = 46;  // plot area margins
constexpr const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                   "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

const char* color(size_t i) {
  return kColors[i % std::size(kColors)];
}

// A tick value with as many decimals as the tick step needs ("0.5", "10", "0.02").
std::string tick_text(double v, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return fmt::format("{:.{}f}", v, std::clamp(decimals, 0, 6));
}

// A value printed on a bar: three significant figures at most, no exponent.
std::string value_text(double v) {
  if (std::fabs(v) >= 100 || v == 0) return fmt::format("{:.0f}", v);
  return fmt::format("{:.{}f}", v, std::fabs(v) >= 10 ? 1 : 2);
}

std::string text(double x, double y, const std::string& s, const std::string& attrs = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" {}>{}</text>\n", x, y, attrs, xml_escape(s));
}

// The plot area of one panel, in figure coordinates.
struct Frame {
  double x0, y0, w, h;  // top-left of the plot area and its size
  double sx(double v, double max) const { return x0 + (max > 0 ? v / max : 0) * w; }
  double sy(double v, double max) const { return y0 + h - (max > 0 ? v / max : 0) * h; }
};

std::string y_axis(const Frame& f, const std::vector<double>& ticks, const std::string& label) {
  std::string out;
  for (double t : ticks) {
    const double y = f.sy(t, ticks.back());
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
        "stroke=\"#ddd\"/>\n",
        f.x0, y, f.x0 + f.w, y);
    out += text(f.x0 - 6, y + 4, tick_text(t, ticks[1] - ticks[0]),
                "text-anchor=\"end\" font-size=\"11\"");
  }
  out += text(f.x0 - 48, f.y0 + f.h / 2, label,
              fmt::format("font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 {:.1f} "
                          "{:.1f})\"",
                          f.x0 - 48, f.y0 + f.h / 2));
  return out + fmt::format(
                   "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                   "fill=\"none\" stroke=\"#888\"/>\n",
                   f.x0, f.y0, f.w, f.h);
}

std::string draw(const BarPanel& p, const Frame& f) {
  double max = 0;
  for (const Bar& b : p.bars) max = std::max(max, b.value);
  const auto ticks = nice_ticks(max * 1.08);  // room for the value above the tallest bar
  std::string out = y_axis(f, ticks, p.y_label);
  const double slot = p.bars.empty() ? 0 : f.w / static_cast<double>(p.bars.size());
  for (size_t i = 0; i < p.bars.size(); ++i) {
    const Bar& b = p.bars[i];
    const double x = f.x0 + slot * (static_cast<double>(i) + 0.15), y = f.sy(b.value, ticks.back());
    out += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
        "fill=\"{}\"/>\n",
        x, y, slot * 0.7, f.y0 + f.h - y, color(i));
    out += text(x + slot * 0.35, y - 4, value_text(b.value),
                "text-anchor=\"middle\" font-size=\"10\"");
    out +=
        text(x + slot * 0.35, f.y0 + f.h + 16, b.label, "text-anchor=\"middle\" font-size=\"11\"");
  }
  return out;
}

std::string x_axis(const Frame& f, const std::vector<double>& ticks, const std::string& label) {
  std::string out;
  for (double t : ticks) {
    const double x = f.sx(t, ticks.back());
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
        "stroke=\"#eee\"/>\n",
        x, f.y0, x, f.y0 + f.h);
    out += text(x, f.y0 + f.h + 15, tick_text(t, ticks[1] - ticks[0]),
                "text-anchor=\"middle\" font-size=\"11\"");
  }
  return out +
         text(f.x0 + f.w / 2, f.y0 + f.h + 34, label, "text-anchor=\"middle\" font-size=\"12\"");
}

std::string draw(const XyPanel& p, const Frame& f) {
  double xmax = 0, ymax = 0;
  for (const XySeries& s : p.series) {
    for (const XyPoint& q : s.points) xmax = std::max(xmax, q.x), ymax = std::max(ymax, q.y);
  }
  const auto xt = nice_ticks(xmax * 1.05), yt = nice_ticks(ymax * 1.05);  // room above the top
  std::string out = y_axis(f, yt, p.y_label) + x_axis(f, xt, p.x_label);
  for (size_t i = 0; i < p.series.size(); ++i) {
    std::string points, markers;  // the line first, then the markers over it
    for (const XyPoint& q : p.series[i].points) {
      const double x = f.sx(q.x, xt.back()), y = f.sy(q.y, yt.back());
      points += fmt::format("{:.1f},{:.1f} ", x, y);
      markers += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"/>\n", x, y,
                             color(i));
      if (q.label.empty()) continue;
      const bool right_edge = x > f.x0 + 0.85 * f.w;  // keep the label inside the panel
      markers += text(right_edge ? x - 5 : x + 5, y - 6, q.label,
                      right_edge ? "font-size=\"10\" text-anchor=\"end\"" : "font-size=\"10\"");
    }
    out += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
                       points, color(i));
    out += markers;
    const double ly = f.y0 + 14 + 14 * static_cast<double>(i);
    out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/>\n",
                       f.x0 + 8, ly - 9, color(i));
    out += text(f.x0 + 22, ly, p.series[i].name, "font-size=\"11\"");
  }
  return out;
}

std::string panel_title(const Panel& p) {
  return std::visit([](const auto& q) { return q.title; }, p);
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double max) {
  if (!(max > 0) || !std::isfinite(max)) return {0, 1};
  const double raw = max / 5, mag = std::pow(10, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> ticks;
  for (int k = 0; ticks.empty() || ticks.back() < max; ++k) ticks.push_back(step * k);
  return ticks;
}

std::string render_svg(const Figure& fig) {
  const int cols = std::max(1, std::min<int>(fig.columns, static_cast<int>(fig.panels.size())));
  const int rows = static_cast<int>((fig.panels.size() + cols - 1) / cols);
  const double header = 40 + 16 * static_cast<double>(fig.notes.size());
  const double width = kPanelW * cols, height = header + kPanelH * rows + 10;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"{0:.0f}\" height=\"{1:.0f}\" viewBox=\"0 0 {0:.0f} {1:.0f}\" "
      "font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  out += text(width / 2, 24, fig.title,
              "text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\"");
  for (size_t i = 0; i < fig.notes.size(); ++i) {
    out += text(width / 2, 44 + 16 * static_cast<double>(i), fig.notes[i],
                "text-anchor=\"middle\" font-size=\"12\" fill=\"#444\"");
  }
  for (size_t i = 0; i < fig.panels.size(); ++i) {
    const double px = kPanelW * static_cast<double>(i % cols);
    const double py = header + kPanelH * static_cast<double>(i / cols);
    const Frame f{px + kLeft, py + kTop, kPanelW - kLeft - kRight, kPanelH - kTop - kBottom};
    out += text(px + kPanelW / 2, py + 20, panel_title(fig.panels[i]),
                "text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\"");
    out += std::visit([&](const auto& p) { return draw(p, f); }, fig.panels[i]);
  }
  return out + "</svg>\n";
}

}  // namespace shardlm::serve_bench
