// Language features of the template renderer, each case checked against python jinja2's output
// (tests/data/templates/language_expected.json, made by scripts/gen_template_refs.py).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "template/chat_template.h"

namespace {

using nlohmann::ordered_json;
const std::filesystem::path kRoot = std::filesystem::path(SHARDLM_TEST_DATA) / "templates";

ordered_json load(const std::string& name) {
  std::ifstream in(kRoot / name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ordered_json::parse(ss.str());
}

std::string render(const std::string& source,
                   const ordered_json& context = ordered_json::object()) {
  return shardlm::ChatTemplate(source).render(context);
}

}  // namespace

TEST(TemplateLanguage, FeaturesMatchPythonJinja2) {
  ordered_json spec = load("language_cases.json");
  ordered_json expected = load("language_expected.json");
  ASSERT_EQ(spec["cases"].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string name = expected[i]["name"];
    const std::string source = spec["cases"][i]["template"];
    SCOPED_TRACE(name + ": " + source);
    if (expected[i].contains("error")) {
      EXPECT_THROW(render(source, spec["context"]), shardlm::TemplateError);
      continue;
    }
    try {
      EXPECT_EQ(render(source, spec["context"]), expected[i]["output"].get<std::string>());
    } catch (const shardlm::TemplateError& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST(TemplateLanguage, GenerationTagRendersItsBody) {
  EXPECT_EQ(render("{% generation %}gen {{ 1 }}{% endgeneration %}"), "gen 1");
}

TEST(TemplateLanguage, ToolsAndDocumentsDefaultToNoneLikeTransformers) {
  EXPECT_EQ(render("{{ tools is none }} {{ documents is none }} {{ add_generation_prompt }}"),
            "True True False");
}

TEST(TemplateLanguage, PlainJsonContextWorksToo) {
  nlohmann::json context = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  shardlm::ChatTemplate tmpl("{% for m in messages %}{{ m.role }}:{{ m.content }}{% endfor %}");
  EXPECT_EQ(tmpl.render(context), "user:hi");
}

TEST(TemplateLanguage, ChatmlDefault) {
  ordered_json context = {
      {"messages", ordered_json::array({{{"role", "user"}, {"content", "hi"}}})},
      {"add_generation_prompt", true}};
  EXPECT_EQ(render(shardlm::ChatTemplate::chatml_default(), context),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(TemplateLanguage, RenderIsRepeatableAndConstAcrossThreads) {
  shardlm::ChatTemplate tmpl(
      "{% set ns = namespace(n=0) %}{% for i in range(100) %}{% set ns.n = ns.n + i %}{% endfor "
      "%}{{ ns.n }}");
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) good += tmpl.render(ordered_json::object()) == "4950";
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 200);
}
