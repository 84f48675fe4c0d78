// Neither calls back nor returns a promise: Lambda answers null once the event loop is empty.
exports.handler = (event, context, callback) => {
    setTimeout(() => console.log('a timer of the call ran'), 50);
};
