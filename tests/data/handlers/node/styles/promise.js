// Not async, but returns a Promise: resolved or rejected from a timer.
const { outcome, forever } = require('./outcome.cjs');

exports.handler = (event) => new Promise((resolve, reject) => {
    const { error, result, hang } = outcome(event, 'promise');
    if (hang) return forever();
    setTimeout(() => (error ? reject(error) : resolve(result)), 1);
});
