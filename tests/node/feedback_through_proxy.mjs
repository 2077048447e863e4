// The official Node `openai` client through the ShadowTutor proxy: each answer's id from the
// X-ShadowTutor-Request-Id header (a complete answer and a stream, with .withResponse()), then
// the user's feedback posted with it to the proxy's /v1/feedback. Prints one JSON object.
// Run by tests/integration/test_node_clients.py: BASE_URL is the proxy's /v1.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: "sk-node", maxRetries: 0 });
const messages = [{ role: "user", content: "hello from node" }];
const model = "gpt-4o-mini";
const header = "x-shadowtutor-request-id";

const { data, response } = await client.chat.completions.create({ model, messages }).withResponse();
const streamed = await client.chat.completions.create({ model, messages, stream: true }).withResponse();
let text = "";
for await (const chunk of streamed.data) text += chunk.choices[0]?.delta?.content ?? "";

async function feedback(event) {
  const res = await fetch(`${process.env.BASE_URL}/feedback`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(event),
  });
  return { status: res.status, body: await res.json() };
}

const ids = [response.headers.get(header), streamed.response.headers.get(header)];
const out = {
  answer: data.choices[0].message.content,
  streamed: text,
  ids,
  thumbs: await feedback({ request_id: ids[0], kind: "thumbs", value: "down", comment: "from node" }),
  rating: await feedback({ request_id: ids[1], kind: "rating", value: 5 }),
  again: await feedback({ request_id: ids[0], kind: "thumbs", value: "down", comment: "from node" }),
};
console.log(JSON.stringify(out));
