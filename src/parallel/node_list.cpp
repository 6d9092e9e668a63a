// Expansion of SLURM host lists and tasks-per-node lists; reading rtp-llm's node file.
#include "parallel/node_list.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace shardlm::parallel {

namespace {

// Expanding a list this large is a typo, not a cluster.
constexpr size_t kMaxHosts = 1 << 20;

int parse_count(std::string_view digits, std::string_view list, const char* what) {
  int value = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value < 0) {
    fail("SLURM list '{}': {} '{}' is not a non-negative number", list, what, digits);
  }
  return value;
}

// Splits at commas outside brackets.
std::vector<std::string_view> split_top_level(std::string_view list) {
  std::vector<std::string_view> items;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i == list.size() || (list[i] == ',' && depth == 0)) {
      items.push_back(list.substr(start, i - start));
      start = i + 1;
    } else if (list[i] == '[') {
      if (++depth > 1) fail("host list '{}': nested '[' at offset {}", list, i);
    } else if (list[i] == ']') {
      if (--depth < 0) fail("host list '{}': ']' at offset {} closes nothing", list, i);
    }
  }
  if (depth != 0) fail("host list '{}': a '[' is never closed", list);
  return items;
}

// "01-03,07" -> 01 02 03 07 (the width of each lower bound kept).
std::vector<std::string> expand_ranges(std::string_view ranges, std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= ranges.size()) {
    const size_t comma = std::min(ranges.find(',', start), ranges.size());
    const std::string_view range = ranges.substr(start, comma - start);
    const size_t dash = range.find('-');
    const std::string_view lo = range.substr(0, dash);
    const std::string_view hi = dash == std::string_view::npos ? lo : range.substr(dash + 1);
    const int a = parse_count(lo, list, "range bound"), b = parse_count(hi, list, "range bound");
    if (b < a) fail("host list '{}': range '{}' runs backwards", list, range);
    if (out.size() + size_t(b - a) + 1 > kMaxHosts) {
      fail("host list '{}' expands to more than {} hosts", list, kMaxHosts);
    }
    for (int n = a; n <= b; ++n) {
      std::string number = std::to_string(n);
      if (number.size() < lo.size()) number.insert(0, lo.size() - number.size(), '0');
      out.push_back(std::move(number));
    }
    start = comma + 1;
  }
  return out;
}

// One item: literal text and bracket groups, expanded left to right (the first group varies
// slowest).
void expand_item(std::string_view item, std::string_view list, std::vector<std::string>& hosts) {
  if (item.empty()) fail("host list '{}' has an empty host name (stray comma?)", list);
  std::vector<std::string> partial{""};
  size_t i = 0;
  while (i < item.size()) {
    const size_t open = item.find('[', i);
    const std::string_view text = item.substr(i, open - i);
    for (auto& p : partial) p += text;
    if (open == std::string_view::npos) break;
    const size_t close = item.find(']', open);
    const auto suffixes = expand_ranges(item.substr(open + 1, close - open - 1), list);
    std::vector<std::string> next;
    for (const auto& p : partial) {
      for (const auto& s : suffixes) next.push_back(p + s);
    }
    if (next.size() > kMaxHosts)
      fail("host list '{}' expands to more than {} hosts", list, kMaxHosts);
    partial = std::move(next);
    i = close + 1;
  }
  hosts.insert(hosts.end(), partial.begin(), partial.end());
}

int part_index(const std::string& key, const std::string& path) {
  const auto at = key.rfind("part");
  const std::string digits = at == std::string::npos ? "" : key.substr(at + 4);
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }) ||
      digits.size() > 6) {
    fail(
        "DISTRIBUTE_CONFIG_FILE={}: entry '{}' does not end in partN (rtp-llm names each node "
        "NAME_part0, NAME_part1, ...)",
        path, key);
  }
  return std::stoi(digits);
}

ListedNode read_part(const std::string& key, const nlohmann::json& value, const std::string& path) {
  const auto where = fmt::format("DISTRIBUTE_CONFIG_FILE={}: entry '{}'", path, key);
  if (!value.is_object()) fail("{} is not an object with \"ip\" (and \"port\")", where);
  if (value.contains("name") && value["name"] != key) {
    fail("{} has \"name\" {}; rtp-llm requires it to equal the key", where, value["name"].dump());
  }
  const auto ip = value.find("ip");
  if (ip == value.end() || !ip->is_string() || ip->get<std::string>().empty()) {
    fail("{} has no \"ip\" string", where);
  }
  ListedNode part{ip->get<std::string>(), std::nullopt};
  if (const auto port = value.find("port"); port != value.end()) {
    if (!port->is_number_integer() || *port < 1 || *port > 65535) {
      fail("{}: \"port\" {} is not a number in 1-65535", where, port->dump());
    }
    part.port = port->get<int>();
  }
  return part;
}

}  // namespace

std::vector<std::string> expand_node_list(std::string_view list) {
  std::vector<std::string> hosts;
  if (list.empty()) return hosts;
  for (const auto item : split_top_level(list)) expand_item(item, list, hosts);
  return hosts;
}

std::vector<int> expand_tasks_per_node(std::string_view list) {
  std::vector<int> counts;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view entry = list.substr(start, comma - start);
    const size_t paren = entry.find('(');
    const int tasks = parse_count(entry.substr(0, paren), list, "task count");
    int repeat = 1;
    if (paren != std::string_view::npos) {
      if (entry.size() < paren + 4 || entry.substr(paren, 2) != "(x" || entry.back() != ')') {
        fail("SLURM list '{}': '{}' is not COUNT or COUNT(xREPEAT)", list, entry);
      }
      repeat = parse_count(entry.substr(paren + 2, entry.size() - paren - 3), list, "repeat");
    }
    if (counts.size() + size_t(repeat) > kMaxHosts) fail("SLURM list '{}' is too long", list);
    counts.insert(counts.end(), size_t(repeat), tasks);
    start = comma + 1;
  }
  return counts;
}

std::vector<ListedNode> read_distribute_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("DISTRIBUTE_CONFIG_FILE={}: cannot open it ({})", path, std::strerror(errno));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("DISTRIBUTE_CONFIG_FILE={}: not valid JSON ({})", path, e.what());
  }
  if (!j.is_object() || j.empty()) {
    fail(
        "DISTRIBUTE_CONFIG_FILE={}: expected an object of \"NAME_partN\": {{\"ip\": ..., "
        "\"port\": ...}} entries, one per node",
        path);
  }
  std::map<int, ListedNode> parts;
  for (const auto& [key, value] : j.items()) {
    const int index = part_index(key, path);
    if (!parts.emplace(index, read_part(key, value, path)).second) {
      fail("DISTRIBUTE_CONFIG_FILE={}: two entries for part{}", path, index);
    }
  }
  std::vector<ListedNode> nodes;
  for (const auto& [index, part] : parts) {
    if (index != static_cast<int>(nodes.size())) {
      fail(
          "DISTRIBUTE_CONFIG_FILE={}: part{} is missing; parts must run 0..{} (part0 is the "
          "master)",
          path, nodes.size(), parts.size() - 1);
    }
    nodes.push_back(part);
  }
  return nodes;
}

}  // namespace shardlm::parallel
