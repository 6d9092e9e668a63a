// The differential fuzzer's corpus: random template expressions and statements with Python
// jinja2's output (or error) for each, made by scripts/template_diff_fuzz.py into
// tests/data/templates/diff_corpus.json. No Python is needed here.
//
// TemplateDiffCorpus.BatchRender is the fuzzer's way in: with SHARDLM_TEMPLATE_BATCH_IN set, it
// renders every case of that file and writes the results to SHARDLM_TEMPLATE_BATCH_OUT;
// otherwise it is skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "template/chat_template.h"

namespace {

using nlohmann::ordered_json;
const std::filesystem::path kRoot = std::filesystem::path(SHARDLM_TEST_DATA) / "templates";

ordered_json load_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ordered_json::parse(ss.str());
}

// {"output": text} or {"error": message}, as the fuzzer compares them.
ordered_json render_case(const std::string& source, const ordered_json& context) {
  try {
    return {{"output", shardlm::ChatTemplate(source).render(context)}};
  } catch (const shardlm::TemplateError& e) {
    return {{"error", e.detail()}};
  }
}

}  // namespace

TEST(TemplateDiffCorpus, MatchesPythonJinja2) {
  ordered_json corpus = load_json(kRoot / "diff_corpus.json");
  const ordered_json& context = corpus["context"];
  ASSERT_GT(corpus["cases"].size(), 100u);
  for (const ordered_json& c : corpus["cases"]) {
    const std::string source = c["template"];
    SCOPED_TRACE(source);
    ordered_json got = render_case(source, context);
    if (c.contains("error")) {
      EXPECT_TRUE(got.contains("error"))
          << "jinja2 raises " << c["error"] << ", shardlm renders " << got["output"];
    } else if (got.contains("error")) {
      ADD_FAILURE() << "jinja2 renders " << c["output"] << ", shardlm raises " << got["error"];
    } else {
      EXPECT_EQ(got["output"].get<std::string>(), c["output"].get<std::string>());
    }
  }
}

TEST(TemplateDiffCorpus, BatchRender) {
  const char* in = std::getenv("SHARDLM_TEMPLATE_BATCH_IN");
  const char* out = std::getenv("SHARDLM_TEMPLATE_BATCH_OUT");
  if (!in || !out) GTEST_SKIP() << "the differential fuzzer's batch mode (see file comment)";
  ordered_json batch = load_json(in);
  ordered_json results = ordered_json::array();
  for (const ordered_json& c : batch["cases"])
    results.push_back(render_case(c["template"].get<std::string>(), batch["context"]));
  std::ofstream(out) << results.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}
