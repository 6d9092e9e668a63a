// Evaluator: renders a parsed template against a context. One Evaluator per render call, so the
// parsed tree is shared read-only and renders can run on many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "template/ast.h"
#include "template/value.h"

namespace shardlm::tmpl {

// Bounds that keep a hostile template from hanging or exhausting memory.
struct RenderLimits {
  size_t max_output_bytes = 64u << 20;  // also caps any single string or list built while rendering
  uint64_t max_steps = 50'000'000;      // statements, loop iterations and expression nodes
  int max_call_depth = 64;              // nested macro calls
};

// A variable scope. Loops, macros and `with` open child scopes; `if` does not (as in jinja2).
class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
  const Value* lookup(const std::string& name) const;
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  std::shared_ptr<Scope> parent_;
  std::unordered_map<std::string, Value> vars_;
};

class Evaluator {
 public:
  explicit Evaluator(const RenderLimits& limits) : limits_(limits) {}

  std::string render(const Body& body, std::shared_ptr<Scope> globals);

  Value eval(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Value call(const Value& callee, const CallArgs& args);
  // Applies a filter or test by name (used by map/select and friends too).
  Value apply_filter(const std::string& name, const Value& subject, const CallArgs& args);
  bool apply_test(const std::string& name, const Value& subject, const CallArgs& args);

  const RenderLimits& limits() const { return limits_; }
  void check_size(size_t bytes) const;  // throws EvalFailure past max_output_bytes
  void step();                          // counts one unit of work against max_steps

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, const std::shared_ptr<Scope>& scope);
  Flow exec(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  Flow exec_if(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  Flow exec_for(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  void exec_set(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  void exec_set_block(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  void exec_macro(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  void exec_call_block(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  void exec_filter_block(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  Flow exec_with(const Stmt& stmt, const std::shared_ptr<Scope>& scope);

  std::string capture(const Body& body, const std::shared_ptr<Scope>& scope);
  Value apply_filter_chain(const std::vector<ExprPtr>& filters, Value value,
                           const std::shared_ptr<Scope>& scope);
  Value make_macro(const Stmt& stmt, std::shared_ptr<Scope> defining_scope, std::string name);
  void bind_macro_args(const Stmt& stmt, const std::string& name, const CallArgs& args,
                       const std::shared_ptr<Scope>& local);
  Value call_macro(const Stmt& stmt, const std::shared_ptr<Scope>& defining_scope,
                   const std::string& name, const CallArgs& args);
  void emit(std::string_view text);

  Value eval_inner(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Value eval_call(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Value eval_binary(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Value eval_collection(const Expr& expr, const std::shared_ptr<Scope>& scope);
  CallArgs eval_args(const Expr& expr, const std::shared_ptr<Scope>& scope);
  void bind_targets(const std::vector<std::string>& targets, const Value& value, Scope& scope);

  RenderLimits limits_;
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
};

}  // namespace shardlm::tmpl
