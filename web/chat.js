// shardlm's web chat page: the model picker (/v1/models), streaming chat over
// /v1/chat/completions (SSE), a stop button that aborts the fetch (the server sees the disconnect
// and frees the request), sampling settings, tokens per second, and a small markdown renderer that
// builds DOM nodes with textContent only, so model text never becomes HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { history: [], controller: null };

// ---- markdown: fenced code, inline code, bold, italics, headings, lists, paragraphs ----------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Inline spans of one line of text: `code`, **bold**, *italic* (text nodes everywhere else).
function renderInline(parent, text) {
  const pattern = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    const tok = m[0];
    if (tok.startsWith("`")) parent.append(el("code", "", tok.slice(1, -1)));
    else if (tok.startsWith("**")) parent.append(el("strong", "", tok.slice(2, -2)));
    else parent.append(el("em", "", tok.slice(1, -1)));
    last = m.index + tok.length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

// Splits markdown into blocks: {code, lang}, {heading, level}, {list, ordered, items}, {para}.
function parseBlocks(src) {
  const blocks = [];
  const lines = src.split("\n");
  let para = [];
  const flush = () => { if (para.length) blocks.push({ para: para.join("\n") }); para = []; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*```\s*([\w+#.-]*)/);
    if (fence) {
      flush();
      const body = [];
      for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) body.push(lines[i]);
      blocks.push({ code: body.join("\n"), lang: fence[1] });  // an open fence runs to the end
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    if (heading) { flush(); blocks.push({ heading: heading[2], level: heading[1].length }); }
    else if (item) {
      flush();
      const ordered = /\d/.test(item[1]);
      const prev = blocks[blocks.length - 1];
      if (prev && prev.list && prev.ordered === ordered) prev.items.push(item[2]);
      else blocks.push({ list: true, ordered, items: [item[2]] });
    } else if (line.trim() === "") flush();
    else para.push(line);
  }
  flush();
  return blocks;
}

function renderMarkdown(parent, src) {
  parent.replaceChildren();
  for (const b of parseBlocks(src)) {
    if (b.code !== undefined) {
      const pre = el("pre");
      if (b.lang) pre.append(el("span", "lang", b.lang));
      pre.append(el("code", "", b.code));
      parent.append(pre);
    } else if (b.heading !== undefined) {
      const h = el("h" + Math.min(b.level + 2, 6));
      renderInline(h, b.heading);
      parent.append(h);
    } else if (b.list) {
      const list = el(b.ordered ? "ol" : "ul");
      for (const text of b.items) { const li = el("li"); renderInline(li, text); list.append(li); }
      parent.append(list);
    } else {
      const p = el("p");
      renderInline(p, b.para);
      parent.append(p);
    }
  }
}

// ---- messages ----------------------------------------------------------------------------------

function addMessage(role, text) {
  const box = el("div", "msg " + role);
  box.append(el("div", "role", role));
  const reasoning = el("div", "reasoning");
  reasoning.hidden = true;
  const body = el("div", "body");
  box.append(reasoning, body);
  renderMarkdown(body, text);
  $("messages").append(box);
  $("messages").scrollTop = $("messages").scrollHeight;
  return { box, reasoning, body };
}

function setStatus(text) { $("status").textContent = text; }

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

// ---- the API -----------------------------------------------------------------------------------

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api_key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    return `${resp.status}: ${body.error ? body.error.message : JSON.stringify(body)}`;
  } catch (e) {
    return `${resp.status} ${resp.statusText}`;
  }
}

async function loadModels() {
  try {
    const resp = await fetch("/v1/models", { headers: headers() });
    if (!resp.ok) { setStatus("models: " + (await errorText(resp))); return; }
    const select = $("model");
    select.replaceChildren();
    for (const m of (await resp.json()).data) select.append(new Option(m.id, m.id));
    setStatus(select.options.length ? "ready" : "the server lists no models");
  } catch (e) {
    setStatus("models: " + e.message);
  }
}

function numberField(id, parse) {
  const v = parse($(id).value);
  return Number.isFinite(v) ? v : undefined;
}

function requestBody() {
  return {
    model: $("model").value,
    messages: state.history,
    stream: true,
    stream_options: { include_usage: true },
    temperature: numberField("temperature", parseFloat),
    top_p: numberField("top_p", parseFloat),
    max_tokens: numberField("max_tokens", (s) => parseInt(s, 10)),
  };
}

// Yields the JSON payloads of an SSE body ("data: {...}" events; "[DONE]" ends it).
async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

function showRate(stats) {
  const secs = (performance.now() - stats.firstAt) / 1000;
  const rate = stats.tokens > 1 && secs > 0 ? ((stats.tokens - 1) / secs).toFixed(1) : "-";
  const ttft = ((stats.firstAt - stats.startAt) / 1000).toFixed(2);
  setStatus(`${stats.tokens} tokens, ${rate} tok/s, first token after ${ttft} s` +
            (stats.finish ? `, finished: ${stats.finish}` : ""));
}

async function streamReply(view) {
  const stats = { startAt: performance.now(), firstAt: 0, tokens: 0, finish: "" };
  let text = "", reasoning = "";
  const resp = await fetch("/v1/chat/completions", {
    method: "POST", headers: headers(), body: JSON.stringify(requestBody()),
    signal: state.controller.signal,
  });
  if (!resp.ok) throw new Error(await errorText(resp));
  for await (const chunk of sseEvents(resp.body)) {
    if (chunk.error) throw new Error(chunk.error.message);
    if (chunk.usage) stats.tokens = chunk.usage.completion_tokens;
    const choice = chunk.choices && chunk.choices[0];
    if (!choice) { if (stats.firstAt) showRate(stats); continue; }
    const delta = choice.delta || {};
    if (!stats.firstAt) stats.firstAt = performance.now();
    if (delta.content || delta.reasoning_content) stats.tokens++;
    if (delta.reasoning_content) {
      reasoning += delta.reasoning_content;
      view.reasoning.hidden = false;
      view.reasoning.textContent = reasoning;
    }
    if (delta.content) { text += delta.content; view.text = text; renderMarkdown(view.body, text); }
    if (choice.finish_reason) stats.finish = choice.finish_reason;
    showRate(stats);
    $("messages").scrollTop = $("messages").scrollHeight;
  }
  return text;
}

async function send() {
  const prompt = $("input").value;
  if (!prompt.trim() || state.controller) return;
  $("input").value = "";
  state.history.push({ role: "user", content: prompt });
  addMessage("user", prompt);
  const view = addMessage("assistant", "");
  view.text = "";
  view.box.classList.add("streaming");
  state.controller = new AbortController();
  setBusy(true);
  setStatus("waiting for the first token...");
  try {
    await streamReply(view);
  } catch (e) {
    if (e.name === "AbortError") setStatus($("status").textContent + " (stopped)");
    else { view.box.classList.add("error"); view.body.textContent = e.message; setStatus("error"); }
  } finally {
    const text = view.text;
    if (text && !view.box.classList.contains("error")) {
      state.history.push({ role: "assistant", content: text });
    }
    view.box.classList.remove("streaming");
    view.box.classList.add("done");
    state.controller = null;
    setBusy(false);
  }
}

function stop() {
  if (state.controller) state.controller.abort();
}

$("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
});
$("stop").addEventListener("click", stop);
$("clear").addEventListener("click", () => {
  stop();
  state.history = [];
  $("messages").replaceChildren();
  setStatus("new chat");
});
$("api_key").addEventListener("change", loadModels);
loadModels();
