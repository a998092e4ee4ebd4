// serve_openai.mjs: an OpenAI-compatible chat-completions server that
// really generates, with llama.cpp (node-llama-cpp's prebuilt CPU build),
// so that cogumi's API client is tested against real model output.
//
//   node serve_openai.mjs MODEL.gguf [--port 0] [--context 256]
//
// Prints "listening on http://127.0.0.1:PORT/v1" once ready. Serves
// POST /v1/chat/completions (messages rendered as "role: content" lines and
// "assistant:", generation greedy up to max_tokens, default 16, usage
// counted in the model's own tokens) and GET /v1/models. Requests are
// answered one at a time (one context sequence). Errors use OpenAI's shape.
//
// node-llama-cpp is found in $COGUMI_NODE_LLAMA, else next to this file.
import {createRequire} from "node:module";
import http from "node:http";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

function parseArgs(argv) {
    const opts = {model: "", port: 0, context: 256};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--port") opts.port = Number(argv[++i]);
        else if (a === "--context") opts.context = Number(argv[++i]);
        else if (a.startsWith("--")) throw new Error(`unknown flag ${a}`);
        else if (opts.model === "") opts.model = a;
        else throw new Error(`unexpected argument ${a}`);
    }
    if (opts.model === "") throw new Error("usage: serve_openai.mjs MODEL.gguf [--port 0] [--context 256]");
    return opts;
}

async function importNodeLlamaCpp() {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const dir = process.env.COGUMI_NODE_LLAMA || here;
    const entry = createRequire(path.join(dir, "package.json")).resolve("node-llama-cpp");
    return import(pathToFileURL(entry).href);
}

function send(res, status, obj) {
    const body = JSON.stringify(obj);
    res.writeHead(status, {"Content-Type": "application/json", "Content-Length": Buffer.byteLength(body)});
    res.end(body);
}

function error(res, status, type, message) {
    send(res, status, {error: {message, type, param: null, code: null}});
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const {getLlama, LlamaLogLevel} = await importNodeLlamaCpp();
    const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
    const model = await llama.loadModel({modelPath: opts.model});
    const context = await model.createContext({contextSize: opts.context, batchSize: 64, threads: 2});
    const sequence = context.getSequence();
    let queue = Promise.resolve();
    let served = 0;

    async function complete(req) {
        const prompt = req.messages.map((m) => `${m.role}: ${m.content}\n`).join("") + "assistant:";
        let tokens = model.tokenize(prompt);
        if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) tokens.unshift(model.tokens.bos);
        const maxTokens = req.max_tokens ?? 16;
        // Keep the end of a long prompt: it must leave room for the answer.
        if (tokens.length + maxTokens > opts.context) tokens = tokens.slice(tokens.length + maxTokens - opts.context);
        await sequence.clearHistory();
        const generated = [];
        let finish = "length";
        for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
            if (token === model.tokens.eos) {
                finish = "stop";
                break;
            }
            generated.push(token);
            if (generated.length >= maxTokens) break;
        }
        served++;
        return {
            id: `chatcmpl-llama-${served}`, object: "chat.completion", created: Math.floor(Date.now() / 1000), model: req.model,
            choices: [{index: 0, message: {role: "assistant", content: model.detokenize(generated)}, finish_reason: finish}],
            usage: {prompt_tokens: tokens.length, completion_tokens: generated.length, total_tokens: tokens.length + generated.length},
        };
    }

    const server = http.createServer((req, res) => {
        if (req.method === "GET" && req.url === "/v1/models") {
            return send(res, 200, {object: "list", data: [{id: path.basename(opts.model), object: "model", created: 0, owned_by: "llama.cpp"}]});
        }
        if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
            return error(res, 404, "invalid_request_error", `Unknown request URL: ${req.method} ${req.url}`);
        }
        const chunks = [];
        req.on("data", (c) => chunks.push(c));
        req.on("end", () => {
            let body;
            try {
                body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch (err) {
                return error(res, 400, "invalid_request_error", `We could not parse the JSON body of your request: ${err.message}`);
            }
            if (!Array.isArray(body.messages) || body.messages.length === 0) {
                return error(res, 400, "invalid_request_error", "'messages' must contain at least one message");
            }
            queue = queue.then(() => complete(body)).then(
                (out) => send(res, 200, out),
                (err) => error(res, 500, "server_error", String(err?.message ?? err)),
            );
        });
    });
    server.listen(opts.port, "127.0.0.1", () => {
        process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/v1\n`);
    });
    const stop = async () => {
        server.close();
        await context.dispose();
        await model.dispose();
        await llama.dispose();
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((err) => {
    process.stderr.write(`serve_openai: ${err?.stack ?? err}\n`);
    process.exit(1);
});
