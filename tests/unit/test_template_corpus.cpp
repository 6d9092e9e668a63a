// Renders every real chat template in tests/data/templates/sources over every conversation and
// compares byte for byte with Python jinja2's output (scripts/gen_template_refs.py made it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "template/chat_template.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

const fs::path kRoot = fs::path(SHARDLM_TEST_DATA) / "templates";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> list(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ext) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ordered_json make_context(const ordered_json& meta, const ordered_json& conversation, bool gen) {
  ordered_json context;
  context["messages"] = conversation["messages"];
  context["tools"] = conversation.contains("tools") ? conversation["tools"] : ordered_json(nullptr);
  context["add_generation_prompt"] = gen;
  context["bos_token"] = meta.value("bos_token", "");
  context["eos_token"] = meta.value("eos_token", "");
  context["date_string"] = "26 Jul 2024";
  if (conversation.contains("vars")) {
    for (const auto& [key, value] : conversation["vars"].items()) context[key] = value;
  }
  return context;
}

struct Tally {
  int renders = 0, errors = 0, failures = 0;
};

void check_case(const std::string& name, const shardlm::ChatTemplate* tmpl,
                const std::string& syntax_error, const ordered_json& meta,
                const fs::path& conv_path, bool gen, Tally& tally) {
  ordered_json conversation = ordered_json::parse(read_file(conv_path));
  std::string stem = conv_path.stem().string() + (gen ? ".gen" : ".nogen");
  fs::path expected_dir = kRoot / "expected" / name;
  fs::path txt = expected_dir / (stem + ".txt");
  fs::path err = expected_dir / (stem + ".err");
  std::string label = name + " / " + stem;
  if (fs::exists(err)) {
    ++tally.errors;
    if (!tmpl) return;  // a syntax error: python raised too
    try {
      std::string out = tmpl->render(make_context(meta, conversation, gen));
      ADD_FAILURE() << label << ": python raised (" << read_file(err) << ") but we rendered:\n"
                    << out;
      ++tally.failures;
    } catch (const shardlm::TemplateError&) {
    }
    return;
  }
  ++tally.renders;
  ASSERT_TRUE(fs::exists(txt)) << label << ": no expected output";
  if (!tmpl) {
    ADD_FAILURE() << label << ": syntax error: " << syntax_error;
    ++tally.failures;
    return;
  }
  try {
    std::string out = tmpl->render(make_context(meta, conversation, gen));
    std::string want = read_file(txt);
    if (out != want) {
      ++tally.failures;
      ADD_FAILURE() << label << ": output differs\n--- want ---\n"
                    << want << "\n--- got ---\n"
                    << out;
    }
  } catch (const shardlm::TemplateError& e) {
    ++tally.failures;
    ADD_FAILURE() << label << ": unexpected error: " << e.what();
  }
}

}  // namespace

TEST(TemplateCorpus, MatchesPythonJinja2ByteForByte) {
  ordered_json meta_all = ordered_json::parse(read_file(kRoot / "sources.json"));
  std::vector<fs::path> conversations = list(kRoot / "conversations", ".json");
  std::vector<fs::path> sources = list(kRoot / "sources", ".jinja");
  EXPECT_GE(sources.size(), 20u);
  ASSERT_GE(conversations.size(), 8u);
  Tally tally;
  for (const fs::path& source : sources) {
    std::string name = source.stem().string();
    ASSERT_TRUE(meta_all.contains(name)) << name << " missing from sources.json";
    std::unique_ptr<shardlm::ChatTemplate> tmpl;
    std::string syntax_error;
    try {
      tmpl = std::make_unique<shardlm::ChatTemplate>(read_file(source));
    } catch (const shardlm::TemplateError& e) {
      syntax_error = e.what();
    }
    for (const fs::path& conv : conversations) {
      for (bool gen : {true, false})
        check_case(name, tmpl.get(), syntax_error, meta_all[name], conv, gen, tally);
    }
  }
  std::printf(
      "[corpus] %zu templates x %zu conversations x 2: %d byte-identical renders, %d expected "
      "errors, %d failures\n",
      sources.size(), conversations.size(), tally.renders - tally.failures, tally.errors,
      tally.failures);
}

TEST(TemplateCorpus, ChatmlDefaultIsInCorpus) {
  EXPECT_EQ(read_file(kRoot / "sources" / "shardlm-chatml-default.jinja"),
            std::string(shardlm::ChatTemplate::chatml_default()));
}
