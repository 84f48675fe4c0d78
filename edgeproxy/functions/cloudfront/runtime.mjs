// The CloudFront Functions runtime: one Node.js process runs every CloudFront Function of
// the edge, each in its own node:vm context holding only what CloudFront's JavaScript
// runtime offers (docs/functions.md). It speaks edgeproxy/functions/protocol.py's frames
// (4-byte big-endian length + UTF-8 JSON) on stdin/stdout; every message gets exactly one
// reply, in order, so the edge may send several before reading.
//
//   {op: "load", key, code, runtime, kvs}     -> {ok} | {ok: false, error}
//   {op: "kvs", id, data, meta}               -> {ok}
//   {op: "call", key, event}                  -> {ok, output, error, kind, logs, utilization}
//
// A call runs synchronously inside runInContext with microtaskMode "afterEvaluate", so an
// async handler's awaits (KeyValueStore reads are in-memory) settle within the call and
// within its compute-time limit; nothing of the host (process, require, timers, network,
// file system) is reachable from the context, and eval / new Function are refused
// (codeGeneration.strings = false), as CloudFront's runtime refuses dynamic code.
import vm from 'node:vm';
import nodeCrypto from 'node:crypto';
import nodeQuerystring from 'node:querystring';
import { Buffer } from 'node:buffer';

const COMPUTE_LIMIT_MS = Number(process.argv[2] || '10');
const MEMORY_LIMIT_BYTES = 2 * 1024 * 1024; // DG cloudfront-limits: 2 MB
const LOG_LIMIT = 10 * 1024; // DG cloudfront-function-restrictions: logs truncated at 10 KB

const functions = new Map(); // key -> {context, run}
const stores = new Map(); // KeyValueStore id -> {data: Map, meta}

// -- modules ------------------------------------------------------------------------------

const HASHES = new Set(['md5', 'sha1', 'sha256']);
const ENCODINGS = new Set(['hex', 'base64', 'base64url']);

function digester(make, v1) {
  return (algorithm, ...rest) => {
    if (!HASHES.has(String(algorithm).toLowerCase())) {
      throw new Error(`Unsupported hash algorithm: ${algorithm}`);
    }
    const inner = make(algorithm, ...rest);
    const facade = {
      update(data, encoding) { inner.update(data, encoding); return facade; },
      digest(encoding) {
        if (encoding === undefined) {
          // 1.0: a byte string; 2.0: a Buffer (DG functions-javascript-runtime-features)
          return v1 ? inner.digest().toString('latin1') : inner.digest();
        }
        if (!ENCODINGS.has(encoding)) throw new Error(`Unsupported encoding: ${encoding}`);
        return inner.digest(encoding);
      },
    };
    return facade;
  };
}

function cryptoModule(v1) {
  return Object.freeze({
    createHash: digester((a) => nodeCrypto.createHash(a), v1),
    createHmac: digester((a, key) => nodeCrypto.createHmac(a, key), v1),
  });
}

const QUERYSTRING = Object.freeze({
  parse: nodeQuerystring.parse, decode: nodeQuerystring.decode,
  stringify: nodeQuerystring.stringify, encode: nodeQuerystring.encode,
  escape: nodeQuerystring.escape, unescape: nodeQuerystring.unescape,
});

