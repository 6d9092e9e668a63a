// Walks a macro's defaults and body in jinja2's visiting order, recording reads of varargs, kwargs
// and caller; an assignment or parameter of the same name first takes the name out of the running
// (jinja2's UndeclaredNameVisitor).
#include "template/macro_scan.h"

#include <set>
#include <string>

namespace shardlm::tmpl {

namespace {

class SpecialNameScan {
 public:
  void param(const std::string& name) { candidates_.erase(name); }
  void store(const std::string& name) { candidates_.erase(name); }

  void expr(const Expr* e) {
    if (!e) return;
    if (e->kind == ExprKind::Name && candidates_.count(e->name)) found_.insert(e->name);
    expr(e->object.get());
    expr(e->index.get());
    expr(e->start.get());
    expr(e->stop.get());
    expr(e->step.get());
    for (const ExprPtr& a : e->args) expr(a.get());
    for (const auto& [key, value] : e->kwargs) expr(value.get());
  }

  void body(const Body& statements) {
    for (const StmtPtr& s : statements) stmt(*s);
  }

  void macro_like(const Stmt& s) {
    for (const MacroParam& p : s.params) param(p.name);
    for (const MacroParam& p : s.params) expr(p.default_value.get());
    body(s.body);
  }

  void stmt(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::For:
        for (const std::string& t : s.targets) store(t);
        expr(s.expr.get());
        body(s.body);
        body(s.otherwise);
        expr(s.filter.get());
        return;
      case StmtKind::Set:
        if (s.attr.empty()) {
          for (const std::string& t : s.targets) store(t);
        }
        expr(s.expr.get());
        return;
      case StmtKind::SetBlock:
        store(s.text);
        for (const ExprPtr& f : s.filters) expr(f.get());
        body(s.body);
        return;
      case StmtKind::Macro:
        store(s.text);
        macro_like(s);
        return;
      case StmtKind::CallBlock:
        expr(s.expr.get());
        macro_like(s);
        return;
      case StmtKind::FilterBlock:
        body(s.body);
        for (const ExprPtr& f : s.filters) expr(f.get());
        return;
      case StmtKind::With:
        for (const std::string& t : s.targets) store(t);
        for (const ExprPtr& v : s.values) expr(v.get());
        body(s.body);
        return;
      default:
        expr(s.expr.get());
        body(s.body);
        body(s.otherwise);
    }
  }

  bool found(const std::string& name) const { return found_.count(name) > 0; }

 private:
  std::set<std::string> candidates_{"varargs", "kwargs", "caller"};
  std::set<std::string> found_;
};

}  // namespace

void scan_macro_specials(Stmt& stmt) {
  SpecialNameScan scan;
  scan.macro_like(stmt);
  stmt.catch_varargs = scan.found("varargs");
  stmt.catch_kwargs = scan.found("kwargs");
  stmt.accesses_caller = scan.found("caller");
}

}  // namespace shardlm::tmpl
