// The Node.js runtime process of one function: node node_runtime.mjs /abs/file.js:handler LIMIT
// Speaks the edge's runtime protocol (edgeproxy/functions/protocol.py): frames of a 4-byte
// big-endian length and UTF-8 JSON; stdin carries calls, stdout carries replies only.
// Everything the function writes (console.*, process.stdout) goes to stderr, the edge's log,
// in Lambda's format: "<ISO time>\t<request id>\t<LEVEL>\t<message>".
// LIMIT (MB, 0: none) is the function's memory: a watchdog thread of this process kills it
// when its resident memory goes past it, as Lambda does (Runtime.OutOfMemory).
import { AsyncResource, createHook, executionAsyncId } from "node:async_hooks";
import fs from "node:fs";
import { pathToFileURL } from "node:url";
import { format } from "node:util";
import { Worker, isMainThread, workerData } from "node:worker_threads";

const REPLY_FD = 1;

// A result crosses as the JSON text it was marshalled to, spliced in, never encoded twice
// (edgeproxy/functions/protocol.py).
function frame(message) {
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
  return Buffer.concat([head, payload]);
}

function send(message) {
  fs.writeSync(REPLY_FD, frame(message));
}

// --- memory: the watchdog ---------------------------------------------------------------------
// Lambda counts what the function's process holds in memory (a Buffer off V8's heap as much as
// the heap) and kills the runtime past the function's memory size. A thread of this process
// watches the resident size while the function runs: the function's own thread may be busy in
// one allocation for as long as it likes. The two threads share the phase below; whichever
// leaves BUSY first answers the call (the function's result, or the out-of-memory failure).

const IDLE = 0; // between calls: the watchdog sleeps
const BUSY = 1; // a call or the init phase runs: the watchdog polls
const KILLED = 2; // the watchdog answered and is killing the process
const WATCH_MS = 5;
const ID_BYTES = 64;

function residentMb() {
  const pages = Number(fs.readFileSync("/proc/self/statm", "latin1").split(" ")[1]);
  return Math.floor((pages * 4096) / (1024 * 1024));
}

// Lambda's words for it: {"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: <id>
// Error: Runtime exited with error: signal: killed"} (a real capture is quoted in
// https://github.com/adobe/helix-html2md-service/issues/1001).
function outOfMemory(requestId, usedMb) {
  const detail = `Runtime.OutOfMemory: RequestId: ${requestId} Error: Runtime exited with error: signal: killed`;
  return requestId
    ? { result: null, error: [detail, ""], peak_memory_mb: usedMb, fatal: true }
    : ["load-error", `${detail} (init phase, ${usedMb} MB resident)`];
}

function watchMemory({ shared, limitMb }) {
  const phase = new Int32Array(shared, 0, 2);
  const idBytes = new Uint8Array(shared, 8, ID_BYTES);
  for (;;) {
    Atomics.wait(phase, 0, IDLE);
    while (Atomics.load(phase, 0) === BUSY) {
      const used = residentMb();
      if (used > limitMb && Atomics.compareExchange(phase, 0, BUSY, KILLED) === BUSY) {
        const requestId = Buffer.from(idBytes.subarray(0, phase[1])).toString("latin1");
        send(outOfMemory(requestId, used));
        process.kill(process.pid, "SIGKILL");
      }
      Atomics.wait(phase, 0, BUSY, WATCH_MS);
    }
  }
}

class Phase {
  constructor(limitMb) {
    const shared = new SharedArrayBuffer(8 + ID_BYTES);
    this.phase = new Int32Array(shared, 0, 2);
    this.idBytes = new Uint8Array(shared, 8, ID_BYTES);
    this.limitMb = limitMb;
    if (limitMb > 0) {
      const watchdog = new Worker(new URL(import.meta.url), { workerData: { shared, limitMb } });
      watchdog.unref(); // never what keeps this process alive
    }
  }

  busy(requestId) {
    this.phase[1] = Buffer.from(requestId, "latin1").copy(this.idBytes);
    Atomics.store(this.phase, 0, BUSY);
    Atomics.notify(this.phase, 0);
  }

  // A peak between two looks of the watchdog: the call still went past the function's memory.
  overLimit(reply) {
    return this.limitMb > 0 && reply.peak_memory_mb > this.limitMb;
  }

  // Whether this thread answers: false once the watchdog has (the process is being killed).
  idle() {
    return Atomics.compareExchange(this.phase, 0, BUSY, IDLE) !== KILLED;
  }
}

// --- the function's work: node's event loop as Lambda sees it ---------------------------------
// Lambda answers a callback handler when node's event loop is empty (beforeExit). This process's
// loop never empties (it reads stdin), so the runtime follows what the function's code started:
// every async resource created, directly or down a chain, by the function's code (at init or in
// a call; never the runtime's own stdin, replies or checks). The loop counts as empty when none
// of those that keep node's loop alive is left: a pending timer or immediate, socket, file or DNS
// request; not a promise, and not a timer or socket unref()'d (a keep-alive socket at rest).

