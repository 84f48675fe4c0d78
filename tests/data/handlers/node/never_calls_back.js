// Never calls its callback and returns no promise: the call times out.
exports.handler = (event, context, callback) => {
    setInterval(() => {}, 1000);
};
