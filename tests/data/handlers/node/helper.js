// A sibling module, required relative to the handler.
exports.greeting = (style) => `hello from ${style}`;
