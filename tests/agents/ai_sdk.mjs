// The AI SDK (Vercel's `ai`) as a client of the endpoint, with the README's settings: one
// generateText call with a tool the SDK runs itself, until the model answers (issue 26).
// Run by tests/test_agents_real.py from the agents' npm directory (imports resolve there).
//   EXO_BASE (http://127.0.0.1:PORT/v1), EXO_TOKEN, EXO_MODEL, EXO_API (responses|chat|anthropic),
//   EXO_FILE (the file the tool reads)
import { readFileSync } from "node:fs";
import { generateText, stepCountIs, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { z } from "zod";

const { EXO_BASE, EXO_TOKEN, EXO_MODEL, EXO_API, EXO_FILE } = process.env;
let model;
if (EXO_API === "anthropic") {
  model = createAnthropic({ baseURL: EXO_BASE, apiKey: EXO_TOKEN })(EXO_MODEL);
} else {
  const openai = createOpenAI({ baseURL: EXO_BASE, apiKey: EXO_TOKEN });
  model = EXO_API === "chat" ? openai.chat(EXO_MODEL) : openai.responses(EXO_MODEL);
}
const result = await generateText({
  model,
  prompt: "What does the file say?",
  tools: {
    read_file: tool({
      description: "Read a text file",
      inputSchema: z.object({ path: z.string() }),
      execute: async ({ path }) => readFileSync(path, "utf8"),
    }),
  },
  stopWhen: stepCountIs(3),
  maxRetries: 0,
});
console.log(JSON.stringify({ text: result.text, steps: result.steps.length, file: EXO_FILE }));
