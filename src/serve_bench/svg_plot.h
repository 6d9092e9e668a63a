// Small self-contained SVG charts for benchmark reports: a grid of panels, each either grouped bars
// (latency percentiles) or x/y lines with labelled points (throughput against latency), written as
// plain SVG 1.1 with no scripts or external references.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace shardlm::serve_bench {

struct Bar {
  std::string label;
  double value = 0;
};

struct BarPanel {
  std::string title;
  std::string y_label;
  std::vector<Bar> bars;
};

struct XyPoint {
  double x = 0;
  double y = 0;
  std::string label;  // drawn beside the point, e.g. "c=4"
};

struct XySeries {
  std::string name;
  std::vector<XyPoint> points;  // joined in the order given
};

struct XyPanel {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<XySeries> series;
};

using Panel = std::variant<BarPanel, XyPanel>;

struct Figure {
  std::string title;
  std::vector<std::string> notes;  // lines of text under the title
  std::vector<Panel> panels;
  int columns = 2;
};

std::string render_svg(const Figure& figure);

// Text with &, <, >, " escaped for XML.
std::string xml_escape(const std::string& text);

// About five round tick values (1, 2 or 5 times a power of ten) covering [0, max].
std::vector<double> nice_ticks(double max);

}  // namespace shardlm::serve_bench