const RECHECK_MS = 20;
// What keeps node's loop alive while it exists (async_hooks' types): timers and immediates,
// libuv handles (unless unref'd) and requests in flight. Not: promises, DNS channels, file
// handles, HTTP objects and TLS layers (the socket under them is tracked itself).
const KEEPS_LOOP_ALIVE = new Set([
  "Timeout", "Immediate",
  "TCPWRAP", "TCPSERVERWRAP", "PIPEWRAP", "PIPESERVERWRAP", "UDPWRAP", "TTYWRAP", "PROCESSWRAP",
  "SIGNALWRAP", "FSEVENTWRAP", "STATWATCHER", "MESSAGEPORT", "WORKER",
  "FSREQCALLBACK", "FSREQPROMISE", "FILEHANDLECLOSEREQ", "GETADDRINFOREQWRAP", "GETNAMEINFOREQWRAP",
  "QUERYWRAP", "TCPCONNECTWRAP", "PIPECONNECTWRAP", "SHUTDOWNWRAP", "WRITEWRAP", "UDPSENDWRAP", "ZLIB",
  "CHECKPRIMEREQUEST", "PBKDF2REQUEST", "KEYPAIRGENREQUEST", "KEYGENREQUEST", "KEYEXPORTREQUEST",
  "CIPHERREQUEST", "DERIVEBITSREQUEST", "HASHREQUEST", "RANDOMBYTESREQUEST", "RANDOMPRIMEREQUEST",
  "SCRYPTREQUEST", "SIGNREQUEST", "VERIFYREQUEST",
]);

class FunctionWork {
  constructor() {
    this.ids = new Set(); // async ids whose callbacks run the function's code
    this.alive = new Map(); // id -> resource that may keep the loop alive
    this.runtimeOwn = false; // set while the runtime schedules work of its own
    this.whenEmpty = null; // what the current call does once the loop is empty
    this.check = null; // the runtime's pending look at the loop, due in checkDelay ms
    this.checkDelay = 0;
    createHook({
      init: (id, type, trigger, resource) => {
        if (this.runtimeOwn || !(this.ids.has(trigger) || this.ids.has(executionAsyncId()))) return;
        this.ids.add(id);
        if (KEEPS_LOOP_ALIVE.has(type)) this.alive.set(id, resource);
      },
      // After a timer's or a request's callback: it may have been the last work.
      after: (id) => {
        if (this.alive.has(id)) this.mayBeEmpty();
      },
      destroy: (id) => {
        this.ids.delete(id);
        if (this.alive.delete(id)) this.mayBeEmpty();
      },
    }).enable();
  }

  // Runs fn as the function's code: what it starts is the function's work.
  run(fn, ...args) {
    const scope = new AsyncResource("EdgeproxyFunction");
    this.ids.add(scope.asyncId());
    try {
      return scope.runInAsyncScope(fn, null, ...args);
    } finally {
      this.ids.delete(scope.asyncId());
    }
  }

  isEmpty() {
    for (const [id, resource] of this.alive) {
      if (resource._destroyed === true) {
        // a timer or immediate that ran or was cleared: node reports its destroy later
        this.alive.delete(id);
      } else if (typeof resource.hasRef !== "function" || resource.hasRef()) {
        return false;
      }
    }
    return true;
  }

  // Looks once the current callbacks and microtasks are done, as beforeExit would come. Node
  // reports a destroyed resource from an unref'd immediate, which an otherwise idle loop never
  // runs: while the loop is not empty, the runtime looks again every RECHECK_MS as well.
  mayBeEmpty(delay = 0) {
    if (this.whenEmpty === null || (this.check !== null && delay >= this.checkDelay)) return;
    if (this.check !== null) (this.checkDelay ? clearTimeout : clearImmediate)(this.check);
    this.runtimeOwn = true;
    try {
      this.check = delay ? setTimeout(() => this.look(), delay) : setImmediate(() => this.look());
      this.checkDelay = delay;
    } finally {
      this.runtimeOwn = false;
    }
  }

  look() {
    this.check = null;
    if (this.whenEmpty === null) return;
    if (!this.isEmpty()) {
      this.mayBeEmpty(RECHECK_MS);
      return;
    }
    const act = this.whenEmpty;
    this.whenEmpty = null;
    act();
  }
}

// --- one call ---------------------------------------------------------------------------------

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

function replyOf(error, result, fatal) {
  if (error !== null && error !== undefined) {
    const stack = error instanceof Error && error.stack ? error.stack : errorDetail(error);
    return { result: null, error: [errorDetail(error), stack], peak_memory_mb: peakMemoryMb(), fatal };
  }
  let text;
  try {
    text = JSON.stringify(result === undefined ? null : result);
  } catch (marshal) {
    const detail = `Runtime.MarshalError: Unable to stringify response body: ${marshal.message}`;
    return { result: null, error: [detail, ""], peak_memory_mb: peakMemoryMb(), fatal };
  }
  return { resultText: text ?? "null", error: null, peak_memory_mb: peakMemoryMb(), fatal };
}

