// Sequence filters (join, map, selectattr, sort, unique, dictsort, ...) and the filter registry.
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "template/evaluator.h"
#include "template/filters.h"
#include "template/operators.h"
#include "template/string_ops.h"
#include "template/template_error.h"

namespace shardlm::tmpl {

const Value* filter_arg(const CallArgs& args, size_t index, const char* name) {
  if (index < args.positional.size()) return &args.positional[index];
  return args.kwarg(name);
}

Value lookup_attribute_path(const Value& object, const std::string& path) {
  Value current = object;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    current = numeric ? get_item(current, Value::integer(std::stoll(part)))
                      : get_item(current, Value::string(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

namespace {

// jinja2's select, map, unique, items and batch are generators, so their errors surface only when
// the result is iterated. They run eagerly here, and an error is kept for that moment.
template <typename Body>
Value as_generator(Body body) {
  try {
    return body();
  } catch (const EvalFailure& e) {
    return Value::failed_iterator(e.what());
  }
}

CallArgs tail_args(const CallArgs& args, size_t from) {
  CallArgs out;
  for (size_t i = from; i < args.positional.size(); ++i)
    out.positional.push_back(args.positional[i]);
  out.keyword = args.keyword;
  return out;
}

Value f_join(Evaluator& ev, const Value& v, const CallArgs& args) {
  const Value* sep = filter_arg(args, 0, "d");
  const Value* attribute = filter_arg(args, 1, "attribute");
  std::string separator = sep ? sep->str() : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    out += (attribute ? lookup_attribute_path(item, attribute->str()) : item).str();
    ev.check_size(out.size());
  }
  return Value::string(std::move(out));
}

Value f_first(Evaluator&, const Value& v, const CallArgs&) {
  ValueList items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Evaluator&, const Value& v, const CallArgs&) {
  if (v.is_iterator()) eval_fail("'generator' object is not reversible");
  ValueList items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_list(Evaluator&, const Value& v, const CallArgs&) {
  return Value::list(iterate(v));
}

Value items_of(const Value& v) {
  if (v.is_undefined()) return Value::iterator({});
  if (!v.is_dict()) eval_fail("items filter: can only get item pairs from a mapping");
  ValueList out;
  for (const auto& [key, value] : v.as_dict().items())
    out.push_back(Value::list({key, value}, true));
  return Value::iterator(std::move(out));
}

Value f_items(Evaluator&, const Value& v, const CallArgs&) {
  return as_generator([&] { return items_of(v); });
}

Value f_reverse(Evaluator&, const Value& v, const CallArgs&) {
  if (v.is_string()) {
    ValueList chars = iterate(v);
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->as_string();
    return Value::string(std::move(out));
  }
  if (v.is_iterator()) eval_fail("'generator' object is not reversible");
  ValueList items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::iterator(std::move(items));
}

// select/reject/selectattr/rejectattr share this: keep items whose test result equals `keep`.
// As in jinja2, a false subject (none, undefined, 0, "") gives an empty result before the
// arguments are even looked at.
Value filter_by_test(Evaluator& ev, const Value& v, const CallArgs& args, bool by_attribute,
                     bool keep) {
  if (!v.truthy()) return Value::iterator({});
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) eval_fail("selectattr/rejectattr need an attribute name");
    attribute = args.positional[next++].str();
  }
  std::string test;
  if (next < args.positional.size()) test = args.positional[next++].str();
  CallArgs test_args = tail_args(args, next);
  ValueList out;
  for (const Value& item : iterate(v)) {
    Value subject = by_attribute ? lookup_attribute_path(item, attribute) : item;
    bool result = test.empty() ? subject.truthy() : ev.apply_test(test, subject, test_args);
    if (result == keep) out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value f_select(Evaluator& ev, const Value& v, const CallArgs& a) {
  return as_generator([&] { return filter_by_test(ev, v, a, false, true); });
}
Value f_reject(Evaluator& ev, const Value& v, const CallArgs& a) {
  return as_generator([&] { return filter_by_test(ev, v, a, false, false); });
}
Value f_selectattr(Evaluator& ev, const Value& v, const CallArgs& a) {
  return as_generator([&] { return filter_by_test(ev, v, a, true, true); });
}
Value f_rejectattr(Evaluator& ev, const Value& v, const CallArgs& a) {
  return as_generator([&] { return filter_by_test(ev, v, a, true, false); });
}

// map(filter, ...) or map(attribute=..., default=...); a false subject maps to nothing.
Value map_items(Evaluator& ev, const Value& v, const CallArgs& args) {
  if (!v.truthy()) return Value::iterator({});
  ValueList out;
  if (const Value* attribute = args.kwarg("attribute"); attribute && args.positional.empty()) {
    const Value* def = args.kwarg("default");
    for (const Value& item : iterate(v)) {
      Value x = lookup_attribute_path(item, attribute->str());
      out.push_back(x.is_undefined() && def ? *def : x);
    }
    return Value::iterator(std::move(out));
  }
  if (args.positional.empty()) eval_fail("map filter needs a filter name or attribute=");
  std::string filter = args.positional[0].str();
  CallArgs filter_args = tail_args(args, 1);
  for (const Value& item : iterate(v)) out.push_back(ev.apply_filter(filter, item, filter_args));
  return Value::iterator(std::move(out));
}

Value f_map(Evaluator& ev, const Value& v, const CallArgs& args) {
  return as_generator([&] { return map_items(ev, v, args); });
}

// The sort key jinja2 uses: optionally an attribute, and lower-cased strings unless case_sensitive.
Value sort_key(const Value& item, const Value* attribute, bool case_sensitive) {
  Value key =
      attribute && !attribute->is_none() ? lookup_attribute_path(item, attribute->str()) : item;
  if (!case_sensitive && key.is_string()) return Value::string(py_lower(key.as_string()));
  return key;
}

bool flag(const Value* v) {
  return v && v->truthy();
}

Value f_sort(Evaluator&, const Value& v, const CallArgs& args) {
  bool reverse = flag(filter_arg(args, 0, "reverse"));
  bool case_sensitive = flag(filter_arg(args, 1, "case_sensitive"));
  const Value* attribute = filter_arg(args, 2, "attribute");
  ValueList items = iterate(v);
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i)
    keyed.emplace_back(sort_key(items[i], attribute, case_sensitive), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? value_less(b.first, a.first) : value_less(a.first, b.first);
  });
  ValueList out;
  for (const auto& [key, i] : keyed) out.push_back(items[i]);
  return Value::list(std::move(out));
}

Value f_dictsort(Evaluator&, const Value& v, const CallArgs& args) {
  if (!v.is_dict()) eval_fail("dictsort filter: expected a mapping, got {}", v.type_name());
  bool case_sensitive = flag(filter_arg(args, 0, "case_sensitive"));
  const Value* by = filter_arg(args, 1, "by");
  bool reverse = flag(filter_arg(args, 2, "reverse"));
  bool by_value = by && by->str() == "value";
  if (by && !by_value && by->str() != "key")
    eval_fail("You can only sort by either \"key\" or \"value\"");
  ValueList pairs;
  for (const auto& [key, value] : v.as_dict().items())
    pairs.push_back(Value::list({key, value}, true));
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    Value ka = sort_key(a.as_list()[by_value ? 1 : 0], nullptr, case_sensitive);
    Value kb = sort_key(b.as_list()[by_value ? 1 : 0], nullptr, case_sensitive);
    return reverse ? value_less(kb, ka) : value_less(ka, kb);
  });
  return Value::list(std::move(pairs));
}

Value unique_items(const Value& v, const CallArgs& args) {
  bool case_sensitive = flag(filter_arg(args, 0, "case_sensitive"));
  const Value* attribute = filter_arg(args, 1, "attribute");
  ValueList seen, out;
  for (const Value& item : iterate(v)) {
    Value key = sort_key(item, attribute, case_sensitive);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value f_unique(Evaluator&, const Value& v, const CallArgs& args) {
  return as_generator([&] { return unique_items(v, args); });
}

Value extreme(const Value& v, const CallArgs& args, bool want_max) {
  bool case_sensitive = flag(filter_arg(args, 0, "case_sensitive"));
  const Value* attribute = filter_arg(args, 1, "attribute");
  ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    Value a = sort_key(items[i], attribute, case_sensitive);
    Value b = sort_key(items[best], attribute, case_sensitive);
    if (want_max ? value_less(b, a) : value_less(a, b)) best = i;
  }
  return items[best];
}

Value f_min(Evaluator&, const Value& v, const CallArgs& args) {
  return extreme(v, args, false);
}
Value f_max(Evaluator&, const Value& v, const CallArgs& args) {
  return extreme(v, args, true);
}

Value f_sum(Evaluator& ev, const Value& v, const CallArgs& args) {
  const Value* attribute = filter_arg(args, 0, "attribute");
  const Value* start = filter_arg(args, 1, "start");
  Value total = start ? *start : Value::integer(0);
  for (const Value& item : iterate(v)) {
    total =
        binary_op(ev, "+", total, attribute ? lookup_attribute_path(item, attribute->str()) : item);
  }
  return total;
}

Value f_attr(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* name = filter_arg(args, 0, "name");
  if (!name) eval_fail("attr filter needs an attribute name");
  return get_attr(v, name->str());
}

Value batch_items(const Value& v, const CallArgs& args) {
  const Value* size_v = filter_arg(args, 0, "linecount");
  const Value* fill = filter_arg(args, 1, "fill_with");
  int64_t size = size_v ? size_v->as_int() : 0;
  if (size <= 0) eval_fail("batch size must be positive");
  ValueList out, current;
  for (const Value& item : iterate(v)) {
    current.push_back(item);
    if (static_cast<int64_t>(current.size()) == size) {
      out.push_back(Value::list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    while (fill && static_cast<int64_t>(current.size()) < size) current.push_back(*fill);
    out.push_back(Value::list(std::move(current)));
  }
  return Value::iterator(std::move(out));
}

Value f_batch(Evaluator&, const Value& v, const CallArgs& args) {
  return as_generator([&] { return batch_items(v, args); });
}

const FilterTable& filter_table() {
  static const FilterTable table = [] {
    FilterTable t;
    register_text_filters(t);
    register_sequence_filters(t);
    return t;
  }();
  return table;
}

}  // namespace

void register_sequence_filters(FilterTable& t) {
  t["join"] = f_join;
  t["first"] = f_first;
  t["last"] = f_last;
  t["list"] = f_list;
  t["items"] = f_items;
  t["reverse"] = f_reverse;
  t["select"] = f_select;
  t["reject"] = f_reject;
  t["selectattr"] = f_selectattr;
  t["rejectattr"] = f_rejectattr;
  t["map"] = f_map;
  t["sort"] = f_sort;
  t["dictsort"] = f_dictsort;
  t["unique"] = f_unique;
  t["min"] = f_min;
  t["max"] = f_max;
  t["sum"] = f_sum;
  t["attr"] = f_attr;
  t["batch"] = f_batch;
}

// Parameter names after the subject, as jinja2 (and transformers, for tojson) declare them. Filters
// taking *args (map, select, format, ...) are absent and accept anything.
const std::unordered_map<std::string, std::vector<std::string>>& filter_signatures() {
  static const std::unordered_map<std::string, std::vector<std::string>> table = {
      {"trim", {"chars"}},
      {"length", {}},
      {"count", {}},
      {"upper", {}},
      {"lower", {}},
      {"capitalize", {}},
      {"title", {}},
      {"string", {}},
      {"safe", {}},
      {"escape", {}},
      {"e", {}},
      {"default", {"default_value", "boolean"}},
      {"d", {"default_value", "boolean"}},
      {"tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}},
      {"replace", {"old", "new", "count"}},
      {"int", {"default", "base"}},
      {"float", {"default"}},
      {"indent", {"width", "first", "blank"}},
      {"center", {"width"}},
      {"abs", {}},
      {"round", {"precision", "method"}},
      {"wordcount", {}},
      {"join", {"d", "attribute"}},
      {"first", {}},
      {"last", {}},
      {"list", {}},
      {"items", {}},
      {"reverse", {}},
      {"sort", {"reverse", "case_sensitive", "attribute"}},
      {"dictsort", {"case_sensitive", "by", "reverse"}},
      {"unique", {"case_sensitive", "attribute"}},
      {"min", {"case_sensitive", "attribute"}},
      {"max", {"case_sensitive", "attribute"}},
      {"sum", {"attribute", "start"}},
      {"attr", {"name"}},
      {"batch", {"linecount", "fill_with"}},
  };
  return table;
}

void check_filter_args(const std::string& name, const CallArgs& args) {
  const auto& table = filter_signatures();
  auto it = table.find(name);
  if (it == table.end()) return;
  const std::vector<std::string>& params = it->second;
  if (args.positional.size() > params.size()) {
    eval_fail("filter '{}' takes at most {} argument(s), {} given", name, params.size(),
              args.positional.size());
  }
  for (const auto& [key, value] : args.keyword) {
    auto p = std::find(params.begin(), params.end(), key);
    if (p == params.end())
      eval_fail("filter '{}' got an unexpected keyword argument '{}'", name, key);
    if (static_cast<size_t>(p - params.begin()) < args.positional.size()) {
      eval_fail("filter '{}' got multiple values for argument '{}'", name, key);
    }
  }
}

const FilterFn* find_filter(const std::string& name) {
  const FilterTable& table = filter_table();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace shardlm::tmpl