// The `cloudfront` module is built inside the function's own context, so that its promises
// are the context's and settle in its microtask queue.
const CLOUDFRONT_SOURCE = `(function (lookup, known, meta, defaultId, origin) {
  'use strict';
  function handle(id) {
    var store = id === undefined ? defaultId : String(id);
    if (store === null || !known(store)) {
      throw new Error(id === undefined ? 'No KeyValueStore is associated with this function'
                                       : 'KeyValueStore not found: ' + store);
    }
    return Object.freeze({
      get: async function (key, options) {
        var format = options && options.format ? options.format : 'string';
        var value = lookup(store, String(key));
        if (value === undefined) throw new Error('KeyNotFound');
        if (format === 'json') return JSON.parse(value);
        if (format === 'bytes') return bytes(value);
        if (format !== 'string') throw new Error('Unsupported format: ' + format);
        return value;
      },
      exists: async function (key) { return lookup(store, String(key)) !== undefined; },
      meta: async function () { return JSON.parse(meta(store)); },
    });
  }
  function bytes(value) { return bytesOf(value); }
  return Object.freeze({
    kvs: handle,
    updateRequestOrigin: function (params) { origin('update', JSON.stringify(params)); },
    selectRequestOriginById: function (id) { origin('select', JSON.stringify(id)); },
    createRequestOriginGroup: function (params) { origin('group', JSON.stringify(params)); },
  });
})`;

// -- contexts -----------------------------------------------------------------------------

