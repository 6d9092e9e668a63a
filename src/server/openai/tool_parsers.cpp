// The tool-call parsers of each model family.
#include "server/openai/tool_parsers.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

namespace shardlm::server {

namespace {

using nlohmann::json;

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// Content before a call keeps its leading blanks (streaming sent them already) but not the blanks
// that separate it from the call.
std::string rtrim(std::string_view s) {
  const auto e = s.find_last_not_of(" \t\r\n");
  return e == std::string_view::npos ? "" : std::string(s.substr(0, e + 1));
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void append(std::vector<PartialToolCall>& to, std::vector<PartialToolCall> from) {
  for (PartialToolCall& c : from) to.push_back(std::move(c));
}

// The final calls of a text: the complete ones of its partial reading.
std::vector<ToolCall> finished(const std::vector<PartialToolCall>& partial) {
  return complete_calls<ToolCall>(partial);
}

struct Block {
  std::string body;
  bool closed = false;
};

// Text between tags: every <open>...</close> block (the last may be unclosed at the end).
std::vector<Block> blocks(std::string_view text, std::string_view open, std::string_view close,
                          size_t* first = nullptr) {
  std::vector<Block> out;
  size_t pos = text.find(open);
  if (first) *first = pos;
  while (pos != std::string_view::npos) {
    const size_t body = pos + open.size();
    const size_t end = text.find(close, body);
    const bool closed = end != std::string_view::npos;
    out.push_back({std::string(text.substr(body, closed ? end - body : end)), closed});
    if (!closed) break;
    pos = text.find(open, end + close.size());
  }
  return out;
}

// Arguments built from name/value pairs, compact JSON in the order written: "{" and each pair
// as it completes, "}" once the call ends, so every stage is a prefix of the next.
std::string built_arguments(const std::vector<std::pair<std::string, json>>& pairs, bool complete) {
  std::string args = "{";
  for (size_t i = 0; i < pairs.size(); ++i) {
    args += (i ? "," : "") + dump(json(pairs[i].first)) + ":" + dump(pairs[i].second);
  }
  return complete ? args + "}" : args;
}

// A call whose arguments are the JSON value at the start of `args` (after blanks), as written.
PartialToolCall json_arguments(std::string name, std::string_view args) {
  const size_t b = args.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos || (args[b] != '{' && args[b] != '[')) return {name, "", false};
  const size_t end = json_value_end(args, b);
  const std::string_view value = args.substr(b, end == std::string_view::npos ? end : end - b);
  const bool complete =
      end != std::string_view::npos && !json::parse(value, nullptr, false).is_discarded();
  return {std::move(name), std::string(value), complete};
}

class MarkerParser : public ToolCallParser {
 public:
  explicit MarkerParser(std::string marker) : marker_(std::move(marker)) {}
  size_t call_start(std::string_view text) const override { return marker_start(text, marker_); }

