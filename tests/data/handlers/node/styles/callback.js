// Callback style: answers through callback(error, result) from a timer.
const { outcome, forever } = require('./outcome.cjs');

exports.handler = (event, context, callback) => {
    const { error, result, hang } = outcome(event, 'callback');
    if (hang) return forever();
    setTimeout(() => callback(error ?? null, result), 1);
};
