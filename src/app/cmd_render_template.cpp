// `shardlm render-template`: renders a model's (or a file's) chat template over a conversation and
// prints the exact prompt text, for checking what a model will see.
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands.h"
#include "core/error.h"
#include "model/chat_template_source.h"
#include "template/chat_template.h"

namespace shardlm::app {

namespace {

using nlohmann::ordered_json;

struct RenderTemplateOptions {
  std::string model;
  std::string template_file;
  std::string messages_file;
  std::string tools_file;
  bool add_generation_prompt = false;
  std::vector<std::string> vars;
};

std::string read_text(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {} file '{}'", what, path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ordered_json read_json(const std::string& path, const char* what) {
  try {
    return ordered_json::parse(read_text(path, what));
  } catch (const ordered_json::parse_error& e) {
    fail("{} file '{}' is not valid JSON: {}", what, path, e.what());
  }
}

// --messages takes a JSON array of messages, or an object with "messages" (and optionally "tools").
void load_messages(const RenderTemplateOptions& o, ordered_json& context) {
  ordered_json doc = read_json(o.messages_file, "--messages");
  if (doc.is_object() && doc.contains("messages")) {
    context["messages"] = doc["messages"];
    if (doc.contains("tools")) context["tools"] = doc["tools"];
  } else if (doc.is_array()) {
    context["messages"] = doc;
  } else {
    fail("--messages file '{}' must hold a JSON array of messages or an object with \"messages\"",
         o.messages_file);
  }
}

void apply_var(const std::string& assignment, ordered_json& context) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail("--var '{}' must look like KEY=JSON", assignment);
  std::string key = assignment.substr(0, eq);
  try {
    context[key] = ordered_json::parse(assignment.substr(eq + 1));
  } catch (const ordered_json::parse_error&) {
    fail("--var {}: value is not JSON (write strings quoted, e.g. {}='\"text\"')", key, key);
  }
}

void run_render_template(const RenderTemplateOptions& o) {
  if (o.model.empty() == o.template_file.empty())
    fail("give exactly one of --model M or --template FILE");
  ordered_json context = ordered_json::object();
  std::string source;
  if (!o.model.empty()) {
    ChatTemplateInfo info = load_chat_template_info(o.model);
    if (info.source) {
      source = *info.source;
    } else {
      spdlog::warn("model '{}' ships no chat template; using the ChatML default", o.model);
      source = ChatTemplate::chatml_default();
    }
    context["bos_token"] = info.bos_token;
    context["eos_token"] = info.eos_token;
  } else {
    source = read_text(o.template_file, "--template");
  }
  load_messages(o, context);
  if (!o.tools_file.empty()) context["tools"] = read_json(o.tools_file, "--tools");
  context["add_generation_prompt"] = o.add_generation_prompt;
  for (const std::string& v : o.vars) apply_var(v, context);
  ChatTemplate tmpl(std::move(source));
  std::cout << tmpl.render(context) << std::flush;
}

}  // namespace

void add_render_template_command(CLI::App& app) {
  auto options = std::make_shared<RenderTemplateOptions>();
  CLI::App* cmd =
      app.add_subcommand("render-template", "Render a chat template over a conversation");
  cmd->add_option("--model", options->model, "Model: a .gguf file or a Hugging Face directory");
  cmd->add_option("--template", options->template_file, "A Jinja2 chat template file");
  cmd->add_option("--messages", options->messages_file,
                  "JSON file: array of messages (OpenAI format)")
      ->required();
  cmd->add_option("--tools", options->tools_file, "JSON file: array of tool definitions");
  cmd->add_flag("--add-generation-prompt", options->add_generation_prompt,
                "End with the assistant turn's opening");
  cmd->add_option("--var", options->vars, "Extra template variable, KEY=JSON (repeatable)");
  cmd->callback([options] { run_render_template(*options); });
}

}  // namespace shardlm::app
