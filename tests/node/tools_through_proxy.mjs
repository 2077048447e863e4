// The official Node `openai` client through the ShadowTutor proxy: a tools request (complete
// and streamed, its tool-call deltas assembled as an app does) and a JSON-schema request
// (complete and streamed). Prints one JSON object: what the app got from each call.
// Run by tests/integration/test_node_clients.py: BASE_URL is the proxy's /v1.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: "sk-node", maxRetries: 0 });
const messages = [{ role: "user", content: "book a table for two in Rome" }];
const tools = JSON.parse(process.env.TOOLS);
const responseFormat = JSON.parse(process.env.SCHEMA);
const model = "gpt-4o-mini";

function call(message) {
  const first = message.tool_calls[0];
  return { name: first.function.name, arguments: JSON.parse(first.function.arguments) };
}

async function streamed(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const calls = [];
  let text = "";
  let deltas = 0;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? "";
      for (const d of choice.delta.tool_calls ?? []) {
        deltas += 1;
        calls[d.index] ??= { name: "", arguments: "" };
        calls[d.index].name += d.function?.name ?? "";
        calls[d.index].arguments += d.function?.arguments ?? "";
      }
    }
  }
  return { text, deltas, calls: calls.map((c) => ({ name: c.name, arguments: JSON.parse(c.arguments) })) };
}

const out = {};
const done = await client.chat.completions.create({ model, messages, tools });
out.tools = call(done.choices[0].message);
out.tools_finish = done.choices[0].finish_reason;
out.tools_stream = await streamed({ model, messages, tools });
const json = await client.chat.completions.create({ model, messages, response_format: responseFormat });
out.json = JSON.parse(json.choices[0].message.content);
const jsonStream = await streamed({ model, messages, response_format: responseFormat });
out.json_stream = JSON.parse(jsonStream.text);
console.log(JSON.stringify(out));