 protected:
  std::string marker_;
};

// Hermes / Qwen2.5: <tool_call>{"name": ..., "arguments": {...}}</tool_call>, any number.
class HermesParser : public MarkerParser {
 public:
  HermesParser() : MarkerParser("<tool_call>") {}
  ParsedToolOutput parse(const std::string& text) const override {
    ParsedToolOutput out{"", finished(partial(text))};
    out.content =
        out.calls.empty() ? text : rtrim(std::string_view(text).substr(0, text.find(marker_)));
    return out;
  }
  std::vector<PartialToolCall> partial(std::string_view text) const override {
    std::vector<PartialToolCall> calls;
    for (const Block& b : blocks(text, "<tool_call>", "</tool_call>")) {
      append(calls, scan_call_objects(b.body, ','));
    }
    return calls;
  }
};

// Llama 3.x JSON tool calls: optional <|python_tag|>, then {"name", "parameters"} objects
// separated by ';'.
class Llama3JsonParser : public ToolCallParser {
 public:
  ParsedToolOutput parse(const std::string& text) const override {
    const size_t tag = text.find("<|python_tag|>");
    ParsedToolOutput out{"", finished(partial(text))};
    const std::string before =
        tag == std::string::npos ? "" : rtrim(std::string_view(text).substr(0, tag));
    out.content = out.calls.empty() ? text : before;
    return out;
  }
  std::vector<PartialToolCall> partial(std::string_view text) const override {
    const size_t tag = text.find("<|python_tag|>");
    if (tag != std::string_view::npos) text.remove_prefix(tag + 14);
    return scan_call_objects(text, ';');
  }
  size_t call_start(std::string_view text) const override {
    const size_t tag = marker_start(text, "<|python_tag|>");
    if (tag != std::string_view::npos) return tag;
    const size_t b = text.find_first_not_of(" \t\r\n");
    return b != std::string_view::npos && text[b] == '{' ? 0 : std::string_view::npos;
  }
};

// Mistral: [TOOL_CALLS][{"name", "arguments"}, ...], or the newer [TOOL_CALLS]name[ARGS]{...}.
class MistralParser : public MarkerParser {
 public:
  MistralParser() : MarkerParser("[TOOL_CALLS]") {}
  ParsedToolOutput parse(const std::string& text) const override {
    ParsedToolOutput out{"", finished(partial(text))};
    out.content =
        out.calls.empty() ? text : rtrim(std::string_view(text).substr(0, text.find(marker_)));
    return out;
  }
  std::vector<PartialToolCall> partial(std::string_view text) const override {
    std::vector<PartialToolCall> calls;
    for (const Block& b : blocks(text, marker_, marker_)) {
      const size_t args = b.body.find("[ARGS]");
      if (args == std::string::npos) {
        append(calls, scan_call_objects(b.body, ','));
      } else {
        calls.push_back(json_arguments(trim(b.body.substr(0, args)),
                                       std::string_view(b.body).substr(args + 6)));
      }
    }
    return calls;
  }
};

// Qwen3-Coder: <tool_call><function=NAME><parameter=P>VALUE</parameter>...</function></tool_call>,
// each value JSON when it parses, else a string.
class Qwen3CoderParser : public MarkerParser {
 public:
  Qwen3CoderParser() : MarkerParser("<tool_call>") {}
  ParsedToolOutput parse(const std::string& text) const override {
    ParsedToolOutput out{"", finished(partial(text))};
    out.content =
        out.calls.empty() ? text : rtrim(std::string_view(text).substr(0, text.find(marker_)));
    return out;
  }
  std::vector<PartialToolCall> partial(std::string_view text) const override {
    std::vector<PartialToolCall> calls;
    for (const Block& call : blocks(text, "<tool_call>", "</tool_call>")) {
      for (const Block& fn : blocks(call.body, "<function=", "</function>")) {
        const size_t gt = fn.body.find('>');
        if (gt == std::string::npos) return calls;  // the name is not complete yet
        std::vector<std::pair<std::string, json>> args;
        for (const Block& p :
             blocks(std::string_view(fn.body).substr(gt + 1), "<parameter=", "</parameter>")) {
          const size_t pgt = p.body.find('>');
          if (!p.closed || pgt == std::string::npos) break;
          const std::string value = trim(std::string_view(p.body).substr(pgt + 1));
          const json parsed = json::parse(value, nullptr, false);
          args.emplace_back(trim(p.body.substr(0, pgt)),
                            parsed.is_discarded() ? json(value) : parsed);
        }
        calls.push_back({trim(fn.body.substr(0, gt)), built_arguments(args, fn.closed), fn.closed});
      }
    }
    return calls;
  }
};

// DeepSeek-V3: <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
// ```json ARGS ```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>.
class DeepSeekV3Parser : public MarkerParser {
 public:
  DeepSeekV3Parser() : MarkerParser("<｜tool▁calls▁begin｜>") {}
  ParsedToolOutput parse(const std::string& text) const override {
    ParsedToolOutput out{"", finished(partial(text))};
    const size_t first = text.find(marker_);
    out.content = out.calls.empty() ? text : rtrim(std::string_view(text).substr(0, first));
    return out;
  }
  std::vector<PartialToolCall> partial(std::string_view text) const override {
    static constexpr std::string_view kSep = "<｜tool▁sep｜>";
    std::vector<PartialToolCall> calls;
    for (const Block& call : blocks(text, "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>")) {
      const size_t sep = call.body.find(kSep);
      if (sep == std::string::npos) break;
      std::string_view rest = std::string_view(call.body).substr(sep + kSep.size());
      const size_t nl = rest.find('\n');
      if (nl == std::string_view::npos && !call.closed) break;  // the name is not complete yet
      std::string_view args = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
      if (args.starts_with("```json")) args.remove_prefix(7);
      PartialToolCall c = json_arguments(trim(rest.substr(0, nl)), args);
      if (call.closed && !c.complete && c.arguments.empty()) c = {c.name, "{}", true};
      calls.push_back(std::move(c));
    }
    return calls;
  }
};

// Python literals (strings, numbers, True/False/None, lists, dicts, tuples) as JSON.
class PyLiteral {
 public:
  explicit PyLiteral(std::string_view s) : s_(s) {}
  std::optional<json> value() {
    blank();
    if (at_end()) return std::nullopt;
    const char c = s_[i_];
    if (c == '"' || c == '\'') return string();
    if (c == '[' || c == '(') return list(c == '[' ? ']' : ')');
    if (c == '{') return dict();
    return word();
  }
  bool eat(char c) {
    blank();
    if (at_end() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  std::string name() {
    blank();
    const size_t b = i_;
    while (!at_end() &&
           (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '.')) {
      ++i_;
    }
    return std::string(s_.substr(b, i_ - b));
  }
  bool at_end() const { return i_ >= s_.size(); }
  void blank() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }

 private:
  std::optional<json> string() {
    const char q = s_[i_++];
    std::string out;
    while (!at_end() && s_[i_] != q) {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) {
        const char e = s_[++i_];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        out += s_[i_];
      }
      ++i_;
    }
    if (at_end()) return std::nullopt;
    ++i_;
    return json(out);
  }
  std::optional<json> list(char close) {
    ++i_;
    json out = json::array();
    while (!eat(close)) {
      auto v = value();
      if (!v) return std::nullopt;
      out.push_back(std::move(*v));
      if (!eat(',') && !(blank(), !at_end() && s_[i_] == close)) return std::nullopt;
    }
    return out;
  }
  std::optional<json> dict() {
    ++i_;
    json out = json::object();
    while (!eat('}')) {
      auto k = value();
      if (!k || !k->is_string() || !eat(':')) return std::nullopt;
      auto v = value();
      if (!v) return std::nullopt;
      out[k->get<std::string>()] = std::move(*v);
      if (!eat(',') && !(blank(), !at_end() && s_[i_] == '}')) return std::nullopt;
    }
    return out;
  }
  std::optional<json> word() {
    const std::string w = name_or_number();
    if (w == "True") return json(true);
    if (w == "False") return json(false);
    if (w == "None") return json(nullptr);
    const json n = json::parse(w, nullptr, false);
    if (n.is_discarded() || !n.is_number()) return std::nullopt;
    return n;
  }
  std::string name_or_number() {
    const size_t b = i_;
    while (!at_end() && (std::isalnum(static_cast<unsigned char>(s_[i_])) ||
                         std::string_view("_.+-").find(s_[i_]) != std::string_view::npos)) {
      ++i_;
    }
    return std::string(s_.substr(b, i_ - b));
  }

