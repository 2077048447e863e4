// The official Node `@anthropic-ai/sdk` and `openai` clients through the ShadowTutor proxy:
// Claude's Messages API (plain, and streamed with the SDK's stream helper), the Responses API,
// and an embeddings call the proxy forwards (compared with the same call straight to the
// teacher). Prints one JSON object: what the app got.
// Run by tests/integration/test_node_protocols.py: PROXY is the proxy's address (no /v1),
// TEACHER the teacher's OpenAI base URL.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const proxy = process.env.PROXY;
const claude = new Anthropic({ baseURL: proxy, apiKey: "sk-ant-node", maxRetries: 0 });
const messages = [{ role: "user", content: "hello from node" }];
const model = "claude-haiku-4-5";

const message = await claude.messages.create({
  model, max_tokens: 64, system: "Be brief.", messages,
});
const stream = claude.messages.stream({ model, max_tokens: 64, messages });
let streamed = "";
stream.on("text", (text) => { streamed += text; });
const final = await stream.finalMessage();

const openai = new OpenAI({ baseURL: `${proxy}/v1`, apiKey: "sk-node", maxRetries: 0 });
const response = await openai.responses.create({ model: "gpt-4o-mini", input: "hi node" });
const embed = { model: "text-embedding-3-small", input: "x y" };
const direct = new OpenAI({ baseURL: process.env.TEACHER, apiKey: "sk-node", maxRetries: 0 });
const same =
  JSON.stringify(await openai.embeddings.create(embed)) ===
  JSON.stringify(await direct.embeddings.create(embed));

console.log(JSON.stringify({
  message: message.content[0].text,
  streamed,
  final: final.stop_reason,
  response: response.output_text,
  embeddings_same: same,
}));