// Lambda's runtime, when the loop empties while an async handler's promise is still pending.
function nodeJsExit() {
  const error = new Error(
    "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly " +
      "caused by a Promise that was never settled.",
  );
  error.name = "Runtime.NodeJsExit";
  return error;
}

function monotonicSeconds() {
  // CLOCK_MONOTONIC, the clock of Python's time.monotonic: the edge's deadline holds here.
  return Number(process.hrtime.bigint()) / 1e9;
}

function lambdaContext(state, { succeed, fail, done }) {
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
    // The legacy context methods Lambda still offers: they answer at once.
    succeed,
    fail,
    done,
  };
}

let uncaught = null;

// Lambda's rules (aws-lambda-nodejs-runtime-interface-client, Runtime.js and CallbackContext.js):
// only the first of callback / succeed / fail / done / the returned promise counts; an error
// answers at once; callback(null, result) answers once the loop is empty while
// context.callbackWaitsForEmptyEventLoop (the default), at once when the function set it false;
// a returned promise answers when it settles. A handler that does none of these answers null
// once the loop is empty, or Runtime.NodeJsExit for an async function whose promise is pending.
function invoke(work, handler, event, state) {
  return new Promise((resolve) => {
    let finished = false;
    const finish = (error, result, fatal = false) => {
      if (finished) return;
      finished = true;
      work.whenEmpty = null;
      resolve(replyOf(error, result, fatal));
    };
    let called = false;
    const once = (fn) => (...args) => {
      if (called) return;
      called = true;
      fn(...args);
    };
    const context = lambdaContext(state, {
      succeed: once((result) => finish(null, result)),
      fail: once((error) => finish(error ?? "handled")),
      done: once((error, result) => finish(error, result)),
    });
    const callback = once((error, result) => {
      if (error !== null && error !== undefined) {
        finish(error);
      } else if (context.callbackWaitsForEmptyEventLoop) {
        work.whenEmpty = () => finish(null, result);
        work.mayBeEmpty();
      } else {
        finish(null, result);
      }
    });
    const isAsync = handler.constructor?.name === "AsyncFunction";
    work.whenEmpty = isAsync ? () => finish(nodeJsExit()) : () => finish(null, null);
    // Lambda's runtime exits after reporting an uncaught error: this one is replaced too.
    uncaught = (error) => {
      if (finished) return false;
      finish(error, undefined, true);
      return true;
    };
    try {
      work.run(() => {
        const returned = handler(event, context, callback);
        if (returned && typeof returned.then === "function") {
          returned.then(context.succeed, context.fail);
        }
      });
    } catch (error) {
      callback(error);
    }
    work.mayBeEmpty();
  });
}

// --- the process ------------------------------------------------------------------------------

function captureOutput(request) {
  // Replies own fd 1: the function's writes to process.stdout go to stderr instead.
  process.stdout.write = process.stderr.write.bind(process.stderr);
  for (const [method, level] of [
    ["log", "INFO"], ["info", "INFO"], ["warn", "WARN"], ["error", "ERROR"],
    ["debug", "DEBUG"], ["trace", "TRACE"],
  ]) {
    console[method] = (...args) => {
      const line = format(...args).replace(/\n/g, "\r");
      // synchronous: a log line is never work left in node's loop
      fs.writeSync(2, `${new Date().toISOString()}\t${request.id}\t${level}\t${line}\n`);
    };
  }
  const report = (error) => {
    if (uncaught !== null && uncaught(error)) return; // the call's failure, logged by the edge
    fs.writeSync(2, `${new Date().toISOString()}\t${request.id}\tERROR\tUncaught ${format(error)}\n`);
  };
  process.on("uncaughtException", report);
  process.on("unhandledRejection", report);
}

async function load(work, file, handlerName) {
  const module = await work.run(() => import(pathToFileURL(file).href));
  const handler = module[handlerName] ?? module.default?.[handlerName];
  if (typeof handler !== "function") {
    const error = new Error(`${file} does not export a function "${handlerName}"`);
    error.name = "Runtime.HandlerNotFound";
    throw error;
  }
  return handler;
}

async function main() {
  const spec = process.argv[2];
  const file = spec.slice(0, spec.lastIndexOf(":"));
  const handlerName = spec.slice(spec.lastIndexOf(":") + 1);
  const request = { id: "undefined" };
  captureOutput(request);
  const phase = new Phase(Number(process.argv[3] || 0));
  const work = new FunctionWork();

  let handler;
  phase.busy("");
  try {
    handler = await load(work, file, handlerName);
  } catch (error) {
    const text = error instanceof Error && error.stack ? error.stack : errorDetail(error);
    if (phase.idle()) send(["load-error", `${errorDetail(error)}\n${text}`]);
    process.exit(0);
  }
  if (!phase.idle()) return;
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
        request.id = message.context._request_id;
        phase.busy(request.id);
        const reply = await invoke(work, handler, message.event, message.context);
        if (phase.idle()) send(phase.overLimit(reply) ? outOfMemory(request.id, reply.peak_memory_mb) : reply);
      });
    }
  });
  process.stdin.on("end", () => process.exit(0));
}

if (isMainThread) {
  main();
} else {
  watchMemory(workerData);
}