  std::string_view s_;
  size_t i_ = 0;
};

// Pythonic (Llama 3.2/4): the whole output is [f(a=1, b="x"), g()].
class PythonicParser : public ToolCallParser {
 public:
  ParsedToolOutput parse(const std::string& text) const override {
    std::string body = trim(text);
    if (body.starts_with("<|python_start|>")) body = trim(body.substr(16));
    if (body.ends_with("<|python_end|>")) body = trim(body.substr(0, body.size() - 14));
    ParsedToolOutput out{text, {}};
    PyLiteral p(body);
    if (!p.eat('[')) return out;
    std::vector<ToolCall> calls;
    while (!p.eat(']')) {
      std::optional<ToolCall> call = one_call(p);
      if (!call) return out;
      calls.push_back(std::move(*call));
      p.eat(',');
    }
    p.blank();
    if (!p.at_end()) return out;
    return {"", std::move(calls)};
  }
  size_t call_start(std::string_view text) const override {
    const size_t b = text.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return std::string_view::npos;
    return text[b] == '[' || text[b] == '<' ? 0 : std::string_view::npos;
  }
  // Each call once its closing parenthesis is seen (its arguments whole).
  std::vector<PartialToolCall> partial(std::string_view text) const override {
    std::string body = trim(text);
    if (body.starts_with("<|python_start|>")) body = trim(body.substr(16));
    std::vector<PartialToolCall> calls;
    PyLiteral p(body);
    if (!p.eat('[')) return calls;
    while (std::optional<ToolCall> call = one_call(p)) {
      calls.push_back({call->name, call->arguments, true});
      p.eat(',');
    }
    return calls;
  }

 private:
  static std::optional<ToolCall> one_call(PyLiteral& p) {
    const std::string name = p.name();
    if (name.empty() || !p.eat('(')) return std::nullopt;
    json args = json::object();
    while (!p.eat(')')) {
      const std::string key = p.name();
      if (key.empty() || !p.eat('=')) return std::nullopt;
      auto v = p.value();
      if (!v) return std::nullopt;
      args[key] = std::move(*v);
      p.eat(',');
    }
    return ToolCall{name, dump(args)};
  }
};

const std::map<std::string, const ToolCallParser*, std::less<>>& parsers() {
  static const HermesParser hermes;
  static const Llama3JsonParser llama3;
  static const MistralParser mistral;
  static const Qwen3CoderParser qwen3_coder;
  static const DeepSeekV3Parser deepseek_v3;
  static const PythonicParser pythonic;
  static const std::map<std::string, const ToolCallParser*, std::less<>> all = {
      {"hermes", &hermes},           {"qwen", &hermes},       {"llama3_json", &llama3},
      {"llama4_json", &llama3},      {"mistral", &mistral},   {"qwen3_coder", &qwen3_coder},
      {"deepseek_v3", &deepseek_v3}, {"pythonic", &pythonic}, {"llama4_pythonic", &pythonic}};
  return all;
}

}  // namespace

size_t marker_start(std::string_view text, std::string_view marker) {
  if (const size_t at = text.find(marker); at != std::string_view::npos) return at;
  for (size_t n = std::min(marker.size() - 1, text.size()); n > 0; --n) {
    if (text.substr(text.size() - n) == marker.substr(0, n)) return text.size() - n;
  }
  return std::string_view::npos;
}

const ToolCallParser* find_tool_call_parser(std::string_view name) {
  const auto it = parsers().find(name);
  return it == parsers().end() ? nullptr : it->second;
}

std::string tool_call_parser_names() {
  std::string names;
  for (const auto& [name, parser] : parsers()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

}  // namespace shardlm::server
