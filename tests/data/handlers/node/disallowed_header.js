// Breaks a rule: a generated response may not set Transfer-Encoding.
exports.handler = async () => ({
    status: '200',
    headers: { 'transfer-encoding': [{ key: 'Transfer-Encoding', value: 'chunked' }] },
    body: 'nope',
});
