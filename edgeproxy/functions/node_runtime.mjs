// The Node.js runtime process of one function: node node_runtime.mjs /abs/file.js:handler LIMIT
// Speaks the edge's runtime protocol (edgeproxy/functions/protocol.py): frames of a 4-byte
// big-endian length and UTF-8 JSON; stdin carries calls, stdout carries replies only.
// Everything the function writes (console.*, process.stdout) goes to stderr, the edge's log,
// in Lambda's format: "<ISO time>\t<request id>\t<LEVEL>\t<message>".
import fs from "node:fs";
import { pathToFileURL } from "node:url";
import { format } from "node:util";

const spec = process.argv[2];
const file = spec.slice(0, spec.lastIndexOf(":"));
const handlerName = spec.slice(spec.lastIndexOf(":") + 1);
const REPLY_FD = 1;
let requestId = "undefined";

// Replies own fd 1: the function's writes to process.stdout go to stderr instead.
process.stdout.write = process.stderr.write.bind(process.stderr);
for (const [method, level] of [
  ["log", "INFO"], ["info", "INFO"], ["warn", "WARN"], ["error", "ERROR"],
  ["debug", "DEBUG"], ["trace", "TRACE"],
]) {
  console[method] = (...args) => {
    const line = format(...args).replace(/\n/g, "\r");
    process.stderr.write(`${new Date().toISOString()}\t${requestId}\t${level}\t${line}\n`);
  };
}

// A result crosses as the JSON text it was marshalled to, spliced in, never encoded twice.
function send(message) {
  let text;
  if (typeof message?.resultText === "string") {
    const { resultText, ...rest } = message;
    text = `${JSON.stringify(rest).slice(0, -1)},"result":${resultText}}`;
  } else {
    text = JSON.stringify(message);
  }
  const payload = Buffer.from(text, "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length, 0);
  fs.writeSync(REPLY_FD, Buffer.concat([head, payload]));
}

function peakMemoryMb() {
  try {
    const status = fs.readFileSync("/proc/self/status", "utf8");
    const match = /VmHWM:\s+(\d+)/.exec(status);
    if (match) return Math.floor(Number(match[1]) / 1024);
  } catch {}
  return Math.floor(process.resourceUsage().maxRSS / 1024);
}

function errorDetail(error) {
  if (error instanceof Error) {
    return error.message ? `${error.name}: ${error.message}` : error.name;
  }
  // callback("text") or a thrown non-Error: Lambda reports it as the message
  return `Error: ${typeof error === "string" ? error : JSON.stringify(error)}`;
}

function errorReply(error) {
  const stack = error instanceof Error && error.stack ? error.stack : errorDetail(error);
  return { result: null, error: [errorDetail(error), stack], peak_memory_mb: peakMemoryMb(), fatal: false };
}

function monotonicSeconds() {
  // CLOCK_MONOTONIC, the clock of Python's time.monotonic: the edge's deadline holds here.
  return Number(process.hrtime.bigint()) / 1e9;
}

function lambdaContext(state, settle) {
  const deadline = state._deadline;
  return {
    awsRequestId: state._request_id,
    functionName: state.function_name,
    functionVersion: state.function_version,
    invokedFunctionArn: state.invoked_function_arn,
    memoryLimitInMB: state.memory_limit_in_mb,
    logGroupName: state.log_group_name,
    logStreamName: state.log_stream_name,
    identity: undefined,
    clientContext: undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, Math.floor((deadline - monotonicSeconds()) * 1000)),
    // The legacy context methods Lambda still offers.
    succeed: (result) => settle(null, result),
    fail: (error) => settle(error ?? new Error("handler failed")),
    done: (error, result) => settle(error, result),
  };
}

// Lambda's rule: a handler that returns a promise (an async function) settles with it; any
// other handler settles when it calls its callback (never: the call times out).
function invoke(handler, event, state) {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (error, result) => {
      if (settled) return;
      settled = true;
      if (error !== null && error !== undefined) {
        resolve(errorReply(error));
        return;
      }
      let text;
      try {
        text = JSON.stringify(result === undefined ? null : result);
      } catch (marshal) {
        resolve({ result: null, error: [`Runtime.MarshalError: Unable to stringify response body: ${marshal.message}`, ""], peak_memory_mb: peakMemoryMb(), fatal: false });
        return;
      }
      resolve({ resultText: text ?? "null", error: null, peak_memory_mb: peakMemoryMb(), fatal: false });
    };
    uncaught = (error) => settle(error);
    try {
      const returned = handler(event, lambdaContext(state, settle), settle);
      if (returned && typeof returned.then === "function") {
        returned.then((value) => settle(null, value), (error) => settle(error ?? new Error("rejected")));
      }
    } catch (error) {
      settle(error);
    }
  });
}

let uncaught = (error) => {
  process.stderr.write(`${new Date().toISOString()}\t${requestId}\tERROR\tUncaught ${format(error)}\n`);
};
process.on("uncaughtException", (error) => uncaught(error));
process.on("unhandledRejection", (error) => uncaught(error));

async function load() {
  const module = await import(pathToFileURL(file).href);
  const handler = module[handlerName] ?? module.default?.[handlerName];
  if (typeof handler !== "function") {
    const error = new Error(`${file} does not export a function "${handlerName}"`);
    error.name = "Runtime.HandlerNotFound";
    throw error;
  }
  return handler;
}

async function main() {
  let handler;
  try {
    handler = await load();
  } catch (error) {
    const text = error instanceof Error && error.stack ? error.stack : errorDetail(error);
    send(["load-error", `${errorDetail(error)}\n${text}`]);
    process.exit(0);
  }
  send(["ready", ""]);

  let pending = Buffer.alloc(0);
  let queue = Promise.resolve();
  process.stdin.on("data", (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const size = pending.readUInt32BE(0);
      if (pending.length < 4 + size) break;
      const message = JSON.parse(pending.subarray(4, 4 + size).toString("utf8"));
      pending = pending.subarray(4 + size);
      queue = queue.then(async () => {
        requestId = message.context._request_id;
        send(await invoke(handler, message.event, message.context));
      });
    }
  });
  process.stdin.on("end", () => process.exit(0));
}

main();
