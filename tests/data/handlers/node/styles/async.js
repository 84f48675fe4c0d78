// An async function (CommonJS).
const { outcome, forever } = require('./outcome.cjs');

exports.handler = async (event) => {
    const { error, result, hang } = outcome(event, 'async');
    if (hang) await new Promise(forever);
    if (error) throw error;
    return result;
};