// `import cf from 'cloudfront'` (2.0) becomes a call of the context's own require.
const IMPORT = /^([ \t]*)import\s+(?:(\w+)|\*\s+as\s+(\w+)|\{([^}]*)\})\s+from\s+(['"])([\w-]+)\5\s*;?/gm;

function rewriteImports(code) {
  return code.replace(IMPORT, (_, indent, name, star, names, _q, module) => {
    const target = name || star;
    if (target) return `${indent}const ${target} = require('${module}');`;
    const pattern = names.split(',').map((n) => n.trim()).filter(Boolean)
      .map((n) => n.replace(/\s+as\s+/, ': ')).join(', ');
    return `${indent}const { ${pattern} } = require('${module}');`;
  });
}

// JavaScript runtime 1.0 lacks async functions and await (DG functions-javascript-runtime-10);
// a rough check of the source, strings and comments included (docs/functions.md).
const ASYNC_SYNTAX = /\basync\s+(function\b|\(|[A-Za-z_$][\w$]*\s*=>)|\bawait\b/;

function load(message) {
  const v1 = message.runtime === 'cloudfront-js-1.0';
  if (v1 && ASYNC_SYNTAX.test(message.code)) {
    throw new SyntaxError('async functions and await need runtime cloudfront-js-2.0');
  }
  const logs = [];
  const origins = [];
  const context = vm.createContext(Object.create(null), {
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: 'afterEvaluate',
  });
  const host = {
    log: (...args) => logs.push(args.map(show).join(' ')),
    lookup: (id, key) => { const s = stores.get(id); return s ? s.data.get(key) : undefined; },
    known: (id) => stores.has(id),
    meta: (id) => JSON.stringify(stores.get(id).meta),
    origin: (kind, params) => origins.push([kind, JSON.parse(params)]),
  };
  const cloudfront = v1 ? null : vm.runInContext(CLOUDFRONT_SOURCE, context)(
    host.lookup, host.known, host.meta, message.kvs ?? null, host.origin);
  const modules = {
    crypto: cryptoModule(v1),
    querystring: QUERYSTRING,
    ...(v1 ? {} : { buffer: Object.freeze({ Buffer }), cloudfront }),
  };
  const setup = vm.runInContext(`(function (log, modules, v1) {
    'use strict';
    var g = globalThis;
    delete g.WebAssembly;
    if (v1) { delete g.Promise; }
    g.console = Object.freeze({ log: log, info: log, warn: log, error: log, debug: log });
    g.require = function require(name) {
      if (!Object.prototype.hasOwnProperty.call(modules, name)) {
        throw new Error('Cannot find module "' + name + '"');
      }
      return modules[name];
    };
  })`, context);
  setup(host.log, Object.freeze(modules), v1);
  vm.runInContext(rewriteImports(message.code), context, {
    filename: message.name || 'function.js', timeout: COMPUTE_LIMIT_MS * 10,
  });
  if (vm.runInContext('typeof handler', context) !== 'function') {
    throw new Error('the function defines no handler(event)');
  }
  vm.runInContext(`globalThis.__run = (function (input) {
    var done = function (value) { globalThis.__result = { output: value }; };
    var fail = function (e) { globalThis.__result = { error: e }; };
    globalThis.__result = undefined;
    var result = handler(JSON.parse(input));
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      result.then(done, fail);
    } else {
      done(result);
    }
  });`, context);
  functions.set(message.key, { context, logs, origins });
}

function show(value) {
  if (typeof value === 'string') return value;
  try { return JSON.stringify(value); } catch { return String(value); }
}

function describe(error) {
  if (error instanceof Error || (error && typeof error.message === 'string')) {
    return `${error.name || 'Error'}: ${error.message}`;
  }
  return `Error: ${show(error)}`;
}

const RUN = new vm.Script('__run(__input)');

// V8's heap and the memory outside it (ArrayBuffers, Buffers): what a call adds to them is
// its memory use (an approximation: a collection during the call hides what it freed).
function used() {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

function call(message) {
  const fn = functions.get(message.key);
  if (fn === undefined) return { ok: false, error: 'not loaded', kind: 'execution' };
  fn.logs.length = 0;
  fn.origins.length = 0;
  const before = used();
  const started = process.hrtime.bigint();
  let error = null;
  let kind = null;
  let output = null;
  try {
    fn.context.__input = JSON.stringify(message.event);
    RUN.runInContext(fn.context, { timeout: COMPUTE_LIMIT_MS });
  } catch (e) {
    if (e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      kind = 'throttled';
      error = 'The function exceeded its maximum compute time';
    } else {
      kind = 'execution';
      error = describe(e);
    }
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  const grown = used() - before;
  if (kind === null) {
    const result = fn.context.__result;
    if (result === undefined) {
      kind = 'execution';
      error = 'Error: the handler\'s promise did not settle';
    } else if ('error' in result) {
      kind = 'execution';
      error = describe(result.error);
    } else {
      try {
        output = JSON.stringify(result.output === undefined ? null : result.output);
      } catch (e) {
        kind = 'execution';
        error = describe(e);
      }
    }
  }
  if (kind === null && grown > MEMORY_LIMIT_BYTES) {
    kind = 'execution';
    error = 'Error: the function exceeded its memory limit (2 MB)';
  }
  fn.context.__result = undefined;
  return {
    ok: kind === null,
    output,
    error,
    kind,
    logs: truncated(fn.logs),
    origins: fn.origins.slice(),
    utilization: Math.min(100, Math.round((elapsed / COMPUTE_LIMIT_MS) * 100)),
    elapsed_ms: elapsed,
  };
}

function truncated(lines) {
  let size = 0;
  const kept = [];
  for (const line of lines) {
    size += Buffer.byteLength(line) + 1;
    if (size > LOG_LIMIT) break;
    kept.push(line);
  }
  return kept;
}

function handle(message) {
  switch (message.op) {
    case 'load':
      try {
        load(message);
        return { ok: true };
      } catch (e) {
        return { ok: false, error: describe(e) };
      }
    case 'kvs':
      stores.set(message.id, { data: new Map(Object.entries(message.data)), meta: message.meta });
      return { ok: true };
    case 'call':
      return call(message);
    case 'unload':
      functions.delete(message.key);
      return { ok: true };
    default:
      return { ok: false, error: `unknown op ${message.op}` };
  }
}

// -- frames -------------------------------------------------------------------------------

let pending = Buffer.alloc(0);

function send(reply) {
  const payload = Buffer.from(JSON.stringify(reply), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length, 0);
  process.stdout.write(Buffer.concat([head, payload]));
}

process.stdin.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= 4) {
    const size = pending.readUInt32BE(0);
    if (pending.length < 4 + size) break;
    const message = JSON.parse(pending.subarray(4, 4 + size).toString('utf8'));
    pending = pending.subarray(4 + size);
    send(handle(message));
  }
});
process.stdin.on('end', () => process.exit(0));
